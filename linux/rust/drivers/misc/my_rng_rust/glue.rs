// SPDX-License-Identifier: GPL-2.0

//! The C side of the driver (`my_rng_rust_glue.c`): what the Rust abstractions of this kernel
//! do not offer, each wrapped here in a safe type, and the callbacks the glue makes into Rust.
//!
//! - hw_random has no abstraction (and `<linux/hw_random.h>` is not in the bindings): [`HwRng`].
//! - The miscdevice abstraction registers a node without a parent and without attributes: the
//!   `device` link and the `read_path`/`ioctl_path` attributes are added by [`Node`].
//! - There is no abstraction to pin the pages of an `iov_iter` (the `SGTable` abstraction only
//!   maps pages it owns): [`Pinned`].
//! - `kernel::io` has no repeated read of one register (`readsq()`): [`read_rep64`].
//! - The print macros prefix the module's name: the self-test's lines go through
//!   [`info_line`] to keep the original exercise's format.

use super::{read::ReadPath, stash::IoctlPath, Bar, MyRng};
use core::{ffi::c_void, ptr::NonNull, sync::atomic::Ordering};
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_uint},
    io::{Io, IoBackend, IoBase, MmioBackend},
    iov::IovIterDest,
    miscdevice::MiscDeviceRegistration,
    pci,
    prelude::*,
    scatterlist::SGTable,
    sync::{Arc, ArcBorrow},
};

/// Opaque `struct hwrng`, owned by the glue.
#[repr(C)]
struct RawHwrng {
    _opaque: [u8; 0],
}

/// Opaque `struct my_rng_rust_node`: what the glue adds to a node in sysfs.
#[repr(C)]
pub(crate) struct Node {
    _opaque: [u8; 0],
}

/// Opaque `struct my_rng_rust_pinned`: the caller's pages of a zero-copy read.
#[repr(C)]
struct RawPinned {
    _opaque: [u8; 0],
}

/// The node's attributes, as the glue numbers them.
const ATTR_READ_PATH: c_uint = 0;
const ATTR_IOCTL_PATH: c_uint = 1;

extern "C" {
    fn my_rng_rust_hwrng_register(
        name: *const c_char,
        data: *const c_void,
        quality: u16,
        out: *mut *mut RawHwrng,
    ) -> c_int;
    fn my_rng_rust_hwrng_unregister(rng: *mut RawHwrng);
    // `struct miscdevice *` and `struct pci_dev *` as untyped pointers: the bindings' types are
    // not FFI-safe by the compiler's rules (zero-sized members).
    fn my_rng_rust_node_setup(
        misc: *mut c_void,
        pdev: *mut c_void,
        data: *const c_void,
        out: *mut *mut Node,
    ) -> c_int;
    fn my_rng_rust_node_teardown(misc: *mut c_void, node: *mut Node);
    fn my_rng_rust_info_line(line: *const c_char);
    fn my_rng_rust_pin(
        iter: *mut bindings::iov_iter,
        max: usize,
        out: *mut *mut RawPinned,
    ) -> isize;
    fn my_rng_rust_map(pdev: *mut c_void, pinned: *mut RawPinned) -> *mut bindings::sg_table;
    fn my_rng_rust_unmap(pinned: *mut RawPinned);
    fn my_rng_rust_pinned_write(
        pinned: *mut RawPinned,
        off: usize,
        src: *const c_void,
        len: usize,
    ) -> c_int;
    fn my_rng_rust_unpin(iter: *mut bindings::iov_iter, pinned: *mut RawPinned, done: usize);
    fn my_rng_rust_readsl(reg: *const c_void, buf: *mut u32, count: c_uint);
    fn my_rng_rust_readsq(reg: *const c_void, buf: *mut u64, count: c_uint);
}

/// The address of the `width`-byte register at `offset` in `bar`, if it is inside and aligned.
fn reg_addr(bar: &Bar<'_>, offset: usize, width: usize) -> Result<*const c_void> {
    let view = bar.as_view();
    if offset % width != 0 || offset.checked_add(width).ok_or(EINVAL)? > view.size() {
        return Err(EINVAL);
    }
    // The view's pointer is the `ioremap()`ped address (`MmioRaw` is `T __iomem *` in C).
    let base = MmioBackend::as_ptr(view).cast::<u8>();
    Ok(base.wrapping_add(offset).cast_const().cast())
}

/// Reads the 32-bit register at `offset` of `bar` `out.len()` times (C `readsl()`; the values
/// land as the device's little-endian bytes). `kernel::io` has no repeated read, and its
/// one-value accessors each call a C helper, which in an emulated guest costs about as much
/// again as the register access itself.
pub(crate) fn read_rep32(bar: &Bar<'_>, offset: usize, out: &mut [u32]) -> Result {
    let reg = reg_addr(bar, offset, 4)?;
    let count = c_uint::try_from(out.len())?;
    // SAFETY: `reg` is a register inside `bar`'s mapping, which the caller's access to `bar`
    // keeps mapped during the call; `out` is valid for writes of `count` values.
    unsafe { my_rng_rust_readsl(reg, out.as_mut_ptr(), count) };
    Ok(())
}

/// [`read_rep32`] for a 64-bit register (C `readsq()`).
pub(crate) fn read_rep64(bar: &Bar<'_>, offset: usize, out: &mut [u64]) -> Result {
    let reg = reg_addr(bar, offset, 8)?;
    let count = c_uint::try_from(out.len())?;
    // SAFETY: as in `read_rep32`.
    unsafe { my_rng_rust_readsq(reg, out.as_mut_ptr(), count) };
    Ok(())
}

/// The `struct pci_dev` of `pdev`: `pci::Device` is a transparent wrapper of it, whose own
/// accessor is private to the kernel crate.
pub(crate) fn raw_pdev<Ctx: kernel::device::DeviceContext>(
    pdev: &pci::Device<Ctx>,
) -> *mut bindings::pci_dev {
    core::ptr::from_ref(pdev)
        .cast::<bindings::pci_dev>()
        .cast_mut()
}

/// Prints one line at info level without the module prefix.
pub(crate) fn info_line(line: &CStr) {
    // SAFETY: `line` is a NUL-terminated string that lives for the duration of the call.
    unsafe { my_rng_rust_info_line(line.as_char_ptr()) };
}

/// A hw_random source registered through the glue; unregistered when dropped.
pub(crate) struct HwRng {
    raw: NonNull<RawHwrng>,
    /// The state the reads use, kept alive while registered.
    _rng: Arc<MyRng>,
}

// SAFETY: `raw` is only used to unregister, which may happen on any thread.
unsafe impl Send for HwRng {}

impl HwRng {
    pub(crate) fn register(rng: &Arc<MyRng>, name: &'static CStr, quality: u16) -> Result<Self> {
        let mut raw = core::ptr::null_mut();
        // SAFETY: `name` is static; the `MyRng` behind the pointer outlives the registration,
        // since `Self` keeps a reference to it and unregisters before dropping it.
        kernel::error::to_result(unsafe {
            my_rng_rust_hwrng_register(
                name.as_char_ptr(),
                Arc::as_ptr(rng).cast(),
                quality,
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
    // SAFETY: `data` is `Arc::as_ptr` of the `Arc` that the `HwRng` holds until
    // `hwrng_unregister()` has returned, after which the core calls no more reads.
    let rng = unsafe { ArcBorrow::<MyRng>::from_raw(data.cast()) };
    // SAFETY: the hw_random core passes its buffer of at least `max` bytes, which nothing else
    // touches during the call (the core's reading mutex).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), max) };
    match rng.hwrng_read(rng, out, wait) {
        Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Err(e) => e.to_errno(),
    }
}

impl Node {
    /// Adds the `device` link and the attributes to the registered node `misc` of `pdev`.
    pub(crate) fn setup(
        misc: &MiscDeviceRegistration<MyRng>,
        pdev: &pci::Device<kernel::device::Core<'_>>,
        rng: &Arc<MyRng>,
    ) -> Result<*mut Node> {
        let mut node = core::ptr::null_mut();
        // SAFETY: `misc` is registered; `pdev` is the bound device, which outlives the node,
        // and `rng` is kept alive by the binding until after `unbind`, which tears down what
        // this sets up before the node is deregistered.
        kernel::error::to_result(unsafe {
            my_rng_rust_node_setup(
                misc.as_raw().cast(),
                raw_pdev(pdev).cast(),
                Arc::as_ptr(rng).cast(),
                &mut node,
            )
        })?;
        Ok(node)
    }

    /// Undoes [`Node::setup`] (nothing if `node` is null); `misc` is still registered.
    pub(crate) fn teardown(misc: &MiscDeviceRegistration<MyRng>, node: *mut Node) {
        if !node.is_null() {
            // SAFETY: `node` is what `setup` returned for `misc`, torn down once (the caller
            // took it out of where it was kept).
            unsafe { my_rng_rust_node_teardown(misc.as_raw().cast(), node) };
        }
    }
}

/// Called by the glue's attribute show: the current path's index.
///
/// # Safety
///
/// `data` is the pointer [`Node::setup`] passed.
#[no_mangle]
unsafe extern "C" fn my_rng_rust_attr_get(data: *const c_void, attr: c_uint) -> c_uint {
    // SAFETY: `data` is the `MyRng` the binding holds a reference to until after the node's
    // teardown, after which sysfs calls no more show or store.
    let rng = unsafe { &*data.cast::<MyRng>() };
    match attr {
        ATTR_READ_PATH => rng.read_path.load(Ordering::Relaxed),
        _ => rng.ioctl_path.load(Ordering::Relaxed),
    }
}

/// Called by the glue's attribute store with a known name's index: a DMA path (`bounce`,
/// `zerocopy`, `stash`) is refused with `EINVAL` on a device without DMA.
///
/// # Safety
///
/// `data` is the pointer [`Node::setup`] passed.
#[no_mangle]
unsafe extern "C" fn my_rng_rust_attr_set(data: *const c_void, attr: c_uint, idx: c_uint) -> c_int {
    // SAFETY: as in `my_rng_rust_attr_get`.
    let rng = unsafe { &*data.cast::<MyRng>() };
    let no_dma = rng.dma().is_none();
    let (target, ok) = match attr {
        ATTR_READ_PATH => (
            &rng.read_path,
            match ReadPath::from_index(idx) {
                Some(ReadPath::Bounce | ReadPath::Zerocopy) => !no_dma,
                p => p.is_some(),
            },
        ),
        ATTR_IOCTL_PATH => (
            &rng.ioctl_path,
            match IoctlPath::from_index(idx) {
                Some(IoctlPath::Stash) => !no_dma,
                p => p.is_some(),
            },
        ),
        _ => return EINVAL.to_errno(),
    };
    if !ok {
        return EINVAL.to_errno();
    }
    target.store(idx, Ordering::Relaxed);
    0
}

/// The caller's pages of a zero-copy read, pinned (user memory) and listed in a scatterlist.
/// Released with [`Pinned::release`].
pub(crate) struct Pinned {
    raw: NonNull<RawPinned>,
    len: usize,
}

impl Pinned {
    /// Takes up to `max` bytes of `iov`'s destination (advancing `iov` by as much); the caller
    /// holds no lock (pinning may fault pages in). A short length is a leading part of the
    /// buffer; `EFAULT` if nothing could be pinned.
    pub(crate) fn pin(iov: &mut IovIterDest<'_>, max: usize) -> Result<Self> {
        let mut raw = core::ptr::null_mut();
        // SAFETY: `iov` is a valid destination iterator, which the glue advances over the
        // pages it pins and describes in `raw`.
        let len = unsafe { my_rng_rust_pin(iov.as_raw(), max, &mut raw) };
        let len = usize::try_from(len).map_err(|_| Error::from_errno(len as c_int))?;
        Ok(Pinned {
            raw: NonNull::new(raw).ok_or(EFAULT)?,
            len,
        })
    }

    /// Bytes pinned.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Maps the pages for `pdev` (DMA from the device), until [`Pinned::unmap`]; the device
    /// must be bound (the caller holds its mutex and has checked).
    pub(crate) fn map(&self, pdev: &pci::Device) -> Result<&SGTable> {
        // SAFETY: `pdev` is a valid PCI function and `raw` came from `my_rng_rust_pin`.
        let sgt = unsafe { my_rng_rust_map(raw_pdev(pdev).cast(), self.raw.as_ptr()) };
        kernel::error::from_err_ptr(sgt)?;
        // SAFETY: `sgt` is the mapped table of `raw`, valid until `release` (which takes
        // `self`, so the borrow has ended by then).
        Ok(unsafe { SGTable::from_raw(sgt) })
    }

    /// Unmaps the pages if they are mapped; the device no longer writes them.
    pub(crate) fn unmap(&self) {
        // SAFETY: `raw` came from `my_rng_rust_pin`; every command on it has ended.
        unsafe { my_rng_rust_unmap(self.raw.as_ptr()) };
    }

    /// Copies `src` into the pages from byte `off` on; they must not be mapped.
    pub(crate) fn write_at(&self, off: usize, src: &[u8]) -> Result {
        // SAFETY: `raw` came from `my_rng_rust_pin`; `src` is valid for reads of its length.
        kernel::error::to_result(unsafe {
            my_rng_rust_pinned_write(self.raw.as_ptr(), off, src.as_ptr().cast(), src.len())
        })
    }

    /// Unmaps and unpins the pages (dirty), and moves `iov` back over the bytes past the
    /// first `done`, which were not filled.
    pub(crate) fn release(self, iov: &mut IovIterDest<'_>, done: usize) {
        // SAFETY: `raw` is what `my_rng_rust_pin` gave for `iov`, released once (this takes
        // `self`); the device has stopped writing the pages.
        unsafe { my_rng_rust_unpin(iov.as_raw(), self.raw.as_ptr(), done) };
    }
}
