//! The device as the commands see it: a trait, so that each command's arguments, output and
//! error messages can be unit-tested on the host against a fake device.

use std::path::Path;

use my_rng::{Device, Info, Result};

/// The operations of an open my_rng node that the CLI uses (each is one driver call on a
/// real [`Device`]; see its documentation).
pub trait RngDevice {
    /// The node's path (messages, and finding its sysfs directory).
    fn path(&self) -> &Path;
    /// INFO ioctl.
    fn info(&self) -> Result<Info>;
    /// SEED ioctl.
    fn seed(&self, seed: u32) -> Result<()>;
    /// RAND ioctl.
    fn next_u32(&self) -> Result<u32>;
    /// RAND64 ioctl.
    fn next_u64(&self) -> Result<u64>;
    /// SET_ALGO ioctl by raw id.
    fn set_algorithm_id(&self, id: u32) -> Result<()>;
    /// GET_ALGO ioctl.
    fn algorithm_id(&self) -> Result<u32>;
    /// SEED_READ ioctl.
    fn seed_read(&self, seed: u32, out: &mut [u32]) -> Result<()>;
    /// One read(2).
    fn read(&self, buf: &mut [u8]) -> Result<usize>;
}

impl RngDevice for Device {
    fn path(&self) -> &Path {
        Device::path(self)
    }

    fn info(&self) -> Result<Info> {
        Device::info(self)
    }

    fn seed(&self, seed: u32) -> Result<()> {
        Device::seed(self, seed)
    }

    fn next_u32(&self) -> Result<u32> {
        Device::next_u32(self)
    }

    fn next_u64(&self) -> Result<u64> {
        Device::next_u64(self)
    }

    fn set_algorithm_id(&self, id: u32) -> Result<()> {
        Device::set_algorithm_id(self, id)
    }

    fn algorithm_id(&self) -> Result<u32> {
        Device::algorithm_id(self)
    }

    fn seed_read(&self, seed: u32, out: &mut [u32]) -> Result<()> {
        Device::seed_read(self, seed, out)
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        Device::read(self, buf)
    }
}
