//! QEMU's own generic qtests, run against the build that contains my_rng: device-introspect-test
//! instantiates and introspects every device type the binary has (ours included), qom-test
//! walks the QOM tree of every machine, test-hmp runs HMP commands on every machine. They are
//! upstream's tests, built in the same build tree; a failure or a skipped case fails the check.

use crate::qemu::{self, Tree};
use crate::util::step;
use anyhow::{ensure, Result};
use std::time::Duration;

pub struct Generic {
    /// The ninja target is `tests/qtest/<name>`.
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// What the check's line calls it.
    pub label: &'static str,
    /// Measured on 2 cores with two TCG guests running beside: device-introspect-test 137 s,
    /// qom-test 2 s, test-hmp 3 s; the limits leave room for a slower machine.
    pub limit: Duration,
}

/// `-m thorough` makes device-introspect-test introspect every device on every (current)
/// machine, with and without -nodefaults, instead of on `-M none` only. qom-test and
/// test-hmp run in their default mode: every machine, without its older versioned copies
/// (`-m slow` would add the dozens of pc-*-N.M versions; QEMU's meson gives qom-test 900 s).
pub const TESTS: &[Generic] = &[
    Generic {
        name: "device-introspect-test",
        args: &["-m", "thorough"],
        label: "QEMU generic qtest: device-introspect-test -m thorough",
        limit: Duration::from_secs(900),
    },
    Generic {
        name: "qom-test",
        args: &[],
        label: "QEMU generic qtest: qom-test",
        limit: Duration::from_secs(300),
    },
    Generic {
        name: "test-hmp",
        args: &[],
        label: "QEMU generic qtest: test-hmp",
        limit: Duration::from_secs(300),
    },
];

/// Builds the generic tests' binaries (incremental: libqtest and libqos are shared with
/// my-rng-test).
pub fn build(t: &Tree) -> Result<()> {
    let targets: Vec<String> = TESTS
        .iter()
        .map(|g| format!("tests/qtest/{}", g.name))
        .collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    qemu::ninja(t, &targets, "QEMU's generic qtests")
}

/// Runs one generic test; returns its summary line.
pub fn run(t: &Tree, g: &Generic) -> Result<String> {
    step(&format!(
        "Running {}",
        [g.name]
            .iter()
            .chain(g.args)
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let r = qemu::run_tap(t, g.name, g.args, g.limit)?;
    let mut detail = format!("{} cases passed in {} s", r.passed, r.secs);
    if g.name == "device-introspect-test" {
        // The point of running it here: our device is among those it instantiated.
        let times = r.stdout.matches("Testing device 'my_rng'").count();
        ensure!(
            times > 0,
            "device-introspect-test never tested my_rng: is the device in this build?"
        );
        detail.push_str(&format!(", my_rng introspected {times} times"));
    }
    Ok(detail)
}

/// Builds and runs all of them; for `cargo xtask qtest`. Every test runs even if one fails.
pub fn run_all(t: &Tree) -> Result<Vec<String>> {
    build(t)?;
    let mut lines = Vec::new();
    let mut failed = 0;
    for g in TESTS {
        match run(t, g) {
            Ok(d) => lines.push(format!("PASS {}: {d}", g.label)),
            Err(e) => {
                failed += 1;
                lines.push(format!("FAIL {}: {e:#}", g.label));
            }
        }
    }
    ensure!(failed == 0, "{}", lines.join("\n"));
    Ok(lines)
}
