//! The reliability suite's guest parts: the debug kernel (KASAN, lockdep, UBSAN, KFENCE; see
//! linux/config/debug/), a stress-and-fuzz boot and a hot-unplug boot on it for each driver.
//! The guest side is `my-rng-stress` (guest/e2e); each of its modes ends with a
//! `@@RESULT <mode> key=value ...` line, whose figures the checks report and judge.

use crate::checks::{self, num, result_line};
use crate::cli::Driver;
use crate::util::socket;
use crate::vm::{self, Control};
use crate::{guest, kernel};
use anyhow::{bail, ensure, Context, Result};
use my_rng_protocol::{marker, param, record, step, Mode};
use serde_json::json;
use std::time::Duration;

/// How much the stress and hot-unplug boots do.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Operations per stress worker process (8 workers).
    pub stress_ops: u64,
    /// Fuzzer calls.
    pub fuzz_calls: u64,
    /// Hot-unplug cycles.
    pub hotplug_cycles: u32,
}

impl Scale {
    /// The suite's default (CI): under TCG with KASAN and lockdep, 8 contending processes
    /// manage about 1,600 operations a second, so the full 8 x 100,000 takes 8 to 11 minutes
    /// per driver; CI runs an eighth of it (the same mix, every kind of operation thousands of
    /// times) to stay within its time budget, and `--full` runs the whole.
    pub const CI: Scale = Scale {
        stress_ops: 12_500,
        fuzz_calls: 100_000,
        hotplug_cycles: 10,
    };
    /// `cargo xtask test --full`: the figures of docs/reliability.md.
    pub const FULL: Scale = Scale {
        stress_ops: 100_000,
        fuzz_calls: 1_000_000,
        hotplug_cycles: 100,
    };

    /// [`Scale::FULL`] or [`Scale::CI`], with the hot-unplug cycles taken from
    /// `MY_RNG_HOTPLUG_CYCLES` when set: long runs outside CI (docs/reliability.md's 1,000
    /// cycles, done in runs of a few hundred) without a stage of their own.
    pub fn pick(full: bool) -> Result<Scale> {
        let mut s = if full { Scale::FULL } else { Scale::CI };
        if let Ok(v) = std::env::var("MY_RNG_HOTPLUG_CYCLES") {
            s.hotplug_cycles = v
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("MY_RNG_HOTPLUG_CYCLES={v}: want a count above 0"))?;
        }
        Ok(s)
    }
}
/// The stress workers' time limit: 8 contending processes do about 1,200 to 1,600 operations a
/// second under TCG with the debug kernel; the limit allows about half that rate. The boot's
/// limit adds the fuzzer and the boot itself.
fn stress_secs(scale: Scale) -> u64 {
    120 + scale.stress_ops * 8 / 600
}
/// A hot-unplug cycle takes about 8 s under TCG with the debug kernel (ACPI eject and rescan,
/// the driver's probe); the limits leave twice that.
const HOTPLUG_CYCLE_SECS: u64 = 15;

/// The debug kernel's VM: `base` with the debug kernel and an initramfs carrying the modules
/// built against it.
pub fn debug_vm(base: &vm::Vm, bins: &guest::Binaries) -> Result<vm::Vm> {
    let k = kernel::build_variant(crate::cli::Variant::Debug)?;
    let initramfs = guest::initramfs_named("initramfs-debug.cpio", bins, Some(&k.module()), &[])?;
    Ok(vm::Vm {
        kernel: k.bzimage(),
        initramfs,
        ..base.clone()
    })
}

/// Kernel reports (KASAN, KFENCE, UBSAN, lockdep, WARN, BUG, hung tasks, RCU stalls) in a
/// kernel log: their header lines.
pub fn kernel_reports(log: &str) -> Vec<String> {
    const HEADERS: &[&str] = &[
        "BUG:",
        "WARNING:",
        "UBSAN:",
        "Oops",
        "Kernel panic",
        "general protection fault",
        "INFO: task",
        "rcu: INFO",
        "detected stall",
        "turning off the locking correctness validator",
        "Call Trace",
    ];
    log.lines()
        .filter(|l| HEADERS.iter().any(|h| l.contains(h)))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Fails if the guest's dmesg step or the console show a kernel report.
pub fn check_reports(run: &vm::Run) -> Result<String> {
    let (dmesg, rc) = run.step(step::DMESG);
    ensure!(
        rc == 0 && !dmesg.is_empty(),
        "no kernel log from the guest (dmesg exit {rc})"
    );
    let mut reports = kernel_reports(&dmesg);
    reports.extend(kernel_reports(&run.log));
    reports.dedup();
    if !reports.is_empty() {
        bail!(
            "{} kernel report line(s): {}",
            reports.len(),
            reports.join(" | ")
        );
    }
    Ok(format!(
        "0 KASAN/KFENCE/UBSAN/lockdep/WARNING/BUG reports in {} kernel log lines",
        dmesg.lines().count()
    ))
}

/// One stress boot: checks and their figures, as (name, result) pairs for the suite.
pub struct StressRun {
    pub run: vm::Run,
}

/// The stress-and-fuzz boot of the debug kernel with `driver` bound.
pub fn stress_boot(
    vm: &vm::Vm,
    accel: vm::Accel,
    driver: Driver,
    scale: Scale,
) -> Result<StressRun> {
    let secs = stress_secs(scale);
    let b = vm::Boot::new(Mode::Stress, Duration::from_secs(2 * secs + 600))
        .driver(driver)
        .log_name(&format!("stress-{}", driver.short()))
        .append(&param::word(param::OPS, scale.stress_ops))
        .append(&param::word(param::CALLS, scale.fuzz_calls))
        .append(&param::word(param::SECONDS, secs));
    let run = vm.boot(accel, &b)?;
    Ok(StressRun { run })
}

impl StressRun {
    pub fn bound(&self, driver: Driver) -> Result<String> {
        checks::check_bound(&self.run.step(step::BOUND).0, driver, crate::parts::DEVICES)
    }

    /// The 8 workers' figures; all operations done, no failure.
    pub fn stress(&self) -> Result<String> {
        let (t, rc) = self.run.step(step::STRESS);
        let r = result_line(&t, record::STRESS)?;
        let (ops, want, failures) = (num(&r, "ops")?, num(&r, "want_ops")?, num(&r, "failures")?);
        let shown: Vec<&str> = t.lines().filter(|l| l.contains("FAIL ")).take(3).collect();
        ensure!(
            rc == 0 && failures == 0 && ops == want,
            "exit {rc}: {ops} of {want} operations, {failures} failure(s): {}",
            shown.join(" | ")
        );
        Ok(format!(
            "{} workers x {} = {ops} operations in {} s: {} ioctls, {} SEED_READs checked against \
             the vectors, {} reads ({} MB), {} partly bad and {} bad buffers, {} hwrng reads, \
             {} reopens, {} read-path switches; 0 failures",
            num(&r, "workers")?,
            want / num(&r, "workers")?.max(1),
            num(&r, "seconds")?,
            num(&r, "ioctls")?,
            num(&r, "seed_reads_checked")?,
            num(&r, "reads")?,
            num(&r, "read_bytes")? / 1_000_000,
            num(&r, "partly_bad")?,
            num(&r, "bad_pointer")?,
            num(&r, "hwrng")?,
            num(&r, "reopen")?,
            num(&r, "path_switch")?,
        ))
    }

    /// The fuzzer's figures; every call made, every invariant held.
    pub fn fuzz(&self) -> Result<String> {
        let (t, rc) = self.run.step(step::FUZZ);
        let r = result_line(&t, record::FUZZ)?;
        let (calls, want, failures) = (
            num(&r, "calls")?,
            num(&r, "want_calls")?,
            num(&r, "failures")?,
        );
        let shown: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .take(3)
            .collect();
        ensure!(
            rc == 0 && failures == 0 && calls == want,
            "exit {rc}: {calls} of {want} calls, {failures} failure(s): {}",
            shown.join(" | ")
        );
        Ok(format!(
            "{calls} calls: {} known ioctls (0 or EFAULT/EINVAL), {} unknown (all ENOTTY), {} \
             reads with random sizes and pointers",
            num(&r, "known_ioctls")?,
            num(&r, "unknown_ioctls")?,
            num(&r, "reads")?
        ))
    }

    pub fn reports(&self) -> Result<String> {
        check_reports(&self.run)
    }
}

/// The hot-unplug boot: the debug kernel with `driver`, the second device (id rng1, 00:04.0)
/// unplugged and plugged `cycles` times over QMP while the guest's users hold it open.
pub fn hotplug_boot(
    vm: &vm::Vm,
    accel: vm::Accel,
    driver: Driver,
    cycles: u32,
) -> Result<(vm::Run, Result<String>)> {
    let sock = socket(&format!("hotplug-{}", driver.short()));
    let _ = std::fs::remove_file(&sock);
    let guest_secs = 120 + HOTPLUG_CYCLE_SECS * u64::from(cycles);
    let b = vm::Boot::new(Mode::Hotplug, Duration::from_secs(guest_secs + 300))
        .driver(driver)
        .log_name(&format!("hotplug-{}", driver.short()))
        .qmp(&sock)
        .device_ids()
        .append(&param::word(param::CYCLES, cycles))
        .append(&param::word(param::SECONDS, guest_secs));
    let control: vm::Controller<'_> = Box::new(move |c: &mut Control| cycle(c, cycles));
    let r = vm.boot_controlled(accel, &b, control);
    let _ = std::fs::remove_file(&sock);
    r
}

/// The host's side of the hot-unplug cycles: waits until the guest has the device bound, then
/// device_del (the guest's ACPI hotplug ejects it: DEVICE_DELETED), and device_add.
fn cycle(c: &mut Control, cycles: u32) -> Result<String> {
    let mut q = c.qmp()?;
    let wait = Duration::from_secs(120);
    for n in 1..=cycles {
        c.wait_line(&marker::hp_up_start(n), wait)?;
        q.execute("device_del", json!({ "id": "rng1" }))?;
        loop {
            let ev = q.wait_event("DEVICE_DELETED", wait)?;
            if ev["data"]["device"] == "rng1" {
                break;
            }
        }
        c.wait_line(&marker::hp_down(n), wait)?;
        q.execute(
            "device_add",
            json!({ "driver": "my_rng", "id": "rng1", "addr": "0x4" }),
        )?;
    }
    c.wait_line(&marker::hp_up_start(cycles + 1), wait)?;
    Ok(format!("{cycles} device_del/device_add cycles over QMP"))
}

/// The hot-unplug boot's checks on what the guest reported.
pub fn hotplug_result(run: &vm::Run, cycles: u32) -> Result<String> {
    let (t, rc) = run.step(step::HOTPLUG);
    let r = result_line(&t, record::HOTPLUG)?;
    let done = num(&r, "cycles")?;
    // The first failures of the stable device, then the end of the step's output.
    let mut shown: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("stable-device failure"))
        .take(3)
        .collect();
    shown.extend(t.lines().rev().take(4));
    ensure!(
        rc == 0 && done == u64::from(cycles),
        "exit {rc}: {done} of {cycles} cycles; {}",
        shown.join(" | ")
    );
    let (selftests, _) = run.step(step::SELFTESTS);
    let passed: u64 = selftests.trim().parse().unwrap_or(0);
    // Both devices at boot, then one per plug.
    let want = u64::from(cycles) + 2;
    ensure!(
        passed == want,
        "{passed} probe self-tests passed, want {want} (2 at boot + 1 per plug)"
    );
    Ok(format!(
        "{done} cycles; users: {} operations, ENODEV seen {} times, reopened {} times, 0 other \
         errors; the other device's vector checked {} times; {passed} self-tests passed",
        num(&r, "ops")?,
        num(&r, "enodev")?,
        num(&r, "reopened")?,
        num(&r, "stable_checks")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_parsed() {
        let t = "worker 1: x\n[ 3.1] noise @@RESULT fuzz calls=5 failures=0\n";
        let r = result_line(t, "fuzz").unwrap();
        assert_eq!(num(&r, "calls").unwrap(), 5);
        assert!(num(&r, "reads").is_err());
        assert!(result_line(t, "stress").is_err());
    }

    #[test]
    fn kernel_reports_are_found() {
        let log = "[ 1.0] kasan: KernelAddressSanitizer initialized (generic)\n\
                   [ 2.0] BUG: KASAN: slab-out-of-bounds in my_rng_read+0x10\n\
                   [ 3.0] UBSAN: array-index-out-of-bounds in drivers/misc/my-rng.c:10:2\n\
                   [ 4.0] WARNING: possible circular locking dependency detected\n\
                   [ 5.0] my_rng 0000:00:03.0: self-test passed\n";
        let r = kernel_reports(log);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(kernel_reports("[ 1.0] kasan: KernelAddressSanitizer initialized\n").is_empty());
    }
}
