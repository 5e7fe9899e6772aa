//! The my_rng PCI device (spec/my-rng.rst, ABI 2.1) as a vfio-user server: QEMU's
//! `vfio-user-pci` drives it over a UNIX socket, unmodified.
//!
//! - [`device`]: the function itself: BAR0 through `my_rng_spec::regs::decode`, the
//!   generators (`my_rng_spec::Generator`), the DMA engine (`my_rng_spec::dma::Dma`) run
//!   by a background thread, MSI and INTx through QEMU's eventfds.
//! - [`config`]: the PCI configuration space.
//! - [`memory`]: the DMA maps (QEMU's shared memory backend, mapped here).
//! - [`backend`]: the `vfio_user::ServerBackend` of the device.
//! - [`gate`]: the connection loop and a checking front end for `vfio_user::Server`.
//! - [`seccomp`]: the system-call filter.
//! - [`timing`]: where DMA commands spend their time (the log at disconnect).

pub mod backend;
pub mod config;
pub mod device;
pub mod gate;
pub mod memory;
pub mod seccomp;
pub mod timing;
