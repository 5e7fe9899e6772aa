//! Guest memory as QEMU shares it: the DMA maps of the vfio-user connection.
//!
//! QEMU sends one DMA_MAP per RAM section with the file descriptor of its backend
//! (`memory-backend-memfd,share=on`); the server maps it and writes the guest's memory
//! directly. A map without a file descriptor (RAM that is not shared) is recorded, so that
//! overlap and unmap rules hold, but the device cannot reach it: DMA there faults.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use log::{info, warn};
use my_rng_spec::dma::GuestMemory;

/// One DMA map: the bus range `[iova, iova + size)` and, if QEMU passed a file descriptor,
/// the server's mapping of it.
#[derive(Debug)]
struct Map {
    iova: u64,
    size: u64,
    readable: bool,
    writable: bool,
    /// Start of the server's mmap of the range; null when the map has no file descriptor.
    host: *mut u8,
}

// SAFETY: `host` is a private mapping of this process, only accessed while the owning
// `Maps` is borrowed (under the device lock).
unsafe impl Send for Map {}

impl Map {
    fn end(&self) -> u64 {
        self.iova + self.size
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if !self.host.is_null() {
            // SAFETY: `host`/`size` are exactly what mmap returned for this map.
            unsafe { libc::munmap(self.host.cast(), self.size as usize) };
        }
    }
}

/// The connection's DMA maps, sorted by bus address, never overlapping.
#[derive(Debug, Default)]
pub struct Maps {
    maps: Vec<Map>,
}

fn einval(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Map `size` bytes of `file` from `offset`, shared, with the access the DMA map allows. The
/// file descriptor can be closed afterwards: the mapping keeps the memory.
fn mmap_shared(
    file: &File,
    offset: u64,
    size: u64,
    readable: bool,
    writable: bool,
) -> io::Result<*mut u8> {
    let len = usize::try_from(size).map_err(|_| einval(format!("size {size:#x} too large")))?;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| einval(format!("offset {offset:#x} too large")))?;
    let mut prot = 0;
    if readable {
        prot |= libc::PROT_READ;
    }
    if writable {
        prot |= libc::PROT_WRITE;
    }
    // SAFETY: a new shared mapping of a file QEMU handed over; nothing else lives at the
    // address the kernel picks.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            off,
        )
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("mmap failed: {e}")));
    }
    Ok(p.cast())
}

impl Maps {
    /// No maps.
    pub fn new() -> Maps {
        Maps::default()
    }

    /// Number of maps.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether there are no maps.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// DMA_MAP: add `[iova, iova + size)` backed by `fd` at `offset`. Refused: an empty or
    /// wrapping range, a range overlapping an existing map, a mapping that fails.
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        readable: bool,
        writable: bool,
        fd: Option<(File, u64)>,
    ) -> io::Result<()> {
        let end = iova
            .checked_add(size)
            .filter(|_| size != 0)
            .ok_or_else(|| einval(format!("DMA map {iova:#x}+{size:#x}: empty or wrapping")))?;
        if let Some(m) = self.maps.iter().find(|m| m.iova < end && iova < m.end()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "DMA map {iova:#x}..{end:#x} overlaps the map {:#x}..{:#x}",
                    m.iova,
                    m.end()
                ),
            ));
        }
        let host = match fd {
            None => {
                info!("DMA map {iova:#x}..{end:#x} has no file descriptor: not reachable by DMA");
                std::ptr::null_mut()
            }
            Some((file, offset)) => {
                mmap_shared(&file, offset, size, readable, writable).map_err(|e| {
                    io::Error::new(e.kind(), format!("DMA map {iova:#x}..{end:#x}: {e}"))
                })?
            }
        };
        let at = self.maps.partition_point(|m| m.iova < iova);
        self.maps.insert(
            at,
            Map {
                iova,
                size,
                readable,
                writable,
                host,
            },
        );
        Ok(())
    }

    /// DMA_UNMAP of `[iova, iova + size)`: removes the maps inside it. A range that cuts a
    /// map is refused (nothing removed); a range holding no map is not an error.
    pub fn unmap(&mut self, iova: u64, size: u64) -> io::Result<usize> {
        let end = iova
            .checked_add(size)
            .ok_or_else(|| einval(format!("DMA unmap {iova:#x}+{size:#x}: wrapping")))?;
        if let Some(m) = self
            .maps
            .iter()
            .find(|m| m.iova < end && iova < m.end() && !(iova <= m.iova && m.end() <= end))
        {
            return Err(einval(format!(
                "DMA unmap {iova:#x}..{end:#x} cuts the map {:#x}..{:#x}",
                m.iova,
                m.end()
            )));
        }
        let before = self.maps.len();
        self.maps.retain(|m| !(iova <= m.iova && m.end() <= end));
        let n = before - self.maps.len();
        if n == 0 {
            warn!("DMA unmap {iova:#x}..{end:#x}: no map there");
        }
        Ok(n)
    }

    /// Remove every map.
    pub fn clear(&mut self) {
        self.maps.clear();
    }

    /// Walk `[addr, addr + len)` through the maps: calls `f(map, offset in map, range
    /// offset, length)` for each piece; `false` if some byte is not covered by a map that
    /// has a host mapping and `ok(map)`.
    fn walk(
        &self,
        addr: u64,
        len: u64,
        ok: impl Fn(&Map) -> bool,
        mut f: impl FnMut(&Map, u64, u64, u64),
    ) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let mut at = addr;
        let mut i = self.maps.partition_point(|m| m.end() <= at);
        while at < end {
            let Some(m) = self.maps.get(i) else {
                return false;
            };
            if m.iova > at || m.host.is_null() || !ok(m) {
                return false;
            }
            let n = (m.end() - at).min(end - at);
            f(m, at - m.iova, at - addr, n);
            at += n;
            i += 1;
        }
        true
    }

    /// Whether the whole range is covered by maps the device can write.
    pub fn writable(&self, addr: u64, len: u64) -> bool {
        self.walk(addr, len, |m| m.writable, |_, _, _, _| ())
    }

    /// Whether the whole range is covered by maps the device can read.
    pub fn readable(&self, addr: u64, len: u64) -> bool {
        self.walk(addr, len, |m| m.readable, |_, _, _, _| ())
    }

    /// Copy guest memory at `addr` into `buf`; `false` (nothing read) if not all readable.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        if !self.readable(addr, buf.len() as u64) {
            return false;
        }
        self.walk(
            addr,
            buf.len() as u64,
            |m| m.readable,
            |m, moff, boff, n| {
                // SAFETY: [moff, moff + n) lies inside the map's mapping (walk checked it);
                // guest memory is only accessed through raw copies, never references.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        m.host.add(moff as usize),
                        buf.as_mut_ptr().add(boff as usize),
                        n as usize,
                    )
                }
            },
        )
    }

    /// Copy `data` into guest memory at `addr`; `false` (nothing written) if not all
    /// writable.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        if !self.writable(addr, data.len() as u64) {
            return false;
        }
        self.walk(
            addr,
            data.len() as u64,
            |m| m.writable,
            |m, moff, doff, n| {
                // SAFETY: as in `read`.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        data.as_ptr().add(doff as usize),
                        m.host.add(moff as usize),
                        n as usize,
                    )
                }
            },
        )
    }
}

/// The device's view of guest memory for the DMA engine: the maps and Bus Master Enable.
pub struct DmaView<'a> {
    /// The connection's maps.
    pub maps: &'a Maps,
    /// PCI Command.Bus Master Enable.
    pub bus_master: bool,
}

impl GuestMemory for DmaView<'_> {
    fn bus_master(&self) -> bool {
        self.bus_master
    }

    fn is_ram(&self, addr: u64, len: u64) -> bool {
        self.maps.writable(addr, len)
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.maps.read(addr, buf)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        self.maps.write(addr, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(size: u64) -> File {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"t".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a new descriptor we own.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(size).unwrap();
        f
    }

    #[test]
    fn map_rules() {
        let mut m = Maps::new();
        m.map(0x1000, 0x2000, true, true, Some((memfd(0x3000), 0x1000)))
            .unwrap();
        m.map(0x4000, 0x1000, true, true, Some((memfd(0x1000), 0)))
            .unwrap();
        // Overlaps, empty and wrapping ranges are refused.
        assert!(m.map(0x2000, 0x1000, true, true, None).is_err());
        assert!(m.map(0x0, 0x1001, true, true, None).is_err());
        assert!(m.map(0x9000, 0, true, true, None).is_err());
        assert!(m.map(u64::MAX, 2, true, true, None).is_err());
        // No fd: recorded, not reachable.
        m.map(0x3000, 0x1000, true, true, None).unwrap();
        assert!(m.writable(0x1000, 0x2000));
        assert!(!m.writable(0x1000, 0x2001));
        assert!(!m.writable(0x3000, 1));
        assert!(m.write(0x2ffe, &[1, 2]));
        let mut b = [0u8; 2];
        assert!(m.read(0x2ffe, &mut b));
        assert_eq!(b, [1, 2]);
        assert!(!m.read(0x2fff, &mut b));
        // Unmap cutting a map is refused; whole maps go.
        assert!(m.unmap(0x1000, 0x1000).is_err());
        assert_eq!(m.unmap(0x1000, 0x3000).unwrap(), 2);
        assert_eq!(m.unmap(0x1000, 0x3000).unwrap(), 0);
        assert!(!m.writable(0x1000, 1));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn adjacent_maps_join() {
        let mut m = Maps::new();
        m.map(0x0, 0x1000, true, true, Some((memfd(0x1000), 0)))
            .unwrap();
        m.map(0x1000, 0x1000, true, false, Some((memfd(0x1000), 0)))
            .unwrap();
        assert!(m.readable(0xff0, 0x20));
        assert!(!m.writable(0xff0, 0x20));
        assert!(m.writable(0x0, 0x1000));
        assert!(!m.writable(u64::MAX, 2));
    }
}
