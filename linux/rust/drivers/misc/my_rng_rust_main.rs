// SPDX-License-Identifier: GPL-2.0

//! Rust driver for the emulated PCI random number generator my-rng (1234:cafe).
//!
//! The same user ABI as the C driver (`drivers/misc/my-rng.c`, `<uapi/misc/my_rng.h>`): one misc
//! node per device, `/dev/my_rng_driver` for the first one, then `/dev/my_rng_driver1`, ...,
//! with every ioctl of the uapi header and `read()` of the RNG64 byte stream; an ABI 2 device
//! with the ENTROPY register also feeds hw_random. An ABI 1 device (the original exercise) only
//! has RNG and SEED; it is recognised by the missing magic in its ID register.
//!
//! This driver reads through registers only: it does not use the DMA engine of an ABI 2.1
//! device, and its `read_path` attribute accepts only `auto` and `mmio`, as the C driver's does
//! on a device without DMA.
//!
//! Locking: a per-device mutex makes every register sequence atomic with respect to the other
//! users of the device (ioctls, `read()`, hw_random). BAR0 is a device-managed resource
//! ([`pci::DevresBar`]): once the device is unbound it is revoked, and every call on a file that
//! is still open fails with `ENODEV`. The per-device state is reference counted: each open file
//! holds a reference, so it outlives the binding.
//!
//! What the Rust abstractions of this kernel do not offer is in `my_rng_rust_glue.c`: the
//! hw_random registration, the node's `device` link and `read_path` attribute in sysfs, and the
//! unprefixed log lines of the self-test.

use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    bindings,
    device::Core,
    ffi::{c_char, c_int},
    fs::{File, Kiocb},
    io::Io,
    ioctl::{_IOR, _IOW, _IOWR},
    iov::IovIterDest,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex, pci,
    prelude::*,
    str::CString,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex},
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
    /// End of the registers this driver uses: accesses below it are checked at compile time.
    pub(crate) const END: usize = RNG64 + 8;
}

/// ID register of an ABI 2 device: magic "MR" in bits 31..16.
const ID_MAGIC: u32 = 0x4d52;
const FEATURE_RNG64: u32 = 1 << 0;
const FEATURE_ALGO: u32 = 1 << 1;
const FEATURE_ENTROPY: u32 = 1 << 2;
const ALGO_GLIBC: u32 = 0;

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
/// `read()` returns at most this much per call, read in chunks of `READ_CHUNK` bytes.
const READ_MAX: usize = 64 * 1024;
const READ_CHUNK: usize = 256;

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
    fn my_rng_rust_node_setup(misc: *mut c_void, pdev: *mut c_void, out: *mut *mut c_void)
        -> c_int;
    fn my_rng_rust_node_teardown(misc: *mut c_void, node: *mut c_void);
    fn my_rng_rust_info_line(line: *const c_char);
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

/// The state of one device, shared by the binding and every open file.
#[pin_data]
struct MyRng {
    /// BAR0, revoked when the device is unbound.
    bar: pci::DevresBar<{ regs::END }>,
    /// Serialises register sequences.
    #[pin]
    lock: Mutex<()>,
    /// ID register (0 on an ABI 1 device).
    id: u32,
    /// FEATURES register (0 on an ABI 1 device).
    features: u32,
    /// ALGOS register (0 on an ABI 1 device).
    algos: u32,
}

impl MyRng {
    /// Runs `f` on the registers with the device locked, or fails with `ENODEV` once the
    /// device is unbound. `f` runs in an RCU read-side section: it must not sleep.
    fn with_regs<R>(&self, f: impl FnOnce(&pci::Bar<'_, { regs::END }>) -> R) -> Result<R> {
        let _guard = self.lock.lock();
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        Ok(f(&bar))
    }

    fn has(&self, feature: u32) -> bool {
        self.features & feature != 0
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
        let _guard = if wait {
            self.lock.lock()
        } else {
            match self.lock.try_lock() {
                Some(g) => g,
                None => return Ok(0),
            }
        };
        let bar = self.bar.try_access().ok_or(ENODEV)?;
        for chunk in data.chunks_mut(4) {
            let v = bar.read32(regs::ENTROPY).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(data.len())
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
            let data = kernel::container_of!(core::ptr::from_ref(misc), MyRngData, misc);
            &(*data).rng
        };
        Ok(rng.clone())
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        if iov.is_empty() {
            return Ok(0);
        }
        kiocb.file().read_mmio(iov)
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

/// What the binding of one device holds; dropped in field order at unbind.
#[pin_data]
struct MyRngData {
    /// Dropped first: no hw_random read starts once it is gone.
    hwrng: Option<HwRng>,
    /// The node; its drop waits for a running `open()`.
    #[pin]
    misc: MiscDeviceRegistration<MyRng>,
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
    type Data<'bound> = MyRngData;

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
            let (mut id, mut features, mut algos) = (0, 0, 0);
            bar.try_access_with(|bar| {
                let v = bar.read32(regs::ID);
                // An ABI 1 device has no ID register: it reads as something else.
                if v >> 16 == ID_MAGIC {
                    id = v;
                    features = bar.read32(regs::FEATURES);
                    algos = bar.read32(regs::ALGOS);
                }
            })
            .ok_or(ENODEV)?;
            let index = Index::alloc()?;
            let rng = Arc::pin_init(
                pin_init!(MyRng {
                    bar,
                    lock <- new_mutex!(()),
                    id,
                    features,
                    algos,
                }),
                GFP_KERNEL,
            )?;
            rng.selftest(pdev)?;
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
                    "/dev/{}: ABI {}.{}, features {:#x}, algorithms {:#x}, hwrng {}\n",
                    node.to_str()?,
                    (id >> 8) & 0xff,
                    id & 0xff,
                    features,
                    algos,
                    if hwrng.is_some() {
                        HWRNG_NAMES[index.0].to_str()?
                    } else {
                        "none"
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
            Ok(try_pin_init!(MyRngData {
                hwrng,
                misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: node }),
                rng,
                node: AtomicPtr::new(core::ptr::null_mut()),
                _index: index,
            })
            .pin_chain(move |data| {
                let mut node = core::ptr::null_mut();
                // SAFETY: `misc` is registered; `pdev_raw` points to the `struct pci_dev` of the
                // bound device (`pci::Device` is a transparent wrapper of it), which outlives the
                // node; `unbind` tears down what this sets up, before the node is deregistered.
                kernel::error::to_result(unsafe {
                    my_rng_rust_node_setup(data.misc.as_raw().cast(), pdev_raw, &mut node)
                })?;
                data.node.store(node, Ordering::Release);
                Ok(())
            }))
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
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
