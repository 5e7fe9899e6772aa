//! One DMA command through the real server, run the way the drivers run one (the bounce
//! path's 4 KiB read, a RAND stash refill, a hwrng pool refill): four posted writes
//! (DMA_ADDR_LO/HI, DMA_COUNT, DMA_CMD), the MSI eventfd, then the interrupt handler's
//! IRQ_STATUS read and posted clear, DMA_STATUS and DMA_BYTES. The guest memory is a memfd
//! shared with the server, as QEMU's `memory-backend-memfd,share=on`; every command's bytes
//! are checked against the spec's glibc FILL stream, so a wrong fill fails the run.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use my_rng_spec::regs;
use my_rng_spec::{Algorithm, Generator};

use crate::client::{bad, Client, BAR0, CONFIG};

/// Bus address of the shared memory.
const IOVA: u64 = 0x1000_0000;
/// Its size: the segment list's page and the target.
const SIZE: u64 = 0x2_0000;
/// Where the target starts (the list is at IOVA).
const TARGET: u64 = IOVA + 0x1000;

/// The shared memory, mapped here too.
struct Ram {
    file: File,
    ptr: *mut u8,
}

impl Ram {
    fn new() -> io::Result<Ram> {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"rtt-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(SIZE)?;
        // SAFETY: a new shared mapping of our memfd; nothing else lives there.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ram {
            file,
            ptr: p.cast(),
        })
    }

    /// Copy of `len` bytes at bus address `addr` (inside the map: the callers' constants).
    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        // SAFETY: [addr - IOVA, + len) lies inside the mapping; raw copies only, as the
        // server writes the same memory.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add((addr - IOVA) as usize), v.as_mut_ptr(), len)
        };
        v
    }

    fn write(&self, addr: u64, data: &[u8]) {
        // SAFETY: as in `read`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.add((addr - IOVA) as usize),
                data.len(),
            )
        };
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), SIZE as usize) };
    }
}

fn eventfd() -> io::Result<File> {
    // SAFETY: a new eventfd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Wait (at most 10 s) for the eventfd and consume its count.
fn wait(f: &File) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
        return Err(bad("no MSI within 10 s".into()));
    }
    let mut b = [0u8; 8];
    (&*f).read_exact(&mut b)
}

/// Per-command times of one round, µs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    /// DMA_CMD posted → MSI eventfd readable: the server's share of a command.
    pub to_msi: f64,
    /// The whole command, the first posted write to the DMA_BYTES reply.
    pub total: f64,
}

/// The device set up for DMA with MSI, and the reference stream.
pub struct Dma {
    c: Client,
    ram: Ram,
    msi: File,
    expect: Generator,
    len: u32,
}

impl Dma {
    /// Map the memory, enable bus mastering and MSI, put a one-segment list of `len` bytes.
    pub fn new(mut c: Client, len: u32) -> io::Result<Dma> {
        let ram = Ram::new()?;
        if u64::from(len) > SIZE - (TARGET - IOVA) {
            return Err(bad(format!("a DMA command of {len} bytes does not fit")));
        }
        c.dma_map(&ram.file, IOVA, SIZE)?;
        c.write(CONFIG, 4, &0x0006u16.to_le_bytes())?;
        let msi = eventfd()?;
        c.set_irq(1, &msi)?;
        c.post32(regs::IRQ_ENABLE, regs::IRQ_DMA_DONE)?;
        let seg = my_rng_spec::dma::Segment {
            addr: TARGET,
            len,
            flags: 0,
        };
        ram.write(IOVA, &seg.to_le_bytes());
        let expect = Generator::new(Algorithm::Glibc, 0).expect("glibc is deterministic");
        Ok(Dma {
            c,
            ram,
            msi,
            expect,
            len,
        })
    }

    /// One command; its times.
    fn command(&mut self) -> io::Result<(Duration, Duration)> {
        let c = &mut self.c;
        let t0 = Instant::now();
        c.post32(regs::DMA_ADDR_LO, IOVA as u32)?;
        c.post32(regs::DMA_ADDR_HI, (IOVA >> 32) as u32)?;
        c.post32(regs::DMA_COUNT, 1)?;
        let t1 = Instant::now();
        c.post32(regs::DMA_CMD, regs::DMA_CMD_FILL)?;
        wait(&self.msi)?;
        let t2 = Instant::now();
        let irq = c.read32(BAR0, regs::IRQ_STATUS)?;
        c.post32(regs::IRQ_STATUS, irq)?;
        let st = c.read32(BAR0, regs::DMA_STATUS)?;
        let bytes = c.read32(BAR0, regs::DMA_BYTES)?;
        let t3 = Instant::now();
        if irq != regs::IRQ_DMA_DONE
            || st & regs::DMA_STATUS_STATE_MASK != regs::DMA_STATE_DONE
            || bytes != self.len
        {
            return Err(bad(format!(
                "after the MSI: IRQ_STATUS {irq:#x}, DMA_STATUS {st:#x}, DMA_BYTES {bytes}"
            )));
        }
        Ok((t2 - t1, t3 - t0))
    }

    /// Check the command's bytes: the next outputs of the glibc sequence from seed 0, LE.
    fn check(&mut self) -> io::Result<()> {
        let got = self.ram.read(TARGET, self.len as usize);
        let mut want = Vec::with_capacity(got.len() + 8);
        while want.len() < got.len() {
            want.extend_from_slice(&self.expect.next_u64().to_le_bytes());
        }
        if got[..] != want[..got.len()] {
            return Err(bad(
                "the DMA command's bytes are not the spec's FILL stream".into(),
            ));
        }
        Ok(())
    }

    /// `calls` commands: their mean times.
    pub fn round(&mut self, calls: u32) -> io::Result<Times> {
        let (mut to_msi, mut total) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..calls {
            let (m, t) = self.command()?;
            self.check()?;
            to_msi += m;
            total += t;
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls.max(1));
        Ok(Times {
            to_msi: us(to_msi),
            total: us(total),
        })
    }
}
