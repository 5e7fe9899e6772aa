//! Test harness: the server binary on a real UNIX socket, the vfio_user crate's `Client`
//! for well-formed traffic, and a raw client for bad messages.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use my_rng_spec::regs;
use vfio_user::Client;

pub const BAR0: u32 = 0;
pub const CONFIG: u32 = 7;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "my-rng-vfu-test.{}.{tag}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server process.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    _dir: TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = TempDir::new("srv");
        let socket = dir.0.join("rng.sock");
        let log = dir.0.join("server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_my-rng-vfio-user"))
            .arg("--socket")
            .arg(&socket)
            .args(if extra.contains(&"--log") {
                &[][..]
            } else {
                &["--log", "debug"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !socket.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // The socket exists once bound; listening follows at once.
        Server {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    pub fn client(&self) -> Dev {
        let t = Instant::now();
        loop {
            match Client::new(&self.socket) {
                Ok(c) => return Dev { c },
                Err(e) if t.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
    }

    pub fn raw(&self) -> Raw {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, id: 100 }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (must be a clean stop) and whether the socket is gone.
    pub fn stop(mut self) -> (bool, bool, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        (status.success(), !self.socket.exists(), self.log_text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A well-behaved client (QEMU's role) through the vfio_user crate.
pub struct Dev {
    pub c: Client,
}

impl Dev {
    pub fn r32(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.c.region_read(BAR0, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }
    pub fn r64(&mut self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.c.region_read(BAR0, off, &mut b).unwrap();
        u64::from_le_bytes(b)
    }
    pub fn w32(&mut self, off: u64, v: u32) {
        self.c.region_write(BAR0, off, &v.to_le_bytes()).unwrap();
    }
    pub fn read(&mut self, off: u64, size: usize) -> u64 {
        let mut b = [0u8; 8];
        self.c.region_read(BAR0, off, &mut b[..size]).unwrap();
        u64::from_le_bytes(b)
    }
    pub fn write(&mut self, off: u64, size: usize, v: u64) {
        self.c
            .region_write(BAR0, off, &v.to_le_bytes()[..size])
            .unwrap();
    }
    pub fn cfg(&mut self, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.c.region_read(CONFIG, off, &mut b).unwrap();
        b
    }
    pub fn cfg_w16(&mut self, off: u64, v: u16) {
        self.c.region_write(CONFIG, off, &v.to_le_bytes()).unwrap();
    }
    pub fn bus_master(&mut self, on: bool) {
        let cmd = u16::from_le_bytes(self.cfg(4, 2).try_into().unwrap());
        let cmd = if on { cmd | 0x6 } else { cmd & !0x4 };
        self.cfg_w16(4, cmd);
    }
    /// Wait for the DMA command to leave BUSY; its DMA_STATUS.
    pub fn wait_dma(&mut self) -> u32 {
        let t = Instant::now();
        loop {
            let s = self.r32(regs::DMA_STATUS);
            if s & 3 != 1 {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "DMA stays BUSY");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pub fn program(&mut self, list: u64, count: u32) {
        self.w32(regs::DMA_ADDR_LO, list as u32);
        self.w32(regs::DMA_ADDR_HI, (list >> 32) as u32);
        self.w32(regs::DMA_COUNT, count);
    }
}

/// Guest RAM for DMA: a memfd the test maps too, offered to the server as one DMA map.
pub struct Ram {
    pub file: File,
    pub base: u64,
    pub size: u64,
    ptr: *mut u8,
}

impl Ram {
    pub fn new(base: u64, size: u64) -> Ram {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"guest-ram".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: a new descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size).unwrap();
        // SAFETY: a new shared mapping of our memfd.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Ram {
            file,
            base,
            size,
            ptr: p.cast(),
        }
    }

    pub fn map(&self, d: &mut Dev) {
        d.c.dma_map(0, self.base, self.size, self.file.as_raw_fd())
            .unwrap();
    }

    fn offset(&self, addr: u64, len: usize) -> usize {
        assert!(addr >= self.base && addr - self.base + len as u64 <= self.size);
        (addr - self.base) as usize
    }

    /// A copy of guest memory at `addr`.
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let o = self.offset(addr, len);
        let mut v = vec![0u8; len];
        // SAFETY: inside our mapping (checked); raw copies only.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(o), v.as_mut_ptr(), len) };
        v
    }

    /// Write guest memory at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) {
        let o = self.offset(addr, data.len());
        // SAFETY: inside our mapping (checked); raw copies only.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(o), data.len()) };
    }

    /// Fill guest memory at `addr` with `byte`.
    pub fn fill(&self, addr: u64, len: usize, byte: u8) {
        self.write(addr, &vec![byte; len]);
    }

    pub fn put_list(&self, addr: u64, segs: &[my_rng_spec::dma::Segment]) {
        for (i, s) in segs.iter().enumerate() {
            self.write(addr + 16 * i as u64, &s.to_le_bytes());
        }
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), self.size as usize) };
    }
}

/// A reply as the raw client sees it.
pub struct Reply {
    pub id: u16,
    pub command: u16,
    pub flags: u32,
    pub error: u32,
    /// What follows the header.
    pub body: Vec<u8>,
}

/// A raw protocol client for malformed traffic.
pub struct Raw {
    pub s: UnixStream,
    pub id: u16,
}

pub const REPLY: u32 = 1;
pub const NO_REPLY: u32 = 1 << 4;
pub const ERROR: u32 = 1 << 5;

impl Raw {
    pub fn header(&mut self, command: u16, size: usize, flags: u32) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        let mut b = Vec::with_capacity(size);
        b.extend_from_slice(&self.id.to_le_bytes());
        b.extend_from_slice(&command.to_le_bytes());
        b.extend_from_slice(&(size as u32).to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    /// Send `command` with `body`, the header's size field `size` (None: the true size).
    pub fn send(&mut self, command: u16, body: &[u8], size: Option<usize>, flags: u32) {
        let mut m = self.header(command, size.unwrap_or(16 + body.len()), flags);
        m.extend_from_slice(body);
        self.s.write_all(&m).unwrap();
    }

    /// Read one reply.
    pub fn reply(&mut self) -> Option<Reply> {
        let mut h = [0u8; 16];
        self.s.read_exact(&mut h).ok()?;
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        let id = u16::from_le_bytes([h[0], h[1]]);
        let cmd = u16::from_le_bytes([h[2], h[3]]);
        let size = u32_at(4);
        let mut body = vec![0u8; size as usize - 16];
        self.s.read_exact(&mut body).ok()?;
        Some(Reply {
            id,
            command: cmd,
            flags: u32_at(8),
            error: u32_at(12),
            body,
        })
    }

    /// A valid VERSION exchange.
    pub fn version(&mut self) {
        let r = self.try_version().expect("version reply");
        assert_eq!(r.flags & ERROR, 0, "version refused");
    }

    /// A VERSION request and its reply, if one came.
    pub fn try_version(&mut self) -> Option<Reply> {
        let mut body = vec![0u8, 0, 1, 0];
        body.extend_from_slice(b"{\"capabilities\":{\"max_msg_fds\":16}}\0");
        self.send(1, &body, None, 0);
        self.reply()
    }

    /// REGION_READ of BAR0 `off`, 4 bytes: Ok(value) or Err(errno).
    pub fn read32(&mut self, off: u64) -> Result<u32, u32> {
        let mut b = Vec::new();
        b.extend_from_slice(&off.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&4u32.to_le_bytes());
        self.send(9, &b, None, 0);
        let r = self.reply().expect("reply");
        if r.flags & ERROR != 0 {
            return Err(r.error);
        }
        Ok(u32::from_le_bytes(r.body[16..20].try_into().unwrap()))
    }

    /// A request whose reply must be an error with `errno`.
    pub fn expect_error(&mut self, command: u16, body: &[u8], size: Option<usize>, errno: i32) {
        self.send(command, body, size, 0);
        let r = self.reply().expect("error reply");
        assert_eq!(r.id, self.id, "reply id");
        assert_eq!(
            r.flags & ERROR,
            ERROR,
            "command {command}: not an error reply"
        );
        assert_eq!(r.error, errno as u32, "command {command}: errno");
    }

    /// Whether the server closed the connection (read returns EOF within the time limit).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
    }
}

pub fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Read one eventfd count without blocking forever (10 s).
pub fn eventfd_wait(f: &File, timeout: Duration) -> Option<u64> {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    if r <= 0 {
        return None;
    }
    let mut b = [0u8; 8];
    (&*f).read_exact(&mut b).ok()?;
    Some(u64::from_ne_bytes(b))
}

pub fn eventfd() -> File {
    // SAFETY: a new eventfd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: as above.
    unsafe { File::from_raw_fd(fd) }
}
