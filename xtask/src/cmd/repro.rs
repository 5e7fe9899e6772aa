//! `cargo xtask repro unplug-race`: shows the QEMU 10.1+ TCG race behind the hot-unplug
//! stage's rare stable-device failures (qemu/fixes/README.md), on stock QEMU or on the
//! project's fixed build, in minutes.
//!
//! The guest (`my-rng-stress race`, the debug kernel, 2 vCPUs under TCG) toggles the memory
//! decoding of the second device, its BAR moved below the stable device's, from one vCPU, so
//! each toggle shifts the stable device's section index; the other vCPU writes SEED and reads
//! RNG on the stable device's BAR one access at a time and checks every word against the
//! vectors. The host traces the IOAPIC (0xfec00000, the section above the stable device's
//! BAR): Linux never reads its offset 0 nor writes its offset 4, the stable device's RNG and
//! SEED offsets, so each such trace line is a stray access. A busy host thread (on by
//! default) keeps the vCPU threads waiting for a core, as on the loaded host where the
//! failures were seen. Bounded by the toggle count and the time.

use crate::checks::{num, result_line};
use crate::cli::Flavour;
use crate::qemu;
use crate::util::{note, out_dir, step};
use crate::{apt, guest, kernel, parts, vm};
use anyhow::{bail, Result};
use my_rng_protocol::{param, record, step, Mode};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Options {
    pub qemu: Flavour,
    pub toggles: u64,
    /// The guest's time limit, seconds.
    pub time: u64,
    /// Largest gap between the guest's accesses, spin-loop iterations.
    pub gap: u64,
    /// Host threads kept spinning during the run.
    pub busy: u32,
}

/// The figures of one run.
pub struct Outcome {
    pub toggles: u64,
    pub accesses: u64,
    pub misdirected: u64,
    pub ioapic_reads: usize,
    pub ioapic_writes: usize,
    /// Lines of the detector (`--qemu detect` only).
    pub detected: usize,
    pub seconds: u64,
}

/// Host threads spinning until dropped: `n` cores' worth of load.
struct Busy(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Busy {
    fn start(n: u32) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !s.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
            })
            .collect();
        Busy(stop, threads)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for h in self.1.drain(..) {
            let _ = h.join();
        }
    }
}

/// Stray accesses in the IOAPIC's trace: reads at offset 0 and writes at offset 4.
fn ioapic_strays(trace: &str) -> (usize, usize) {
    let reads = trace
        .lines()
        .filter(|l| l.contains("ioapic mem read addr 0x0 "))
        .count();
    let writes = trace
        .lines()
        .filter(|l| l.contains("ioapic mem write addr 0x4 "))
        .count();
    (reads, writes)
}

fn name(f: Flavour) -> &'static str {
    match f {
        Flavour::Stock => "stock",
        Flavour::Fixed => "fixed",
        Flavour::Detect => "detect",
    }
}

/// The detector's lines (qemu/fixes/detect/): accesses stock QEMU would have misdirected.
fn detections(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("tlb-section-detect: "))
        .collect()
}

/// The reproducer's VM on `o.qemu`'s QEMU, tracing the IOAPIC's accesses into the returned
/// file; the QEMU tree too (its label).
fn race_vm(o: &Options) -> Result<(vm::Vm, qemu::Tree, PathBuf)> {
    apt::ensure_host_packages()?;
    kernel::check_rustc()?;
    let q = qemu::build_flavour(o.qemu)?;
    // The debug kernel: it has ACPI, so both vCPUs come up (the plain guest kernel brings up
    // one, and one vCPU cannot race with itself); it is also the hot-unplug stage's kernel.
    let k = kernel::build_variant(crate::cli::Variant::Debug)?;
    let g = guest::build()?;
    let mut vm = parts::vm_of(&q, &k, &g, &[])?;
    let trace = out_dir().join(format!("race-{}-ioapic.log", name(o.qemu)));
    let _ = fs::remove_file(&trace);
    vm.extra_args.extend([
        "-d".to_string(),
        "trace:ioapic_mem_*".to_string(),
        "-D".to_string(),
        trace.display().to_string(),
    ]);
    Ok((vm, q, trace))
}

/// Builds what the boot needs and runs it once; the figures.
pub fn unplug_race(o: &Options) -> Result<Outcome> {
    let (vm, q, trace) = race_vm(o)?;
    step(&format!(
        "Reproducer on {} QEMU ({}): up to {} toggles in {} s{}",
        name(o.qemu),
        q.label,
        o.toggles,
        o.time,
        match o.busy {
            0 => String::new(),
            n => format!(", {n} host thread(s) kept busy"),
        }
    ));
    let b = vm::Boot::new(Mode::Race, Duration::from_secs(o.time + 300))
        .log_name(&format!("race-{}", name(o.qemu)))
        .append(&param::word(param::TOGGLES, o.toggles))
        .append(&param::word(param::SECONDS, o.time))
        .append(&param::word(param::GAP, o.gap));
    let busy = Busy::start(o.busy);
    // The race is TCG's: no KVM probe.
    let r = vm.boot(vm::Accel::Tcg, &b);
    drop(busy);
    let r = r?;
    let (text, rc) = r.step(step::RACE);
    for l in text
        .lines()
        .filter(|l| l.starts_with("race: batch"))
        .take(5)
    {
        note(l);
    }
    let res = result_line(&text, record::RACE)?;
    if rc != 0 {
        bail!("the guest's race step failed (exit {rc}): {}", text.trim());
    }
    let (ioapic_reads, ioapic_writes) = ioapic_strays(&fs::read_to_string(&trace)?);
    let detected = detections(&r.log);
    for l in detected.iter().take(5) {
        note(l);
    }
    Ok(Outcome {
        toggles: num(&res, "toggles")?,
        accesses: num(&res, "accesses")?,
        misdirected: num(&res, "misdirected")?,
        ioapic_reads,
        ioapic_writes,
        detected: detected.len(),
        seconds: num(&res, "seconds")?,
    })
}

/// The command: one run, its figures, and the verdict for this QEMU: stock must show the
/// race (at least one access gone astray), fixed must show none.
pub fn main(o: &Options) -> Result<()> {
    let out = unplug_race(o)?;
    println!(
        "unplug-race on {} QEMU: {} toggles in {} s, {} accesses to the stable device, {} went \
         elsewhere (seen by the guest); IOAPIC trace: {} reads at offset 0, {} writes at \
         offset 4",
        name(o.qemu),
        out.toggles,
        out.seconds,
        out.accesses,
        out.misdirected,
        out.ioapic_reads,
        out.ioapic_writes
    );
    if o.qemu == Flavour::Detect {
        println!(
            "detector: {} accesses that stock QEMU would have sent elsewhere",
            out.detected
        );
    }
    let strays = out.misdirected + (out.ioapic_reads + out.ioapic_writes) as u64;
    match o.qemu {
        Flavour::Stock if strays == 0 => {
            bail!("the race did not show in this run: try more --toggles or --time")
        }
        Flavour::Fixed | Flavour::Detect if strays > 0 => {
            bail!("accesses went astray on the fixed QEMU")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioapic_strays_are_counted() {
        let t = "1@2.0:ioapic_mem_write ioapic mem write addr 0x0 regsel: 0x22 size 0x4 val 0x22\n\
                 1@2.1:ioapic_mem_read ioapic mem read addr 0x10 regsel: 0x22 size 0x4 retval 0x1\n\
                 1@2.2:ioapic_mem_read ioapic mem read addr 0x0 regsel: 0x22 size 0x4 retval 0x22\n\
                 1@2.3:ioapic_mem_write ioapic mem write addr 0x4 regsel: 0x22 size 0x4 val 0x42\n\
                 1@2.4:ioapic_mem_write ioapic mem write addr 0x40 regsel: 0x22 size 0x4 val 0x9\n";
        assert_eq!(ioapic_strays(t), (1, 1));
    }
}
