//! `cargo xtask build`, `run` and `shell`: build what a boot needs, then boot it.

use crate::cli::DeviceKind;
use crate::cli::Driver;
use crate::rust_driver;
use crate::vfio_user;
use crate::{apt, checks, guest, kernel, qemu, vm};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

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
        crate::cli::Variant::Guest => "initramfs.cpio",
        crate::cli::Variant::Debug => "initramfs-debug.cpio",
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
pub fn build_parts(
    variant: crate::cli::Variant,
) -> Result<(qemu::Tree, kernel::Tree, guest::Binaries)> {
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
    build_all_with(extra, crate::cli::Variant::Guest)
}

/// [`build_all`] with the `variant` kernel.
pub fn build_all_with(extra: &[PathBuf], variant: crate::cli::Variant) -> Result<vm::Vm> {
    let (q, k, g) = build_parts(variant)?;
    vm_of(&q, &k, &g, extra)
}

/// What `run` and `shell` boot: the built VM, the Rust device's servers when `device` asks for
/// them (they run for this boot; the VM reaches them over vfio-user), and the accelerator.
fn prepare(
    extra: &[PathBuf],
    tcg: bool,
    device: DeviceKind,
    variant: crate::cli::Variant,
) -> Result<(vm::Vm, Option<vfio_user::Servers>, vm::Accel)> {
    let vm = build_all_with(extra, variant)?;
    let servers = vfio_user::start_for(device, DEVICES)?;
    let vm = vfio_user::vm_for(servers.as_ref(), &vm);
    let accel = if tcg { vm::Accel::Tcg } else { vm.probe() };
    Ok((vm, servers, accel))
}

/// `cargo xtask run`: what a user wants to see first.
pub fn main_job(
    extra: &[PathBuf],
    tcg: bool,
    device: DeviceKind,
    driver: Driver,
    variant: crate::cli::Variant,
) -> Result<()> {
    let (vm, servers, accel) = prepare(extra, tcg, device, variant)?;
    let run = vm.boot(
        accel,
        &vm::Boot::new("run", Duration::from_secs(300))
            .echo()
            .driver(driver),
    )?;
    println!("\n--- host verdict (accelerator: {}) ---", run.accel.name());
    let mut bad = 0;
    let mut report = |name: &str, r: Result<String>| match r {
        Ok(s) => println!("ok   {name}: {s}"),
        Err(e) => {
            bad += 1;
            println!("FAIL {name}: {e:#}");
        }
    };
    let get = |k: &str| run.step(k);
    report("pci", checks::pci(&get("pci").0, DEVICES));
    report(
        "bound driver",
        rust_driver::check_bound(&get("bound").0, driver, DEVICES),
    );
    report(
        "driver self-test",
        checks::selftest(&get("selftest").0, DEVICES),
    );
    let (t, rc) = get("rawmmio");
    report("raw MMIO (devmem)", checks::raw_mmio(&t, rc));
    let (t, rc) = get("my-app");
    report("seed app", checks::app_output(&t, rc, 0));
    let (t, rc) = get("demo");
    report("my-rng demo", checks::app_output(&t, rc, 0));
    if let Some(s) = servers {
        report("Rust device servers", s.stop());
    }
    if bad > 0 {
        bail!("{bad} check(s) failed");
    }
    Ok(())
}

/// `cargo xtask shell`: an interactive guest.
pub fn shell(
    extra: &[PathBuf],
    tcg: bool,
    device: DeviceKind,
    driver: Driver,
    variant: crate::cli::Variant,
) -> Result<()> {
    // The servers (if any) must outlive the shell.
    let (vm, _servers, accel) = prepare(extra, tcg, device, variant)?;
    vm.shell(accel, driver)
}
