//! `cargo xtask run` and `shell`: build what a boot needs (boot/parts.rs), boot it, judge it.

use crate::cli::{DeviceKind, Driver};
use crate::vfio_user;
use crate::{checks, parts, vm};
use anyhow::{bail, Result};
use my_rng_protocol::{step, Mode};
use std::path::PathBuf;
use std::time::Duration;

/// What `run` and `shell` boot: the built VM, the Rust device's servers when `device` asks for
/// them (they run for this boot; the VM reaches them over vfio-user), and the accelerator.
fn prepare(
    extra: &[PathBuf],
    tcg: bool,
    device: DeviceKind,
    variant: crate::cli::Variant,
) -> Result<(vm::Vm, Option<vfio_user::Servers>, vm::Accel)> {
    let vm = parts::build_all_with(extra, variant)?;
    let servers = vfio_user::start_for(device, parts::DEVICES)?;
    let vm = parts::vm_for(servers.as_ref(), &vm);
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
        &vm::Boot::new(Mode::Run, Duration::from_secs(300))
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
    report("pci", checks::pci(&get(step::PCI).0, parts::DEVICES));
    report(
        "bound driver",
        checks::check_bound(&get(step::BOUND).0, driver, parts::DEVICES),
    );
    report(
        "driver self-test",
        checks::selftest(&get(step::SELFTEST).0, parts::DEVICES),
    );
    let (t, rc) = get(step::RAWMMIO);
    report("raw MMIO (devmem)", checks::raw_mmio(&t, rc));
    let (t, rc) = get(step::MY_APP);
    report("seed app", checks::app_output(&t, rc, 0));
    let (t, rc) = get(step::DEMO);
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
