//! `my-rng-e2e`: end-to-end tests of the my_rng device + driver, run as root in the guest.
//!
//! Prints `ok - <name>` or `not ok - <name>: <reason>` per test, then `N passed, M failed`;
//! exits 0 iff nothing failed. Expected values come from the committed test vectors only.
//!
//! Tests of the DMA read paths need FEATURES.DMA. On a device without it they print
//! `skip - <name>: not applicable: ...` and count neither as passed nor failed, unless
//! `--expect-dma` says the device must have DMA: then each of them fails.

mod suite;

use my_rng_protocol::e2e;

pub(crate) use my_rng_e2e::util;

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Device};

use suite::{Ctx, Test};

/// What the runner does with one test.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    Run,
    /// Not applicable to this device: reported, counted neither way.
    Skip(String),
    /// Fails without running.
    Fail(String),
}

/// Whether `t` can run, given what INFO said about DMA (`Err`: INFO itself failed, and the
/// test then runs and fails on its own: without a device nothing is skipped).
fn gate(t: &Test, dma: &Result<u32, String>, expect_dma: bool) -> Gate {
    match dma {
        Ok(features) if t.needs_dma && features & my_rng::regs::FEAT_DMA == 0 => {
            let why = format!("the device has no DMA feature (FEATURES {features:#x})");
            if expect_dma {
                Gate::Fail(format!("{why}, but --expect-dma"))
            } else {
                Gate::Skip(format!("not applicable: {why}"))
            }
        }
        _ => Gate::Run,
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "my-rng-e2e",
    version,
    about = "End-to-end tests of the my_rng device and driver (run as root in the guest)"
)]
struct Args {
    /// List the test names and exit
    #[arg(long)]
    list: bool,
    /// First device node
    #[arg(long, value_name = "PATH", default_value = my_rng::DEFAULT_PATH)]
    device: PathBuf,
    /// Second device node (two-device and unbind tests)
    #[arg(long, value_name = "PATH", default_value = "/dev/my_rng_driver1")]
    device1: PathBuf,
    /// Per-test time limit in seconds; a test still running then fails
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    timeout: u64,
    /// Time limit for the whole run in seconds; tests not started by then fail as "not run"
    /// (so the summary line is printed well inside the VM runner's own limit)
    #[arg(long, value_name = "SECS", default_value_t = 540)]
    total_timeout: u64,
    /// The driver is the loadable my_rng.ko: also run the module tests (unload, reload)
    #[arg(long)]
    module: bool,
    /// The device must be ABI 2.1 with DMA: a missing DMA feature fails the DMA tests (and
    /// `info` expects the 2.1 identity) instead of making them not applicable
    #[arg(long)]
    expect_dma: bool,
    /// Run only tests whose name contains one of these strings
    filters: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut all = suite::all();
    if args.module {
        // Before kmsg-clean, which should also see what unloading logged.
        let at = all.len() - 1;
        all.splice(at..at, suite::module_tests());
    }
    if args.list {
        for t in &all {
            println!("{}", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<Arc<Test>> = all
        .into_iter()
        .filter(|t| args.filters.is_empty() || args.filters.iter().any(|f| t.name.contains(f)))
        .map(Arc::new)
        .collect();
    let ctx = Arc::new(Ctx {
        dev0: args.device.clone(),
        dev1: args.device1.clone(),
        sys: Sysfs::default(),
        expect_dma: args.expect_dma,
    });

    // Panics are reported on the test's line; keep the default hook's backtrace off stdout.
    panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));

    let mut tally = Tally::default();
    if selected.is_empty() {
        tally.record("filter", Err(format!("no test matches {:?}", args.filters)));
    }
    run_all(&selected, &ctx, &args, &mut tally);
    reset_devices(&ctx);
    if tally.skipped > 0 {
        println!("{}", e2e::not_applicable(tally.skipped));
    }
    let summary = e2e::Summary {
        passed: tally.passed,
        failed: tally.failed,
    };
    println!("{summary}");
    let _ = std::io::stdout().flush();
    // exit() rather than returning: a test that timed out may have left a thread stuck in
    // a syscall, and the process must still end.
    std::process::exit(if tally.failed == 0 { 0 } else { 1 });
}

/// Counts of a run; [`Tally::record`] prints each test's line.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn record(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.passed += 1;
                println!("{}{name}", e2e::OK);
            }
            Err(reason) => {
                self.failed += 1;
                println!("{}{name}: {}", e2e::NOT_OK, one_line(&reason));
            }
        }
        let _ = std::io::stdout().flush();
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.skipped += 1;
        println!("{}{name}: {}", e2e::SKIP, one_line(why));
    }
}

/// Run `selected` in order, each within its limit and the run's budget.
fn run_all(selected: &[Arc<Test>], ctx: &Arc<Ctx>, args: &Args, tally: &mut Tally) {
    let features = Device::open(&ctx.dev0)
        .and_then(|d| d.info())
        .map(|i| i.features)
        .map_err(|e| e.to_string());
    let per_test = Duration::from_secs(args.timeout);
    let deadline = Instant::now() + Duration::from_secs(args.total_timeout);
    for t in selected {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = match gate(t, &features, args.expect_dma) {
            Gate::Skip(why) => {
                tally.skip(&t.name, &why);
                continue;
            }
            Gate::Fail(why) => Err(why),
            Gate::Run if left.is_zero() => Err(format!(
                "not run: the run's {} s budget is used up",
                args.total_timeout
            )),
            Gate::Run => run_one(t, ctx, per_test.max(t.min_limit).min(left)),
        };
        tally.record(&t.name, r);
    }
}

/// Leave the devices as a fresh boot has them for whoever comes next (best effort).
fn reset_devices(ctx: &Ctx) {
    for p in [&ctx.dev0, &ctx.dev1] {
        if let Ok(d) = Device::open(p) {
            let _ = d.set_algorithm(Algorithm::Glibc);
            let _ = d.seed(0);
        }
    }
}

/// Run one test on its own thread, bounded by `limit`; panics and timeouts become failures.
fn run_one(t: &Arc<Test>, ctx: &Arc<Ctx>, limit: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let (t2, ctx2) = (t.clone(), ctx.clone());
    thread::Builder::new()
        .name("test".into())
        .spawn(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| (t2.run)(&ctx2)));
            let r = r.unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown payload".into());
                Err(format!("panicked: {msg}"))
            });
            let _ = tx.send(r);
        })
        .map_err(|e| format!("cannot spawn test thread: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("timed out after {}s (hung?)", limit.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("test thread died".into()),
    }
}

/// The protocol is one line per test.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn args() {
        let a = Args::try_parse_from(["e2e", "--list"]).unwrap();
        assert!(a.list);
        assert_eq!(a.device, PathBuf::from("/dev/my_rng_driver"));
        let a = Args::try_parse_from(["e2e", "--device", "/dev/x", "read", "seed-read"]).unwrap();
        assert_eq!(a.device, PathBuf::from("/dev/x"));
        assert_eq!(a.filters, ["read", "seed-read"]);
        assert!(Args::try_parse_from(["e2e", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn runner_reports_panics_and_timeouts() {
        let ctx = Arc::new(Ctx {
            dev0: "/nonexistent".into(),
            dev1: "/nonexistent1".into(),
            sys: Sysfs::at("/nonexistent-sys"),
            expect_dma: false,
        });
        let panicky = Arc::new(Test {
            name: "p".into(),
            run: Box::new(|_| panic!("boom")),
            min_limit: Duration::ZERO,
            needs_dma: false,
        });
        let e = run_one(&panicky, &ctx, Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("boom"), "{e}");
        let slow = Arc::new(Test {
            name: "s".into(),
            run: Box::new(|_| {
                thread::sleep(Duration::from_secs(10));
                Ok(())
            }),
            min_limit: Duration::ZERO,
            needs_dma: false,
        });
        let e = run_one(&slow, &ctx, Duration::from_millis(50)).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        // Without a device every test fails (never skips) with a reason.
        for t in suite::all().into_iter().chain(suite::module_tests()) {
            let name = t.name.clone();
            if name == "kmsg-clean" || name.starts_with("hwrng") {
                continue; // these do not need the my_rng node and may pass on the host
            }
            let r = run_one(&Arc::new(t), &ctx, Duration::from_secs(10));
            assert!(r.is_err(), "{name} passed without a device");
        }
    }

    #[test]
    fn dma_tests_are_gated_on_the_feature() {
        let dma = suite::all().into_iter().find(|t| t.needs_dma).unwrap();
        let plain = suite::all().into_iter().find(|t| !t.needs_dma).unwrap();
        let (v20, v21): (Result<u32, String>, _) = (Ok(0x7), Ok(0x1f));
        assert_eq!(gate(&dma, &v21, false), Gate::Run);
        assert_eq!(gate(&dma, &v21, true), Gate::Run);
        assert!(matches!(gate(&dma, &v20, false), Gate::Skip(w) if w.contains("FEATURES 0x7")));
        assert!(matches!(gate(&dma, &v20, true), Gate::Fail(w) if w.contains("--expect-dma")));
        assert_eq!(gate(&plain, &v20, true), Gate::Run);
        // No answer from INFO: run, and let the test fail.
        assert_eq!(gate(&dma, &Err("ENOENT".into()), false), Gate::Run);
    }

    #[test]
    fn one_line_reasons() {
        assert_eq!(one_line("a\nb  c\n"), "a b c");
    }
}
