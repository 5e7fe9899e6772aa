//! The names of the steps the guest's /init frames with BEGIN/END markers; the host finds a
//! step's output and exit code by them.

crate::names! {
    /// Every fixed step name, as (constant name, step).
    ALL;
    /// The my_rng PCI functions (sysfs).
    PCI = "pci";
    /// The driver each function is bound to.
    BOUND = "bound";
    /// The probe self-test's kernel lines.
    SELFTEST = "selftest";
    /// The seed's boot test by hand through /dev/mem.
    RAWMMIO = "rawmmio";
    /// The seed's C app.
    MY_APP = "my-app";
    /// The seed's C app after the Rust module's reload.
    MY_APP_RELOADED = "my-app-reloaded";
    /// `my-rng demo`.
    DEMO = "demo";
    /// The in-guest e2e program.
    E2E = "e2e";
    /// The e2e program's DMA vector test alone.
    E2E_DMA = "e2e-dma";
    /// The kernel log.
    DMESG = "dmesg";
    /// A module's insmod.
    INSMOD = "insmod";
    /// The probe lines that name the completion interrupt.
    IRQ = "irq";
    /// The Rust module's unload and reload.
    RELOAD = "reload";
    /// `my-rng bench --json`.
    BENCH = "bench";
    /// The bench rows on the Rust device.
    BENCH_RUST_DEVICE = "bench-rust-device";
    /// The bench rows with the Rust driver.
    BENCH_RUST_DRIVER = "bench-rust-driver";
    /// The devices moved to the Rust driver in the bench boot.
    RUST_DRIVER = "rust-driver";
    /// The kernel release.
    UNAME = "uname";
    /// The stress tool's worker processes.
    STRESS = "stress";
    /// The ioctl/read fuzzer.
    FUZZ = "fuzz";
    /// The users during hot-unplug cycles.
    HOTPLUG = "hotplug";
    /// How many probe self-tests passed.
    SELFTESTS = "selftests";
    /// The seeded streams during migrations.
    MIGRATE = "migrate";
    /// The memory map race.
    RACE = "race";
    /// Prefix: one per extra user program, `user:<file>`.
    USER_PREFIX = "user:";
    /// Prefix: dieharder on one algorithm, `stats-<alg>`.
    STATS_PREFIX = "stats-";
    /// Prefix: FIPS 140-2 tests on one source, `rngtest-<src>`.
    RNGTEST_PREFIX = "rngtest-";
}

/// The step of the extra user program `file`.
pub fn user(file: impl std::fmt::Display) -> String {
    format!("{USER_PREFIX}{file}")
}

/// The stats boot's step for algorithm `alg`.
pub fn stats(alg: impl std::fmt::Display) -> String {
    format!("{STATS_PREFIX}{alg}")
}

/// The FIPS 140-2 step for source `src` (hwrng or an algorithm).
pub fn rngtest(src: impl std::fmt::Display) -> String {
    format!("{RNGTEST_PREFIX}{src}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_one_word() {
        let names: std::collections::BTreeSet<_> = ALL.iter().map(|(_, s)| *s).collect();
        assert_eq!(names.len(), ALL.len());
        // A step name is the rest of the BEGIN line: no blanks.
        assert!(ALL.iter().all(|(_, s)| !s.contains(char::is_whitespace)));
    }

    #[test]
    fn composed_names() {
        // Names seen in the serial logs of earlier runs.
        assert_eq!(rngtest("chacha20"), "rngtest-chacha20");
        assert_eq!(stats("xoshiro256pp"), "stats-xoshiro256pp");
        assert_eq!(user("hello"), "user:hello");
    }
}
