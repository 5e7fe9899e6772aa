//! `cargo xtask`: the my-rng host tooling. See README.md for the commands and
//! docs/architecture.md for the layers. The command line is leaf/cli.rs; this file declares
//! the modules, layer by layer (a module's folder is its layer, see leaf/layers.rs), and hands
//! each command to its module.

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

/// Each command to its module; the few lines a command needs beyond its module's call are in
/// the functions below.
fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Setup => setup(),
        Cmd::Build => build(),
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
        } => fuzz_qemu(time, record),
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
        Cmd::Repro { what } => repro(what),
        Cmd::Qemu => build_qemu(),
        Cmd::Kernel { variant } => build_kernel(variant),
        Cmd::Qtest {
            generic,
            skip_generic,
        } => qtest(generic, skip_generic),
        Cmd::Vectors { check } => write_vectors(check),
        Cmd::Patches { check } => write_patches(check),
    }
}

fn write_vectors(check: bool) -> Result<()> {
    println!("{}", vectors::write(check)?);
    if check {
        println!("{}", vectors::typed_once()?);
    }
    Ok(())
}

fn write_patches(check: bool) -> Result<()> {
    apt::ensure_host_packages()?;
    patches::generate(&patches::deliverables()?, check)
}

fn setup() -> Result<()> {
    apt::ensure_host_packages()?;
    apt::ensure_stats_packages()
}

fn build() -> Result<()> {
    parts::build_all(&[])?;
    println!("manifest: {}", manifest::path().display());
    Ok(())
}

fn fuzz_qemu(time: u64, record: bool) -> Result<()> {
    apt::ensure_host_packages()?;
    let r = fuzz::qemu(time)?;
    if record {
        fuzz::record(&r)?;
    }
    Ok(())
}

fn repro(what: Repro) -> Result<()> {
    match what {
        Repro::UnplugRace {
            qemu,
            toggles,
            time,
            gap,
            busy,
        } => repro::main(&repro::Options {
            qemu,
            toggles,
            time,
            gap,
            busy,
        }),
    }
}

fn build_qemu() -> Result<()> {
    apt::ensure_host_packages()?;
    println!("{}", qemu::build()?.binary().display());
    Ok(())
}

fn build_kernel(variant: cli::Variant) -> Result<()> {
    apt::ensure_host_packages()?;
    println!("{}", kernel::build_variant(variant)?.bzimage().display());
    Ok(())
}

fn qtest(generic: bool, skip_generic: bool) -> Result<()> {
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
