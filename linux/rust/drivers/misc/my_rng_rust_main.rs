// SPDX-License-Identifier: GPL-2.0

//! Rust driver for the emulated PCI random number generator my-rng (1234:cafe).
//!
//! The same user ABI as the C driver (`drivers/misc/my-rng.c`, `<uapi/misc/my_rng.h>`): one misc
//! node per device, `/dev/my_rng_driver` for the first one, then `/dev/my_rng_driver1`, ...,
//! with every ioctl of the uapi header and `read()` of the RNG64 byte stream; an ABI 2 device
//! with the ENTROPY register also feeds hw_random. An ABI 1 device (the original exercise) only
//! has RNG and SEED; it is recognised by the missing magic in its ID register.
//!
//! On an ABI 2.1 device with the DMA engine and its interrupt, as in the C driver:
//! - `read()` runs by DMA: below 4 KiB through a coherent bounce buffer, from 4 KiB on straight
//!   into the caller's pinned pages (zero-copy); the `read_path` attribute selects a path
//!   ([`read`]);
//! - RAND, RAND64 and SEED_READ are served from a stash of the seeded sequence that DMA refills,
//!   and `read()` hands out what the stash holds first; the `ioctl_path` attribute chooses
//!   register reads instead ([`stash`], and the shared design the C driver follows);
//! - hw_random is served from a pool of host entropy that DMA refills ahead of demand
//!   ([`pool`]); without DMA it reads the ENTROPY register.
//!
//! Locking: a per-device mutex makes every register sequence, every DMA command and every use
//! of the stash atomic with respect to the other users of the device (ioctls, `read()`,
//! hw_random's refills). BAR0 is a device-managed resource ([`pci::DevresBar`]): once the device
//! is unbound it is revoked, and every call on a file that is still open fails with `ENODEV`;
//! `unbind` first stops the DMA engine and the pool's refills. The per-device state is reference
//! counted: each open file holds a reference, so it outlives the binding.
//!
//! What the Rust abstractions of this kernel do not offer is in `my_rng_rust_glue.c`, declared
//! in [`glue`]: the hw_random registration, the node's `device` link and attributes in sysfs,
//! pinning and mapping the pages of an `iov_iter` for zero-copy DMA, repeated reads of one
//! register, and the unprefixed log lines of the self-test. The other C calls, each named where
//! it is made: `pci_disable_device()`, `flush_work()`, and a `struct completion` with a timed
//! wait.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use kernel::{
    bindings,
    device::Core,
    io::Io,
    new_condvar, new_mutex, new_spinlock, pci,
    prelude::*,
    str::CString,
    sync::{aref::ARef, Arc, CondVar, Mutex, MutexGuard, SpinLock},
    workqueue::{new_work, Work},
};

#[path = "my_rng_rust/dma.rs"]
mod dma;
#[path = "my_rng_rust/fops.rs"]
mod fops;
#[path = "my_rng_rust/glue.rs"]
mod glue;
#[path = "my_rng_rust/pool.rs"]
mod pool;
#[path = "my_rng_rust/read.rs"]
mod read;
#[path = "my_rng_rust/regs.rs"]
mod regs;
#[path = "my_rng_rust/stash.rs"]
mod stash;

use dma::{Dma, DmaDone, Interrupt};
use glue::{HwRng, Node};
use pool::Pool;
use read::ReadPath;
use stash::{IoctlPath, Stash};

/// End of the registers this driver uses: accesses below it are checked at compile time. An ABI 1
/// or 2.0 device has the same 4 KiB BAR; the DMA block is used only when FEATURES announces it.
const REGS_END: usize = regs::IRQ_END;

/// BAR0 as the driver maps it.
type Bar<'a> = pci::Bar<'a, { REGS_END }>;

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

/// What the device mutex protects besides the device's registers and DMA engine.
struct DevState {
    /// `unbind` has stopped the device: nothing starts on it any more.
    unbound: bool,
    /// The part of the seeded sequence fetched ahead by DMA.
    stash: Stash,
}

/// What the device reported at probe.
#[derive(Clone, Copy)]
struct Ident {
    /// ID register (0 on an ABI 1 device).
    id: u32,
    /// FEATURES register (0 on an ABI 1 device).
    features: u32,
    /// ALGOS register (0 on an ABI 1 device).
    algos: u32,
    /// DMA_MAX_SEGS and DMA_MAX_BYTES, on a device with DMA and its interrupt.
    dma_limits: Option<(u32, u32)>,
}

/// The state of one device, shared by the binding, every open file, the hw_random source, the
/// interrupt handler and the pool's work item.
#[pin_data]
struct MyRng {
    /// BAR0, revoked when the device is unbound.
    bar: pci::DevresBar<{ REGS_END }>,
    /// Serialises register sequences, DMA commands and the stash.
    #[pin]
    lock: Mutex<DevState>,
    ident: Ident,
    /// `read()` path chosen through sysfs, a [`ReadPath`].
    read_path: AtomicU32,
    /// RAND/RAND64/SEED_READ path chosen through sysfs, an [`IoctlPath`].
    ioctl_path: AtomicU32,
    /// The DMA engine's buffers, if the device has the engine.
    dma: Option<Dma>,
    /// The completion interrupt is set up: `dma` is in use.
    dma_on: AtomicBool,
    /// Completed by the interrupt handler when a command ends.
    #[pin]
    dma_done: DmaDone,
    /// hw_random's pool of host entropy (DMA devices).
    #[pin]
    pool: SpinLock<Pool>,
    /// Woken after a refill of the pool, for a hw_random read that may wait.
    #[pin]
    pool_wait: CondVar,
    /// Refills the empty halves of the pool.
    #[pin]
    pool_work: Work<MyRng>,
}

impl MyRng {
    /// Locks the device for a register sequence, a DMA command or the stash; `ENODEV` once
    /// `unbind` has stopped it.
    #[inline]
    fn lock_bound(&self) -> Result<MutexGuard<'_, DevState>> {
        let st = self.lock.lock();
        if st.unbound {
            return Err(ENODEV);
        }
        Ok(st)
    }

    /// Runs `f` on the registers; the caller holds the mutex (or is the interrupt handler, for
    /// IRQ_STATUS only). `f` runs in an RCU read-side section of the revocable BAR: it must not
    /// sleep.
    fn regs<R>(&self, f: impl FnOnce(&Bar<'_>) -> R) -> Result<R> {
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    /// Runs `f` on the registers with the device locked, or fails with `ENODEV` once the
    /// device is unbound. `f` must not sleep.
    fn with_regs<R>(&self, f: impl FnOnce(&Bar<'_>) -> R) -> Result<R> {
        let _st = self.lock_bound()?;
        self.regs(f)
    }

    fn has(&self, feature: u32) -> bool {
        self.ident.features & feature != 0
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
    /// is read with the checked accessor: a BAR's region is only known to be 4-byte aligned at
    /// compile time, so the infallible 64-bit accessor does not apply (the check cannot fail).
    fn next64(&self, bar: &Bar<'_>) -> Result<u64> {
        if self.has(regs::FEAT_RNG64) {
            return bar.try_read64(regs::RNG64);
        }
        let lo = bar.read32(regs::RNG);
        let hi = bar.read32(regs::RNG);
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    fn cur_algo(&self, bar: &Bar<'_>) -> u32 {
        if self.has(regs::FEAT_ALGO) {
            bar.read32(regs::ALGO)
        } else {
            regs::ALGO_GLIBC
        }
    }

    fn algo_valid(&self, algo: u32) -> bool {
        self.has(regs::FEAT_ALGO) && algo < 32 && self.ident.algos & (1 << algo) != 0
    }

    /// The test the original exercise ran at boot, in exactly its format.
    fn selftest(&self, pdev: &pci::Device<Core<'_>>) -> Result {
        let mut val = [[0u32; TEST_NUMBERS]; TEST_ROUNDS];
        self.with_regs(|bar| {
            if self.has(regs::FEAT_ALGO) {
                bar.write32(regs::ALGO_GLIBC, regs::ALGO);
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
        let ok = print_selftest(&val, self.has(regs::FEAT_ALGO))?;
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

    /// Called by `unbind`, before BAR0 is revoked and the interrupt freed: no refill of the
    /// pool is queued or runs after it, a running command has ended, the engine and its
    /// interrupt are off, and nothing starts on the device any more.
    fn stop(&self) {
        self.pool_kill();
        {
            let mut st = self.lock.lock();
            st.unbound = true;
            if self.dma().is_some() {
                let _ = self.regs(|bar| {
                    bar.write32(regs::DMA_CMD_ABORT, regs::DMA_CMD);
                    bar.write32(0, regs::IRQ_ENABLE);
                });
            }
        }
        // Without the mutex: a refill that is running takes it, sees `unbound` and ends.
        self.pool_flush();
    }
}

/// Prints the self-test block; true if the values are right: both rounds alike and, with
/// algorithm 0 selected (`known`), the glibc values.
fn print_selftest(val: &[[u32; TEST_NUMBERS]; TEST_ROUNDS], known: bool) -> Result<bool> {
    let mut ok = true;
    glue::info_line(TEST_RULE);
    glue::info_line(c"BEGIN MY-RNG TEST");
    glue::info_line(TEST_RULE);
    for (i, round) in val.iter().enumerate() {
        for (j, v) in round.iter().enumerate() {
            let line = CString::try_from_fmt(fmt!("Round {i} number {j}: {v}"))?;
            glue::info_line(&line);
            ok &= *v == val[0][j] && (!known || *v == TEST_EXPECTED[j]);
        }
    }
    glue::info_line(TEST_RULE);
    glue::info_line(c"END MY-RNG TEST");
    glue::info_line(TEST_RULE);
    Ok(ok)
}

/// What the binding of one device holds; dropped in field order at unbind.
#[pin_data]
struct MyRngData<'bound> {
    /// Dropped first: no hw_random read starts once it is gone.
    hwrng: Option<HwRng>,
    /// The node; its drop waits for a running `open()`.
    #[pin]
    misc: kernel::miscdevice::MiscDeviceRegistration<MyRng>,
    /// The completion interrupt, if the DMA engine is in use; `unbind` has stopped the engine
    /// before it is freed.
    irq: Option<Interrupt<'bound>>,
    rng: Arc<MyRng>,
    /// What the glue added to the node in sysfs (null until then), torn down at unbind.
    node: AtomicPtr<Node>,
    _index: Index,
}

/// Disables the PCI device when dropped. Registered as a device-managed resource right after
/// the device is enabled, so that devres runs it after releasing what probe set up later (BAR0
/// first), as `pcim_enable_device()` does for the C driver.
struct Enabled(ARef<pci::Device>);

impl Drop for Enabled {
    fn drop(&mut self) {
        // SAFETY: the pointer is the `struct pci_dev` the `ARef` keeps alive; probe enabled it
        // once before creating `self`, and this runs once, so the enable count stays balanced.
        // (`pci::Device` offers enabling but no disabling: the C call is used.)
        unsafe { bindings::pci_disable_device(glue::raw_pdev(&self.0)) };
    }
}

struct MyRngDriver;

/// `PCI_DEVICE(vendor, device)`: `pci::Vendor` has no constructor for QEMU's vendor id, which
/// is not in `pci_ids.h`.
const MY_RNG_ID: pci::DeviceId = {
    let raw = bindings::pci_device_id {
        vendor: regs::PCI_VENDOR_ID,
        device: regs::PCI_DEVICE_ID,
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

/// Probe's steps, in the order `probe` runs them (as the C driver's `my_rng_probe`).
impl MyRngDriver {
    /// Enables the device (disabled again by devres after everything else is released) and
    /// maps BAR0 as a revocable resource.
    fn map(pdev: &pci::Device<Core<'_>>) -> Result<pci::DevresBar<{ REGS_END }>> {
        pdev.enable_device_mem()?;
        let enabled: ARef<pci::Device> = pdev.into();
        kernel::devres::register(pdev.as_ref(), Enabled(enabled), GFP_KERNEL)?;
        pdev.iomap_region_sized::<{ REGS_END }>(0, c"my_rng_rust")?
            .into_devres()
    }

    /// Reads the device's identity and, if it has DMA and its interrupt, the DMA limits.
    fn identify(bar: &pci::DevresBar<{ REGS_END }>) -> Result<Ident> {
        bar.try_access_with(|bar| {
            let mut ident = Ident {
                id: 0,
                features: 0,
                algos: 0,
                dma_limits: None,
            };
            let id = bar.read32(regs::ID);
            // An ABI 1 device has no ID register: it reads as something else.
            if id >> regs::ID_MAGIC_SHIFT != regs::ID_MAGIC {
                return ident;
            }
            ident.id = id;
            ident.features = bar.read32(regs::FEATURES);
            ident.algos = bar.read32(regs::ALGOS);
            let both = regs::FEAT_DMA | regs::FEAT_IRQ;
            if ident.features & both == both {
                ident.dma_limits = Some((
                    bar.read32(regs::DMA_MAX_SEGS),
                    bar.read32(regs::DMA_MAX_BYTES),
                ));
            }
            ident
        })
        .ok_or(ENODEV)
    }

    /// The device's shared state; its DMA buffers if it has DMA (allocations sleep: outside
    /// the RCU read-side section of `identify`).
    fn alloc_state(
        pdev: &pci::Device<Core<'_>>,
        bar: pci::DevresBar<{ REGS_END }>,
        ident: Ident,
    ) -> Result<Arc<MyRng>> {
        let dma = ident
            .dma_limits
            .and_then(|(segs, bytes)| Dma::new(pdev, segs, bytes));
        Arc::pin_init(
            pin_init!(MyRng {
                bar,
                lock <- new_mutex!(DevState {
                    unbound: false,
                    stash: Stash::new(),
                }),
                ident,
                read_path: AtomicU32::new(ReadPath::Auto as u32),
                ioctl_path: AtomicU32::new(IoctlPath::Auto as u32),
                dma,
                dma_on: AtomicBool::new(false),
                dma_done <- DmaDone::new(),
                pool <- new_spinlock!(Pool::new()),
                pool_wait <- new_condvar!(),
                pool_work <- new_work!("MyRng::pool_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Only ENTROPY can feed hw_random (RNG would consume a user's seeded sequence): an ABI 1
    /// device gets no source. With DMA the pool is filled before the core's first read, which
    /// may not wait.
    fn register_hwrng(rng: &Arc<MyRng>, index: &Index) -> Result<Option<HwRng>> {
        if !rng.has(regs::FEAT_ENTROPY) {
            return Ok(None);
        }
        if rng.dma().is_some() {
            rng.pool_refill();
        }
        HwRng::register(rng, HWRNG_NAMES[index.0], HWRNG_QUALITY).map(Some)
    }

    /// The probe line: what the device offers and how `read()` runs.
    fn log(pdev: &pci::Device<Core<'_>>, rng: &MyRng, index: &Index, irq: Option<&Interrupt<'_>>) {
        let node = NODE_NAMES[index.0].to_str().unwrap_or("?");
        let Ident {
            id,
            features,
            algos,
            ..
        } = rng.ident;
        if id == 0 {
            dev_info!(
                pdev,
                "/dev/{node}: ABI 1 (RNG and SEED only), algorithm 0, no hwrng\n"
            );
            return;
        }
        let hwrng = if rng.has(regs::FEAT_ENTROPY) {
            HWRNG_NAMES[index.0].to_str().unwrap_or("?")
        } else {
            "none"
        };
        let read = match irq {
            Some(i) if i.msi => "by DMA (MSI)",
            Some(_) => "by DMA (INTx)",
            None => "through registers",
        };
        let major = (id >> regs::ID_MAJOR_SHIFT) & regs::ID_VERSION_MASK;
        let minor = id & regs::ID_VERSION_MASK;
        dev_info!(
            pdev,
            "/dev/{node}: ABI {major}.{minor}, features {features:#x}, algorithms {algos:#x}, hwrng {hwrng}, read {read}\n"
        );
    }
}

impl pci::Driver for MyRngDriver {
    type IdInfo = ();
    type Data<'bound> = MyRngData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let bar = Self::map(pdev)?;
            let ident = Self::identify(&bar)?;
            let index = Index::alloc()?;
            let rng = Self::alloc_state(pdev, bar, ident)?;
            rng.selftest(pdev)?;
            let irq = rng.start_dma(pdev, NODE_NAMES[index.0]);
            let hwrng = Self::register_hwrng(&rng, &index)?;
            Self::log(pdev, &rng, &index, irq.as_ref());
            Ok(try_pin_init!(MyRngData {
                hwrng,
                misc <- kernel::miscdevice::MiscDeviceRegistration::register(
                    kernel::miscdevice::MiscDeviceOptions {
                        name: NODE_NAMES[index.0],
                    }
                ),
                irq,
                rng,
                node: AtomicPtr::new(core::ptr::null_mut()),
                _index: index,
            })
            .pin_chain(move |data| {
                let node = Node::setup(&data.misc, pdev, &data.rng)?;
                data.node.store(node, Ordering::Release);
                Ok(())
            }))
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // Before the interrupt and BAR0 go: no command may run or start after this.
        this.rng.stop();
        let node = this.node.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // The swap makes this the only teardown; `misc` is still registered (it is
        // deregistered when `this` is dropped, after this callback).
        Node::teardown(&this.misc, node);
    }
}

kernel::module_pci_driver! {
    type: MyRngDriver,
    name: "my_rng_rust",
    authors: ["my-rng project"],
    description: "Rust driver for the my-rng emulated PCI random number generator",
    license: "GPL",
}
