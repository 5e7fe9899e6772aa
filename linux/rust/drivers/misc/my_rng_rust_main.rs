// SPDX-License-Identifier: GPL-2.0

//! Rust driver for the emulated PCI random number generator my-rng (1234:cafe).
//!
//! The same user ABI as the C driver (`drivers/misc/my-rng.c`, `<uapi/misc/my_rng.h>`): one misc
//! node per device, `/dev/my_rng_driver` for the first one, then `/dev/my_rng_driver1`, ...,
//! with every ioctl of the uapi header and `read()` of the RNG64 byte stream; an ABI 2 device
//! with the ENTROPY register also feeds hw_random. An ABI 1 device (the original exercise) only
//! has RNG and SEED; it is recognised by the missing magic in its ID register.
//!
//! On an ABI 2.1 device with the DMA engine and its interrupt, `read()` runs by DMA, as the C
//! driver's does: below 4 KiB through a coherent bounce buffer, from 4 KiB on straight into the
//! caller's pinned pages (zero-copy), waiting for the completion interrupt (MSI, else INTx). The
//! `read_path` attribute selects a path as in the C driver. hw_random reads the ENTROPY register
//! (the C driver serves it from a DMA-filled pool instead).
//!
//! Locking: a per-device mutex makes every register sequence and every DMA command atomic with
//! respect to the other users of the device (ioctls, `read()`, hw_random). BAR0 is a
//! device-managed resource ([`pci::DevresBar`]): once the device is unbound it is revoked, and
//! every call on a file that is still open fails with `ENODEV`; `unbind` first stops the DMA
//! engine under the mutex. The per-device state is reference counted: each open file holds a
//! reference, so it outlives the binding.
//!
//! What the Rust abstractions of this kernel do not offer is in `my_rng_rust_glue.c`: the
//! hw_random registration, the node's `device` link and `read_path` attribute in sysfs, pinning
//! and mapping the pages of an `iov_iter` for zero-copy DMA, and the unprefixed log lines of the
//! self-test.

use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    bindings,
    device::Core,
    dma::{Coherent, Device as _, DmaMask},
    ffi::{c_char, c_int, c_uint},
    fs::{File, Kiocb},
    io::Io,
    ioctl::{_IOR, _IOW, _IOWR},
    iov::IovIterDest,
    irq::{self, IrqReturn},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_condvar, new_mutex, new_spinlock_irq, pci,
    prelude::*,
    scatterlist::SGTable,
    str::CString,
    sync::{aref::ARef, Arc, ArcBorrow, CondVar, CondVarTimeoutResult, Mutex, SpinLockIrq},
    time::{msecs_to_jiffies, Jiffies},
    uaccess::{UserPtr, UserSlice},
};

/// Register offsets into BAR0 (32-bit little-endian registers, RNG64 64-bit).
mod regs {
    pub(crate) const RNG: usize = 0x000;
    pub(crate) const SEED: usize = 0x004;
    pub(crate) const ID: usize = 0x008;
    pub(crate) const FEATURES: usize = 0x00c;
    pub(crate) const ALGO: usize = 0x010;
    pub(crate) const ALGOS: usize = 0x014;
    pub(crate) const ENTROPY: usize = 0x018;
    pub(crate) const RNG64: usize = 0x020;
    pub(crate) const DMA_ADDR_LO: usize = 0x040;
    pub(crate) const DMA_ADDR_HI: usize = 0x044;
    pub(crate) const DMA_COUNT: usize = 0x048;
    pub(crate) const DMA_CMD: usize = 0x04c;
    pub(crate) const DMA_STATUS: usize = 0x050;
    pub(crate) const DMA_BYTES: usize = 0x054;
    pub(crate) const DMA_MAX_SEGS: usize = 0x058;
    pub(crate) const DMA_MAX_BYTES: usize = 0x05c;
    pub(crate) const IRQ_STATUS: usize = 0x060;
    pub(crate) const IRQ_ENABLE: usize = 0x064;
    /// End of the registers this driver uses: accesses below it are checked at compile time.
    /// An ABI 1 or 2.0 device has the same 4 KiB BAR; the DMA block is used only when FEATURES
    /// announces it.
    pub(crate) const END: usize = IRQ_ENABLE + 4;
}

/// ID register of an ABI 2 device: magic "MR" in bits 31..16.
const ID_MAGIC: u32 = 0x4d52;
const FEATURE_RNG64: u32 = 1 << 0;
const FEATURE_ALGO: u32 = 1 << 1;
const FEATURE_ENTROPY: u32 = 1 << 2;
const FEATURE_DMA: u32 = 1 << 3;
const FEATURE_IRQ: u32 = 1 << 4;
const ALGO_GLIBC: u32 = 0;

/// DMA_CMD values, DMA_STATUS state field and IRQ_STATUS/IRQ_ENABLE bits (ABI 2.1).
const DMA_CMD_FILL: u32 = 0x1;
const DMA_CMD_ABORT: u32 = 0x4;
const DMA_STATE: u32 = 0x3;
const DMA_STATE_BUSY: u32 = 1;
const DMA_STATE_DONE: u32 = 2;
const IRQ_DMA_DONE: u32 = 1 << 0;

/// `struct my_rng_info` of the uapi header.
#[repr(C)]
struct Info {
    id: u32,
    features: u32,
    algos: u32,
    algo: u32,
}

/// `struct my_rng_seed_read` of the uapi header.
#[repr(C)]
struct SeedRead {
    seed: u32,
    count: u32,
    buf: u64,
}

const IOCTL_MAGIC: u32 = b'q' as u32;
const IOCTL_RAND: u32 = _IOR::<u32>(IOCTL_MAGIC, 1);
const IOCTL_SEED: u32 = _IOW::<u32>(IOCTL_MAGIC, 1);
const IOCTL_RAND64: u32 = _IOR::<u64>(IOCTL_MAGIC, 2);
const IOCTL_SET_ALGO: u32 = _IOW::<u32>(IOCTL_MAGIC, 3);
const IOCTL_GET_ALGO: u32 = _IOR::<u32>(IOCTL_MAGIC, 3);
const IOCTL_INFO: u32 = _IOR::<Info>(IOCTL_MAGIC, 4);
const IOCTL_SEED_READ: u32 = _IOWR::<SeedRead>(IOCTL_MAGIC, 5);

// The ABI is fixed: the numbers of the uapi header, as the C driver checks them.
const _: () = {
    assert!(core::mem::size_of::<Info>() == 16);
    assert!(core::mem::size_of::<SeedRead>() == 16);
    assert!(IOCTL_RAND == 0x80047101);
    assert!(IOCTL_SEED == 0x40047101);
    assert!(IOCTL_RAND64 == 0x80087102);
    assert!(IOCTL_SET_ALGO == 0x40047103);
    assert!(IOCTL_GET_ALGO == 0x80047103);
    assert!(IOCTL_INFO == 0x80107104);
    assert!(IOCTL_SEED_READ == 0xc0107105);
};

/// Largest count accepted by `MY_RNG_IOCTL_SEED_READ`.
const SEED_READ_MAX: u32 = 4096;
/// `read()` through registers returns at most this much per call, read in chunks of
/// `READ_CHUNK` bytes.
const READ_MAX: usize = 64 * 1024;
const READ_CHUNK: usize = 256;
/// `read()` by DMA returns at most this much per call (the C driver's bound).
const DMA_READ_MAX: usize = 1 << 20;
/// From this size on, `auto` reads are zero-copy; smaller ones go through the bounce buffer.
const ZEROCOPY_MIN: usize = 4096;
/// The coherent bounce buffer: one single-segment command at most.
const BOUNCE_SIZE: usize = 16 * 1024;
/// A command that has not ended after this long is aborted.
const DMA_TIMEOUT_MS: u32 = 10_000;
/// At most this many segments per command, whatever DMA_MAX_SEGS says (the list's size).
const DMA_SEGS_LIMIT: u32 = 4096;

/// `read()` paths, as the `read_path` attribute names them (index into the glue's names).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum ReadPath {
    Auto = 0,
    Mmio = 1,
    Bounce = 2,
    Zerocopy = 3,
}

impl ReadPath {
    fn from_index(i: u32) -> Option<Self> {
        match i {
            0 => Some(Self::Auto),
            1 => Some(Self::Mmio),
            2 => Some(Self::Bounce),
            3 => Some(Self::Zerocopy),
            _ => None,
        }
    }
}

/// hw_random quality, as in the C driver: a quarter credit for host entropy the guest cannot
/// verify (QEMU's `-seed` makes it deterministic).
const HWRNG_QUALITY: u16 = 256;

/// Self-test: seed 0x42 twice and print five values per round; algorithm 0 (glibc) gives these.
const TEST_SEED: u32 = 0x42;
const TEST_ROUNDS: usize = 2;
const TEST_NUMBERS: usize = 5;
const TEST_EXPECTED: [u32; TEST_NUMBERS] =
    [286129175, 1594929109, 971802288, 222134722, 1335014133];
const TEST_RULE: &CStr = c"------------------------------------------------------------------";

/// Names of the nodes and hw_random sources, by device index: the miscdevice abstraction takes
/// a `&'static CStr`.
const NODE_NAMES: [&CStr; 8] = [
    c"my_rng_driver",
    c"my_rng_driver1",
    c"my_rng_driver2",
    c"my_rng_driver3",
    c"my_rng_driver4",
    c"my_rng_driver5",
    c"my_rng_driver6",
    c"my_rng_driver7",
];
const HWRNG_NAMES: [&CStr; 8] = [
    c"my_rng",
    c"my_rng.1",
    c"my_rng.2",
    c"my_rng.3",
    c"my_rng.4",
    c"my_rng.5",
    c"my_rng.6",
    c"my_rng.7",
];

/// Opaque `struct hwrng`, owned by the glue.
#[repr(C)]
struct RawHwrng {
    _opaque: [u8; 0],
}

extern "C" {
    fn my_rng_rust_hwrng_register(
        name: *const c_char,
        data: *const c_void,
        quality: u16,
        out: *mut *mut RawHwrng,
    ) -> c_int;
    fn my_rng_rust_hwrng_unregister(rng: *mut RawHwrng);
    // `struct miscdevice *`, `struct pci_dev *` and `struct my_rng_rust_node *`, as untyped
    // pointers: the bindings' types of the first two are not FFI-safe by the compiler's rules
    // (zero-sized members), the last one is the glue's own.
    fn my_rng_rust_node_setup(
        misc: *mut c_void,
        pdev: *mut c_void,
        data: *const c_void,
        out: *mut *mut c_void,
    ) -> c_int;
    fn my_rng_rust_node_teardown(misc: *mut c_void, node: *mut c_void);
    fn my_rng_rust_info_line(line: *const c_char);
    // `struct my_rng_rust_pinned *` as an untyped pointer: the glue's own type.
    fn my_rng_rust_pin(iter: *mut bindings::iov_iter, max: usize, out: *mut *mut c_void) -> isize;
    fn my_rng_rust_map(pdev: *mut c_void, pinned: *mut c_void) -> *mut bindings::sg_table;
    fn my_rng_rust_unpin(iter: *mut bindings::iov_iter, pinned: *mut c_void, done: usize);
}

/// Prints one line at info level without the module prefix.
fn info_line(line: &CStr) {
    // SAFETY: `line` is a NUL-terminated string that lives for the duration of the call.
    unsafe { my_rng_rust_info_line(line.as_char_ptr()) };
}

/// Device indices in use, one bit each (the first device gets index 0).
static INDICES: AtomicU32 = AtomicU32::new(0);

/// A device index; freed when dropped.
struct Index(usize);

impl Index {
    fn alloc() -> Result<Self> {
        let mut cur = INDICES.load(Ordering::Relaxed);
        loop {
            let free = (!cur).trailing_zeros() as usize;
            if free >= NODE_NAMES.len() {
                return Err(ENOSPC);
            }
            match INDICES.compare_exchange(
                cur,
                cur | 1 << free,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Index(free)),
                Err(now) => cur = now,
            }
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        INDICES.fetch_and(!(1 << self.0), Ordering::AcqRel);
    }
}

/// The DMA engine's buffers and limits (ABI 2.1 devices with DMA and its interrupt).
struct Dma {
    /// Segment list the device reads: `max_segs` entries of two little-endian words each,
    /// the bus address, then the length (low half) and flags (high half, 0).
    segs: Coherent<[u64]>,
    /// Bounce buffer of `read()`, `BOUNCE_SIZE` bytes.
    bounce: Coherent<[u8]>,
    /// Segments per command, DMA_MAX_SEGS (at most `DMA_SEGS_LIMIT`).
    max_segs: u32,
    /// Bytes per command, DMA_MAX_BYTES.
    max_bytes: u32,
    /// The PCI function, for mapping the pages of a zero-copy read.
    pdev: ARef<pci::Device>,
}

impl Dma {
    /// Allocates the buffers for the device's limits, DMA_MAX_SEGS and DMA_MAX_BYTES; `None`
    /// (after a log line) if the device is not usable by DMA, which is then used through its
    /// registers.
    fn new(pdev: &pci::Device<Core<'_>>, max_segs: u32, max_bytes: u32) -> Option<Self> {
        let max_segs = max_segs.min(DMA_SEGS_LIMIT);
        // A bounce command is one segment of up to BOUNCE_SIZE bytes; a zero-copy command
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

    /// Sets entry `i` of the segment list.
    ///
    /// # Safety
    ///
    /// No command runs (the device does not read the list) and the caller holds the device's
    /// mutex (nothing else writes it).
    unsafe fn set_seg(&self, i: u32, addr: u64, len: u32) {
        let i = 2 * i as usize;
        // SAFETY: per the function's requirements, nothing else accesses the list.
        let segs = unsafe { self.segs.as_mut() };
        segs[i] = addr.to_le();
        segs[i + 1] = u64::from(len).to_le();
    }
}

/// Where a zero-copy fill stands in a DMA-mapped scatterlist.
#[derive(Clone, Copy)]
struct SgPos {
    /// Index of the current entry.
    entry: usize,
    /// Bytes of the current entry already used.
    off: u64,
}

/// The state of one device, shared by the binding and every open file.
#[pin_data]
struct MyRng {
    /// BAR0, revoked when the device is unbound.
    bar: pci::DevresBar<{ regs::END }>,
    /// Serialises register sequences and DMA commands; true once `unbind` has stopped the
    /// device (then nothing starts on it any more).
    #[pin]
    lock: Mutex<bool>,
    /// ID register (0 on an ABI 1 device).
    id: u32,
    /// FEATURES register (0 on an ABI 1 device).
    features: u32,
    /// ALGOS register (0 on an ABI 1 device).
    algos: u32,
    /// `read()` path chosen through sysfs, a [`ReadPath`].
    read_path: AtomicU32,
    /// The DMA engine's buffers, if the device has the engine.
    dma: Option<Dma>,
    /// The completion interrupt is set up: `dma` is in use.
    dma_on: AtomicBool,
    /// Set by the interrupt handler when a command ends; cleared by the waiter.
    #[pin]
    dma_done: SpinLockIrq<bool>,
    #[pin]
    dma_wait: CondVar,
}

impl MyRng {
    /// Runs `f` on the registers with the device locked, or fails with `ENODEV` once the
    /// device is unbound. `f` runs in an RCU read-side section: it must not sleep.
    fn with_regs<R>(&self, f: impl FnOnce(&pci::Bar<'_, { regs::END }>) -> R) -> Result<R> {
        let unbound = self.lock.lock();
        if *unbound {
            return Err(ENODEV);
        }
        self.regs(f)
    }

    /// Runs `f` on the registers; the caller holds the mutex. `f` must not sleep.
    fn regs<R>(&self, f: impl FnOnce(&pci::Bar<'_, { regs::END }>) -> R) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    fn has(&self, feature: u32) -> bool {
        self.features & feature != 0
    }

    /// The DMA engine, once its interrupt is set up.
    fn dma(&self) -> Option<&Dma> {
        if self.dma_on.load(Ordering::Acquire) {
            self.dma.as_ref()
        } else {
            None
        }
    }

    /// Next 64-bit output: RNG64, or two RNG reads (low half first) on an ABI 1 device. RNG64
    /// is read with the checked accessor: BAR mappings have no infallible 64-bit one (the
    /// check cannot fail, the offset is aligned and inside the mapping).
    fn next64(&self, bar: &pci::Bar<'_, { regs::END }>) -> Result<u64> {
        if self.has(FEATURE_RNG64) {
            return bar.try_read64(regs::RNG64);
        }
        let lo = bar.read32(regs::RNG);
        let hi = bar.read32(regs::RNG);
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    fn cur_algo(&self, bar: &pci::Bar<'_, { regs::END }>) -> u32 {
        if self.has(FEATURE_ALGO) {
            bar.read32(regs::ALGO)
        } else {
            ALGO_GLIBC
        }
    }

    fn algo_valid(&self, algo: u32) -> bool {
        self.has(FEATURE_ALGO) && algo < 32 && self.algos & (1 << algo) != 0
    }

    /// The test the original exercise ran at boot, in exactly its format.
    fn selftest(&self, pdev: &pci::Device<Core<'_>>) -> Result {
        let mut val = [[0u32; TEST_NUMBERS]; TEST_ROUNDS];
        self.with_regs(|bar| {
            if self.has(FEATURE_ALGO) {
                bar.write32(ALGO_GLIBC, regs::ALGO);
            }
            for round in val.iter_mut() {
                bar.write32(TEST_SEED, regs::SEED);
                for v in round.iter_mut() {
                    *v = bar.read32(regs::RNG);
                }
            }
            // Leave the generator as after a reset: seeded with 0.
            bar.write32(0, regs::SEED);
        })?;

        let mut ok = true;
        info_line(TEST_RULE);
        info_line(c"BEGIN MY-RNG TEST");
        info_line(TEST_RULE);
        for (i, round) in val.iter().enumerate() {
            for (j, v) in round.iter().enumerate() {
                let line = CString::try_from_fmt(fmt!("Round {i} number {j}: {v}"))?;
                info_line(&line);
                // Algorithm 0 (glibc) was selected on an ABI 2 device: known values.
                ok &= *v == val[0][j] && (!self.has(FEATURE_ALGO) || *v == TEST_EXPECTED[j]);
            }
        }
        info_line(TEST_RULE);
        info_line(c"END MY-RNG TEST");
        info_line(TEST_RULE);
        if ok {
            dev_info!(pdev, "self-test passed\n");
        } else {
            dev_err!(
                pdev,
                "self-test failed: unexpected values for seed {TEST_SEED:#x}\n"
            );
        }
        Ok(())
    }

    /// hw_random: host entropy (ENTROPY) only, so that it never consumes values of the seeded
    /// sequence the users of the node see. A read that may not wait gets nothing while the
    /// device is busy.
    fn hwrng_read(&self, data: &mut [u8], wait: bool) -> Result<usize> {
        let unbound = if wait {
            self.lock.lock()
        } else {
            match self.lock.try_lock() {
                Some(g) => g,
                None => return Ok(0),
            }
        };
        if *unbound {
            return Err(ENODEV);
        }
        self.regs(|bar| {
            for chunk in data.chunks_mut(4) {
                let v = bar.read32(regs::ENTROPY).to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            data.len()
        })
    }

    /// The path of a `read()` of `count` bytes.
    fn path(&self, count: usize) -> ReadPath {
        match ReadPath::from_index(self.read_path.load(Ordering::Relaxed)) {
            Some(ReadPath::Auto) | None if self.dma().is_none() => ReadPath::Mmio,
            Some(ReadPath::Auto) | None if count < ZEROCOPY_MIN => ReadPath::Bounce,
            Some(ReadPath::Auto) | None => ReadPath::Zerocopy,
            Some(p) => p,
        }
    }

    /// `read()` through registers: the little-endian bytes of successive RNG64 values (RNG
    /// values on an ABI 1 device), at most `READ_MAX` bytes per call; interruptible between
    /// chunks. The bytes of a partly copied last value are discarded.
    fn read_mmio(&self, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let count = iov.len().min(READ_MAX);
        let mut chunk = [0u8; READ_CHUNK];
        let mut done = 0;
        let mut err = Ok(());
        while done < count {
            if current!().signal_pending() {
                err = Err(ERESTARTSYS);
                break;
            }
            let len = (count - done).min(READ_CHUNK);
            let filled = self.with_regs(|bar| -> Result {
                if self.has(FEATURE_RNG64) {
                    for q in chunk[..len.next_multiple_of(8)].chunks_exact_mut(8) {
                        q.copy_from_slice(&self.next64(bar)?.to_le_bytes());
                    }
                } else {
                    for l in chunk[..len.next_multiple_of(4)].chunks_exact_mut(4) {
                        l.copy_from_slice(&bar.read32(regs::RNG).to_le_bytes());
                    }
                }
                Ok(())
            });
            if let Err(e) = filled.and_then(|r| r) {
                err = Err(e);
                break;
            }
            let copied = iov.copy_to_iter(&chunk[..len]);
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

    /// Waits until the interrupt handler reports the end of a command, at most `left`
    /// jiffies (updated to what is left). `ETIMEDOUT` or `ERESTARTSYS` if it did not come.
    fn dma_wait(&self, left: &mut Jiffies) -> Result {
        let mut done = self.dma_done.lock();
        while !*done {
            match self.dma_wait.wait_interruptible_timeout(&mut done, *left) {
                CondVarTimeoutResult::Woken { jiffies } => *left = jiffies,
                CondVarTimeoutResult::Timeout => {
                    *left = 0;
                    return Err(ETIMEDOUT);
                }
                CondVarTimeoutResult::Signal { jiffies } => {
                    *left = jiffies;
                    return Err(ERESTARTSYS);
                }
            }
        }
        Ok(())
    }

    /// Starts `cmd` on the first `nsegs` entries of the segment list and waits for its end;
    /// the caller holds the mutex. Returns the bytes written (in every case: after an abort
    /// the device writes nothing more, so the memory can be released) and `Ok` once the
    /// command is done, `ERESTARTSYS` or `ETIMEDOUT` after aborting it, `EIO` if the device
    /// ended it with an error.
    fn dma_run(&self, d: &Dma, cmd: u32, nsegs: u32) -> (u32, Result) {
        let list = d.segs.dma_address();
        *self.dma_done.lock() = false;
        let started = self.regs(|bar| {
            bar.write32(list as u32, regs::DMA_ADDR_LO);
            bar.write32((list >> 32) as u32, regs::DMA_ADDR_HI);
            bar.write32(nsegs, regs::DMA_COUNT);
            bar.write32(cmd, regs::DMA_CMD);
        });
        if let Err(e) = started {
            return (0, Err(e));
        }
        let mut left = msecs_to_jiffies(DMA_TIMEOUT_MS);
        let mut ret = Ok(());
        let status = loop {
            let woken = self.dma_wait(&mut left);
            // Consume this wake-up before looking: an end after the look wakes the next wait.
            // (The late interrupt of an aborted command may also wake us early.)
            *self.dma_done.lock() = false;
            let status = self.regs(|bar| bar.read32(regs::DMA_STATUS)).unwrap_or(0);
            if status & DMA_STATE != DMA_STATE_BUSY {
                break status;
            }
            if let Err(e) = woken {
                let _ = self.regs(|bar| bar.write32(DMA_CMD_ABORT, regs::DMA_CMD));
                ret = Err(e);
                break status;
            }
        };
        let bytes = self.regs(|bar| bar.read32(regs::DMA_BYTES)).unwrap_or(0);
        if ret == Err(ETIMEDOUT) {
            pr_err!("DMA command {cmd:#x} timed out after {bytes} bytes\n");
        } else if ret.is_ok() && status & DMA_STATE != DMA_STATE_DONE {
            pr_err!("DMA command {cmd:#x} failed: status {status:#x}\n");
            ret = Err(EIO);
        }
        (bytes, ret)
    }

    /// Bounce path: DMA into the coherent buffer, copied out under the mutex (which keeps
    /// `unbind` from stopping the device meanwhile) into a kernel buffer, and from there to the
    /// caller without the mutex, so that no page fault is taken with it.
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
            let unbound = self.lock.lock();
            if *unbound {
                err = Err(ENODEV);
                break;
            }
            // SAFETY: no command runs and we hold the mutex.
            unsafe { d.set_seg(0, d.bounce.dma_address(), len as u32) };
            let (bytes, ret) = self.dma_run(d, DMA_CMD_FILL, 1);
            let bytes = (bytes as usize).min(len);
            // SAFETY: the command has ended or was aborted, so the device no longer writes the
            // buffer, and we hold the mutex, so no other reader uses it.
            let filled = unsafe { &mut d.bounce.as_mut()[..bytes] };
            chunk[..bytes].copy_from_slice(filled);
            filled.fill(0);
            drop(unbound);

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

    /// Writes segments from `pos` into the list: at most `limit` bytes and `max_segs` segments
    /// (only counted unless `write`). Returns the bytes and the number of segments.
    fn dma_walk(
        &self,
        d: &Dma,
        sgt: &SGTable,
        pos: &mut SgPos,
        limit: u64,
        write: bool,
    ) -> (u64, u32) {
        let (mut total, mut nsegs) = (0u64, 0u32);
        for e in sgt.iter().skip(pos.entry) {
            if nsegs == d.max_segs || total == limit {
                break;
            }
            let len = (e.dma_len() - pos.off).min(limit - total);
            if write {
                // SAFETY: no command runs and the caller holds the mutex. `len` fits: it is at
                // most `limit`, a u32 value.
                unsafe { d.set_seg(nsegs, e.dma_address() + pos.off, len as u32) };
            }
            nsegs += 1;
            total += len;
            pos.off += len;
            if pos.off < e.dma_len() {
                break;
            }
            pos.entry += 1;
            pos.off = 0;
        }
        (total, nsegs)
    }

    /// Fills the DMA-mapped `sgt` with the RNG64 stream, in as many commands as the device's
    /// limits require; the caller holds the mutex. Each command consumes whole outputs (the
    /// unused bytes of its last one are discarded), so every command but the last ends on an
    /// 8-byte boundary: the bytes are those of the MMIO path. Returns the bytes written before
    /// the first error, and that error.
    fn dma_fill_sgt(&self, d: &Dma, sgt: &SGTable) -> (usize, Result) {
        let entries = sgt.iter().count();
        let mut pos = SgPos { entry: 0, off: 0 };
        let mut done = 0usize;
        while pos.entry < entries {
            let mut end = pos;
            let (mut len, _) = self.dma_walk(d, sgt, &mut end, d.max_bytes.into(), false);
            if end.entry < entries {
                len &= !7;
            }
            if len == 0 {
                // Cannot happen with page-sized segments and max_segs >= 2.
                return (done, Err(EIO));
            }
            let (_, nsegs) = self.dma_walk(d, sgt, &mut pos, len, true);
            if current!().signal_pending() {
                return (done, Err(ERESTARTSYS));
            }
            let (bytes, ret) = self.dma_run(d, DMA_CMD_FILL, nsegs);
            done += u64::from(bytes).min(len) as usize;
            if ret.is_err() {
                return (done, ret);
            }
        }
        (done, Ok(()))
    }

    /// Zero-copy path: the device writes the caller's pages. They are pinned before the mutex
    /// is taken (pinning may fault them in); if only a leading part of the buffer can be
    /// pinned, that part is filled: a short read. The pages are mapped under the mutex, while
    /// the device is surely bound.
    fn read_zerocopy(&self, d: &Dma, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let count = iov.len().min(DMA_READ_MAX);
        let mut pinned = core::ptr::null_mut();
        // SAFETY: `iov` is a valid destination iterator, which the glue advances over the
        // pages it pins and stores in `pinned`.
        let len = unsafe { my_rng_rust_pin(iov.as_raw(), count, &mut pinned) };
        if len < 0 {
            return Err(Error::from_errno(len as c_int));
        }
        let (done, err) = self.fill_pinned(d, pinned);
        // SAFETY: `pinned` is what `my_rng_rust_pin` gave for `iov`, released once; every
        // command on it has ended or been aborted, and it is unmapped by now if it was mapped.
        unsafe { my_rng_rust_unpin(iov.as_raw(), pinned, done) };
        dma_result(done, err)
    }

    /// Maps the pinned pages and fills them, under the mutex.
    fn fill_pinned(&self, d: &Dma, pinned: *mut c_void) -> (usize, Result) {
        let unbound = self.lock.lock();
        if *unbound {
            return (0, Err(ENODEV));
        }
        let pdev = core::ptr::from_ref::<pci::Device>(&d.pdev)
            .cast::<c_void>()
            .cast_mut();
        // SAFETY: `pdev` points to the bound PCI function (`pci::Device` is a transparent
        // wrapper of `struct pci_dev`; it is bound, `unbound` is false under the mutex), and
        // `pinned` came from `my_rng_rust_pin`; `my_rng_rust_unpin` unmaps it.
        let sgt = unsafe { my_rng_rust_map(pdev, pinned) };
        if let Some(e) = kernel::error::from_err_ptr(sgt).err() {
            return (0, Err(e));
        }
        // SAFETY: `sgt` is the mapped table of `pinned`, valid until `my_rng_rust_unpin`,
        // which the caller calls after this borrow ends.
        let sgt = unsafe { SGTable::from_raw(sgt) };
        self.dma_fill_sgt(d, sgt)
    }

    fn ioctl_info(&self, arg: UserPtr) -> Result {
        let algo = self.with_regs(|bar| self.cur_algo(bar))?;
        let mut w = UserSlice::new(arg, core::mem::size_of::<Info>()).writer();
        for v in [self.id, self.features, self.algos, algo] {
            w.write(&v)?;
        }
        Ok(())
    }

    /// Seeds, then reads `count` values without letting any other user in between; the values
    /// are collected in a kernel buffer so that no page fault is taken with the device locked.
    fn ioctl_seed_read(&self, arg: UserPtr) -> Result {
        let mut r = UserSlice::new(arg, core::mem::size_of::<SeedRead>()).reader();
        let seed: u32 = r.read()?;
        let count: u32 = r.read()?;
        let buf: u64 = r.read()?;
        if count == 0 || count > SEED_READ_MAX {
            return Err(EINVAL);
        }
        let len = count as usize * 4;
        let mut vals = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        self.with_regs(|bar| {
            bar.write32(seed, regs::SEED);
            for v in vals.chunks_exact_mut(4) {
                v.copy_from_slice(&bar.read32(regs::RNG).to_ne_bytes());
            }
        })?;
        let addr = usize::try_from(buf).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), len)
            .writer()
            .write_slice(&vals)
    }

    /// Sets up the completion interrupt and turns the DMA engine on, if the device has it.
    /// On failure the device is used through its registers, as an ABI 2.0 one.
    fn start_dma<'bound>(
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
            bar.write32(IRQ_DMA_DONE, regs::IRQ_STATUS);
            bar.write32(IRQ_DMA_DONE, regs::IRQ_ENABLE);
        });
        if on.is_err() {
            return None;
        }
        self.dma_on.store(true, Ordering::Release);
        Some(irq)
    }

    /// Called by `unbind`, before BAR0 is revoked and the interrupt freed: waits for a running
    /// command, then stops the engine and its interrupt; nothing starts on the device after.
    fn stop(&self) {
        let mut unbound = self.lock.lock();
        *unbound = true;
        if self.dma().is_some() {
            let _ = self.regs(|bar| {
                bar.write32(DMA_CMD_ABORT, regs::DMA_CMD);
                bar.write32(0, regs::IRQ_ENABLE);
            });
        }
    }
}

/// What a DMA read returns: the bytes done, if any, except after a timeout.
fn dma_result(done: usize, err: Result) -> Result<usize> {
    match err {
        Err(e) if e == ETIMEDOUT => Err(EIO),
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// The completion interrupt: acknowledges DMA_DONE and wakes the waiter.
struct IrqHandler {
    rng: Arc<MyRng>,
}

impl irq::Handler for IrqHandler {
    fn handle(&self) -> IrqReturn {
        let status = match self.rng.regs(|bar| {
            let status = bar.read32(regs::IRQ_STATUS);
            if status & IRQ_DMA_DONE != 0 {
                bar.write32(status, regs::IRQ_STATUS);
            }
            status
        }) {
            Ok(s) => s,
            Err(_) => return IrqReturn::None,
        };
        // INTx may be shared.
        if status & IRQ_DMA_DONE == 0 {
            return IrqReturn::None;
        }
        *self.rng.dma_done.lock() = true;
        self.rng.dma_wait.notify_all();
        IrqReturn::Handled
    }
}

#[vtable]
impl MiscDevice for MyRng {
    type Ptr = Arc<MyRng>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<MyRng>> {
        // SAFETY: a `MiscDeviceRegistration<MyRng>` only exists as the `misc` field of a
        // `MyRngData` (see `MyRngDriver::probe`), so `data` points to one. It is alive: the misc
        // core calls `open` under its lock, and the field's drop (`misc_deregister()`) takes that
        // lock before the fields declared after it, `rng` included, are dropped.
        let rng = unsafe {
            let data = kernel::container_of!(core::ptr::from_ref(misc), MyRngData<'_>, misc);
            &(*data).rng
        };
        Ok(rng.clone())
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        if iov.is_empty() {
            return Ok(0);
        }
        let rng = kiocb.file();
        let count = iov.len();
        match (rng.path(count), rng.dma()) {
            (ReadPath::Bounce, Some(d)) => rng.read_bounce(d, iov),
            (ReadPath::Zerocopy, Some(d)) => rng.read_zerocopy(d, iov),
            _ => rng.read_mmio(iov),
        }
    }

    fn ioctl(me: ArcBorrow<'_, MyRng>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            IOCTL_RAND => {
                let v = me.with_regs(|bar| bar.read32(regs::RNG))?;
                UserSlice::new(user, 4).writer().write(&v)?;
            }
            IOCTL_SEED => {
                let v: u32 = UserSlice::new(user, 4).reader().read()?;
                me.with_regs(|bar| bar.write32(v, regs::SEED))?;
            }
            IOCTL_RAND64 => {
                let v = me.with_regs(|bar| me.next64(bar))??;
                UserSlice::new(user, 8).writer().write(&v)?;
            }
            IOCTL_SET_ALGO => {
                let v: u32 = UserSlice::new(user, 4).reader().read()?;
                me.with_regs(|bar| {
                    if me.algo_valid(v) {
                        bar.write32(v, regs::ALGO);
                        Ok(())
                    } else {
                        Err(EINVAL)
                    }
                })??;
            }
            IOCTL_GET_ALGO => {
                let v = me.with_regs(|bar| me.cur_algo(bar))?;
                UserSlice::new(user, 4).writer().write(&v)?;
            }
            IOCTL_INFO => me.ioctl_info(user)?,
            IOCTL_SEED_READ => me.ioctl_seed_read(user)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

/// Called by the glue's hw_random read callback.
///
/// # Safety
///
/// `data` is the pointer a [`HwRng`] registered, and `buf` is valid for writes of `max` bytes
/// for the duration of the call.
#[no_mangle]
unsafe extern "C" fn my_rng_rust_hwrng_read(
    data: *const c_void,
    buf: *mut c_void,
    max: usize,
    wait: bool,
) -> c_int {
    // SAFETY: `data` is the `MyRng` of an `Arc` that the `HwRng` holds a reference to until
    // `hwrng_unregister()` has returned, after which the core calls no more reads.
    let rng = unsafe { &*data.cast::<MyRng>() };
    // SAFETY: the hw_random core passes its buffer of at least `max` bytes, which nothing else
    // touches during the call (the core's reading mutex).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), max) };
    match rng.hwrng_read(out, wait) {
        Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Err(e) => e.to_errno(),
    }
}

/// Called by the glue's `read_path` show: the current path's index.
///
/// # Safety
///
/// `data` is the pointer `probe` gave to `my_rng_rust_node_setup`.
#[no_mangle]
unsafe extern "C" fn my_rng_rust_path_get(data: *const c_void) -> c_uint {
    // SAFETY: `data` is the `MyRng` the binding holds a reference to until after the node's
    // teardown, after which sysfs calls no more show or store.
    let rng = unsafe { &*data.cast::<MyRng>() };
    rng.read_path.load(Ordering::Relaxed)
}

/// Called by the glue's `read_path` store with a known path's index: a DMA path is refused
/// with `EINVAL` on a device without DMA.
///
/// # Safety
///
/// `data` is the pointer `probe` gave to `my_rng_rust_node_setup`.
#[no_mangle]
unsafe extern "C" fn my_rng_rust_path_set(data: *const c_void, path: c_uint) -> c_int {
    // SAFETY: as in `my_rng_rust_path_get`.
    let rng = unsafe { &*data.cast::<MyRng>() };
    match ReadPath::from_index(path) {
        Some(ReadPath::Bounce | ReadPath::Zerocopy) if rng.dma().is_none() => EINVAL.to_errno(),
        Some(p) => {
            rng.read_path.store(p as u32, Ordering::Relaxed);
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// A hw_random source registered through the glue; unregistered when dropped.
struct HwRng {
    raw: NonNull<RawHwrng>,
    /// The state the reads use, kept alive while registered.
    _rng: Arc<MyRng>,
}

// SAFETY: `raw` is only used to unregister, which may happen on any thread.
unsafe impl Send for HwRng {}

impl HwRng {
    fn register(rng: &Arc<MyRng>, name: &'static CStr) -> Result<Self> {
        let mut raw = core::ptr::null_mut();
        // SAFETY: `name` is static; the `MyRng` behind the pointer outlives the registration,
        // since `Self` keeps a reference to it and unregisters before dropping it.
        kernel::error::to_result(unsafe {
            my_rng_rust_hwrng_register(
                name.as_char_ptr(),
                Arc::as_ptr(rng).cast(),
                HWRNG_QUALITY,
                &mut raw,
            )
        })?;
        Ok(HwRng {
            raw: NonNull::new(raw).ok_or(ENOMEM)?,
            _rng: rng.clone(),
        })
    }
}

impl Drop for HwRng {
    fn drop(&mut self) {
        // SAFETY: `raw` was registered by `register` and is unregistered only here, once.
        unsafe { my_rng_rust_hwrng_unregister(self.raw.as_ptr()) };
    }
}

/// The completion interrupt of a DMA device: the vector and the handler's registration.
struct Interrupt<'bound> {
    /// Freed first (field order): `free_irq()` waits for a running handler.
    _handler: Pin<KBox<irq::Registration<'bound, IrqHandler>>>,
    /// The vector `handler` was requested on; boxed, so that it stays where `handler`'s
    /// request borrowed it.
    _vectors: KBox<pci::IrqVectorRegistration<'bound>>,
    /// The vector is an MSI (else INTx).
    msi: bool,
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
        let handler = Ok::<_, Error>(IrqHandler { rng: rng.clone() });
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

/// What the binding of one device holds; dropped in field order at unbind.
#[pin_data]
struct MyRngData<'bound> {
    /// Dropped first: no hw_random read starts once it is gone.
    hwrng: Option<HwRng>,
    /// The node; its drop waits for a running `open()`.
    #[pin]
    misc: MiscDeviceRegistration<MyRng>,
    /// The completion interrupt, if the DMA engine is in use; `unbind` has stopped the engine
    /// before it is freed.
    irq: Option<Interrupt<'bound>>,
    rng: Arc<MyRng>,
    /// What the glue added to the node in sysfs (null until then), torn down at unbind.
    node: AtomicPtr<c_void>,
    _index: Index,
}

/// Disables the PCI device when dropped. Registered as a device-managed resource right after
/// the device is enabled, so that devres runs it after releasing what probe set up later (BAR0
/// first), as `pcim_enable_device()` does for the C driver.
struct Enabled(ARef<pci::Device>);

impl Drop for Enabled {
    fn drop(&mut self) {
        let raw = core::ptr::from_ref::<pci::Device>(&self.0)
            .cast::<bindings::pci_dev>()
            .cast_mut();
        // SAFETY: `raw` points to the `struct pci_dev` (`pci::Device` is a transparent wrapper
        // of it) that the `ARef` keeps alive; probe enabled it once before creating `self`, and
        // this runs once, so the enable count stays balanced.
        unsafe { bindings::pci_disable_device(raw) };
    }
}

struct MyRngDriver;

/// `PCI_DEVICE(0x1234, 0xcafe)`: `pci::Vendor` has no constructor for QEMU's vendor id 0x1234,
/// which is not in `pci_ids.h`.
const MY_RNG_ID: pci::DeviceId = {
    let raw = bindings::pci_device_id {
        vendor: 0x1234,
        device: 0xcafe,
        subvendor: !0,
        subdevice: !0,
        class: 0,
        class_mask: 0,
        driver_data: 0,
        override_only: 0,
    };
    // SAFETY: `pci::DeviceId` is a `#[repr(transparent)]` wrapper of `struct pci_device_id`
    // without further invariants (see its `RawDeviceId` implementation).
    unsafe { core::mem::transmute::<bindings::pci_device_id, pci::DeviceId>(raw) }
};

kernel::pci_device_table!(
    PCI_TABLE,
    <MyRngDriver as pci::Driver>::IdInfo,
    [(MY_RNG_ID, ())]
);

impl pci::Driver for MyRngDriver {
    type IdInfo = ();
    type Data<'bound> = MyRngData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            pdev.enable_device_mem()?;
            let enabled: ARef<pci::Device> = pdev.into();
            kernel::devres::register(pdev.as_ref(), Enabled(enabled), GFP_KERNEL)?;
            let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"my_rng_rust")?;
            let bar = bar.into_devres()?;
            let (mut id, mut features, mut algos, mut limits) = (0, 0, 0, None);
            let both = FEATURE_DMA | FEATURE_IRQ;
            bar.try_access_with(|bar| {
                let v = bar.read32(regs::ID);
                // An ABI 1 device has no ID register: it reads as something else.
                if v >> 16 == ID_MAGIC {
                    id = v;
                    features = bar.read32(regs::FEATURES);
                    algos = bar.read32(regs::ALGOS);
                }
                if features & both == both {
                    limits = Some((
                        bar.read32(regs::DMA_MAX_SEGS),
                        bar.read32(regs::DMA_MAX_BYTES),
                    ));
                }
            })
            .ok_or(ENODEV)?;
            // Allocations sleep: outside the RCU read-side section of the BAR access above.
            let dma = limits.and_then(|(segs, bytes)| Dma::new(pdev, segs, bytes));
            let index = Index::alloc()?;
            let rng = Arc::pin_init(
                pin_init!(MyRng {
                    bar,
                    lock <- new_mutex!(false),
                    id,
                    features,
                    algos,
                    read_path: AtomicU32::new(ReadPath::Auto as u32),
                    dma,
                    dma_on: AtomicBool::new(false),
                    dma_done <- new_spinlock_irq!(false),
                    dma_wait <- new_condvar!(),
                }),
                GFP_KERNEL,
            )?;
            rng.selftest(pdev)?;
            let irq = rng.start_dma(pdev, NODE_NAMES[index.0]);
            // Only ENTROPY can feed hw_random: RNG would consume a user's seeded sequence.
            let hwrng = if rng.has(FEATURE_ENTROPY) {
                Some(HwRng::register(&rng, HWRNG_NAMES[index.0])?)
            } else {
                None
            };
            let node = NODE_NAMES[index.0];
            if id != 0 {
                dev_info!(
                    pdev,
                    "/dev/{}: ABI {}.{}, features {:#x}, algorithms {:#x}, hwrng {}, read {}\n",
                    node.to_str()?,
                    (id >> 8) & 0xff,
                    id & 0xff,
                    features,
                    algos,
                    if hwrng.is_some() {
                        HWRNG_NAMES[index.0].to_str()?
                    } else {
                        "none"
                    },
                    match &irq {
                        Some(i) if i.msi => "by DMA (MSI)",
                        Some(_) => "by DMA (INTx)",
                        None => "through registers",
                    }
                );
            } else {
                dev_info!(
                    pdev,
                    "/dev/{}: ABI 1 (RNG and SEED only), algorithm 0, no hwrng\n",
                    node.to_str()?
                );
            }
            let pdev_raw = core::ptr::from_ref::<pci::Device<Core<'_>>>(pdev)
                .cast::<c_void>()
                .cast_mut();
            let data_ptr = Arc::as_ptr(&rng).cast::<c_void>();
            Ok(try_pin_init!(MyRngData {
                hwrng,
                misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: node }),
                irq,
                rng,
                node: AtomicPtr::new(core::ptr::null_mut()),
                _index: index,
            })
            .pin_chain(move |data| {
                let mut node = core::ptr::null_mut();
                // SAFETY: `misc` is registered; `pdev_raw` points to the `struct pci_dev` of the
                // bound device (`pci::Device` is a transparent wrapper of it), which outlives the
                // node, and `data_ptr` to the `MyRng` that `data.rng` keeps alive until after
                // `unbind`, which tears down what this sets up, before the node is deregistered.
                kernel::error::to_result(unsafe {
                    my_rng_rust_node_setup(data.misc.as_raw().cast(), pdev_raw, data_ptr, &mut node)
                })?;
                data.node.store(node, Ordering::Release);
                Ok(())
            }))
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // Before the interrupt and BAR0 go: no command may run or start after this.
        this.rng.stop();
        let node = this.node.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !node.is_null() {
            // SAFETY: `misc` is registered (it is deregistered when `this` is dropped, after
            // this callback), and `node` is what `my_rng_rust_node_setup` set up on it; the swap
            // makes this the only teardown.
            unsafe { my_rng_rust_node_teardown(this.misc.as_raw().cast(), node) };
        }
    }
}

kernel::module_pci_driver! {
    type: MyRngDriver,
    name: "my_rng_rust",
    authors: ["my-rng project"],
    description: "Rust driver for the my-rng emulated PCI random number generator",
    license: "GPL",
}
