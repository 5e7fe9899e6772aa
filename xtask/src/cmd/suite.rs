//! `cargo xtask test`: the whole suite, in stages. Each stage runs its checks, prints one
//! `PASS`/`FAIL` line per check and hands on what later stages need; a failed build fails its
//! own check and the checks that need it, and the suite goes on so the summary is complete.
//! A new boot of the guest is one more stage function built on `boot()`.

use crate::cli::Driver;
use crate::kernel::rust_driver;
use crate::util::{cache_dir, repo_root};
use crate::{
    apt, bench, checks, guest, kernel, migration, parts, patches, qemu, qemu_generic, reliability,
    vectors, vfio_user, vm,
};
use anyhow::{anyhow, bail, ensure, Context, Result};
use my_rng_protocol::shell::RNGTEST_SOURCES;
use my_rng_protocol::{step, Mode};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Time limit of one full guest boot (TCG is slow; the guest normally needs a few minutes).
const BOOT_LIMIT: Duration = Duration::from_secs(900);
/// The Rust device's boot: every register access is a socket round trip (~120 us under TCG,
/// ~40 times the in-QEMU device's); measured at about 2 minutes, the limit is generous.
const RUST_BOOT_LIMIT: Duration = Duration::from_secs(1200);

/// One stage of the suite: its `--only` name, what it checks, and for a stage that boots
/// guests the function that runs it. The host stages (no function) run first, in [`run`]:
/// their builds feed the boots.
struct Stage {
    name: &'static str,
    what: &'static str,
    boot: Option<BootStage>,
}

impl Stage {
    const fn host(name: &'static str, what: &'static str) -> Stage {
        Stage {
            name,
            what,
            boot: None,
        }
    }

    const fn boots(name: &'static str, what: &'static str, boot: BootStage) -> Stage {
        Stage {
            name,
            what,
            boot: Some(boot),
        }
    }
}

/// The stages, in run order: the one list of them (`--list`, `--only`, the run).
const STAGES: &[Stage] = &[
    Stage::host("host", "rustfmt, clippy, unit and oracle tests, generated vectors, xtask's layers"),
    Stage::host("device", "QEMU build, warning gates, the qtest, checkpatch"),
    Stage::host("patches", "the deliverables: the patches current and applying to every tree, the report PDF current and at most two pages"),
    Stage::host("driver", "guest kernel, older headers, checkpatch, the Rust driver's gates"),
    Stage::boots("guest", "boot with the C driver built in: the seed's checks, e2e, rngtest", builtin_boot),
    Stage::boots("module", "boot with my_rng.ko over INTx: e2e with unload/reload", module_boot),
    Stage::boots("rust-driver", "boot with the Rust driver built in: the same checks", rust_driver_boot),
    Stage::boots("rust-module", "boot with my_rng_rust.ko over INTx", rust_module_boot),
    Stage::boots("rust-device", "boot with the devices served by the Rust vfio-user server", rust_device_boot),
    Stage::boots("bench", "benchmark smoke: every row produces a number", bench_smoke),
    Stage::boots("stress", "debug kernel: 8 x 100,000 operations and the fuzzer, per driver", stress_boots),
    Stage::boots("hotplug", "debug kernel: 100 hot-unplug cycles over QMP, per driver", hotplug_boots),
    Stage::boots("migration", "live migrations while the guest verifies seeded streams", migration_boot),
];

/// Counts the results; one line per check.
struct Suite {
    passed: usize,
    failed: usize,
    start: Instant,
    /// Stages to run (`--only`); empty: all of them. Builds run whenever a later stage needs
    /// them, their checks only in their own stage.
    only: Vec<String>,
    /// The debug kernel's guest, built by the first stage that needs it.
    debug: Option<Result<Guest, String>>,
    /// How much the stress and hot-unplug stages do.
    scale: reliability::Scale,
    /// `# key: value` headers and the PASS/FAIL lines, for target/my-rng/suite-results.txt
    /// (`cargo xtask report --record` keeps a green run in docs/results/).
    record: Vec<String>,
}

impl Suite {
    /// Whether stage `name` runs.
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// Prints a result line and keeps it for the results file.
    fn say(&mut self, line: String) {
        println!("{line}");
        self.record.push(line);
    }

    /// A check whose line shows its own time (builds, host checks, boots done inside it).
    fn check(&mut self, name: &str, f: impl FnOnce() -> Result<String>) -> bool {
        self.check_took(name, Took::Own, f)
    }

    /// A check whose line shows the time of what it reports: `took` (see [`Took`]).
    fn check_took(&mut self, name: &str, took: Took, f: impl FnOnce() -> Result<String>) -> bool {
        let t = Instant::now();
        let r = f();
        let time = took.show(t.elapsed());
        match r {
            Ok(detail) => {
                self.passed += 1;
                self.say(format!("PASS {name} ({time}): {detail}"));
                true
            }
            Err(e) => {
                self.failed += 1;
                self.say(format!("FAIL {name} ({time}): {e:#}"));
                false
            }
        }
    }

    /// A build as a check: its product if it succeeded.
    fn build<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<T>,
        detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let mut product = None;
        self.check(name, || {
            let t = f()?;
            let d = detail(&t);
            product = Some(t);
            Ok(d)
        });
        product
    }
}

/// What the time in a PASS/FAIL line measures. A boot runs once and many checks then read what
/// it printed, so their own time is ~0 s: they show the time of the guest step they report
/// instead, or the boot's.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Took {
    /// The check itself, on the host.
    Own,
    /// Guest steps, as the guest's /init timed them (seconds): `(38 s)`.
    Guest(f64),
    /// A whole boot the check reads (its kernel log, or a boot that failed): `(boot 95 s)`.
    Boot(Duration),
}

impl Took {
    /// The steps `names` of `run`, summed; the boot if one of them carries no time (an
    /// /init older than the timed markers, or a step that never ended).
    fn steps(run: &vm::Run, names: &[&str]) -> Took {
        names
            .iter()
            .map(|n| run.step_secs(n))
            .sum::<Option<f64>>()
            .map_or(Took::Boot(run.elapsed), Took::Guest)
    }

    fn show(self, own: Duration) -> String {
        match self {
            Took::Own => seconds(own.as_secs_f64()),
            Took::Guest(s) => seconds(s),
            Took::Boot(d) => format!("boot {}", seconds(d.as_secs_f64())),
        }
    }
}

/// Whole seconds; tenths below 10 s, where the guest's 0.01 s timing says more than "0 s"
/// (9.95 and up would round to "10.0").
fn seconds(s: f64) -> String {
    if s < 9.95 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Runs every stage (or those of `only`); exits non-zero if any check failed.
pub fn run(only: &[String], full: bool) -> Result<()> {
    for o in only {
        if !STAGES.iter().any(|st| st.name == o) {
            bail!("no stage {o:?}: `cargo xtask test --list` lists them");
        }
    }
    let mut s = Suite {
        passed: 0,
        failed: 0,
        start: Instant::now(),
        only: only.to_vec(),
        debug: None,
        scale: reliability::Scale::pick(full)?,
        record: vec![
            format!("# date: {}", crate::util::today()),
            // A changed cycle count is neither scale: `report --record` keeps no such run.
            match std::env::var("MY_RNG_HOTPLUG_CYCLES") {
                Ok(n) => format!("# scale: hotplug_cycles={n}"),
                Err(_) => format!("# scale: {}", if full { "full" } else { "ci" }),
            },
            format!(
                "# stages: {}",
                if only.is_empty() {
                    "all".to_string()
                } else {
                    only.join(",")
                }
            ),
        ],
    };
    host(&mut s)?;
    let q = device(&mut s);
    if s.wants("patches") {
        deliverable_patches(&mut s, q.as_ref());
    }
    let k = driver(&mut s);
    let boots: Vec<BootStage> = STAGES
        .iter()
        .filter(|st| s.wants(st.name))
        .filter_map(|st| st.boot)
        .collect();
    if boots.is_empty() {
        return s.finish();
    }
    let guest = guest_build(&mut s, q.as_ref(), k.as_ref());
    for stage in boots {
        stage(&mut s, &guest);
    }
    s.finish()
}

/// A stage that boots guests.
type BootStage = fn(&mut Suite, &Result<Guest>);

/// `cargo xtask test --list`.
pub fn list() {
    for st in STAGES {
        println!("{:<12} {}", st.name, st.what);
    }
}

impl Suite {
    fn finish(&self) -> Result<()> {
        let secs = self.start.elapsed().as_secs();
        println!(
            "\nsuite finished in {secs} s (cache: {})",
            cache_dir().display()
        );
        println!("{} passed, {} failed", self.passed, self.failed);
        let mut text = self.record.join("\n");
        let _ = write!(
            text,
            "\n# minutes: {}\n{} passed, {} failed\n",
            secs.div_ceil(60),
            self.passed,
            self.failed
        );
        let path = crate::report::suite_results();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
        }
        if self.failed > 0 {
            std::process::exit(1);
        }
        Ok(())
    }
}

fn cargo(args: &[&str]) -> Result<String> {
    crate::util::run(
        Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(args),
    )?;
    Ok(format!("cargo {}", args.join(" ")))
}

/// Host: packages, then the Rust gates and the generated files.
fn host(s: &mut Suite) -> Result<()> {
    if !s.check("host packages", || {
        apt::ensure_host_packages().map(|_| "installed".into())
    }) {
        bail!("cannot continue without the host packages");
    }
    if !s.wants("host") {
        return Ok(());
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
    s.check("vectors up to date", || vectors::write(true));
    s.check("spec and protocol values typed once", vectors::typed_once);
    s.check("xtask imports point down", crate::layers::check);
    Ok(())
}

/// The device: QEMU builds with it, warning-free on both QEMU versions, qtest, QEMU's generic
/// qtests against the same binary, checkpatch.
fn device(s: &mut Suite) -> Option<qemu::Tree> {
    let q = s.build("QEMU build with my_rng", qemu::build, |t| {
        format!("QEMU {} with qemu/fixes/ ({})", t.version, t.label)
    });
    if !s.wants("device") {
        return q;
    }
    if let Some(t) = &q {
        s.check("device compiles without warnings (QEMU main)", || {
            qemu::warning_gate(t).map(|_| format!("QEMU {}", t.version))
        });
        s.check("qtest", || qemu::qtest(t));
        // Upstream's own tests against the binary with my_rng in it, one line each.
        let built = s.check("QEMU generic qtests build", || {
            qemu_generic::build(t).map(|_| {
                let names: Vec<&str> = qemu_generic::TESTS.iter().map(|g| g.name).collect();
                names.join(", ")
            })
        });
        if built {
            for g in qemu_generic::TESTS {
                s.check(g.label, || qemu_generic::run(t, g));
            }
        }
    }
    s.check("device compiles on older QEMU", || {
        qemu::compat_check().map(|v| format!("QEMU {}", v.join(", ")))
    });
    s.check("QEMU checkpatch", || {
        qemu::checkpatch().map(|n| format!("{n} file(s) clean"))
    });
    q
}

/// The deliverable patches: current, in the form `git apply` reads, applying with every tool
/// to every tree within reach, clean for each tree's checkpatch, and their documentation.
fn deliverable_patches(s: &mut Suite, q: Option<&qemu::Tree>) {
    s.check(
        "patches up to date (file headers as diff -urN writes them)",
        || {
            patches::generate(&patches::deliverables()?, true)
                .map(|_| "patches/ matches `cargo xtask patches`".into())
        },
    );
    for vs in [qemu::MAIN_VERSIONS, qemu::COMPAT_VERSIONS] {
        let v = qemu::upstream_version(vs[0]);
        s.check(&format!("QEMU patch applies to QEMU {v}"), || {
            let (_, tree) = qemu::pristine(vs)?;
            patches::apply_checks(&patches::qemu_patch(), &tree)
        });
    }
    s.check(
        &format!("Linux patch applies to Linux {}", kernel::SERIES),
        || patches::apply_checks(&patches::linux_patch(), &kernel::pristine()?),
    );
    for pkg in kernel::CHECK_SOURCES {
        let series = pkg.trim_start_matches("linux-source-");
        s.check(&format!("Linux patch applies to Linux {series}"), || {
            patches::apply_checks(&patches::linux_patch(), &kernel::partial_tree(pkg)?)
        });
    }
    s.check("checkpatch of the QEMU patch file (QEMU 10.2)", || {
        let (_, tree) = qemu::pristine(qemu::MAIN_VERSIONS)?;
        patches::checkpatch(&patches::qemu_patch(), &tree, &[])
    });
    s.check(
        "checkpatch --strict of the Linux patch file (Linux 7.3, 6.12)",
        || {
            let a =
                patches::checkpatch(&patches::linux_patch(), &kernel::pristine()?, &["--strict"])?;
            let tree = kernel::partial_tree("linux-source-6.12")?;
            let b = patches::checkpatch(&patches::linux_patch(), &tree, &["--strict"])?;
            Ok(format!("7.3: {a}; 6.12: {b}"))
        },
    );
    s.check(
        "QEMU docs page is spec/my-rng.rst",
        patches::spec_page_is_the_spec,
    );
    if let Some(t) = q {
        s.check("QEMU docs page builds in QEMU's Sphinx setup", || {
            patches::qemu_docs(t)
        });
    }
    s.check(crate::report::CHECK_NAME, crate::report::check);
}

/// The driver: the guest kernel (whose build starts by checking rustc, see
/// kernel::RUSTC_VERSION), Debian's older headers, checkpatch.
fn driver(s: &mut Suite) -> Option<kernel::Tree> {
    let k = s.build(
        "guest kernel build (driver built in + my_rng.ko)",
        kernel::build,
        |_| format!("Linux {}", kernel::SERIES),
    );
    if !s.wants("driver") {
        return k;
    }
    s.check("driver compiles on Debian 6.1 and 6.12 headers", || {
        kernel::compat_check().map(|v| v.join(", "))
    });
    s.check("kernel checkpatch --strict", || {
        kernel::checkpatch().map(|_| "clean".into())
    });
    if let Some(t) = &k {
        s.check(
            "Rust driver: rustfmt, CLIPPY=1 build (-D warnings), checkpatch --strict of its glue",
            || rust_driver::gates(t),
        );
    }
    k
}

/// What every boot stage needs: the VM and the accelerator it runs under (and the guest
/// programs, for the debug kernel's own initramfs).
#[derive(Clone)]
struct Guest {
    vm: vm::Vm,
    accel: vm::Accel,
    bins: Option<std::sync::Arc<guest::Binaries>>,
}

/// The guest programs, then the initramfs and the accelerator probe for the boot stages.
fn guest_build(s: &mut Suite, q: Option<&qemu::Tree>, k: Option<&kernel::Tree>) -> Result<Guest> {
    let g = s.build("guest programs (static)", guest::build, |_| {
        "my-rng, my-rng-e2e, my-rng-stress, my-app".into()
    });
    let (Some(q), Some(k), Some(g)) = (q, k, g) else {
        return Err(anyhow!("a build it needs failed"));
    };
    let vm = parts::vm_of(q, k, &g, &[])?;
    let accel = vm.probe();
    Ok(Guest {
        vm,
        accel,
        bins: Some(std::sync::Arc::new(g)),
    })
}

/// The debug kernel (built once, for the stress and hot-unplug stages) and its VM.
fn debug_guest(s: &mut Suite, guest: &Result<Guest>) -> Result<Guest> {
    if let Some(d) = &s.debug {
        return d.clone().map_err(|e| anyhow!(e));
    }
    let d = build_debug_guest(s, guest);
    s.debug = Some(d.as_ref().map(Guest::clone).map_err(|e| format!("{e:#}")));
    d
}

fn build_debug_guest(s: &mut Suite, guest: &Result<Guest>) -> Result<Guest> {
    let g = guest.as_ref().map_err(|e| anyhow!("{e:#}"))?;
    let bins = g.bins.clone().context("no guest programs")?;
    let vm = s
        .build(
            "debug kernel build (KASAN, lockdep, UBSAN, KFENCE, ACPI hotplug)",
            || reliability::debug_vm(&g.vm, &bins),
            |_| format!("Linux {} debug", kernel::SERIES),
        )
        .context("the debug kernel did not build")?;
    Ok(Guest {
        vm,
        accel: g.accel,
        bins: Some(bins),
    })
}

/// The debug kernel, each driver: 8 worker processes x 100,000 operations on two devices and
/// the ioctl/read fuzzer, then the kernel log.
fn stress_boots(s: &mut Suite, guest: &Result<Guest>) {
    let Ok(dg) = debug_guest(s, guest) else {
        s.check("stress: debug kernel", || Err(anyhow!("not built")));
        return;
    };
    for driver in [Driver::C, Driver::Rust] {
        let p = format!("stress, {} driver", driver.short());
        let t = Instant::now();
        let r = reliability::stress_boot(&dg.vm, dg.accel, driver, s.scale);
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let took = Took::Boot(t.elapsed());
                s.check_took(&format!("{p}: debug-kernel boot"), took, || Err(e));
                continue;
            }
        };
        let step = |names: &[&str]| Took::steps(&r.run, names);
        s.check_took(
            &format!("{p}: bound driver (sysfs)"),
            step(&[step::BOUND]),
            || r.bound(driver),
        );
        let ops = s.scale.stress_ops;
        s.check_took(
            &format!("{p}: 8 processes x {ops} mixed operations"),
            step(&[step::STRESS]),
            || r.stress(),
        );
        s.check_took(
            &format!("{p}: ioctl/read fuzzer"),
            step(&[step::FUZZ]),
            || r.fuzz(),
        );
        s.check_took(
            &format!("{p}: no kernel reports"),
            Took::Boot(r.run.elapsed),
            || r.reports(),
        );
    }
}

/// The debug kernel, each driver: 100 device_del/device_add cycles over QMP of the second
/// device while users hold it open.
fn hotplug_boots(s: &mut Suite, guest: &Result<Guest>) {
    let Ok(dg) = debug_guest(s, guest) else {
        s.check("hotplug: debug kernel", || Err(anyhow!("not built")));
        return;
    };
    for driver in [Driver::C, Driver::Rust] {
        let p = format!("hotplug, {} driver", driver.short());
        let cycles = s.scale.hotplug_cycles;
        let t = Instant::now();
        match reliability::hotplug_boot(&dg.vm, dg.accel, driver, cycles) {
            Ok((run, control)) => {
                // The controller's cycles happen during the guest's hotplug step.
                s.check_took(
                    &format!("{p}: QMP cycles"),
                    Took::steps(&run, &[step::HOTPLUG]),
                    || control,
                );
                s.check_took(
                    &format!("{p}: users see ENODEV, new devices self-test"),
                    Took::steps(&run, &[step::HOTPLUG, step::SELFTESTS]),
                    || reliability::hotplug_result(&run, cycles),
                );
                s.check_took(
                    &format!("{p}: no kernel reports"),
                    Took::Boot(run.elapsed),
                    || reliability::check_reports(&run),
                );
            }
            Err(e) => {
                let took = Took::Boot(t.elapsed());
                s.check_took(&format!("{p}: debug-kernel boot"), took, || Err(e));
            }
        }
    }
}

/// Live migration: the VM moves between QEMU processes while the guest verifies streams.
fn migration_boot(s: &mut Suite, guest: &Result<Guest>) {
    let t = Instant::now();
    let r = guest
        .as_ref()
        .map_err(|e| anyhow!("{e:#}"))
        .and_then(|g| migration::run(&g.vm, g.accel, migration::MIGRATIONS));
    // Every check reads the one run: each shows its time.
    let took = Took::Boot(t.elapsed());
    match r {
        Ok(m) => {
            s.check_took("migration: migrations done", took, || m.migrations());
            s.check_took("migration: divergent words", took, || m.stream());
            s.check_took(
                "migration: a DMA transfer in flight at a migration",
                took,
                || m.in_flight(),
            );
        }
        Err(e) => {
            s.check_took("migration: boots", took, || Err(e));
        }
    }
    rust_device_migration(s, guest);
}

/// The Rust device cannot be migrated (QEMU's vfio-user client carries no state and blocks
/// nothing): the tooling refuses it, and one short boot shows what a migration by hand does.
fn rust_device_migration(s: &mut Suite, guest: &Result<Guest>) {
    let Ok(g) = guest else { return };
    let servers = s.build(
        "migration: Rust device servers",
        || vfio_user::Servers::start(&vfio_user::build_server()?, 2),
        |_| "2 my-rng-vfio-user processes (source and destination)".into(),
    );
    let Some(servers) = servers else { return };
    let rust = parts::served(&servers, &g.vm);
    s.check(
        "migration: the tooling refuses the Rust device",
        || match migration::run(&rust, g.accel, migration::MIGRATIONS) {
            Ok(_) => Err(anyhow!("it migrated a VM with a vfio-user device")),
            Err(e) => {
                let e = format!("{e:#}");
                ensure!(e.contains("refusing to migrate"), "another error: {e}");
                Ok(format!("before starting QEMU: {e}"))
            }
        },
    );
    s.check(
        "migration: the Rust device migrated by hand loses its state",
        || migration::rust_device_by_hand(&rust, g.accel)?.check(),
    );
}

/// One boot and the checks on what it printed. A boot that cannot start or does not finish is
/// one failed check, `what`.
fn boot(
    s: &mut Suite,
    guest: &Result<Guest>,
    boot: vm::Boot,
    what: &str,
    checks: impl FnOnce(&mut Suite, &vm::Run),
) {
    let t = Instant::now();
    let run = guest
        .as_ref()
        .map_err(|e| anyhow!("{e:#}"))
        .and_then(|g| g.vm.boot(g.accel, &boot));
    match run {
        Ok(run) => {
            println!(
                "     ({what} ran under {}, {})",
                run.accel.name(),
                Took::Boot(run.elapsed).show(Duration::ZERO)
            );
            checks(s, &run);
        }
        Err(e) => {
            s.check_took(what, Took::Boot(t.elapsed()), || Err(e));
        }
    }
}

/// The built-in driver, two devices: the seed's checks, the e2e suite, FIPS tests, the log.
fn builtin_boot(s: &mut Suite, guest: &Result<Guest>) {
    let b = vm::Boot::new(Mode::Test, BOOT_LIMIT);
    boot(s, guest, b, "guest boot", |s, run| {
        s.check_took(
            "guest: bound driver (sysfs)",
            Took::steps(run, &[step::BOUND]),
            || checks::check_bound(&run.step(step::BOUND).0, Driver::C, parts::DEVICES),
        );
        test_mode_checks(s, run, "guest")
    });
}

/// The Rust driver (linux/rust/) built in and bound instead of the C one, two devices: the
/// built-in boot's checks, the full e2e suite included.
fn rust_driver_boot(s: &mut Suite, guest: &Result<Guest>) {
    let b = vm::Boot::new(Mode::Test, BOOT_LIMIT)
        .log_name("test-rust-driver")
        .driver(Driver::Rust);
    boot(s, guest, b, "Rust driver guest boot", |s, run| {
        s.check_took(
            "rust driver: bound driver (sysfs)",
            Took::steps(run, &[step::BOUND]),
            || checks::check_bound(&run.step(step::BOUND).0, Driver::Rust, parts::DEVICES),
        );
        test_mode_checks(s, run, "rust driver")
    });
}

/// The Rust driver as my_rng_rust.ko, with both built-in drivers kept out: insmod, the probe
/// self-test, the seed's app, unload refused while a file is open, then unload and reload.
fn rust_module_boot(s: &mut Suite, guest: &Result<Guest>) {
    let b = vm::Boot::new(Mode::RustModule, BOOT_LIMIT)
        .append(&format!("initcall_blacklist={}", rust_driver::C_INITCALL))
        .append(NO_MSI);
    boot(s, guest, b, "Rust module guest boot", |s, run| {
        let get = |k: &str| run.step(k);
        let step = |names: &[&str]| Took::steps(run, names);
        s.check_took(
            "rust module: insmod my_rng_rust.ko (built-in drivers kept out)",
            step(&[step::INSMOD, step::BOUND]),
            || {
                let (t, rc) = get(step::INSMOD);
                ensure!(rc == 0, "insmod step exit {rc}: {}", t.trim());
                checks::check_bound(&get(step::BOUND).0, Driver::Rust, parts::DEVICES)
            },
        );
        // The probe, its self-test and its interrupt line happen at insmod.
        s.check_took(
            "rust module: probe self-test",
            step(&[step::INSMOD]),
            || checks::selftest(&get(step::SELFTEST).0, parts::DEVICES),
        );
        s.check_took("rust module: seed's C app", step(&[step::MY_APP]), || {
            let (t, rc) = get(step::MY_APP);
            checks::app_output(&t, rc, 0)
        });
        s.check_took(
            "rust module: INTx completion (pci=nomsi)",
            step(&[step::INSMOD]),
            || checks::interrupt_kind(&get(step::IRQ).0, "my_rng_rust", "INTx", parts::DEVICES),
        );
        s.check_took(
            "rust module: DMA read vectors over INTx (e2e dma-read-vectors-*)",
            step(&[step::E2E_DMA]),
            || {
                let (t, rc) = get(step::E2E_DMA);
                checks::e2e(&t, rc).map(|r| r.0)
            },
        );
        s.check_took(
            "rust module: rmmod refused with a file open, then unload and reload",
            step(&[step::RELOAD, step::MY_APP_RELOADED]),
            || {
                let (t, rc) = get(step::RELOAD);
                ensure!(rc == 0, "reload step exit {rc}: {}", t.trim());
                checks::check_bound(&t, Driver::Rust, parts::DEVICES)?;
                let (t, rc) = get(step::MY_APP_RELOADED);
                checks::app_output(&t, rc, 0)
            },
        );
        s.check_took(
            "rust module: kernel log clean",
            Took::Boot(run.elapsed),
            || checks::kernel_log_clean(&run.log),
        );
    });
}

/// The module boots run without MSI, so that the drivers' INTx path (shared, level) is
/// tested too; the built-in boots use MSI.
const NO_MSI: &str = "pci=nomsi";

/// The checks of a `test`-mode boot, named `<prefix>: ...`.
fn test_mode_checks(s: &mut Suite, run: &vm::Run, prefix: &str) {
    let get = |k: &str| run.step(k);
    let step = |names: &[&str]| Took::steps(run, names);
    let boot = Took::Boot(run.elapsed);
    s.check_took(
        &format!("{prefix}: device visible on PCI"),
        step(&[step::PCI]),
        || checks::pci(&get(step::PCI).0, parts::DEVICES),
    );
    // The built-in driver's probe and self-test run during the kernel's boot.
    s.check_took(&format!("{prefix}: driver boot self-test"), boot, || {
        checks::selftest(&get(step::SELFTEST).0, parts::DEVICES)
    });
    s.check_took(
        &format!("{prefix}: raw MMIO, seed 0x42 at BAR0+4 (devmem)"),
        step(&[step::RAWMMIO]),
        || {
            let (t, rc) = get(step::RAWMMIO);
            checks::raw_mmio(&t, rc)
        },
    );
    s.check_took(
        &format!("{prefix}: seed's C app"),
        step(&[step::MY_APP]),
        || {
            let (t, rc) = get(step::MY_APP);
            checks::app_output(&t, rc, 0)
        },
    );
    s.check_took(
        &format!("{prefix}: my-rng demo"),
        step(&[step::DEMO]),
        || {
            let (t, rc) = get(step::DEMO);
            checks::app_output(&t, rc, 0)
        },
    );
    s.check_took(
        &format!("{prefix}: in-guest e2e tests"),
        step(&[step::E2E]),
        || {
            let (t, rc) = get(step::E2E);
            checks::e2e(&t, rc).map(|r| r.0)
        },
    );
    // The kernel's hwrng may fail two blocks in 100 (FIPS 140-2's expected rate); the seeded
    // algorithms none.
    for (src, max_failures) in RNGTEST_SOURCES.into_iter().zip([2, 0, 0]) {
        let name = step::rngtest(src);
        s.check_took(
            &format!("{prefix}: rngtest on {src}"),
            step(&[&name]),
            || checks::rngtest(&get(&name).0, max_failures),
        );
    }
    s.check_took(&format!("{prefix}: kernel log clean"), boot, || {
        checks::kernel_log_clean(&run.log)
    });
}

/// The Rust device (vfio-user/): the same driver, programs and checks as the built-in boot,
/// with both devices served by `my-rng-vfio-user` processes through QEMU's vfio-user-pci.
fn rust_device_boot(s: &mut Suite, guest: &Result<Guest>) {
    let servers = s.build(
        "rust device: server build and start",
        || vfio_user::Servers::start(&vfio_user::build_server()?, parts::DEVICES),
        |_| format!("{} my-rng-vfio-user processes", parts::DEVICES),
    );
    let Some(servers) = servers else {
        return;
    };
    let guest = guest
        .as_ref()
        .map(|g| Guest {
            vm: parts::served(&servers, &g.vm),
            accel: g.accel,
            bins: g.bins.clone(),
        })
        .map_err(|e| anyhow!("{e:#}"));
    let b = vm::Boot::new(Mode::Test, RUST_BOOT_LIMIT).log_name("test-rust");
    boot(s, &guest, b, "rust device guest boot", |s, run| {
        test_mode_checks(s, run, "rust device")
    });
    s.check("rust device: servers stop cleanly on SIGTERM", || {
        servers.stop()
    });
}

/// The same driver as the out-of-tree my_rng.ko, with the built-in one kept out.
fn module_boot(s: &mut Suite, guest: &Result<Guest>) {
    // The built-in driver's initcall is skipped, so only my_rng.ko can bind the devices.
    let b = vm::Boot::new(Mode::Module, BOOT_LIMIT)
        .append("initcall_blacklist=my_rng_pci_driver_init")
        .append(NO_MSI);
    boot(s, guest, b, "module guest boot", |s, run| {
        let get = |k: &str| run.step(k);
        let step = |names: &[&str]| Took::steps(run, names);
        s.check_took(
            "module: insmod my_rng.ko (built-in driver kept out)",
            step(&[step::INSMOD]),
            || {
                let (t, rc) = get(step::INSMOD);
                ensure!(rc == 0, "insmod step exit {rc}: {}", t.trim());
                Ok("my_rng.ko bound the devices".into())
            },
        );
        // The probe, its self-test and its interrupt line happen at insmod.
        s.check_took("module: probe self-test", step(&[step::INSMOD]), || {
            checks::selftest(&get(step::SELFTEST).0, parts::DEVICES)
        });
        s.check_took("module: seed's C app", step(&[step::MY_APP]), || {
            let (t, rc) = get(step::MY_APP);
            checks::app_output(&t, rc, 0)
        });
        s.check_took(
            "module: INTx completion (pci=nomsi)",
            step(&[step::INSMOD]),
            || checks::interrupt_kind(&get(step::IRQ).0, "my_rng", "INTx", parts::DEVICES),
        );
        s.check_took(
            "module: in-guest e2e tests with unload/reload (INTx)",
            step(&[step::E2E]),
            || {
                let (t, rc) = get(step::E2E);
                checks::e2e(&t, rc).map(|r| r.0)
            },
        );
        s.check_took("module: kernel log clean", Took::Boot(run.elapsed), || {
            checks::kernel_log_clean(&run.log)
        });
    });
}

/// The benchmark, a few calls per row, in its own boot (one my_rng device and virtio-rng):
/// every row must produce a number; how fast is never checked.
fn bench_smoke(s: &mut Suite, guest: &Result<Guest>) {
    s.check("bench smoke (every row produces a number)", || {
        let g = guest.as_ref().map_err(|e| anyhow!("{e:#}"))?;
        let out = bench::smoke(&g.vm, g.accel)?;
        Ok(format!(
            "{} rows measured (files: {})",
            out.rated.len(),
            out.dir.display()
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_show_the_time_of_what_they_report() {
        let log = "@@MYRNG BEGIN e2e\nok\n@@MYRNG END e2e secs=38.07 rc=0\n\
                   @@MYRNG BEGIN my-app\n@@MYRNG END my-app secs=0.42 rc=0\n\
                   @@MYRNG BEGIN old\n@@MYRNG END old rc=0\n";
        let framed = vm::parse_steps(log);
        let run = vm::Run {
            accel: vm::Accel::Tcg,
            log: log.into(),
            steps: framed,
            step_secs: [("e2e".to_string(), 38.07), ("my-app".to_string(), 0.42)].into(),
            elapsed: Duration::from_millis(95_400),
            done: true,
        };
        let own = Duration::from_millis(3);
        assert_eq!(Took::steps(&run, &["e2e"]).show(own), "38 s");
        assert_eq!(Took::steps(&run, &["my-app"]).show(own), "0.4 s");
        assert_eq!(Took::steps(&run, &["e2e", "my-app"]), Took::Guest(38.49));
        // A step without a time, or one that never ended: the boot's time, labelled.
        assert_eq!(Took::steps(&run, &["old"]).show(own), "boot 95 s");
        assert_eq!(Took::steps(&run, &["e2e", "cut"]).show(own), "boot 95 s");
        assert_eq!(Took::Own.show(Duration::from_secs(312)), "312 s");
        assert_eq!(Took::Own.show(own), "0.0 s");
        assert_eq!(seconds(9.96), "10 s");
    }
}
