//! The parts of a boot: build QEMU, the guest kernel and the guest programs, and describe the
//! VM made of them (with the Rust device's servers in place of or beside QEMU's my_rng).

use crate::cli::Variant;
use crate::vfio_user::Servers;
use crate::{apt, guest, kernel, qemu, vm};
use anyhow::Result;
use std::path::PathBuf;

/// my_rng devices in every boot: the tests need two independent ones.
pub const DEVICES: usize = 2;

/// The boot description for built components: packs the initramfs (the module and the user's
/// `extra` programs included).
pub fn vm_of(
    q: &qemu::Tree,
    k: &kernel::Tree,
    g: &guest::Binaries,
    extra: &[PathBuf],
) -> Result<vm::Vm> {
    // Each kernel variant has its own modules, hence its own initramfs.
    let name = match k.variant {
        Variant::Guest => "initramfs.cpio",
        Variant::Debug => "initramfs-debug.cpio",
    };
    let initramfs = guest::initramfs_named(name, g, Some(&k.module()), extra)?;
    Ok(vm::Vm {
        qemu: q.binary(),
        kernel: k.bzimage(),
        initramfs,
        devices: DEVICES,
        extra_args: Vec::new(),
    })
}

/// Builds the parts of a boot with the `variant` kernel: QEMU, the kernel (and module), the
/// guest programs.
pub fn build_parts(variant: Variant) -> Result<(qemu::Tree, kernel::Tree, guest::Binaries)> {
    apt::ensure_host_packages()?;
    // Before QEMU's build: a wrong rustc would otherwise fail only minutes later.
    kernel::check_rustc()?;
    let q = qemu::build()?;
    let k = kernel::build_variant(variant)?;
    let g = guest::build()?;
    Ok((q, k, g))
}

/// Builds everything a boot needs; returns the VM description.
pub fn build_all(extra: &[PathBuf]) -> Result<vm::Vm> {
    build_all_with(extra, Variant::Guest)
}

/// [`build_all`] with the `variant` kernel.
pub fn build_all_with(extra: &[PathBuf], variant: Variant) -> Result<vm::Vm> {
    let (q, k, g) = build_parts(variant)?;
    vm_of(&q, &k, &g, extra)
}

/// `vm` as it is, or with the servers' devices in place of QEMU's my_rng.
pub fn vm_for(servers: Option<&Servers>, vm: &vm::Vm) -> vm::Vm {
    servers.map_or_else(|| vm.clone(), |s| served(s, vm))
}

/// The VM with these servers' devices instead of QEMU's own my_rng: its RAM shared
/// (memfd) so that the devices can DMA.
pub fn served(servers: &Servers, base: &vm::Vm) -> vm::Vm {
    vm::Vm {
        devices: 0,
        extra_args: servers.qemu_args(None),
        ..base.clone()
    }
}

/// The VM with these servers' devices beside its own my_rng devices, the first server's
/// at PCI slot `slot` (the next ones after it).
pub fn beside(servers: &Servers, base: &vm::Vm, slot: &str) -> vm::Vm {
    vm::Vm {
        extra_args: servers.qemu_args(Some(slot)),
        ..base.clone()
    }
}
