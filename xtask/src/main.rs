//! `cargo xtask`: the my-rng host tooling. See README.md for the commands.

mod apt;
mod checks;
mod guest;
mod integrate;
mod kernel;
mod manifest;
mod patches;
mod qemu;
mod util;
mod vm;

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use my_rng_spec::{vectors, Algorithm};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use util::{repo_root, step};

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
    },
    /// Interactive guest shell (Ctrl-A X quits)
    Shell {
        #[arg(long = "add")]
        add: Vec<PathBuf>,
        #[arg(long)]
        tcg: bool,
    },
    /// The whole test suite (what CI runs)
    Test,
    /// Build only QEMU with the device
    Qemu,
    /// Build only the guest kernel (driver built in) and my_rng.ko
    Kernel,
    /// Build QEMU and run the device's qtest
    Qtest,
    /// Regenerate spec/vectors from the reference crate (or check them with --check)
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

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli.cmd) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Setup => apt::ensure_host_packages(),
        Cmd::Build => build_all(&[]).map(|_| {
            println!("manifest: {}", manifest::path().display());
        }),
        Cmd::Run { add, tcg } => main_job(&add, tcg),
        Cmd::Shell { add, tcg } => {
            let vm = build_all(&add)?;
            let accel = if tcg { vm::Accel::Tcg } else { vm.probe() };
            vm.shell(accel)
        }
        Cmd::Test => suite(),
        Cmd::Qemu => {
            apt::ensure_host_packages()?;
            qemu::build().map(|t| println!("{}", t.binary().display()))
        }
        Cmd::Kernel => {
            apt::ensure_host_packages()?;
            kernel::build().map(|t| println!("{}", t.build.join("arch/x86/boot/bzImage").display()))
        }
        Cmd::Qtest => {
            apt::ensure_host_packages()?;
            let t = qemu::build()?;
            println!("{}", qemu::qtest(&t)?);
            Ok(())
        }
        Cmd::Vectors { check } => write_vectors(check),
        Cmd::Patches { check } => {
            apt::ensure_host_packages()?;
            patches::generate(&deliverables()?, check)
        }
    }
}

fn write_vectors(check: bool) -> Result<()> {
    for alg in Algorithm::DETERMINISTIC {
        let path = repo_root()
            .join("spec/vectors")
            .join(vectors::file_name(alg));
        let text = vectors::render(alg);
        if check {
            if std::fs::read_to_string(&path).unwrap_or_default() != text {
                bail!("{} is stale: run `cargo xtask vectors`", path.display());
            }
        } else {
            util::write_if_changed(&path, text.as_bytes())?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn deliverables() -> Result<Vec<patches::Deliverable>> {
    let (qv, qemu_base) = qemu::pristine(qemu::MAIN_VERSIONS)?;
    let linux_base = kernel::pristine()?;
    Ok(vec![
        patches::Deliverable {
            file: "qemu-8.2.0-rc2.patch",
            target: "qemu-8.2.0-rc2",
            component: qemu::component()?,
            base: qemu_base,
            base_name: format!("QEMU {qv} (Debian source)"),
        },
        patches::Deliverable {
            file: "linux-6.6.4.patch",
            target: "linux-6.6.4",
            component: kernel::component()?,
            base: linux_base,
            base_name: format!("Linux {} (Debian linux-source)", kernel::SOURCE_VERSION),
        },
    ])
}

/// Builds everything a boot needs; returns the VM description.
fn build_all(extra: &[PathBuf]) -> Result<vm::Vm> {
    apt::ensure_host_packages()?;
    let q = qemu::build()?;
    let k = kernel::build()?;
    let g = guest::build()?;
    let module = k.build.parent().unwrap().join("module/my_rng.ko");
    let initramfs = guest::initramfs(&g, Some(&module), extra)?;
    Ok(vm::Vm {
        qemu: q.binary(),
        kernel: k.build.join("arch/x86/boot/bzImage"),
        initramfs,
        devices: 2,
    })
}

/// The main job: what a user wants to see first.
fn main_job(extra: &[PathBuf], tcg: bool) -> Result<()> {
    let vm = build_all(extra)?;
    let accel = if tcg { vm::Accel::Tcg } else { vm.probe() };
    let run = vm.boot(accel, "run", Duration::from_secs(300), true)?;
    println!("\n--- host verdict (accelerator: {}) ---", run.accel.name());
    let mut bad = 0;
    let mut report = |name: &str, r: Result<String>| match r {
        Ok(s) => println!("ok   {name}: {s}"),
        Err(e) => {
            bad += 1;
            println!("FAIL {name}: {e:#}");
        }
    };
    let get = |k: &str| run.step(k);
    report("pci", checks::pci(&get("pci").0, vm.devices));
    report(
        "driver self-test",
        checks::selftest(&get("selftest").0, vm.devices),
    );
    let (t, rc) = get("rawmmio");
    report("raw MMIO (devmem)", checks::raw_mmio(&t, rc));
    let (t, rc) = get("my-app");
    report("seed app", checks::app_output(&t, rc, 0));
    let (t, rc) = get("demo");
    report("my-rng demo", checks::app_output(&t, rc, 0));
    if bad > 0 {
        bail!("{bad} check(s) failed");
    }
    Ok(())
}

/// One result line per test; the suite keeps going after a failure so the summary is complete.
struct Suite {
    passed: usize,
    failed: usize,
    start: Instant,
}

impl Suite {
    fn check(&mut self, name: &str, f: impl FnOnce() -> Result<String>) -> bool {
        let t = Instant::now();
        match f() {
            Ok(detail) => {
                self.passed += 1;
                println!("PASS {name} ({} s): {detail}", t.elapsed().as_secs());
                true
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL {name} ({} s): {e:#}", t.elapsed().as_secs());
                false
            }
        }
    }
}

fn cargo(args: &[&str]) -> Result<String> {
    util::run(
        Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(args),
    )?;
    Ok(format!("cargo {}", args.join(" ")))
}

fn suite() -> Result<()> {
    let mut s = Suite {
        passed: 0,
        failed: 0,
        start: Instant::now(),
    };
    if !s.check("host packages", || {
        apt::ensure_host_packages().map(|_| "installed".into())
    }) {
        bail!("cannot continue without the host packages");
    }
    s.check("rustfmt", || cargo(&["fmt", "--all", "--", "--check"]));
    s.check("clippy", || {
        cargo(&[
            "clippy",
            "--quiet",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ])
    });
    s.check("cargo unit and oracle tests", || {
        cargo(&["test", "--quiet", "--workspace", "--all-features"])
    });
    s.check("vectors up to date", || {
        write_vectors(true).map(|_| "spec/vectors match the reference crate".into())
    });

    // The device.
    let q = qemu::build();
    s.check("QEMU build with my_rng", || {
        q.as_ref()
            .map(|t| format!("QEMU {}", t.version))
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    });
    if let Ok(t) = &q {
        s.check("device compiles without warnings (QEMU main)", || {
            qemu::warning_gate(t).map(|_| format!("QEMU {}", t.version))
        });
        s.check("qtest", || qemu::qtest(t));
    }
    s.check("device compiles on older QEMU", || {
        qemu::compat_check().map(|v| format!("QEMU {}", v.join(", ")))
    });
    s.check("QEMU checkpatch", qemu_checkpatch);

    // The deliverable patches.
    s.check("patches up to date", || {
        patches::generate(&deliverables()?, true)
            .map(|_| "patches/ matches `cargo xtask patches`".into())
    });
    s.check("QEMU patch applies", || {
        let patch = repo_root().join("patches/qemu-8.2.0-rc2.patch");
        let mut done = Vec::new();
        for vs in [qemu::MAIN_VERSIONS, qemu::COMPAT_VERSIONS] {
            let (v, tree) = qemu::pristine(vs)?;
            patches::dry_run(&patch, &tree)?;
            done.push(v);
        }
        Ok(format!(
            "patch -p1 --dry-run clean on QEMU {}",
            done.join(", ")
        ))
    });
    s.check("Linux patch applies", || {
        let patch = repo_root().join("patches/linux-6.6.4.patch");
        patches::dry_run(&patch, &kernel::pristine()?)?;
        patches::dry_run(&patch, &kernel::old_pristine()?)?;
        Ok(format!(
            "patch -p1 --dry-run clean on Linux {} and 6.1",
            kernel::SERIES
        ))
    });

    // The driver.
    let k = kernel::build();
    s.check("guest kernel build (driver built in + my_rng.ko)", || {
        k.as_ref()
            .map(|_| format!("Linux {}", kernel::SERIES))
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    });
    s.check("driver compiles on Debian 6.1 and 6.12 headers", || {
        kernel::compat_check().map(|v| v.join(", "))
    });
    s.check("kernel checkpatch --strict", || {
        kernel::checkpatch().map(|_| "clean".into())
    });

    // End to end.
    let g = guest::build();
    s.check("guest programs (static)", || {
        g.as_ref()
            .map(|_| "my-rng, my-rng-e2e, my-app".into())
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    });
    const DEVICES: usize = 2;
    let vm = match (&q, &k, &g) {
        (Ok(q), Ok(k), Ok(g)) => {
            let module = k.build.parent().unwrap().join("module/my_rng.ko");
            guest::initramfs(g, Some(&module), &[]).map(|initramfs| {
                let vm = vm::Vm {
                    qemu: q.binary(),
                    kernel: k.build.join("arch/x86/boot/bzImage"),
                    initramfs,
                    devices: DEVICES,
                };
                let accel = vm.probe();
                (vm, accel)
            })
        }
        _ => Err(anyhow::anyhow!("a build it needs failed")),
    };
    let boot = vm
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .and_then(|(vm, accel)| vm.boot(*accel, "test", Duration::from_secs(900), false));
    match boot {
        Ok(run) => {
            println!("     (guest ran under {})", run.accel.name());
            let get = |k: &str| run.step(k);
            s.check("guest: device visible on PCI", || {
                checks::pci(&get("pci").0, DEVICES)
            });
            s.check("guest: driver boot self-test", || {
                checks::selftest(&get("selftest").0, DEVICES)
            });
            s.check("guest: raw MMIO, seed 0x42 at BAR0+4 (devmem)", || {
                let (t, rc) = get("rawmmio");
                checks::raw_mmio(&t, rc)
            });
            s.check("guest: seed's C app", || {
                let (t, rc) = get("my-app");
                checks::app_output(&t, rc, 0)
            });
            s.check("guest: my-rng demo", || {
                let (t, rc) = get("demo");
                checks::app_output(&t, rc, 0)
            });
            s.check("guest: in-guest e2e tests", || {
                let (t, rc) = get("e2e");
                checks::e2e(&t, rc).map(|r| r.0)
            });
            for (src, max_failures) in [("hwrng", 2), ("xoshiro256pp", 0), ("chacha20", 0)] {
                s.check(&format!("guest: rngtest on {src}"), || {
                    checks::rngtest(&get(&format!("rngtest-{src}")).0, max_failures)
                });
            }
            s.check("guest: kernel log clean", || {
                checks::kernel_log_clean(&run.log)
            });
        }
        Err(e) => {
            s.check("guest boot", || Err(e));
        }
    }
    // The same driver as the out-of-tree my_rng.ko, with the built-in one kept out.
    let boot = vm
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .and_then(|(vm, accel)| vm.boot(*accel, "module", Duration::from_secs(900), false));
    match boot {
        Ok(run) => {
            let get = |k: &str| run.step(k);
            s.check(
                "module: insmod my_rng.ko (built-in driver kept out)",
                || {
                    let (t, rc) = get("insmod");
                    ensure!(rc == 0, "insmod step exit {rc}: {}", t.trim());
                    Ok("my_rng.ko bound the devices".into())
                },
            );
            s.check("module: probe self-test", || {
                checks::selftest(&get("selftest").0, DEVICES)
            });
            s.check("module: seed's C app", || {
                let (t, rc) = get("my-app");
                checks::app_output(&t, rc, 0)
            });
            s.check("module: in-guest e2e tests with unload/reload", || {
                let (t, rc) = get("e2e");
                checks::e2e(&t, rc).map(|r| r.0)
            });
            s.check("module: kernel log clean", || {
                checks::kernel_log_clean(&run.log)
            });
        }
        Err(e) => {
            s.check("module guest boot", || Err(e));
        }
    }
    println!(
        "\nsuite finished in {} s (cache: {})",
        s.start.elapsed().as_secs(),
        util::cache_dir().display()
    );
    println!("{} passed, {} failed", s.passed, s.failed);
    if s.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// QEMU's own checkpatch.pl on the device and its qtest.
fn qemu_checkpatch() -> Result<String> {
    let (_, tree) = qemu::pristine(qemu::MAIN_VERSIONS)?;
    let component = qemu::component()?;
    // Paths as in the QEMU tree: checkpatch's rules depend on them (tests/ may use
    // g_assert_cmpint() and friends).
    let files: Vec<String> = component
        .new_files
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|p| p.ends_with(".c") || p.ends_with(".h"))
        .collect();
    let out = Command::new("perl")
        .current_dir(&component.dir)
        .arg(tree.join("scripts/checkpatch.pl"))
        .arg("--no-tree")
        .arg("-f")
        .args(&files)
        .output()
        .context("running QEMU checkpatch")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        for l in text
            .lines()
            .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING"))
        {
            util::note(l);
        }
        bail!("QEMU checkpatch.pl reports problems");
    }
    step("QEMU checkpatch clean");
    Ok(format!("{} file(s) clean", files.len()))
}
