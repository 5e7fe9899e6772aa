//! The boot modes: what the guest's /init does, chosen by `MYRNG_MODE=` on the kernel command
//! line.

use std::fmt;
use std::str::FromStr;

/// The kernel command-line parameter that names the mode.
pub const VAR: &str = "MYRNG_MODE";

/// One boot mode of the guest's /init.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Prints the probe marker and ends (is KVM usable?).
    Probe,
    /// An interactive shell on the console.
    Shell,
    /// `my-rng bench --json`.
    Bench,
    /// dieharder on the device's bytes.
    Stats,
    /// my_rng.ko loaded by hand.
    Module,
    /// my_rng_rust.ko loaded by hand, unloaded and loaded again.
    RustModule,
    /// The debug kernel's stress and fuzz runs.
    Stress,
    /// The users while the host unplugs and plugs a device.
    Hotplug,
    /// Seeded streams read while the host migrates the VM.
    Migrate,
    /// The memory map race of `cargo xtask repro unplug-race`.
    Race,
    /// The seed's checks and the e2e, rngtest and kernel-log steps.
    Test,
    /// The seed's checks only (`cargo xtask run`).
    Run,
}

impl Mode {
    pub const ALL: [Mode; 12] = [
        Mode::Probe,
        Mode::Shell,
        Mode::Bench,
        Mode::Stats,
        Mode::Module,
        Mode::RustModule,
        Mode::Stress,
        Mode::Hotplug,
        Mode::Migrate,
        Mode::Race,
        Mode::Test,
        Mode::Run,
    ];

    /// The name on the kernel command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Probe => "probe",
            Mode::Shell => "shell",
            Mode::Bench => "bench",
            Mode::Stats => "stats",
            Mode::Module => "module",
            Mode::RustModule => "rust-module",
            Mode::Stress => "stress",
            Mode::Hotplug => "hotplug",
            Mode::Migrate => "migrate",
            Mode::Race => "race",
            Mode::Test => "test",
            Mode::Run => "run",
        }
    }

    /// The kernel command-line word, `MYRNG_MODE=<name>`.
    pub fn cmdline(self) -> String {
        format!("{VAR}={self}")
    }

    /// The shell variable that holds the name in protocol.sh: `MODE_RUST_MODULE`.
    pub fn shell_var(self) -> String {
        format!("MODE_{}", self.as_str().to_uppercase().replace('-', "_"))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown boot mode `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
        }
        assert!("rust_module".parse::<Mode>().is_err());
        assert!("".parse::<Mode>().is_err());
    }

    #[test]
    fn names_unique() {
        let names: std::collections::BTreeSet<_> = Mode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names.len(), Mode::ALL.len());
    }

    #[test]
    fn cmdline_and_shell_names() {
        // The words the host wrote before this crate existed.
        assert_eq!(Mode::RustModule.cmdline(), "MYRNG_MODE=rust-module");
        assert_eq!(Mode::Test.cmdline(), "MYRNG_MODE=test");
        assert_eq!(Mode::RustModule.shell_var(), "MODE_RUST_MODULE");
    }
}
