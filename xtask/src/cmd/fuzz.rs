//! `cargo xtask fuzz qemu --time N`: QEMU's own libFuzzer target `generic-fuzz` on a machine
//! with one my_rng device, in a clang build of the same QEMU tree with AddressSanitizer and
//! UndefinedBehaviorSanitizer. generic-fuzz writes and reads the regions named in
//! QEMU_FUZZ_OBJECTS at random, and answers the device's own DMA reads (its segment lists) with
//! fuzzer data, so the DMA engine is reached too. The corpus is kept in the cache between runs;
//! a crash leaves its input in the artifacts folder and fails the command.

use crate::apt;
use crate::qemu::{self, FIRMWARE_DIRS, MAIN_VERSIONS};
use crate::util::{
    cache_dir, key_of, note, out_dir, run_logged, run_logged_progress, step, Progress,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The fuzzing build's configure arguments (see ../shared/build-facts.md: i386-softmmu is the
/// fuzzer's usual target and builds fastest).
fn configure() -> Vec<&'static str> {
    qemu::configure_args(
        "--target-list=i386-softmmu",
        &["--enable-fuzzing", "--enable-asan", "--enable-ubsan"],
    )
}
const CC: &str = "clang-19";
const CXX: &str = "clang++-19";
/// libFuzzer's, ASan's and UBSan's runtimes for clang-19.
const PACKAGES: &[&str] = &["libclang-rt-19-dev"];

/// What a run found.
pub struct Report {
    pub seconds: u64,
    pub executions: u64,
    pub exec_per_sec: u64,
    /// libFuzzer's coverage counters at the end (edges, features).
    pub cov: u64,
    pub ft: u64,
    pub corpus: usize,
    pub crashes: Vec<PathBuf>,
    /// Functions of my-rng*.c that libFuzzer reports covered, and all of them.
    pub device_funcs: (usize, usize),
}

/// Builds the fuzzer (once; incremental after) and returns its binary.
fn build() -> Result<PathBuf> {
    apt::ensure_extra_packages(PACKAGES)?;
    // The fixed tree, as every other build of ours: the fuzzer tests the QEMU the suite runs.
    let t = qemu::prepare(MAIN_VERSIONS, crate::cli::Flavour::Fixed)?;
    let dir = t.build.with_file_name("build-fuzz");
    let stamp = dir.join(".my-rng-configure");
    let args = configure();
    let key = key_of(&[args.join(" ").as_bytes(), CC.as_bytes()]);
    if !(dir.join("build.ninja").exists() && fs::read_to_string(&stamp).ok() == Some(key.clone())) {
        step(&format!(
            "Configuring QEMU {} for fuzzing (clang, libFuzzer, ASan, UBSan; {})",
            t.version, t.label
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        run_logged(
            Command::new(t.work.join("configure"))
                .env("CC", CC)
                .env("CXX", CXX)
                .args(&args)
                .current_dir(&dir),
            &cache_dir().join("logs/qemu-fuzz-configure.log"),
        )?;
        fs::write(&stamp, key)?;
    }
    step("Building qemu-fuzz-i386 (first time about 10 CPU-minutes, then incremental)");
    run_logged_progress(
        Command::new("ninja")
            .arg("-C")
            .arg(&dir)
            .arg(format!("-j{}", crate::util::jobs()))
            .arg("qemu-fuzz-i386"),
        &cache_dir().join("logs/qemu-fuzz-build.log"),
        Progress::ninja(&format!("qemu-fuzz-i386 ({})", t.label)),
    )?;
    Ok(dir.join("qemu-fuzz-i386"))
}

/// Reads libFuzzer's figures from its output.
fn parse(out: &str, report: &mut Report) {
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            report.executions = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            report.exec_per_sec = v.trim().parse().unwrap_or(0);
        }
        // "#123 DONE cov: 456 ft: 789 corp: ..." and the periodic status lines.
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            match w[0] {
                "cov:" => report.cov = w[1].parse().unwrap_or(report.cov),
                "ft:" => report.ft = w[1].parse().unwrap_or(report.ft),
                _ => {}
            }
        }
    }
    let funcs: Vec<&str> = out
        .lines()
        // The device's own files (the cache's path also says "my-rng").
        .filter(|l| l.contains("COVERED_FUNC") && l.contains("/hw/misc/my-rng"))
        .collect();
    let covered = funcs
        .iter()
        .filter(|l| l.starts_with("COVERED_FUNC"))
        .count();
    report.device_funcs = (covered, funcs.len());
}

/// The fuzzer's log; a note if generic-fuzz did not find the device.
fn read_log(log: &Path) -> String {
    let out = fs::read_to_string(log).unwrap_or_default();
    if !out.contains("my_rng") {
        note("generic-fuzz's start-up region list does not name my_rng: check QEMU_FUZZ_ARGS");
    }
    out
}

/// QEMU_FUZZ_ARGS: the firmware folders and one my_rng device.
fn fuzz_args() -> String {
    let mut args = String::new();
    for d in FIRMWARE_DIRS {
        args.push_str(&format!("-L {d} "));
    }
    args.push_str("-nodefaults -device my_rng");
    args
}

/// The run's figures in one line.
fn print_report(report: &Report, log: &Path) {
    println!(
        "generic-fuzz on my_rng: {} s, {} executions ({} /s), cov {} ft {}, corpus {} inputs, \
         device functions covered {}/{}, {} new crash(es) (log: {})",
        report.seconds,
        report.executions,
        report.exec_per_sec,
        report.cov,
        report.ft,
        report.corpus,
        report.device_funcs.0,
        report.device_funcs.1,
        report.crashes.len(),
        log.display()
    );
}

/// Runs generic-fuzz for `seconds` (libFuzzer's -max_total_time) on two cores.
pub fn qemu(seconds: u64) -> Result<Report> {
    let bin = build()?;
    let root = cache_dir().join("fuzz/qemu");
    let corpus = root.join("corpus");
    let artifacts = root.join("artifacts");
    fs::create_dir_all(&corpus)?;
    fs::create_dir_all(&artifacts)?;
    let before: Vec<PathBuf> = list(&artifacts)?;
    let args = fuzz_args();
    step(&format!(
        "Fuzzing the my_rng device with generic-fuzz for {seconds} s (corpus {})",
        corpus.display()
    ));
    let log = out_dir().join("fuzz-qemu.log");
    let start = Instant::now();
    let res = run_logged(
        Command::new(&bin)
            .env("QEMU_FUZZ_ARGS", &args)
            .env("QEMU_FUZZ_OBJECTS", "my_rng")
            .arg("--fuzz-target=generic-fuzz")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            .arg("-print_coverage=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus),
        &log,
    );
    let out = read_log(&log);
    let mut report = Report {
        seconds: start.elapsed().as_secs(),
        executions: 0,
        exec_per_sec: 0,
        cov: 0,
        ft: 0,
        corpus: list(&corpus)?.len(),
        crashes: list(&artifacts)?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect(),
        device_funcs: (0, 0),
    };
    parse(&out, &mut report);
    print_report(&report, &log);
    if !report.crashes.is_empty() || res.is_err() {
        bail!(
            "the fuzzer found a crash: {} (reproduce with {} --fuzz-target=generic-fuzz <input>, \
             same QEMU_FUZZ_ARGS and QEMU_FUZZ_OBJECTS)",
            report
                .crashes
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            bin.display()
        );
    }
    Ok(report)
}

/// Writes a crash-free run's figures to docs/results/fuzz-qemu.txt as `key: value` lines.
pub fn record(r: &Report) -> Result<()> {
    let path = crate::util::repo_root().join("docs/results/fuzz-qemu.txt");
    fs::create_dir_all(path.parent().unwrap())?;
    let text = format!(
        "# Written by `cargo xtask fuzz qemu --time N --record` ({} s run).\n\
         date: {}\nseconds: {}\nexecutions: {}\nexec_per_sec: {}\ncov: {}\nft: {}\n\
         corpus: {}\ndevice_functions_covered: {}\ndevice_functions: {}\ncrashes: {}\n",
        r.seconds,
        crate::util::today(),
        r.seconds,
        r.executions,
        r.exec_per_sec,
        r.cov,
        r.ft,
        r.corpus,
        r.device_funcs.0,
        r.device_funcs.1,
        r.crashes.len()
    );
    fs::write(&path, text)?;
    note(&format!("recorded in {}", path.display()));
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_figures_are_read() {
        let out = "#2\tINITED cov: 120 ft: 130 corp: 1/1b exec/s: 0 rss: 300Mb\n\
                   #1000\tDONE cov: 456 ft: 789 corp: 40/2Kb lim: 4 exec/s: 500 rss: 600Mb\n\
                   stat::number_of_executed_units: 61234\n\
                   stat::average_exec_per_sec:     510\n\
                   COVERED_FUNC: hits: 5 edges: 3/4 my_rng_mmio_read /x/hw/misc/my-rng.c:10\n\
                   UNCOVERED_FUNC: hits: 0 edges: 0/2 my_rng_post_load /x/hw/misc/my-rng.c:90\n\
                   COVERED_FUNC: hits: 9 edges: 1/1 qemu_init /root/.cache/my-rng/src/vl.c:5\n";
        let mut r = Report {
            seconds: 0,
            executions: 0,
            exec_per_sec: 0,
            cov: 0,
            ft: 0,
            corpus: 0,
            crashes: vec![],
            device_funcs: (0, 0),
        };
        parse(out, &mut r);
        assert_eq!(
            (r.executions, r.exec_per_sec, r.cov, r.ft),
            (61234, 510, 456, 789)
        );
        assert_eq!(r.device_funcs, (1, 2));
    }
}
