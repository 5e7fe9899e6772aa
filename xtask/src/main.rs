//! `cargo xtask`: the my-rng host tooling. See README.md for the commands. This file is the
//! command line only; each command lives in its own module.

// Leaves: no imports from the crate but each other (`leaf/`).
#[path = "leaf/apt.rs"]
mod apt;
#[path = "leaf/cli.rs"]
mod cli;
#[path = "leaf/integrate.rs"]
mod integrate;
#[path = "leaf/layers.rs"]
mod layers;
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
#[path = "component/vectors.rs"]
mod vectors;
#[path = "component/vfio_user.rs"]
mod vfio_user;

// Boot: the VM description, booting it and checking what the guest printed (`boot/`).
#[path = "boot/checks.rs"]
mod checks;
#[path = "boot/parts.rs"]
mod parts;
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
use clap::Parser;
use cli::{Cli, Cmd, FuzzTarget, Repro};

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
            parts::build_all(&[])?;
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
