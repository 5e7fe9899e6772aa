//! User-space access to the my_rng emulated PCI random number generator through its Linux
//! driver (`/dev/my_rng_driver`, `/dev/my_rng_driver1`, ...).
//!
//! ```no_run
//! use my_rng::{Algorithm, Device};
//!
//! let dev = Device::open_default()?;
//! dev.set_algorithm(Algorithm::Xoshiro256pp)?;
//! dev.seed(0x42)?;
//! let x = dev.next_u64()?;
//! let mut buf = [0u8; 32];
//! dev.fill_bytes(&mut buf)?;
//! # Ok::<(), my_rng::Error>(())
//! ```

mod device;
mod error;
pub mod parse;
pub mod sysfs;
pub mod uapi;

pub use device::{Device, Info, DEFAULT_PATH};
pub use error::{Error, Result};
pub use my_rng_spec::{regs, Algorithm};
/// Re-exported so users pick the rand_core version `Device` implements.
pub use rand_core;
