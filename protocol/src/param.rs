//! The kernel command-line parameters (besides the mode) that size or shape a boot; /init reads
//! them as environment variables. protocol.sh copies each into `P_<NAME>` so that /init never
//! spells a parameter's name.

crate::names! {
    /// Every parameter, as (constant name, parameter).
    ALL;
    /// `smoke`: a few calls per bench row.
    BENCH = "MYRNG_BENCH";
    /// PCI address of the Rust device, measured again in the bench boot.
    BENCH_TWIN = "MYRNG_BENCH_TWIN";
    /// The device's bench rows (comma-separated ids) for the twin and Rust driver runs.
    BENCH_ROWS = "MYRNG_BENCH_ROWS";
    /// `1`: the bench rows again with the Rust driver bound.
    BENCH_RUST_DRIVER = "MYRNG_BENCH_RUST_DRIVER";
    /// The stats boot's algorithms, comma-separated.
    STATS_ALGS = "MYRNG_STATS_ALGS";
    /// The stats boot's dieharder test numbers, comma-separated.
    STATS_TESTS = "MYRNG_STATS_TESTS";
    /// The stats boot's seed.
    STATS_SEED = "MYRNG_STATS_SEED";
    /// Operations per stress worker.
    OPS = "MYRNG_OPS";
    /// Fuzzer calls.
    CALLS = "MYRNG_CALLS";
    /// The guest's time limit or window of a stress, hotplug, migrate or race run.
    SECONDS = "MYRNG_SECONDS";
    /// Hot-unplug cycles.
    CYCLES = "MYRNG_CYCLES";
    /// The race's memory map toggles.
    TOGGLES = "MYRNG_TOGGLES";
    /// The race's gap between toggles.
    GAP = "MYRNG_GAP";
}

/// The kernel command-line word `<param>=<value>`.
pub fn word(param: &str, value: impl std::fmt::Display) -> String {
    format!("{param}={value}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn words() {
        assert_eq!(super::word(super::OPS, 12500), "MYRNG_OPS=12500");
        assert!(super::ALL.iter().all(|(_, p)| p.starts_with("MYRNG_")));
    }
}
