// SPDX-License-Identifier: GPL-2.0

//! `read()`: the little-endian bytes of successive RNG64 values (RNG values on an ABI 1
//! device), through registers, a coherent bounce buffer or the caller's own pages. Whatever the
//! path, each part of a read that runs with the device locked first takes what the stash holds
//! ([`MyRng::drain`]), so that interleaved ioctls and reads see one contiguous sequence.

use super::{
    dma::{self, dma_result, Dma, BOUNCE_SIZE},
    glue::{self, Pinned},
    regs, MyRng,
};
use core::sync::atomic::Ordering;
use kernel::{
    io::{io_project, Io},
    iov::IovIterDest,
    prelude::*,
};

/// `read()` through registers returns at most this much per call, read in chunks of
/// `READ_CHUNK` bytes (the device is locked for one chunk at a time; a multiple of 8).
const READ_MAX: usize = 64 * 1024;
const READ_CHUNK: usize = 256;
/// `read()` by DMA returns at most this much per call (the C driver's bound).
const DMA_READ_MAX: usize = 1 << 20;
/// From this size on, `auto` reads are zero-copy; smaller ones go through the bounce buffer
/// (the C driver's measurements: pinning and mapping cost more than a copy below a page).
const ZEROCOPY_MIN: usize = 4096;

/// `read()` paths, as the `read_path` attribute names them (index into the glue's names).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ReadPath {
    Auto = 0,
    Mmio = 1,
    Bounce = 2,
    Zerocopy = 3,
}

impl ReadPath {
    pub(crate) fn from_index(i: u32) -> Option<Self> {
        match i {
            0 => Some(Self::Auto),
            1 => Some(Self::Mmio),
            2 => Some(Self::Bounce),
            3 => Some(Self::Zerocopy),
            _ => None,
        }
    }
}

impl MyRng {
    /// The path of a `read()` of `count` bytes.
    fn path(&self, count: usize) -> ReadPath {
        match ReadPath::from_index(self.read_path.load(Ordering::Relaxed)) {
            Some(ReadPath::Auto) | None if self.dma().is_none() => ReadPath::Mmio,
            Some(ReadPath::Auto) | None if count < ZEROCOPY_MIN => ReadPath::Bounce,
            Some(ReadPath::Auto) | None => ReadPath::Zerocopy,
            Some(p) => p,
        }
    }

    /// `read()` into `iov`, by the selected path.
    pub(crate) fn read(&self, iov: &mut IovIterDest<'_>) -> Result<usize> {
        match (self.path(iov.len()), self.dma()) {
            (ReadPath::Bounce, Some(d)) => self.read_bounce(d, iov),
            (ReadPath::Zerocopy, Some(d)) => self.read_zerocopy(d, iov),
            _ => self.read_mmio(iov),
        }
    }

    /// One chunk of the register path, the device locked: the stash's bytes, then RNG64
    /// register reads in one repeated read (RNG reads on an ABI 1 device).
    fn mmio_chunk(&self, chunk: &mut [u64; READ_CHUNK / 8], len: usize) -> Result {
        let mut st = self.lock_bound()?;
        let drained = self.drain(&mut st, &mut chunk.as_mut_bytes()[..len])?;
        if drained == len {
            return Ok(());
        }
        self.regs(|bar| -> Result {
            if !self.has(regs::FEAT_RNG64) {
                // An ABI 1 device (no DMA, no stash): one RNG value per 4 bytes.
                for l in chunk.as_mut_bytes()[..len].chunks_mut(4) {
                    l.copy_from_slice(&bar.read32(regs::RNG).to_le_bytes()[..l.len()]);
                }
                return Ok(());
            }
            // `drained` is a multiple of 8 when the stash ran out first.
            glue::read_rep64(bar, regs::RNG64, &mut chunk[drained / 8..len.div_ceil(8)])
        })?
    }

    /// `read()` through registers, at most `READ_MAX` bytes per call; interruptible between
    /// chunks.
    fn read_mmio(&self, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let count = iov.len().min(READ_MAX);
        let mut chunk = [0u64; READ_CHUNK / 8];
        let mut done = 0;
        let mut err = Ok(());
        while done < count {
            if current!().signal_pending() {
                err = Err(ERESTARTSYS);
                break;
            }
            let len = (count - done).min(READ_CHUNK);
            if let Err(e) = self.mmio_chunk(&mut chunk, len) {
                err = Err(e);
                break;
            }
            let copied = iov.copy_to_iter(&chunk.as_bytes()[..len]);
            done += copied;
            if copied < len {
                err = Err(EFAULT);
                break;
            }
        }
        // These bytes were handed out: do not leave them on the stack.
        chunk.fill(0);
        core::hint::black_box(&chunk);
        match err {
            Err(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    /// One chunk of the bounce path, the device locked: the stash's bytes, then DMA into the
    /// coherent buffer for the rest, copied into `chunk` (and cleared: the bytes are handed
    /// out). Returns the bytes in `chunk` and the error that cut it short.
    fn bounce_chunk(&self, d: &Dma, chunk: &mut [u8]) -> (usize, Result) {
        let mut st = match self.lock_bound() {
            Ok(st) => st,
            Err(e) => return (0, Err(e)),
        };
        let drained = match self.drain(&mut st, chunk) {
            Ok(n) => n,
            Err(e) => return (0, Err(e)),
        };
        if drained == chunk.len() {
            return (drained, Ok(()));
        }
        let (bytes, ret) = self.dma_into(
            d,
            regs::DMA_CMD_FILL,
            &d.bounce,
            0,
            chunk.len() - drained,
            true,
        );
        let copied = (|| -> Result {
            let filled = io_project!(&d.bounce, [try: 0..bytes]);
            filled.copy_to_slice(&mut chunk[drained..drained + bytes]);
            dma::zero(filled)
        })();
        match copied {
            Ok(()) => (drained + bytes, ret),
            Err(e) => (drained, Err(e)),
        }
    }

    /// Bounce path: chunks of up to `BOUNCE_SIZE` bytes, each filled with the device locked
    /// into a kernel buffer, and copied to the caller without the mutex, so that no page fault
    /// is taken with it.
    fn read_bounce(&self, d: &Dma, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let count = iov.len().min(DMA_READ_MAX);
        let mut chunk = KVVec::from_elem(0u8, count.min(BOUNCE_SIZE), GFP_KERNEL)?;
        let mut done = 0;
        let mut err = Ok(());
        while done < count {
            let len = (count - done).min(BOUNCE_SIZE);
            if current!().signal_pending() {
                err = Err(ERESTARTSYS);
                break;
            }
            let (bytes, ret) = self.bounce_chunk(d, &mut chunk[..len]);
            let copied = iov.copy_to_iter(&chunk[..bytes]);
            done += copied;
            if copied < bytes {
                err = Err(EFAULT);
                break;
            }
            if ret.is_err() {
                err = ret;
                break;
            }
        }
        // The bytes were handed out: do not leave them in freed memory.
        chunk.fill(0);
        core::hint::black_box(&chunk);
        dma_result(done, err)
    }

    /// Zero-copy path: the device writes the caller's pages. They are pinned before the mutex
    /// is taken (pinning may fault them in); if only a leading part of the buffer can be
    /// pinned, that part is filled: a short read.
    fn read_zerocopy(&self, d: &Dma, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let max = iov.len().min(DMA_READ_MAX);
        let pinned = Pinned::pin(iov, max)?;
        let mut head = KVVec::new();
        let (done, err) = self.fill_pinned(d, &pinned, &mut head);
        // The stash's bytes go to the start of the buffer, after the device is done with it.
        let done = match pinned.write_at(0, &head) {
            Ok(()) => done,
            Err(_) => 0,
        };
        head.fill(0);
        core::hint::black_box(&head);
        pinned.release(iov, done);
        dma_result(done, err)
    }

    /// Zero-copy path, the device locked: the stash's bytes into `head` (for the start of the
    /// buffer), the rest of the pinned pages by DMA, mapped while the device is surely bound.
    /// Returns the bytes done (`head` included) and the error that cut the read short.
    fn fill_pinned(&self, d: &Dma, pinned: &Pinned, head: &mut KVVec<u8>) -> (usize, Result) {
        let mut st = match self.lock_bound() {
            Ok(st) => st,
            Err(e) => return (0, Err(e)),
        };
        let want = st.stash_read_bytes().min(pinned.len());
        let drained = match head
            .extend_with(want, 0, GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|()| self.drain(&mut st, head))
        {
            Ok(n) => n,
            Err(e) => return (0, Err(e)),
        };
        if drained == pinned.len() {
            return (drained, Ok(()));
        }
        let (bytes, ret) = match pinned.map(&d.pdev) {
            Ok(sgt) => self.dma_fill_sgt(d, sgt, drained),
            Err(e) => (0, Err(e)),
        };
        pinned.unmap();
        (drained + bytes, ret)
    }
}
