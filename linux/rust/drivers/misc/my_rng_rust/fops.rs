// SPDX-License-Identifier: GPL-2.0

//! The node's file operations: `open`, `read()` and the ioctls of `<uapi/misc/my_rng.h>`.

use super::{regs, MyRng, MyRngData};
use kernel::{
    fs::{File, Kiocb},
    ioctl::_IOC_SIZE,
    iov::IovIterDest,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    sync::{Arc, ArcBorrow},
    uaccess::{UserPtr, UserSlice},
};

/// `struct my_rng_info` of the uapi header: id, features, algos, algo.
type Info = [u32; 4];

/// `struct my_rng_seed_read` of the uapi header.
#[repr(C)]
struct SeedRead {
    seed: u32,
    count: u32,
    buf: u64,
}

// The numbers are the spec's (generated in `regs`); the argument types must have the size
// each number encodes.
const _: () = {
    assert!(_IOC_SIZE(regs::IOCTL_INFO) == core::mem::size_of::<Info>());
    assert!(_IOC_SIZE(regs::IOCTL_SEED_READ) == core::mem::size_of::<SeedRead>());
    assert!(_IOC_SIZE(regs::IOCTL_RAND) == core::mem::size_of::<u32>());
    assert!(_IOC_SIZE(regs::IOCTL_RAND64) == core::mem::size_of::<u64>());
};

/// Writes `v` to the caller's `arg`.
#[inline]
fn put<T: kernel::transmute::AsBytes>(arg: UserPtr, v: &T) -> Result {
    UserSlice::new(arg, core::mem::size_of::<T>())
        .writer()
        .write(v)
}

/// Reads a `u32` from the caller's `arg`.
fn get_u32(arg: UserPtr) -> Result<u32> {
    UserSlice::new(arg, 4).reader().read()
}

impl MyRng {
    fn ioctl_info(&self, arg: UserPtr) -> Result {
        let algo = self.with_regs(|bar| self.cur_algo(bar))?;
        let id = &self.ident;
        put::<Info>(arg, &[id.id, id.features, id.algos, algo])
    }

    /// SEED_READ; the values are collected in a kernel buffer so that no page fault is taken
    /// with the device locked.
    fn ioctl_seed_read(&self, arg: UserPtr) -> Result {
        let mut r = UserSlice::new(arg, core::mem::size_of::<SeedRead>()).reader();
        let seed: u32 = r.read()?;
        let count: u32 = r.read()?;
        let buf: u64 = r.read()?;
        if count == 0 || count > regs::SEED_READ_MAX {
            return Err(EINVAL);
        }
        let mut vals = KVVec::from_elem(0u32, count as usize, GFP_KERNEL)?;
        self.seed_read(seed, &mut vals)?;
        let addr = usize::try_from(buf).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), vals.len() * 4)
            .writer()
            .write_slice(vals.as_bytes())
    }
}

#[vtable]
impl MiscDevice for MyRng {
    type Ptr = Arc<MyRng>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<MyRng>> {
        // The miscdevice abstraction gives `open` the registration, not the data it is part of.
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
        kiocb.file().read(iov)
    }

    fn ioctl(me: ArcBorrow<'_, MyRng>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let arg = UserPtr::from_addr(arg);
        match cmd {
            regs::IOCTL_RAND => put(arg, &me.rand()?)?,
            regs::IOCTL_SEED => me.seed(get_u32(arg)?)?,
            regs::IOCTL_RAND64 => put(arg, &me.rand64()?)?,
            regs::IOCTL_SET_ALGO => me.set_algo(get_u32(arg)?)?,
            regs::IOCTL_GET_ALGO => put(arg, &me.with_regs(|bar| me.cur_algo(bar))?)?,
            regs::IOCTL_INFO => me.ioctl_info(arg)?,
            regs::IOCTL_SEED_READ => me.ioctl_seed_read(arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}
