//! The connection loop and a framing front end for the vfio_user crate's `Server`.
//!
//! Why a front end: `vfio_user::Server` (0.1.7, the newest release) trusts its peer. It reads
//! each command's fixed struct whatever the header's `message_size` says (a shorter or longer
//! message desynchronises the stream), panics on a VERSION message shorter than its struct or
//! without a terminating NUL, allocates what a REGION_READ/WRITE `count` asks, answers some
//! errors with error code 0 (which QEMU takes for success), sends error replies to requests
//! marked NO_REPLY, and serves one connection per `run()`. The gate owns the client's
//! connection instead: it reads every message whole (bounded size, a time limit for the
//! rest of a message once its header arrived), checks its length and file descriptors for
//! its command, and answers bad ones itself with an error reply and a log line.
//!
//! Good REGION_READ and REGION_WRITE messages (every guest access to BAR0 or the
//! configuration space: the hot path) are served right here, in the thread that read them,
//! by a call into the device's backend: a hop to another thread would cost two more socket
//! transfers and two thread wake-ups per access, more than the access itself. Every other
//! good message goes to the crate over a private socket pair, one request and one reply at a
//! time: the crate keeps the rest of the protocol logic (version negotiation, region and IRQ
//! info, DMA maps, interrupts, reset); it serves the private socket for the process's whole
//! life, so QEMU can disconnect and reconnect without a new `Server`. Both paths run in the
//! order the messages came, one at a time, so a posted write is done before the next read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use log::{debug, error, info, trace, warn};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS;

use vfio_user::ServerBackend;

use crate::backend::{self, Backend};
use crate::device::Device;

/// Size of the vfio-user message header.
pub const HEADER_SIZE: usize = 16;
/// The largest region access the gate forwards (the largest region: BAR0, 4 KiB).
pub const MAX_ACCESS: usize = 4096;
/// The largest VERSION capability string accepted.
pub const MAX_VERSION_DATA: usize = 4096;
/// The largest message accepted; a larger `message_size` cannot be skipped safely, so the
/// connection is closed.
pub const MAX_MESSAGE: usize = HEADER_SIZE + 16 + MAX_ACCESS + MAX_VERSION_DATA;
/// File descriptors one message may carry (what the crate receives at most).
pub const MAX_FDS: usize = 16;

/// vfio-user commands (the crate's `Command` numbering).
pub mod cmd {
    /// VERSION.
    pub const VERSION: u16 = 1;
    /// DMA_MAP.
    pub const DMA_MAP: u16 = 2;
    /// DMA_UNMAP.
    pub const DMA_UNMAP: u16 = 3;
    /// DEVICE_GET_INFO.
    pub const DEVICE_GET_INFO: u16 = 4;
    /// DEVICE_GET_REGION_INFO.
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    /// DEVICE_GET_REGION_IO_FDS.
    pub const GET_REGION_IO_FDS: u16 = 6;
    /// DEVICE_GET_IRQ_INFO.
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    /// DEVICE_SET_IRQS.
    pub const DEVICE_SET_IRQS: u16 = 8;
    /// REGION_READ.
    pub const REGION_READ: u16 = 9;
    /// REGION_WRITE.
    pub const REGION_WRITE: u16 = 10;
    /// DEVICE_RESET.
    pub const DEVICE_RESET: u16 = 13;
}

/// Header flags.
pub mod flags {
    /// Bits 0..3: message type (0 command, 1 reply).
    pub const TYPE_MASK: u32 = 0xf;
    /// Type: reply.
    pub const REPLY: u32 = 1;
    /// The sender wants no reply.
    pub const NO_REPLY: u32 = 1 << 4;
    /// The reply reports an error (`error` holds an errno).
    pub const ERROR: u32 = 1 << 5;
}

/// A message header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Message id, echoed by the reply.
    pub id: u16,
    /// Command.
    pub command: u16,
    /// Size of the whole message, header included.
    pub size: u32,
    /// Flags.
    pub flags: u32,
    /// errno of an error reply.
    pub error: u32,
}

impl Header {
    /// Parse the 16 header bytes.
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Header {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Header {
            id: u16::from_le_bytes([b[0], b[1]]),
            command: u16::from_le_bytes([b[2], b[3]]),
            size: u32_at(4),
            flags: u32_at(8),
            error: u32_at(12),
        }
    }

    /// The 16 header bytes.
    pub fn bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0; HEADER_SIZE];
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.command.to_le_bytes());
        b[4..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.error.to_le_bytes());
        b
    }

    /// The error reply to this request.
    pub fn error_reply(&self, errno: i32) -> Header {
        Header {
            id: self.id,
            command: self.command,
            size: HEADER_SIZE as u32,
            flags: flags::REPLY | flags::ERROR,
            error: errno as u32,
        }
    }
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The result of a check: `Err((errno, why))` for a message the crate must not see.
pub type Checked = Result<(), (i32, String)>;

fn exact(body: &[u8], n: usize) -> Checked {
    if body.len() == n {
        Ok(())
    } else {
        Err((
            libc::EINVAL,
            format!("{} bytes of payload, expected {n}", body.len()),
        ))
    }
}

fn fds(nfds: usize, max: usize) -> Checked {
    if nfds <= max {
        Ok(())
    } else {
        Err((
            libc::EINVAL,
            format!("{nfds} file descriptors, at most {max} allowed"),
        ))
    }
}

fn region(index: u32) -> Checked {
    if index < VFIO_PCI_NUM_REGIONS {
        Ok(())
    } else {
        Err((libc::EINVAL, format!("no region {index}")))
    }
}

fn check_version(body: &[u8]) -> Checked {
    if body.len() < 5 {
        return Err((libc::EINVAL, "VERSION without capabilities".into()));
    }
    let data = &body[4..];
    if data.len() > MAX_VERSION_DATA {
        return Err((libc::E2BIG, "VERSION capabilities too long".into()));
    }
    if data.iter().position(|&b| b == 0) != Some(data.len() - 1) {
        return Err((
            libc::EINVAL,
            "VERSION capabilities not one NUL-terminated string".into(),
        ));
    }
    Ok(())
}

fn check_region_read(body: &[u8]) -> Checked {
    exact(body, 16)?;
    region(le32(body, 8))?;
    let count = le32(body, 12) as usize;
    if count > MAX_ACCESS {
        return Err((libc::EINVAL, format!("REGION_READ of {count} bytes")));
    }
    Ok(())
}

fn check_region_write(body: &[u8]) -> Checked {
    if body.len() < 16 {
        return Err((libc::EINVAL, "REGION_WRITE shorter than its header".into()));
    }
    // The crate refuses a bad region index before it reads the data, which would leave the
    // data in the stream: refuse it here.
    region(le32(body, 8))?;
    let count = le32(body, 12) as usize;
    if count != body.len() - 16 || count > MAX_ACCESS {
        return Err((
            libc::EINVAL,
            format!(
                "REGION_WRITE count {count} with {} bytes of data",
                body.len() - 16
            ),
        ));
    }
    Ok(())
}

/// Check a complete command message (`body` is what follows the header, `nfds` the file
/// descriptors that came with it).
pub fn check(h: &Header, body: &[u8], nfds: usize) -> Checked {
    match h.command {
        cmd::VERSION => check_version(body).and(fds(nfds, 0)),
        cmd::DMA_MAP => exact(body, 32).and(fds(nfds, 1)),
        cmd::DMA_UNMAP => exact(body, 24).and(fds(nfds, 0)),
        cmd::DEVICE_GET_INFO | cmd::DEVICE_GET_IRQ_INFO => exact(body, 16).and(fds(nfds, 0)),
        cmd::DEVICE_GET_REGION_INFO => exact(body, 32).and(fds(nfds, 0)),
        cmd::DEVICE_SET_IRQS => exact(body, 20).and(fds(nfds, MAX_FDS)),
        cmd::REGION_READ => check_region_read(body).and(fds(nfds, 0)),
        cmd::REGION_WRITE => check_region_write(body).and(fds(nfds, 0)),
        cmd::DEVICE_RESET => exact(body, 0).and(fds(nfds, 0)),
        c @ (cmd::GET_REGION_IO_FDS | 11 | 12 | 14) => {
            Err((libc::ENOTSUP, format!("command {c} not supported")))
        }
        c => Err((libc::ENOSYS, format!("unknown command {c}"))),
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client closed the connection (or broke the protocol beyond repair).
    Disconnected,
    /// The stop file descriptor became readable.
    Stopped,
}

/// Why reading a message failed.
enum ReadError {
    /// Clean end of the connection before a header.
    Eof,
    /// The connection cannot go on: a truncated or oversized message, an I/O error.
    Broken(String),
}

/// The front end and the crate's server behind it.
pub struct Gate {
    name: String,
    device: Device,
    /// Our end of the private socket pair; the crate's `Server::run` serves the other.
    inner: UnixStream,
    /// The device's backend for the region accesses served in this thread.
    backend: Backend,
    io_timeout: Duration,
}

fn private_dir() -> io::Result<PathBuf> {
    let mut r = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `r`.
    if unsafe { libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) } != r.len() as isize {
        return Err(io::Error::last_os_error());
    }
    let dir = std::env::temp_dir().join(format!(
        "my-rng-vfio-user.{}.{:016x}",
        std::process::id(),
        u64::from_le_bytes(r)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

impl Gate {
    /// Start the crate's server on a private socket (in a fresh 0700 directory that is
    /// removed again once connected) and connect to it.
    pub fn new(name: &str, device: Device, io_timeout: Duration) -> io::Result<Gate> {
        let dir = private_dir()?;
        let path = dir.join("s");
        let made = (|| {
            let server = vfio_user::Server::new(&path, true, backend::irqs(), backend::regions())
                .map_err(io::Error::other)?;
            let inner = UnixStream::connect(&path)?;
            let mut be = Backend::new(device.clone_handle());
            let n = name.to_string();
            thread::Builder::new()
                .name("vfio-user".into())
                .spawn(move || {
                    // One run() serves the private connection for the process's life; it
                    // ends only when the gate is gone (or a bug broke the stream).
                    match server.run(&mut be) {
                        Ok(()) => debug!("{n}: protocol thread ends"),
                        Err(e) => error!("{n}: protocol thread failed: {e}"),
                    }
                })?;
            Ok::<_, io::Error>(inner)
        })();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
        let inner = made?;
        Ok(Gate {
            name: name.to_string(),
            backend: Backend::new(device.clone_handle()),
            device,
            inner,
            io_timeout,
        })
    }

    /// Serve one client connection until it ends or `stop` becomes readable. Afterwards
    /// the device is back in its power-on state (no maps, no eventfds), ready for the next
    /// connection. `Err` only when the private connection to the crate broke (a bug).
    pub fn serve_connection(&mut self, client: UnixStream, stop: RawFd) -> io::Result<Outcome> {
        client.set_read_timeout(Some(self.io_timeout))?;
        client.set_write_timeout(Some(self.io_timeout))?;
        self.device.lock().power_on();
        info!("{}: client connected", self.name);
        let r = self.messages(&client, stop);
        let (stats, timing) = {
            let mut st = self.device.lock();
            let s = (st.stats, st.timing.to_string());
            st.power_on();
            s
        };
        match &r {
            Ok(o) => info!(
                "{}: connection ended ({o:?}); guest errors {}, DMA commands {}, MSI {}, INTx {}; {timing}",
                self.name, stats.guest_errors, stats.dma_ends, stats.msi, stats.intx
            ),
            Err(e) => error!("{}: {e}", self.name),
        }
        r
    }

    fn messages(&mut self, client: &UnixStream, stop: RawFd) -> io::Result<Outcome> {
        loop {
            if !wait_readable(client.as_raw_fd(), stop)? {
                return Ok(Outcome::Stopped);
            }
            let (h, msg, fds) = match read_message(client) {
                Ok(m) => m,
                Err(ReadError::Eof) => return Ok(Outcome::Disconnected),
                Err(ReadError::Broken(why)) => {
                    warn!("{}: closing the connection: {why}", self.name);
                    return Ok(Outcome::Disconnected);
                }
            };
            trace!(
                "{}: message {} command {} size {}",
                self.name,
                h.id,
                h.command,
                h.size
            );
            if let Some(reply) = self.handle(&h, msg, fds)? {
                if !send(client, &reply) {
                    return Ok(Outcome::Disconnected);
                }
                trace!("{}: reply {} sent", self.name, h.id);
            }
        }
    }

    /// The reply to one message: `None` when none is due (NO_REPLY, or not a command).
    fn handle(&mut self, h: &Header, msg: Vec<u8>, fds: Vec<File>) -> io::Result<Option<Vec<u8>>> {
        if h.flags & flags::TYPE_MASK != 0 {
            warn!(
                "{}: message {} (command {}) is not a command: ignored",
                self.name, h.id, h.command
            );
            return Ok(None);
        }
        let no_reply = h.flags & flags::NO_REPLY != 0;
        let body = &msg[HEADER_SIZE..];
        let reply = if h.command == cmd::DEVICE_GET_IRQ_INFO
            && body.len() == 16
            && le32(body, 8) as usize >= backend::irqs().len()
        {
            // QEMU asks for the ERR and REQ interrupts, which the device does not have:
            // an expected error, not a bad message (the crate would log it as an error).
            debug!("{}: GET_IRQ_INFO of an absent interrupt", self.name);
            h.error_reply(libc::EINVAL).bytes().to_vec()
        } else if let Err((errno, why)) = check(h, body, fds.len()) {
            warn!(
                "{}: bad message {} (command {}): {why}",
                self.name, h.id, h.command
            );
            h.error_reply(errno).bytes().to_vec()
        } else if matches!(h.command, cmd::REGION_READ | cmd::REGION_WRITE) {
            self.region_access(h, body)
        } else {
            let reply = self.forward(h, msg, &fds)?;
            let rh = Header::parse(reply[..HEADER_SIZE].try_into().expect("header"));
            if no_reply && rh.flags & flags::ERROR != 0 {
                warn!(
                    "{}: command {} (message {}, no reply wanted) failed: errno {}",
                    self.name, h.command, h.id, rh.error
                );
            }
            reply
        };
        Ok((!no_reply).then_some(reply))
    }

    /// Serve a checked REGION_READ or REGION_WRITE in this thread (see the module
    /// documentation for why). `check` bounded the region index and the count; the backend
    /// refuses what lies outside a region, as it would behind the crate (errno EINVAL).
    fn region_access(&mut self, h: &Header, body: &[u8]) -> Vec<u8> {
        let offset = u64::from_le_bytes(body[..8].try_into().expect("checked size"));
        let (region, count) = (le32(body, 8), le32(body, 12) as usize);
        trace!(
            "{}: region {region} offset {offset:#x} count {count}",
            self.name
        );
        let fields = HEADER_SIZE + 16;
        let r = if h.command == cmd::REGION_READ {
            let mut reply = vec![0u8; fields + count];
            let data = &mut reply[fields..];
            self.backend
                .region_read(region, offset, data)
                .map(|()| reply)
        } else {
            let r = self.backend.region_write(region, offset, &body[16..]);
            r.map(|()| vec![0u8; fields])
        };
        match r {
            Ok(mut reply) => {
                let rh = Header {
                    size: reply.len() as u32,
                    flags: flags::REPLY,
                    error: 0,
                    ..*h
                };
                reply[..HEADER_SIZE].copy_from_slice(&rh.bytes());
                // The reply repeats offset, region and count, as the crate's does.
                reply[HEADER_SIZE..fields].copy_from_slice(&body[..16]);
                reply
            }
            Err(e) => {
                // The backend's message names the device.
                warn!("{e} (message {}, command {})", h.id, h.command);
                h.error_reply(libc::EINVAL).bytes().to_vec()
            }
        }
    }

    /// Send a checked request to the crate and return its one reply. The request goes
    /// without NO_REPLY so that every request has exactly one reply.
    fn forward(&mut self, h: &Header, mut msg: Vec<u8>, fds: &[File]) -> io::Result<Vec<u8>> {
        let fh = Header {
            flags: h.flags & !flags::NO_REPLY,
            ..*h
        };
        msg[..HEADER_SIZE].copy_from_slice(&fh.bytes());
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let broken = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::other(format!(
                "private connection to the protocol thread: {what}: {e}"
            ))
        };
        let sent = if raw.is_empty() {
            0
        } else {
            self.inner
                .send_with_fds(&[&msg[..]], &raw)
                .map_err(|e| broken("send", &e))?
        };
        self.inner
            .write_all(&msg[sent..])
            .map_err(|e| broken("send", &e))?;
        let mut hb = [0u8; HEADER_SIZE];
        self.inner
            .read_exact(&mut hb)
            .map_err(|e| broken("reply", &e))?;
        let mut rh = Header::parse(&hb);
        let size = rh.size as usize;
        if !(HEADER_SIZE..=MAX_MESSAGE).contains(&size)
            || rh.id != h.id
            || rh.command != h.command
            || rh.flags & flags::TYPE_MASK != flags::REPLY
        {
            // Out of step with the crate: every later reply would be wrong.
            return Err(broken("reply", &format!("{rh:?} to {h:?}")));
        }
        if rh.flags & flags::ERROR != 0 && rh.error == 0 {
            // The crate reports backend and input errors with errno 0.
            rh.error = libc::EINVAL as u32;
        }
        let mut reply = vec![0u8; size];
        reply[..HEADER_SIZE].copy_from_slice(&rh.bytes());
        self.inner
            .read_exact(&mut reply[HEADER_SIZE..])
            .map_err(|e| broken("reply", &e))?;
        Ok(reply)
    }
}

fn send(client: &UnixStream, bytes: &[u8]) -> bool {
    match (&*client).write_all(bytes) {
        Ok(()) => true,
        Err(e) => {
            warn!("reply to the client failed: {e}");
            false
        }
    }
}

/// Wait until `fd` is readable (`true`) or `stop` is (`false`).
fn wait_readable(fd: RawFd, stop: RawFd) -> io::Result<bool> {
    let mut p = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `p` is a valid array of two pollfds.
        let r = unsafe { libc::poll(p.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if p[1].revents != 0 {
            return Ok(false);
        }
        if p[0].revents != 0 {
            return Ok(true);
        }
    }
}

/// Read one whole message: the header (with any file descriptors), then the rest within
/// the socket's read timeout.
fn read_message(s: &UnixStream) -> Result<(Header, Vec<u8>, Vec<File>), ReadError> {
    let mut hb = [0u8; HEADER_SIZE];
    let mut raw = [-1 as RawFd; MAX_FDS];
    let mut iov = [libc::iovec {
        iov_base: hb.as_mut_ptr().cast(),
        iov_len: HEADER_SIZE,
    }];
    // SAFETY: the iovec points at `hb`, which outlives the call.
    let r = unsafe { s.recv_with_fds(&mut iov, &mut raw) };
    let (n, nfds) = match r {
        Ok(x) => x,
        Err(e) => return Err(ReadError::Broken(format!("receive: {e}"))),
    };
    // SAFETY: the first `nfds` entries are descriptors we now own.
    let fds: Vec<File> = raw[..nfds]
        .iter()
        .map(|&fd| unsafe { File::from_raw_fd(fd) })
        .collect();
    if n == 0 {
        return Err(ReadError::Eof);
    }
    let mut rs = s;
    if n < HEADER_SIZE {
        rs.read_exact(&mut hb[n..])
            .map_err(|e| ReadError::Broken(format!("truncated header: {e}")))?;
    }
    let h = Header::parse(&hb);
    let size = h.size as usize;
    if !(HEADER_SIZE..=MAX_MESSAGE).contains(&size) {
        return Err(ReadError::Broken(format!(
            "message {} (command {}) has size {size}",
            h.id, h.command
        )));
    }
    let mut msg = vec![0u8; size];
    msg[..HEADER_SIZE].copy_from_slice(&hb);
    rs.read_exact(&mut msg[HEADER_SIZE..]).map_err(|e| {
        ReadError::Broken(format!(
            "message {} (command {}) truncated: {e}",
            h.id, h.command
        ))
    })?;
    Ok((h, msg, fds))
}

/// Serve connections on `listener` one after another until `stop` becomes readable (or,
/// with `once`, until the first connection ends).
pub fn serve(gate: &mut Gate, listener: &UnixListener, stop: RawFd, once: bool) -> io::Result<()> {
    loop {
        if !wait_readable(listener.as_raw_fd(), stop)? {
            info!("{}: stopping", gate.name);
            return Ok(());
        }
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) => {
                warn!("{}: accept: {e}", gate.name);
                continue;
            }
        };
        match gate.serve_connection(client, stop)? {
            Outcome::Stopped => {
                info!("{}: stopping", gate.name);
                return Ok(());
            }
            Outcome::Disconnected if once => return Ok(()),
            Outcome::Disconnected => info!("{}: waiting for the next connection", gate.name),
        }
    }
}

/// Bind `path`, removing a stale socket file first: a socket nobody listens on. Anything
/// else at `path` (a live server's socket, another kind of file) is an error.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: a server is listening there", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                info!("removing stale socket {}", path.display());
                std::fs::remove_file(path)?;
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: cannot tell whether it is stale: {e}", path.display()),
                ))
            }
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(command: u16, size: usize) -> Header {
        Header {
            id: 7,
            command,
            size: size as u32,
            flags: 0,
            error: 0,
        }
    }

    #[test]
    fn header_round_trip() {
        let x = Header {
            id: 0x1234,
            command: 9,
            size: 0x20,
            flags: 0x11,
            error: 5,
        };
        assert_eq!(Header::parse(&x.bytes()), x);
        let e = x.error_reply(libc::EINVAL);
        assert_eq!((e.id, e.command, e.size, e.flags), (0x1234, 9, 16, 0x21));
    }

    #[test]
    fn checks() {
        let ok = |c, body: &[u8], nfds| check(&h(c, 16 + body.len()), body, nfds).is_ok();
        let mut v = vec![0u8, 0, 1, 0];
        v.extend_from_slice(b"{}\0");
        assert!(ok(cmd::VERSION, &v, 0));
        assert!(!ok(cmd::VERSION, &v[..6], 0));
        assert!(!ok(cmd::VERSION, &[0, 0, 1, 0, b'{', 0, b'}', 0], 0));
        assert!(!ok(cmd::VERSION, &[0; 3], 0));
        assert!(ok(cmd::DMA_MAP, &[0; 32], 1));
        assert!(!ok(cmd::DMA_MAP, &[0; 32], 2));
        assert!(!ok(cmd::DMA_MAP, &[0; 31], 0));
        assert!(ok(cmd::DEVICE_RESET, &[], 0));
        assert!(!ok(cmd::DEVICE_RESET, &[], 1));
        let mut rw = vec![0u8; 16];
        rw[12] = 4;
        rw.extend_from_slice(&[1, 2, 3, 4]);
        assert!(ok(cmd::REGION_WRITE, &rw, 0));
        assert!(!ok(cmd::REGION_WRITE, &rw[..19], 0));
        let mut rr = [0u8; 16];
        rr[12..16].copy_from_slice(&4097u32.to_le_bytes());
        assert!(!ok(cmd::REGION_READ, &rr, 0));
        rr[8] = 9;
        rr[12..16].copy_from_slice(&4u32.to_le_bytes());
        assert!(!ok(cmd::REGION_READ, &rr, 0));
        rw[8] = 9;
        assert!(!ok(cmd::REGION_WRITE, &rw, 0));
        assert_eq!(check(&h(99, 16), &[], 0).unwrap_err().0, libc::ENOSYS);
        assert_eq!(check(&h(12, 16), &[], 0).unwrap_err().0, libc::ENOTSUP);
    }
}
