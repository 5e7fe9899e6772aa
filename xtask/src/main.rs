//! `cargo xtask`: the my-rng host tooling. See README.md for the commands. This file is the
//! command line only; each command lives in its own module.

// Leaves: no imports from the crate but each other (`leaf/`).
#[path = "leaf/apt.rs"]
mod apt;
#[path = "leaf/integrate.rs"]
mod integrate;
#[path = "leaf/manifest.rs"]
mod manifest;
#[path = "leaf/qmp.rs"]
mod qmp;
#[path = "leaf/util.rs"]
mod util;

// Components: building one part of the system each (`component/`).
#[path = "component/guest.rs"]
mod guest;
#[path = "component/kernel.rs"]
mod kernel;
#[path = "component/patches.rs"]
mod patches;
#[path = "component/qemu.rs"]
mod qemu;
#[path = "component/qemu_generic.rs"]
mod qemu_generic;
#[path = "component/rust_driver.rs"]
mod rust_driver;
#[path = "component/vectors.rs"]
mod vectors;
#[path = "component/vfio_user.rs"]
mod vfio_user;

// Boot: the VM description, booting it and checking what the guest printed (`boot/`).
#[path = "boot/checks.rs"]
mod checks;
#[path = "boot/vm.rs"]
mod vm;

// Commands: one module per `cargo xtask` command or suite part (`cmd/`).
#[path = "cmd/bench.rs"]
mod bench;
#[path = "cmd/fuzz.rs"]
mod fuzz;
#[path = "cmd/migration.rs"]
mod migration;
#[path = "cmd/reliability.rs"]
mod reliability;
#[path = "cmd/report.rs"]
mod report;
#[path = "cmd/repro.rs"]
mod repro;
#[path = "cmd/run.rs"]
mod run;
#[path = "cmd/stats.rs"]
mod stats;
#[path = "cmd/suite.rs"]
mod suite;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "my-rng host tooling: fetch, build, boot, test, generate patches")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
        device: vfio_user::DeviceKind,
        /// Which driver binds the devices: c (linux/c, the default) or rust (linux/rust)
        #[arg(long, value_enum, default_value = "c")]
        driver: rust_driver::Driver,
        /// Which guest kernel: guest (the default) or debug (KASAN, lockdep, UBSAN, KFENCE)
        #[arg(long, value_enum, default_value = "guest")]
        kernel: kernel::Variant,
    },
    /// Interactive guest shell (Ctrl-A X quits)
    Shell {
        #[arg(long = "add")]
        add: Vec<PathBuf>,
        #[arg(long)]
        tcg: bool,
        /// Which device: c (in QEMU, the default) or rust (vfio-user/)
        #[arg(long, value_enum, default_value = "c")]
        device: vfio_user::DeviceKind,
        /// Which driver binds the devices: c (linux/c, the default) or rust (linux/rust)
        #[arg(long, value_enum, default_value = "c")]
        driver: rust_driver::Driver,
        /// Which guest kernel: guest (the default) or debug (KASAN, lockdep, UBSAN, KFENCE)
        #[arg(long, value_enum, default_value = "guest")]
        kernel: kernel::Variant,
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
        variant: kernel::Variant,
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
enum Repro {
    /// QEMU 10.1+'s TCG race on memory map changes (the hot-unplug stage's stray accesses):
    /// the stable device's accesses counted where they land (qemu/fixes/README.md)
    UnplugRace {
        /// stock: QEMU without qemu/fixes/ (must show the race); fixed: the project's build
        /// (must show none); detect: fixed, and counts what stock would have misdirected
        #[arg(long, value_enum, default_value = "stock")]
        qemu: qemu::Flavour,
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
enum FuzzTarget {
    /// The in-QEMU C device, through generic-fuzz
    Qemu,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Setup => {
            apt::ensure_host_packages()?;
            apt::ensure_stats_packages()
        }
        Cmd::Build => {
            run::build_all(&[])?;
            println!("manifest: {}", manifest::path().display());
            Ok(())
        }
        Cmd::Run {
            add,
            tcg,
            device,
            driver,
            kernel,
        } => run::main_job(&add, tcg, device, driver, kernel),
        Cmd::Shell {
            add,
            tcg,
            device,
            driver,
            kernel,
        } => run::shell(&add, tcg, device, driver, kernel),
        Cmd::Test { list: true, .. } => {
            suite::list();
            Ok(())
        }
        Cmd::Test { only, full, .. } => suite::run(&only, full),
        Cmd::Bench { smoke, tcg } => bench::main(smoke, tcg),
        Cmd::Fuzz {
            target: FuzzTarget::Qemu,
            time,
            record,
        } => {
            apt::ensure_host_packages()?;
            let r = fuzz::qemu(time)?;
            if record {
                fuzz::record(&r)?;
            }
            Ok(())
        }
        Cmd::Stats {
            host,
            guest,
            quick,
            tcg,
            algs,
            render,
        } => stats::main(stats::Options {
            render,
            // Neither flag means both.
            host: host || !guest,
            guest: guest || !host,
            quick,
            tcg,
            algs,
        }),
        Cmd::Report { record } => report::main(record),
        Cmd::Repro {
            what:
                Repro::UnplugRace {
                    qemu,
                    toggles,
                    time,
                    gap,
                    busy,
                },
        } => repro::main(&repro::Options {
            qemu,
            toggles,
            time,
            gap,
            busy,
        }),
        Cmd::Qemu => {
            apt::ensure_host_packages()?;
            println!("{}", qemu::build()?.binary().display());
            Ok(())
        }
        Cmd::Kernel { variant } => {
            apt::ensure_host_packages()?;
            println!("{}", kernel::build_variant(variant)?.bzimage().display());
            Ok(())
        }
        Cmd::Qtest {
            generic,
            skip_generic,
        } => {
            apt::ensure_host_packages()?;
            let t = qemu::build()?;
            if !generic {
                println!("{}", qemu::qtest(&t)?);
            }
            if !skip_generic {
                for l in qemu_generic::run_all(&t)? {
                    println!("{l}");
                }
            }
            Ok(())
        }
        Cmd::Vectors { check } => {
            println!("{}", vectors::write(check)?);
            Ok(())
        }
        Cmd::Patches { check } => {
            apt::ensure_host_packages()?;
            patches::generate(&patches::deliverables()?, check)
        }
    }
}
