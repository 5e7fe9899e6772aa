//! Host-side verdicts on what the guest printed. Expected values always come from the shared
//! vectors (checked against glibc itself), never from the code under test.

use crate::cli::Driver;
use anyhow::{bail, ensure, Context, Result};
use my_rng_protocol::e2e;
use my_rng_protocol::record::{Record, RESULT};
use my_rng_spec::{vectors, Algorithm};
use std::collections::BTreeMap;

/// The seed document's two rounds of five numbers for `seed`, derived from the glibc vectors.
pub fn expected_rounds(seed: u32) -> Result<Vec<String>> {
    let block = vectors::lookup(Algorithm::Glibc, seed, 32)
        .with_context(|| format!("no glibc vector for seed {seed:#x}"))?;
    let mut lines = Vec::new();
    for round in 0..2 {
        for (j, v) in block.values.iter().take(5).enumerate() {
            lines.push(format!("Round {round} number {j}: {v}"));
        }
    }
    Ok(lines)
}

/// Kernel console lines ("[    1.234] ...") may interleave with a program's output.
fn program_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .collect()
}

/// A user-space program printing the seed's table (the C app, `my-rng demo`): exact lines.
pub fn app_output(text: &str, rc: i32, seed: u32) -> Result<String> {
    let want = expected_rounds(seed)?;
    let got = program_lines(text);
    ensure!(rc == 0, "exit code {rc}; output:\n{text}");
    ensure!(
        got == want,
        "output differs from the glibc vectors for seed {seed:#x}:\n got: {got:?}\nwant: {want:?}"
    );
    Ok(format!(
        "2 identical rounds, seed {seed:#x}: {}",
        want[..5]
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// The driver's boot-time self-test (from dmesg): one seed block per probed device, each with
/// two identical rounds for seed 0x42.
pub fn selftest(text: &str, devices: usize) -> Result<String> {
    let want = expected_rounds(0x42)?;
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut open = false;
    for l in text.lines().map(str::trim_end) {
        match l {
            "BEGIN MY-RNG TEST" => {
                ensure!(!open, "BEGIN MY-RNG TEST inside another block");
                blocks.push(Vec::new());
                open = true;
            }
            "END MY-RNG TEST" => {
                ensure!(open, "END MY-RNG TEST without BEGIN");
                open = false;
            }
            l if open && l.starts_with("Round ") => blocks.last_mut().unwrap().push(l),
            _ => {}
        }
    }
    ensure!(!open, "a self-test block has no END MY-RNG TEST line");
    ensure!(
        blocks.len() == devices,
        "{} self-test block(s) in the kernel log, want one per device ({devices})",
        blocks.len()
    );
    for (i, b) in blocks.iter().enumerate() {
        ensure!(
            *b == want,
            "self-test block {i} differs:\n got: {b:?}\nwant: {want:?}"
        );
    }
    Ok(format!(
        "{devices} BEGIN/END block(s), each with 2 identical rounds for seed 0x42"
    ))
}

/// Raw MMIO from the guest (devmem): seed 0x42 at BAR0+4, then five reads of BAR0.
pub fn raw_mmio(text: &str, rc: i32) -> Result<String> {
    ensure!(rc == 0, "exit code {rc}: {text}");
    let got: Vec<u64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let block = vectors::lookup(Algorithm::Glibc, 0x42, 32).context("no glibc vector")?;
    ensure!(
        got == block.values[..5],
        "BAR0 reads after seeding 0x42: {got:?}, want {:?}",
        &block.values[..5]
    );
    Ok(format!("BAR0 after SEED=0x42: {got:?}"))
}

/// One line per my_rng function: `addr vendor device class revision bar0-start bar0-end`,
/// held against the spec crate's PCI identity.
pub fn pci(text: &str, devices: usize) -> Result<String> {
    use my_rng_spec::regs::{BAR_SIZE, PCI_CLASS, PCI_DEVICE_ID, PCI_REVISION, PCI_VENDOR_ID};
    let lines = program_lines(text);
    ensure!(
        lines.len() == devices,
        "expected {devices} my_rng PCI functions, found {}: {text}",
        lines.len()
    );
    // As sysfs prints them; its class file has the programming interface (0) below.
    let want = [
        format!("{PCI_VENDOR_ID:#06x}"),
        format!("{PCI_DEVICE_ID:#06x}"),
        format!("{:#08x}", u32::from(PCI_CLASS) << 8),
        format!("{PCI_REVISION:#04x}"),
    ];
    let mut out = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        ensure!(f.len() == 7, "bad line `{l}`");
        for (i, (got, want)) in f[1..5].iter().zip(&want).enumerate() {
            let what = ["vendor", "device", "class", "revision"][i];
            ensure!(got == want, "{what} {got} (want {want}) in `{l}`");
        }
        let start = u64::from_str_radix(f[5].trim_start_matches("0x"), 16)?;
        let end = u64::from_str_radix(f[6].trim_start_matches("0x"), 16)?;
        ensure!(
            end + 1 - start == BAR_SIZE,
            "BAR0 size {} (want {BAR_SIZE})",
            end + 1 - start
        );
        out.push(format!("{} BAR0 {start:#x}", f[0]));
    }
    Ok(format!(
        "{PCI_VENDOR_ID:04x}:{PCI_DEVICE_ID:04x} rev {PCI_REVISION:#04x} class {PCI_CLASS:#06x}, \
         {} KiB BAR0: {}",
        BAR_SIZE / 1024,
        out.join(", ")
    ))
}

/// rngtest's verdict on 100 FIPS 140-2 blocks: every block tested, at most `max_failures`
/// failing (a good source fails about one block in a thousand, so a non-deterministic one
/// gets a little room; a seeded algorithm gets none: its result never changes).
pub fn rngtest(text: &str, max_failures: u64) -> Result<String> {
    let count = |what: &str| -> Result<u64> {
        let key = format!("FIPS 140-2 {what}: ");
        text.lines()
            .find_map(|l| l.split_once(&key).map(|(_, n)| n.trim().parse::<u64>()))
            .with_context(|| format!("no `{key}` line in rngtest's output:\n{text}"))?
            .with_context(|| format!("bad `{key}` count"))
    };
    let (ok, bad) = (count("successes")?, count("failures")?);
    ensure!(
        ok + bad == 100,
        "rngtest tested {} blocks, want 100:\n{text}",
        ok + bad
    );
    ensure!(
        bad <= max_failures,
        "{bad} of 100 FIPS 140-2 blocks failed (at most {max_failures} allowed):\n{text}"
    );
    Ok(format!("FIPS 140-2: {ok} of 100 blocks passed"))
}

/// The in-guest e2e program's verdict: its closing `N passed, M failed` line.
pub fn e2e(text: &str, rc: i32) -> Result<(String, usize, usize)> {
    let last = e2e::Summary::find_last(text)
        .context("the e2e program printed no `N passed, M failed` line")?;
    for l in text.lines().filter(|l| l.starts_with(e2e::NOT_OK)) {
        eprintln!("    guest: {l}");
    }
    if last.failed != 0 || rc != 0 || last.passed == 0 {
        bail!("guest e2e: {last} (exit {rc})");
    }
    let what = format!("{} in-guest tests passed", last.passed);
    Ok((what, last.passed, last.failed))
}

/// No kernel warning, bug or oops anywhere in the boot.
/// The kind of completion interrupt (`MSI` or `INTx`) each of `devices` devices bound to
/// `driver` announced in its probe line (the C driver: "..., MSI interrupt"; the Rust driver:
/// "read by DMA (MSI)").
pub fn interrupt_kind(log: &str, driver: &str, kind: &str, devices: usize) -> Result<String> {
    let prefix = format!("{driver} 0000:");
    let probes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&prefix) && (l.contains("interrupt") || l.contains("read by")))
        .collect();
    ensure!(
        probes.len() >= devices,
        "{} probe line(s) naming the interrupt, want {devices}",
        probes.len()
    );
    let want = [format!("{kind} interrupt"), format!("({kind})")];
    if let Some(bad) = probes
        .iter()
        .find(|l| !want.iter().any(|w| l.contains(w.as_str())))
    {
        bail!("not {kind}: {}", bad.trim());
    }
    Ok(format!("{} probe(s) of {driver} use {kind}", probes.len()))
}

pub fn kernel_log_clean(log: &str) -> Result<String> {
    const BAD: &[&str] = &[
        "WARNING:",
        "BUG:",
        "Oops",
        "Call Trace",
        "Kernel panic",
        "general protection fault",
    ];
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| BAD.iter().any(|b| l.contains(b)))
        .collect();
    ensure!(
        bad.is_empty(),
        "kernel log has problems:\n{}",
        bad.join("\n")
    );
    Ok("no WARNING/BUG/Oops in the kernel log".into())
}

/// Which driver the guest's `bound` step found on each my_rng device (lines `<PCI address>
/// <driver>`; other lines are ignored): all of them `driver`.
pub fn check_bound(text: &str, driver: Driver, devices: usize) -> Result<String> {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("0000:")).collect();
    ensure!(
        lines.len() == devices,
        "{} my_rng device(s) listed, want {devices}: {text:?}",
        lines.len()
    );
    for l in &lines {
        let bound = l.split_whitespace().nth(1).unwrap_or("none");
        ensure!(
            bound == driver.pci_name(),
            "{l}: bound to {bound}, want {}",
            driver.pci_name()
        );
    }
    Ok(format!(
        "{devices} device(s) bound to {} (sysfs)",
        driver.pci_name()
    ))
}

/// The `key=value` pairs of the last `@@RESULT <kind>` record in `text`.
pub fn result_line(text: &str, kind: &str) -> Result<BTreeMap<String, String>> {
    Record::find_last(text, kind).with_context(|| format!("no `{RESULT} {kind}` line"))
}

/// A number from a result line.
pub fn num(r: &BTreeMap<String, String>, key: &str) -> Result<u64> {
    r.get(key)
        .with_context(|| format!("result line lacks {key}"))?
        .parse()
        .with_context(|| format!("{key} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_kind_reads_both_drivers_probe_lines() {
        let c = "[ 0.8] my_rng 0000:00:03.0: /dev/my_rng_driver: DMA, 512 segments and \
                 1048576 bytes per command, INTx interrupt\n\
                 [ 0.9] my_rng 0000:00:04.0: /dev/my_rng_driver1: DMA, 512 segments and \
                 1048576 bytes per command, MSI interrupt\n";
        assert!(interrupt_kind(c, "my_rng", "INTx", 2).is_err());
        assert!(interrupt_kind(c, "my_rng", "INTx", 1).is_err());
        let rust = "[ 0.8] my_rng_rust 0000:00:03.0: /dev/my_rng_driver: ABI 2.1, features \
                    0x1f, algorithms 0xf, hwrng my_rng, read by DMA (INTx)\n";
        assert!(interrupt_kind(rust, "my_rng_rust", "INTx", 1).is_ok());
        assert!(interrupt_kind(rust, "my_rng_rust", "MSI", 1).is_err());
        // The Rust driver's line is not the C driver's.
        assert!(interrupt_kind(rust, "my_rng", "INTx", 1).is_err());
        assert!(interrupt_kind(rust, "my_rng_rust", "INTx", 2).is_err());
    }

    #[test]
    fn rounds_come_from_vectors() {
        let r = expected_rounds(0x42).unwrap();
        assert_eq!(r.len(), 10);
        // The seed document's printed table.
        assert_eq!(r[0], "Round 0 number 0: 286129175");
        assert_eq!(r[9], "Round 1 number 4: 1335014133");
    }

    #[test]
    fn selftest_blocks() {
        let rounds = expected_rounds(0x42).unwrap().join("\n");
        let block = format!("BEGIN MY-RNG TEST\n{rounds}\nEND MY-RNG TEST\n");
        assert!(selftest(&block, 1).is_ok());
        assert!(selftest(&block.repeat(2), 2).is_ok());
        assert!(selftest(&block, 2).is_err());
        assert!(selftest(&block.replace("971802288", "1"), 1).is_err());
        assert!(selftest(&block.replace("END MY-RNG TEST\n", ""), 1).is_err());
    }

    #[test]
    fn app_output_is_strict() {
        let good = expected_rounds(0).unwrap().join("\n");
        assert!(app_output(&good, 0, 0).is_ok());
        assert!(app_output(&good, 1, 0).is_err());
        assert!(app_output(&good.replace("846930886", "846930887"), 0, 0).is_err());
        let kernel_noise = format!("[    1.0] random: crng init done\n{good}");
        assert!(app_output(&kernel_noise, 0, 0).is_ok());
    }

    #[test]
    fn rngtest_verdict() {
        let out = |ok, bad| {
            format!("rngtest: FIPS 140-2 successes: {ok}\nrngtest: FIPS 140-2 failures: {bad}\n")
        };
        assert!(rngtest(&out(100, 0), 0).is_ok());
        assert!(rngtest(&out(99, 1), 0).is_err());
        assert!(rngtest(&out(99, 1), 2).is_ok());
        assert!(rngtest(&out(50, 0), 2).is_err());
        assert!(rngtest("rngtest: error reading input\n", 2).is_err());
    }

    #[test]
    fn e2e_verdict() {
        assert!(e2e("ok - a\n1 passed, 0 failed\n", 0).is_ok());
        assert!(e2e("ok - a\nnot ok - b\n1 passed, 1 failed\n", 1).is_err());
        assert!(e2e("0 passed, 0 failed\n", 0).is_err());
        assert!(e2e("crashed\n", 0).is_err());
    }

    #[test]
    fn pci_line() {
        let l = "0000:00:03.0 0x1234 0xcafe 0x00ff00 0x10 0x00000000febf1000 0x00000000febf1fff\n";
        // The seed's identity, written out here as the exercise states it.
        assert_eq!(
            pci(l, 1).unwrap(),
            "1234:cafe rev 0x10 class 0x00ff, 4 KiB BAR0: 0000:00:03.0 BAR0 0xfebf1000"
        );
        assert!(pci(l, 2).is_err());
        let e = pci(&l.replace("0x10 ", "0x11 "), 1)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("revision 0x11 (want 0x10)"), "{e}");
        assert!(pci(&l.replace("0xcafe", "0xcaff"), 1).is_err());
        assert!(pci(&l.replace("0x00ff00", "0x00ff01"), 1).is_err());
    }

    #[test]
    fn log_hygiene() {
        assert!(kernel_log_clean("[ 1.0] ok\n").is_ok());
        assert!(kernel_log_clean("[ 1.0] WARNING: CPU: 0 PID: 1 at x\n").is_err());
    }

    #[test]
    fn bound_driver_is_checked() {
        let t = "0000:00:03.0 my_rng_rust\n0000:00:04.0 my_rng_rust\n";
        assert!(check_bound(t, Driver::Rust, 2).is_ok());
        assert!(check_bound(t, Driver::C, 2).is_err());
        assert!(check_bound(t, Driver::Rust, 3).is_err());
        assert!(check_bound("0000:00:03.0 none\n", Driver::Rust, 1).is_err());
        let noisy = format!("rmmod: can't unload module 'my_rng_rust'\n{t}");
        assert!(check_bound(&noisy, Driver::Rust, 2).is_ok());
    }
}
