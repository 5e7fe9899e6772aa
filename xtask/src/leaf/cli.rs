//! The whole command line of `cargo xtask` (clap derive) and the enums its options take.
//! A leaf: the enums are shared by every layer above (a boot's driver, a kernel variant, ...);
//! what they mean for a component is in that component's `impl` (e.g. `impl Driver` in
//! component/rust_driver.rs, `impl Variant` in component/kernel.rs).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "my-rng host tooling: fetch, build, boot, test, generate patches")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Install the host packages the project needs (idempotent)
    Setup,
    /// Build QEMU, the guest kernel, the guest programs and the initramfs; write the manifest
    Build,
    /// Main job: build what is missing, boot the guest, show the self-test and the seed's rounds
    Run {
        /// Extra static programs to copy into the guest (/usr/bin/user) and run there
        #[arg(long = "add")]
        add: Vec<PathBuf>,
        /// Skip the KVM probe
        #[arg(long)]
        tcg: bool,
        /// Which device: c (in QEMU, the default) or rust (vfio-user/, served over vfio-user)
        #[arg(long, value_enum, default_value = "c")]
        device: DeviceKind,
        /// Which driver binds the devices: c (linux/c, the default) or rust (linux/rust)
        #[arg(long, value_enum, default_value = "c")]
        driver: Driver,
        /// Which guest kernel: guest (the default) or debug (KASAN, lockdep, UBSAN, KFENCE)
        #[arg(long, value_enum, default_value = "guest")]
        kernel: Variant,
    },
    /// Interactive guest shell (Ctrl-A X quits)
    Shell {
        #[arg(long = "add")]
        add: Vec<PathBuf>,
        #[arg(long)]
        tcg: bool,
        /// Which device: c (in QEMU, the default) or rust (vfio-user/)
        #[arg(long, value_enum, default_value = "c")]
        device: DeviceKind,
        /// Which driver binds the devices: c (linux/c, the default) or rust (linux/rust)
        #[arg(long, value_enum, default_value = "c")]
        driver: Driver,
        /// Which guest kernel: guest (the default) or debug (KASAN, lockdep, UBSAN, KFENCE)
        #[arg(long, value_enum, default_value = "guest")]
        kernel: Variant,
    },
    /// The whole test suite (what CI runs)
    Test {
        /// List the stages and exit
        #[arg(long)]
        list: bool,
        /// Run only these stages (comma-separated; builds they need still run)
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// The stress and hot-unplug stages at full scale (8 x 100,000 operations, 10^6 fuzzer
        /// calls, 100 cycles; about half an hour more than CI's scale)
        #[arg(long)]
        full: bool,
    },
    /// Throughput of every path out of the device, against virtio-rng, getrandom() and
    /// /dev/zero: writes docs/bench/ (bench.json, bench.md, bench.png)
    Bench {
        /// Every row briefly, files in target/my-rng/bench-smoke/; fails only if a row
        /// produced no number
        #[arg(long)]
        smoke: bool,
        /// Skip the KVM probe
        #[arg(long)]
        tcg: bool,
    },
    /// Fuzz a device: `qemu` runs QEMU's libFuzzer generic-fuzz target on -device my_rng
    /// (a clang build with ASan and UBSan, in the cache)
    Fuzz {
        #[arg(value_enum)]
        target: FuzzTarget,
        /// Seconds to fuzz
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Keep the run's figures in docs/results/fuzz-qemu.txt (the report and
        /// docs/reliability.md quote them)
        #[arg(long)]
        record: bool,
    },
    /// Statistical quality with dieharder: long runs on the reference generators' byte
    /// streams on the host, shorter ones on read() of the device in a guest; writes docs/stats/
    Stats {
        /// Only the host runs (the default is both)
        #[arg(long)]
        host: bool,
        /// Only the guest runs (the default is both)
        #[arg(long)]
        guest: bool,
        /// A few fast tests per generator, as a smoke check; files in target/my-rng/stats-quick/
        #[arg(long)]
        quick: bool,
        /// Skip the KVM probe
        #[arg(long)]
        tcg: bool,
        /// The host runs of this generator only (repeatable; xoshiro256pp, chacha20, glibc)
        #[arg(long = "alg", value_name = "NAME")]
        algs: Vec<String>,
        /// Only rewrite the markdown files from the runs' records (*.json), without running
        #[arg(long, hide = true)]
        render: bool,
    },
    /// Render docs/report.md (a template filled from docs/bench, docs/stats and docs/results)
    /// to docs/report.pdf, A4, at most two pages
    Report {
        /// First copy the last `cargo xtask test` run's results into docs/results/ (a green
        /// whole-suite run as suite-ci.txt, a --full run as suite-full.txt)
        #[arg(long)]
        record: bool,
    },
    /// Reproducers of problems found outside this project's code
    Repro {
        #[command(subcommand)]
        what: Repro,
    },
    /// Build only QEMU with the device
    Qemu,
    /// Build only the guest kernel (driver built in) and my_rng.ko, my_rng_rust.ko
    Kernel {
        /// guest (the default) or debug (KASAN, lockdep, UBSAN, KFENCE, ACPI hotplug)
        #[arg(long, value_enum, default_value = "guest")]
        variant: Variant,
    },
    /// Build QEMU and run the device's qtest, then QEMU's generic qtests (device-introspect-test
    /// -m thorough, qom-test, test-hmp) against the same binary
    Qtest {
        /// Only QEMU's generic qtests
        #[arg(long, conflicts_with = "skip_generic")]
        generic: bool,
        /// Only the device's qtest
        #[arg(long)]
        skip_generic: bool,
    },
    /// Regenerate the files derived from the reference crate (or check them with --check)
    Vectors {
        #[arg(long)]
        check: bool,
    },
    /// Write patches/ (or check the committed ones with --check)
    Patches {
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
pub enum Repro {
    /// QEMU 10.1+'s TCG race on memory map changes (the hot-unplug stage's stray accesses):
    /// the stable device's accesses counted where they land (qemu/fixes/README.md)
    UnplugRace {
        /// stock: QEMU without qemu/fixes/ (must show the race); fixed: the project's build
        /// (must show none); detect: fixed, and counts what stock would have misdirected
        #[arg(long, value_enum, default_value = "stock")]
        qemu: Flavour,
        /// Memory map changes (decoding toggles of the other device)
        #[arg(long, default_value_t = 20_000)]
        toggles: u64,
        /// Time limit of the guest's run, seconds
        #[arg(long, default_value_t = 300)]
        time: u64,
        /// Largest gap between two accesses, spin-loop iterations
        #[arg(long, default_value_t = 20_000)]
        gap: u64,
        /// Host threads kept spinning during the run (0: an idle host)
        #[arg(long, default_value_t = 1)]
        busy: u32,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FuzzTarget {
    /// The in-QEMU C device, through generic-fuzz
    Qemu,
}

/// Which implementation of the device a boot uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceKind {
    /// The in-QEMU C device (`-device my_rng`).
    C,
    /// The Rust vfio-user server (vfio-user/), one process per device.
    Rust,
}

/// Which driver binds the my_rng devices in a boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// linux/c (drivers/misc/my-rng.c), the deliverable.
    #[default]
    C,
    /// linux/rust (drivers/misc/my_rng_rust_main.rs).
    Rust,
}

/// Which kernel configuration: both are built from the one work tree, each into its own
/// output folder (`make O=`), so the source is extracted and patched once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The guest kernel of every normal boot: linux/config/*.config on tinyconfig.
    #[default]
    Guest,
    /// The same plus linux/config/debug/*.config: KASAN, lockdep, UBSAN, KFENCE, ACPI PCI
    /// hotplug; for the stress, fuzz and hot-unplug boots.
    Debug,
}

/// Which QEMU a build is: the project's, with the fixes of qemu/fixes/ applied (every build
/// the suite, `run` and the fuzzer use), or stock, without them (the hot-unplug race's
/// reproducer, `cargo xtask repro unplug-race --qemu stock`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Flavour {
    Fixed,
    Stock,
    /// Test only: fixed, plus qemu/fixes/detect/, which prints each I/O access that stock
    /// QEMU would have sent to another region.
    Detect,
}
