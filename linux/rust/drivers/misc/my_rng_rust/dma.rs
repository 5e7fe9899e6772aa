// SPDX-License-Identifier: GPL-2.0

//! The DMA engine (ABI 2.1): its coherent buffers, one command at a time with the completion
//! interrupt, and filling a DMA-mapped scatterlist in as many commands as the device's limits
//! require.

use super::{regs, stash::STASH_MAX, MyRng};
use kernel::{
    bindings,
    device::Core,
    dma::{Coherent, CoherentView, Device as _, DmaMask},
    io::{io_project, io_read, io_write, Io},
    irq::{self, IrqReturn},
    pci,
    prelude::*,
    scatterlist::SGTable,
    sync::Arc,
    time::{msecs_to_jiffies, Jiffies},
    types::Opaque,
};

/// The coherent bounce buffer of `read()`: one single-segment command at most.
pub(crate) const BOUNCE_SIZE: usize = 16 * 1024;
/// hw_random's pool: two halves of host entropy.
/// A half is one 16 KiB command (at most `BOUNCE_SIZE`, the smallest DMA_MAX_BYTES accepted):
/// 256 of hw_random's 64-byte calls, four 4 KiB reads of /dev/hwrng per command.
pub(crate) const POOL_HALF: usize = 16 * 1024;
const _: () = assert!(POOL_HALF <= BOUNCE_SIZE);
pub(crate) const POOL_HALVES: usize = 2;
/// A command that has not ended after this long is aborted.
const TIMEOUT_MS: u32 = 10_000;
/// At most this many segments per command, whatever DMA_MAX_SEGS says (the list's size).
const SEGS_LIMIT: u32 = 4096;

/// Zeroes to clear coherent memory with, a page at a time (the I/O view of coherent memory
/// copies from a slice; it has no fill).
static ZEROS: [u8; 4096] = [0; 4096];

/// The DMA engine's buffers and limits (ABI 2.1 devices with DMA and its interrupt).
pub(crate) struct Dma {
    /// Segment list the device reads: `max_segs` entries of two little-endian words each,
    /// the bus address, then the length (low half) and flags (high half, 0).
    segs: Coherent<[u64]>,
    /// Bounce buffer of `read()`, `BOUNCE_SIZE` bytes.
    pub(crate) bounce: Coherent<[u8]>,
    /// The stash: the FILL stream's bytes, `STASH_MAX` of them.
    pub(crate) stash: Coherent<[u8]>,
    /// hw_random's pool, `POOL_HALVES` halves of `POOL_HALF` bytes.
    pub(crate) pool: Coherent<[u8]>,
    /// Segments per command, DMA_MAX_SEGS (at most `SEGS_LIMIT`).
    max_segs: u32,
    /// Bytes per command, DMA_MAX_BYTES.
    max_bytes: u32,
    /// The PCI function, for mapping the pages of a zero-copy read.
    pub(crate) pdev: kernel::sync::aref::ARef<pci::Device>,
}

impl Dma {
    /// Allocates the buffers for the device's limits, DMA_MAX_SEGS and DMA_MAX_BYTES; `None`
    /// (after a log line) if the device is not usable by DMA, which is then used through its
    /// registers.
    pub(crate) fn new(pdev: &pci::Device<Core<'_>>, max_segs: u32, max_bytes: u32) -> Option<Self> {
        let max_segs = max_segs.min(SEGS_LIMIT);
        // A bounce, stash or pool command is one segment of up to 16 KiB; a zero-copy command
        // needs two segments to make progress over a page boundary.
        if max_segs < 2 || (max_bytes as usize) < BOUNCE_SIZE {
            dev_warn!(
                pdev,
                "DMA limits too small ({max_segs} segments, {max_bytes} bytes): no DMA\n"
            );
            return None;
        }
        let alloc = || -> Result<Self> {
            // SAFETY: probe is the only user of the device's DMA settings at this point.
            unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())? };
            Ok(Dma {
                segs: Coherent::zeroed_slice(pdev.as_ref(), 2 * max_segs as usize, GFP_KERNEL)?,
                bounce: Coherent::zeroed_slice(pdev.as_ref(), BOUNCE_SIZE, GFP_KERNEL)?,
                stash: Coherent::zeroed_slice(pdev.as_ref(), STASH_MAX, GFP_KERNEL)?,
                pool: Coherent::zeroed_slice(pdev.as_ref(), POOL_HALVES * POOL_HALF, GFP_KERNEL)?,
                max_segs,
                max_bytes,
                pdev: pdev.into(),
            })
        };
        match alloc() {
            Ok(d) => Some(d),
            Err(e) => {
                dev_warn!(pdev, "DMA setup failed ({e:?}): no DMA\n");
                None
            }
        }
    }

    /// Sets entry `i` of the segment list; the caller holds the device's mutex and no command
    /// runs (the device does not read the list meanwhile).
    pub(crate) fn set_seg(&self, i: u32, addr: u64, len: u32) -> Result {
        let i = 2 * i as usize;
        io_write!(&self.segs, [try: i], addr.to_le());
        io_write!(&self.segs, [try: i + 1], u64::from(len).to_le());
        Ok(())
    }

    /// The bytes of the first `nsegs` entries of the segment list: what a command over them
    /// that ends DONE has written (DMA_BYTES counts every byte), known without reading it.
    fn list_bytes(&self, nsegs: u32) -> Result<u32> {
        let mut total = 0u32;
        for i in 0..nsegs as usize {
            let word: u64 = io_read!(&self.segs, [try: 2 * i + 1]);
            total = total.saturating_add(u64::from_le(word) as u32);
        }
        Ok(total)
    }

    /// One segment over `len` bytes of `buf` from byte `off` on.
    pub(crate) fn set_seg_in<T: ?Sized + kernel::ptr::KnownSize>(
        &self,
        buf: &Coherent<T>,
        off: usize,
        len: usize,
    ) -> Result {
        if off.checked_add(len).ok_or(EINVAL)? > buf.size() {
            return Err(EINVAL);
        }
        self.set_seg(0, buf.dma_address() + off as u64, u32::try_from(len)?)
    }
}

/// Clears `view` (coherent memory whose bytes were handed out).
pub(crate) fn zero(view: CoherentView<'_, [u8]>) -> Result {
    let len = view.len();
    let mut off = 0;
    while off < len {
        let n = (len - off).min(ZEROS.len());
        io_project!(view, [try: off..off + n]).copy_from_slice(&ZEROS[..n]);
        off += n;
    }
    Ok(())
}

/// Where a zero-copy fill stands in a DMA-mapped scatterlist.
#[derive(Clone, Copy)]
struct SgPos {
    /// Index of the current entry.
    entry: usize,
    /// Bytes of the current entry already used.
    off: u64,
}

impl SgPos {
    /// The position `skip` bytes into `ents`.
    fn at(ents: &[Seg], mut skip: u64) -> Self {
        let mut pos = SgPos { entry: 0, off: 0 };
        for &(_, len) in ents {
            if skip < len {
                pos.off = skip;
                break;
            }
            skip -= len;
            pos.entry += 1;
        }
        pos
    }
}

/// One mapped entry of a scatterlist: bus address and length.
type Seg = (u64, u64);

/// The mapped entries of `sgt`, read in one pass: each entry's address and length is a C
/// helper call (and the iterator's step a call of `sg_next()`), too many to repeat in every
/// walk of a command.
fn sg_entries(sgt: &SGTable) -> Result<KVVec<Seg>> {
    let mut ents = KVVec::new();
    for e in sgt.iter() {
        ents.push((e.dma_address(), e.dma_len()), GFP_KERNEL)?;
    }
    Ok(ents)
}

/// The end of a DMA command, as the interrupt handler reports it: a C `struct completion`,
/// re-armed before each command. `kernel::sync::Completion` cannot be re-armed and only waits
/// without a timeout and without signals; a command's wait needs a timeout, and must be
/// interruptible for `read()` but not for a refill (the device draws the words of an
/// interrupted command, which a restarted call would skip): the C calls.
#[pin_data]
pub(crate) struct DmaDone {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: a `struct completion` may be completed and waited for from any thread.
unsafe impl Send for DmaDone {}
// SAFETY: as above; its functions take its own lock.
unsafe impl Sync for DmaDone {}

impl DmaDone {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes, and the completion is not used before.
            inner <- Opaque::ffi_init(|slot| unsafe { bindings::init_completion(slot) }),
        })
    }

    /// Forgets an earlier end, before a command starts (`reinit_completion()`, an inline
    /// function without a binding: it clears `done`).
    fn rearm(&self) {
        // SAFETY: `inner` is initialised; no command runs, so only the late interrupt of an
        // aborted command could complete it now, and the waiter checks the device's status
        // after every wake-up.
        unsafe { (*self.inner.get()).done = 0 };
    }

    /// Called by the interrupt handler.
    fn complete(&self) {
        // SAFETY: `inner` is initialised.
        unsafe { bindings::complete(self.inner.get()) };
    }

    /// Waits for the end at most `left` jiffies (updated to what is left): `ETIMEDOUT`, or,
    /// if `intr`, `ERESTARTSYS` on a signal.
    fn wait(&self, left: &mut Jiffies, intr: bool) -> Result {
        let x = self.inner.get();
        // SAFETY: `inner` is initialised.
        let rest = unsafe {
            if intr {
                bindings::wait_for_completion_interruptible_timeout(x, *left) as i64
            } else {
                bindings::wait_for_completion_timeout(x, *left) as i64
            }
        };
        *left = rest.max(0) as Jiffies;
        match rest {
            r if r < 0 => Err(ERESTARTSYS),
            0 => Err(ETIMEDOUT),
            _ => Ok(()),
        }
    }
}

impl MyRng {
    /// Starts `cmd` on the first `nsegs` entries of the segment list and waits for its end,
    /// interruptibly if `intr`; the caller holds the mutex. Returns the bytes written (in
    /// every case: after an abort the device writes nothing more, so the memory can be
    /// released) and `Ok` once the command is done, `ERESTARTSYS` or `ETIMEDOUT` after
    /// aborting it, `EIO` if the device ended it with an error.
    pub(crate) fn dma_run(&self, d: &Dma, cmd: u32, nsegs: u32, intr: bool) -> (u32, Result) {
        let list = d.segs.dma_address();
        self.dma_done.rearm();
        let started = self.regs(|bar| {
            bar.write32(list as u32, regs::DMA_ADDR_LO);
            bar.write32((list >> 32) as u32, regs::DMA_ADDR_HI);
            bar.write32(nsegs, regs::DMA_COUNT);
            bar.write32(cmd, regs::DMA_CMD);
        });
        if let Err(e) = started {
            return (0, Err(e));
        }
        let mut left = msecs_to_jiffies(TIMEOUT_MS);
        let mut ret = Ok(());
        let status = loop {
            let woken = self.dma_done.wait(&mut left, intr);
            // The late interrupt of an aborted command may wake us early: look.
            let status = self.regs(|bar| bar.read32(regs::DMA_STATUS)).unwrap_or(0);
            if status & regs::DMA_STATUS_STATE_MASK != regs::DMA_STATE_BUSY {
                break status;
            }
            if let Err(e) = woken {
                let _ = self.regs(|bar| bar.write32(regs::DMA_CMD_ABORT, regs::DMA_CMD));
                ret = Err(e);
                break status;
            }
        };
        // DONE: every byte of the list is written. Not reading DMA_BYTES then saves a
        // register round trip per command (an exit under KVM, a socket message over vfio-user).
        let done = ret.is_ok() && status & regs::DMA_STATUS_STATE_MASK == regs::DMA_STATE_DONE;
        let listed = done.then(|| d.list_bytes(nsegs).ok()).flatten();
        let bytes =
            listed.unwrap_or_else(|| self.regs(|bar| bar.read32(regs::DMA_BYTES)).unwrap_or(0));
        if ret == Err(ETIMEDOUT) {
            pr_err!("DMA command {cmd:#x} timed out after {bytes} bytes\n");
        } else if ret.is_ok() && !done {
            pr_err!("DMA command {cmd:#x} failed: status {status:#x}\n");
            ret = Err(EIO);
        }
        (bytes, ret)
    }

    /// A single-segment command over `len` bytes of `buf` from byte `off` on, as `dma_run`;
    /// the caller holds the mutex. Returns the bytes written, and the error that ended it
    /// early if any.
    pub(crate) fn dma_into<T: ?Sized + kernel::ptr::KnownSize>(
        &self,
        d: &Dma,
        cmd: u32,
        buf: &Coherent<T>,
        off: usize,
        len: usize,
        intr: bool,
    ) -> (usize, Result) {
        if let Err(e) = d.set_seg_in(buf, off, len) {
            return (0, Err(e));
        }
        let (bytes, ret) = self.dma_run(d, cmd, 1, intr);
        ((bytes as usize).min(len), ret)
    }

    /// Writes segments from `pos` into the list: at most `limit` bytes and `max_segs` segments
    /// (only counted unless `write`). Returns the bytes and the number of segments.
    fn dma_walk(
        &self,
        d: &Dma,
        ents: &[Seg],
        pos: &mut SgPos,
        limit: u64,
        write: bool,
    ) -> Result<(u64, u32)> {
        let (mut total, mut nsegs) = (0u64, 0u32);
        for &(addr, elen) in ents.iter().skip(pos.entry) {
            if nsegs == d.max_segs || total == limit {
                break;
            }
            let len = (elen - pos.off).min(limit - total);
            if write {
                // `len` fits: it is at most `limit`, a u32 value.
                d.set_seg(nsegs, addr + pos.off, len as u32)?;
            }
            nsegs += 1;
            total += len;
            pos.off += len;
            if pos.off < elen {
                break;
            }
            pos.entry += 1;
            pos.off = 0;
        }
        Ok((total, nsegs))
    }

    /// Fills the DMA-mapped `sgt` from byte `skip` on with the RNG64 stream, in as many
    /// commands as the device's limits require; the caller holds the mutex. Each command
    /// consumes whole outputs (the unused bytes of its last one are discarded), so every
    /// command but the last ends on an 8-byte boundary: the bytes are those of the MMIO path.
    /// Returns the bytes written before the first error, and that error.
    pub(crate) fn dma_fill_sgt(&self, d: &Dma, sgt: &SGTable, skip: usize) -> (usize, Result) {
        match sg_entries(sgt) {
            Ok(ents) => self.dma_fill_ents(d, &ents, skip),
            Err(e) => (0, Err(e)),
        }
    }

    /// [`Self::dma_fill_sgt`] over the table's entries.
    fn dma_fill_ents(&self, d: &Dma, ents: &[Seg], skip: usize) -> (usize, Result) {
        let mut pos = SgPos::at(ents, skip as u64);
        let mut done = 0usize;
        while pos.entry < ents.len() {
            let mut end = pos;
            let mut len = match self.dma_walk(d, ents, &mut end, d.max_bytes.into(), false) {
                Ok((len, _)) => len,
                Err(e) => return (done, Err(e)),
            };
            if end.entry < ents.len() {
                len &= !7;
            }
            if len == 0 {
                // Cannot happen with page-sized segments and max_segs >= 2.
                return (done, Err(EIO));
            }
            let nsegs = match self.dma_walk(d, ents, &mut pos, len, true) {
                Ok((_, n)) => n,
                Err(e) => return (done, Err(e)),
            };
            if current!().signal_pending() {
                return (done, Err(ERESTARTSYS));
            }
            let (bytes, ret) = self.dma_run(d, regs::DMA_CMD_FILL, nsegs, true);
            done += u64::from(bytes).min(len) as usize;
            if ret.is_err() {
                return (done, ret);
            }
        }
        (done, Ok(()))
    }

    /// Sets up the completion interrupt and turns the DMA engine on, if the device has it.
    /// On failure the device is used through its registers, as an ABI 2.0 one.
    pub(crate) fn start_dma<'bound>(
        self: &Arc<Self>,
        pdev: &'bound pci::Device<Core<'_>>,
        name: &'static CStr,
    ) -> Option<Interrupt<'bound>> {
        self.dma.as_ref()?;
        let irq = match Interrupt::new(pdev, self, name) {
            Ok(i) => i,
            Err(e) => {
                dev_warn!(
                    pdev,
                    "no interrupt for DMA ({e:?}): reading through registers\n"
                );
                return None;
            }
        };
        pdev.set_master();
        let on = self.with_regs(|bar| {
            // A cause left pending by an earlier driver must not fire now.
            bar.write32(regs::IRQ_DMA_DONE, regs::IRQ_STATUS);
            bar.write32(regs::IRQ_DMA_DONE, regs::IRQ_ENABLE);
        });
        if on.is_err() {
            return None;
        }
        self.dma_on
            .store(true, core::sync::atomic::Ordering::Release);
        Some(irq)
    }
}

/// What a DMA read returns: the bytes done, if any, except after a timeout.
pub(crate) fn dma_result(done: usize, err: Result) -> Result<usize> {
    match err {
        Err(e) if e == ETIMEDOUT => Err(EIO),
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// The completion interrupt: acknowledges DMA_DONE and wakes the waiter.
struct IrqHandler {
    rng: Arc<MyRng>,
    /// The vector is an MSI: ours alone, sent once per command's end.
    msi: bool,
}

impl irq::Handler for IrqHandler {
    fn handle(&self) -> IrqReturn {
        if self.msi {
            // Nothing to look at first: acknowledge with a posted write and wake the waiter,
            // which reads DMA_STATUS anyway (one register round trip saved per command).
            let _ = self
                .rng
                .regs(|bar| bar.write32(regs::IRQ_DMA_DONE, regs::IRQ_STATUS));
            self.rng.dma_done.complete();
            return IrqReturn::Handled;
        }
        let status = match self.rng.regs(|bar| {
            let status = bar.read32(regs::IRQ_STATUS);
            if status & regs::IRQ_DMA_DONE != 0 {
                bar.write32(status, regs::IRQ_STATUS);
            }
            status
        }) {
            Ok(s) => s,
            Err(_) => return IrqReturn::None,
        };
        // INTx may be shared.
        if status & regs::IRQ_DMA_DONE == 0 {
            return IrqReturn::None;
        }
        self.rng.dma_done.complete();
        IrqReturn::Handled
    }
}

/// The completion interrupt of a DMA device: the vector and the handler's registration.
pub(crate) struct Interrupt<'bound> {
    /// Freed first (field order): `free_irq()` waits for a running handler.
    _handler: Pin<KBox<irq::Registration<'bound, IrqHandler>>>,
    /// The vector `handler` was requested on; boxed, so that it stays where `handler`'s
    /// request borrowed it.
    _vectors: KBox<pci::IrqVectorRegistration<'bound>>,
    /// The vector is an MSI (else INTx).
    pub(crate) msi: bool,
}

impl<'bound> Interrupt<'bound> {
    /// One vector, MSI if the device has it enabled by the PCI core, else INTx (shared).
    fn new(
        pdev: &'bound pci::Device<Core<'_>>,
        rng: &Arc<MyRng>,
        name: &'static CStr,
    ) -> Result<Self> {
        let types = pci::IrqTypes::default()
            .with(pci::IrqType::Msi)
            .with(pci::IrqType::Intx);
        let vectors = KBox::new(pdev.alloc_irq_vectors(1, 1, types)?, GFP_KERNEL)?;
        let msi = !matches!(vectors.irq_type(), pci::IrqType::Intx);
        let flags = if msi {
            irq::Flags::TRIGGER_NONE
        } else {
            irq::Flags::SHARED
        };
        // SAFETY: the box's contents neither move nor are dropped before `_handler`, which is
        // declared (hence dropped) before `_vectors` in the one struct both end up in, and the
        // box is never taken out of it: the borrow lives as long as its user.
        let vectors_ref: &'bound pci::IrqVectorRegistration<'bound> =
            unsafe { &*core::ptr::from_ref(&*vectors) };
        let request = vectors_ref.index(0)?;
        let handler = Ok::<_, Error>(IrqHandler {
            rng: rng.clone(),
            msi,
        });
        // SAFETY: the registration is stored in `Self` and dropped with it; it is never
        // forgotten.
        let handler = KBox::pin_init(
            unsafe { irq::Registration::new(request.into(), flags, name, handler) },
            GFP_KERNEL,
        )?;
        Ok(Interrupt {
            _handler: handler,
            _vectors: vectors,
            msi,
        })
    }
}
