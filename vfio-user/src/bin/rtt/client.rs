//! A raw vfio-user client of the real server, speaking the protocol as QEMU 10.2's client
//! does: VERSION first, then one request and one reply at a time, BAR writes posted
//! (NO_REPLY), file descriptors (DMA maps, interrupt eventfds) beside the message.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use my_rng_vfio_user::gate::{cmd, flags, Header, HEADER_SIZE};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// Region index of BAR0.
pub const BAR0: u32 = 0;
/// Region index of the configuration space.
pub const CONFIG: u32 = 7;

/// A malformed or unexpected answer: the run fails instead of producing a figure.
pub fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One connection to the server.
pub struct Client {
    s: UnixStream,
    id: u16,
}

impl Client {
    /// Connect (retrying while the server starts) and negotiate the version.
    pub fn connect(socket: &Path, server: &mut Child) -> io::Result<Client> {
        let t = Instant::now();
        let s = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if t.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) if server.try_wait()?.is_some() => {
                    return Err(bad("the server exited at start".into()))
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut c = Client { s, id: 0 };
        let mut caps = vec![0, 0, 1, 0];
        caps.extend_from_slice(b"{\"capabilities\":{\"max_msg_fds\":16}}\0");
        c.request(cmd::VERSION, &caps, &[])?;
        Ok(c)
    }

    fn message(&mut self, command: u16, body: &[u8], flags: u32) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        let h = Header {
            id: self.id,
            command,
            size: (HEADER_SIZE + body.len()) as u32,
            flags,
            error: 0,
        };
        let mut m = h.bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    /// Send `command` with `body` (and `fds`) and return the body of its reply; an error
    /// reply or a reply to something else is an error.
    pub fn request(&mut self, command: u16, body: &[u8], fds: &[RawFd]) -> io::Result<Vec<u8>> {
        let m = self.message(command, body, 0);
        if fds.is_empty() {
            self.s.write_all(&m)?;
        } else {
            let sent = self
                .s
                .send_with_fds(&[&m[..]], fds)
                .map_err(io::Error::other)?;
            self.s.write_all(&m[sent..])?;
        }
        let mut hb = [0u8; HEADER_SIZE];
        self.s.read_exact(&mut hb)?;
        let h = Header::parse(&hb);
        if h.id != self.id || h.command != command || h.flags & flags::TYPE_MASK != flags::REPLY {
            return Err(bad(format!("unexpected reply {h:?}")));
        }
        if h.flags & flags::ERROR != 0 {
            return Err(bad(format!("command {command}: error {}", h.error)));
        }
        let mut rest = vec![0u8; (h.size as usize).saturating_sub(HEADER_SIZE)];
        self.s.read_exact(&mut rest)?;
        Ok(rest)
    }

    fn access(region: u32, offset: u64, count: u32) -> Vec<u8> {
        let mut b = offset.to_le_bytes().to_vec();
        b.extend_from_slice(&region.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b
    }

    /// A 4-byte REGION_READ.
    pub fn read32(&mut self, region: u32, offset: u64) -> io::Result<u32> {
        let r = self.request(cmd::REGION_READ, &Self::access(region, offset, 4), &[])?;
        let data = r
            .get(16..20)
            .ok_or_else(|| bad(format!("REGION_READ reply of {} bytes", r.len())))?;
        Ok(u32::from_le_bytes(data.try_into().expect("4 bytes")))
    }

    /// A REGION_WRITE that waits for its reply (QEMU's configuration-space writes).
    pub fn write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut b = Self::access(region, offset, data.len() as u32);
        b.extend_from_slice(data);
        self.request(cmd::REGION_WRITE, &b, &[]).map(|_| ())
    }

    /// A posted 4-byte BAR0 write (NO_REPLY), as QEMU sends every BAR write.
    pub fn post32(&mut self, offset: u64, value: u32) -> io::Result<()> {
        let mut b = Self::access(BAR0, offset, 4);
        b.extend_from_slice(&value.to_le_bytes());
        let m = self.message(cmd::REGION_WRITE, &b, flags::NO_REPLY);
        self.s.write_all(&m)
    }

    /// DMA_MAP of `size` bytes of `file` (from its start) at bus address `iova`, read-write.
    pub fn dma_map(&mut self, file: &File, iova: u64, size: u64) -> io::Result<()> {
        let mut b = 32u32.to_le_bytes().to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        for v in [0, iova, size] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.request(cmd::DMA_MAP, &b, &[file.as_raw_fd()])
            .map(|_| ())
    }

    /// SET_IRQS: `eventfd` triggers vector 0 of interrupt `index`.
    pub fn set_irq(&mut self, index: u32, eventfd: &File) -> io::Result<()> {
        use vfio_bindings::bindings::vfio::{
            VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD,
        };
        let mut b = Vec::new();
        let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        for v in [20, flags, index, 0, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.request(cmd::DEVICE_SET_IRQS, &b, &[eventfd.as_raw_fd()])
            .map(|_| ())
    }
}
