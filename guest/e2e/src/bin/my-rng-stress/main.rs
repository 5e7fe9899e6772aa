//! `my-rng-stress`: bounded workloads for the my_rng driver under a debug kernel, run as root
//! in the guest by `cargo xtask test` (see the reliability suite in README.md).
//!
//! - `stress`: worker processes doing mixed operations on two devices (every ioctl, read() of
//!   random sizes into good, partly bad and bad buffers, /dev/hwrng, open/close churn,
//!   algorithm and read-path switches), the deterministic results checked against the vectors;
//! - `fuzz`: random ioctl command numbers, sizes and pointers, random read() sizes and pointers;
//! - `hotplug`: users of a device that the host unplugs and plugs again over QMP;
//! - `migrate`: a seeded stream read and verified while the host migrates the VM;
//! - `race`: the reproducer of QEMU's TCG race on memory map changes (`race.rs`).
//!
//! Every loop is bounded by a count and a time limit. Each mode ends with one line
//! `@@RESULT <mode> key=value ...` that the host parses, and exits non-zero on any failure.

mod fuzz;
mod hotplug;
mod mem;
mod migrate;
mod race;
mod stress;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "my-rng-stress",
    version,
    about = "Stress workloads for the my_rng driver"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Worker processes doing mixed operations on two devices
    Stress {
        /// Worker processes
        #[arg(long, default_value_t = 8)]
        workers: u32,
        /// Operations per worker
        #[arg(long, default_value_t = 100_000)]
        ops: u64,
        /// Time limit in seconds; a worker that has not finished its operations by then fails
        #[arg(long, default_value_t = 900)]
        seconds: u64,
        /// Seed of the workers' random choices (worker i uses seed + i)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run as worker number N (started by the parent; not for direct use)
        #[arg(long, hide = true)]
        worker: Option<u32>,
    },
    /// Random ioctl commands and read() calls with random sizes and pointers
    Fuzz {
        /// Calls to make
        #[arg(long, default_value_t = 100_000)]
        calls: u64,
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Users of the hot-plugged device (the second one) while the host unplugs and plugs it
    Hotplug {
        /// Unplug/plug cycles the host does; the mode ends after seeing them all
        #[arg(long, default_value_t = 100)]
        cycles: u32,
        #[arg(long, default_value_t = 900)]
        seconds: u64,
        /// PCI address of the hot-plugged device
        #[arg(long, default_value = "0000:00:04.0")]
        address: String,
    },
    /// Read and verify seeded streams until the time is up (the host migrates meanwhile)
    Migrate {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Toggle another device's BAR below the stable device while accessing the stable
    /// device's BAR directly, counting accesses that went elsewhere (unbinds both devices)
    Race {
        /// Memory-decoding toggles (each a memory map change)
        #[arg(long, default_value_t = 20_000)]
        toggles: u64,
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// PCI address of the device whose BAR is accessed
        #[arg(long, default_value = "0000:00:03.0")]
        stable: String,
        /// PCI address of the device whose decoding is toggled
        #[arg(long, default_value = "0000:00:04.0")]
        toggled: String,
        /// Where the toggled device's BAR0 moves (below the stable device's)
        #[arg(long, default_value = "0x20000000", value_parser = parse_u32)]
        bar: u32,
        /// Largest gap between two accesses, in spin-loop iterations
        #[arg(long, default_value_t = 20_000)]
        gap: u64,
    },
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

/// The workers' random choices, reproducible from the printed seed: the e2e tests' SplitMix64
/// ([`my_rng_e2e::util::TestRng`]) with the u64 helpers the workers use.
#[derive(Clone, Debug)]
pub struct Prng(my_rng_e2e::util::TestRng);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(my_rng_e2e::util::TestRng::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A size in `0..=max` whose logarithm is uniform: as many calls of a few bytes as of
    /// megabytes, so a bounded run covers every scale without being dominated by copying.
    pub fn log_size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let b = self.below(u64::from(bits) + 1) as u32;
        if b == 0 {
            return 0;
        }
        let lo = 1usize << (b - 1);
        let hi = ((1usize << b) - 1).min(max);
        lo + self.below((hi - lo + 1) as u64) as usize
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ok = match args.cmd {
        Cmd::Stress {
            workers,
            ops,
            seconds,
            seed,
            worker,
        } => {
            let limit = Duration::from_secs(seconds);
            match worker {
                Some(i) => stress::worker(i, ops, limit, seed),
                None => stress::run(workers, ops, limit, seed),
            }
        }
        Cmd::Fuzz {
            calls,
            seconds,
            seed,
        } => fuzz::run(calls, Duration::from_secs(seconds), seed),
        Cmd::Hotplug {
            cycles,
            seconds,
            address,
        } => hotplug::run(cycles, Duration::from_secs(seconds), &address),
        Cmd::Migrate { seconds } => migrate::run(Duration::from_secs(seconds)),
        Cmd::Race {
            toggles,
            seconds,
            stable,
            toggled,
            bar,
            gap,
        } => race::run(&race::Options {
            toggles,
            limit: Duration::from_secs(seconds),
            stable,
            toggled,
            bar,
            gap,
        }),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes_cover_every_scale_within_bounds() {
        let mut r = Prng::new(7);
        let max = 2 << 20;
        let mut small = 0;
        let mut large = 0;
        for _ in 0..10_000 {
            let s = r.log_size(max);
            assert!(s <= max);
            small += usize::from(s < 64);
            large += usize::from(s >= 1 << 20);
        }
        assert!(small > 1000 && large > 200, "small {small} large {large}");
    }

    #[test]
    fn prng_is_splitmix64() {
        // SplitMix64's first output for seed 0 (Vigna's reference implementation).
        assert_eq!(Prng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}
