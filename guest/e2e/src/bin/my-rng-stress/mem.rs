//! User buffers whose end is followed by an inaccessible page: a read() into them can write the
//! accessible part only, and must fail or come up short there.

use std::ffi::c_void;

const PAGE: usize = 4096;

/// `good` accessible bytes ending exactly at an inaccessible guard page.
pub struct Guarded {
    base: *mut c_void,
    total: usize,
    good: usize,
}

impl Guarded {
    pub fn new(good: usize) -> Result<Guarded, String> {
        let pages = good.div_ceil(PAGE);
        let total = (pages + 1) * PAGE;
        // SAFETY: an anonymous private mapping of `total` bytes, ours alone; the last page is
        // then made inaccessible.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(format!("mmap {total} bytes failed"));
            }
            let guard = base.cast::<u8>().add(pages * PAGE).cast::<c_void>();
            if libc::mprotect(guard, PAGE, libc::PROT_NONE) != 0 {
                libc::munmap(base, total);
                return Err("mprotect failed".into());
            }
            Ok(Guarded { base, total, good })
        }
    }

    /// The first accessible byte: `good` bytes before the guard page.
    pub fn start(&self) -> *mut u8 {
        self.last(self.good)
    }

    /// The last `n` (at most `good`) accessible bytes: reusing one mapping for buffers of
    /// every size avoids a page fault per page per call.
    pub fn last(&self, n: usize) -> *mut u8 {
        let pages = self.good.div_ceil(PAGE);
        // SAFETY: within the mapping (pages * PAGE >= good >= n).
        unsafe { self.base.cast::<u8>().add(pages * PAGE - n.min(self.good)) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base, self.total) };
    }
}

/// read(2) without the library's retry or classification: bytes or errno.
pub fn raw_read(fd: i32, p: *mut u8, len: usize) -> Result<usize, i32> {
    // SAFETY: the kernel checks the user pointer; `p` is ours or deliberately bad.
    let r = unsafe { libc::read(fd, p.cast(), len) };
    if r < 0 {
        Err(my_rng_e2e::util::errno())
    } else {
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_page_follows_the_good_bytes() {
        for good in [0usize, 1, 4095, 4096, 4097, 3 * 4096 + 5] {
            let g = Guarded::new(good).unwrap();
            let end = g.start() as usize + good;
            assert_eq!(end % PAGE, 0, "good {good}");
            if good > 0 {
                // SAFETY: within the good part.
                unsafe { g.start().write_bytes(0xa5, good) };
            }
        }
    }
}
