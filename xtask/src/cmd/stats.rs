//! `cargo xtask stats`: statistical quality with dieharder (Debian bookworm's 3.31.1).
//!
//! - Host: `dieharder -a -g 200` (raw binary on stdin) on the byte stream of the reference
//!   generators (`spec/examples/stream.rs`: the little-endian `next_u64()` outputs, exactly
//!   what read() of the device returns), one generator at a time and niced: the machine is
//!   shared.
//! - Guest: a selection of tests on `my-rng dump` (read() of the device) for xoshiro256pp,
//!   chacha20 and host, in one boot of the `stats` mode. For the two seeded algorithms the
//!   host runs the same selection on the reference stream as well: same bytes in, so the
//!   p-values must be identical.
//!
//! Writes docs/stats/ (`--quick`: target/my-rng/stats-quick/): per run `<name>.txt`
//! (dieharder's output), `<name>.md` (the table) and `<name>.json` (the record the summary is
//! made from), and `summary.md` over every record in the folder, so that a `--host` and a
//! `--guest` run made apart end up in one summary.

use crate::util::{note, out_dir, repo_root, run, step};
use crate::{apt, guest, vm};
use anyhow::{bail, ensure, Context, Result};
use my_rng_protocol::{param, step, Mode};
use my_rng_spec::Algorithm;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The seed of every seeded run (host and guest), so a guest test reads the same bytes as
/// the host's run of it.
pub const SEED: u32 = 1;

/// The host's long runs, in this order.
const HOST_ALGS: [Algorithm; 3] = [
    Algorithm::Xoshiro256pp,
    Algorithm::ChaCha20,
    Algorithm::Glibc,
];

/// The guest's runs, in this order.
const GUEST_ALGS: [Algorithm; 3] = [
    Algorithm::Xoshiro256pp,
    Algorithm::ChaCha20,
    Algorithm::Host,
];

/// The guest's selection, dieharder test numbers (`-d`), each with its default options:
/// tests that need few random numbers, of different kinds (birthday spacings, counting the 1s
/// in bytes, 2D minimum distance, runs, STS monobit, DCT). About 5 s per generator on the
/// host; TCG runs dieharder some 15 times slower (dieharder reports ~2e6 rands/s in the guest
/// against ~5e7 on the host), so about 1.5 min per generator.
const GUEST_TESTS: &[u32] = &[0, 8, 11, 15, 100, 206];

/// `--quick` in the guest: a smoke check that the chain works, not a measurement.
const GUEST_QUICK: &[u32] = &[0, 100];

/// `--quick` on the host: a few fast tests (birthdays, 6x8 binary rank, count the 1s, runs,
/// STS monobit, DCT), about 15 s per generator.
const HOST_QUICK: &[u32] = &[0, 3, 8, 15, 100, 206];

/// What a run asks of dieharder.
#[derive(Clone, Copy, Debug)]
enum Selection {
    /// `-a`: every test with its default options, one dieharder reading one stream.
    All,
    /// One dieharder per test, each on a stream from the seed.
    Tests(&'static [u32]),
}

impl Selection {
    /// The command line(s), for the record: `source | <dieharder> ...`.
    fn commands(&self, source: &str, dieharder: &str) -> String {
        match self {
            Selection::All => format!("{source} | {dieharder} -a -g 200"),
            Selection::Tests([one]) => format!("{source} | {dieharder} -g 200 -d {one}"),
            Selection::Tests(tests) => format!(
                "{source} | {dieharder} -g 200 -d N, for each N of {}",
                tests
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// dieharder's verdict on one p-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Assessment {
    Passed,
    Weak,
    Failed,
}

impl Assessment {
    fn word(self) -> &'static str {
        match self {
            Assessment::Passed => "PASSED",
            Assessment::Weak => "WEAK",
            Assessment::Failed => "FAILED",
        }
    }
}

/// One result line of dieharder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub test: String,
    pub ntup: u32,
    pub tsamples: u64,
    pub psamples: u64,
    pub p_value: f64,
    pub assessment: Assessment,
}

impl Row {
    /// The p-value as dieharder prints it (`%10.8f`).
    fn p(&self) -> String {
        format!("{:.8}", self.p_value)
    }
}

/// A result line: `   diehard_birthdays|   0|       100|     100|0.72473008|  PASSED  `.
/// Anything else (banners, the header, the generator line, our own `==` lines, kernel
/// messages) is None.
pub fn parse_line(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.split('|').map(str::trim).collect();
    let [test, ntup, tsamples, psamples, p, verdict] = fields.as_slice() else {
        return None;
    };
    let assessment = match *verdict {
        "PASSED" => Assessment::Passed,
        "WEAK" => Assessment::Weak,
        "FAILED" => Assessment::Failed,
        _ => return None,
    };
    if test.is_empty() || test.contains(char::is_whitespace) {
        return None;
    }
    let p_value: f64 = p.parse().ok()?;
    if !(0.0..=1.0).contains(&p_value) {
        return None;
    }
    Some(Row {
        test: test.to_string(),
        ntup: ntup.parse().ok()?,
        tsamples: tsamples.parse().ok()?,
        psamples: psamples.parse().ok()?,
        p_value,
        assessment,
    })
}

/// Every result line of dieharder's output.
pub fn parse(text: &str) -> Vec<Row> {
    text.lines().filter_map(parse_line).collect()
}

/// PASSED/WEAK/FAILED counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub weak: usize,
    pub failed: usize,
}

pub fn counts(rows: &[Row]) -> Counts {
    let mut c = Counts::default();
    for r in rows {
        match r.assessment {
            Assessment::Passed => c.passed += 1,
            Assessment::Weak => c.weak += 1,
            Assessment::Failed => c.failed += 1,
        }
    }
    c
}

/// One run: a generator through dieharder, on the host or in the guest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// File stem: host-xoshiro256pp, guest-chacha20, ...
    pub name: String,
    /// "host" or "guest".
    pub place: String,
    pub algorithm: String,
    /// None for the host algorithm (entropy, not seeded).
    pub seed: Option<u32>,
    /// The command lines that produced it.
    pub command: String,
    pub date: String,
    /// Wall-clock time of the dieharder runs.
    pub seconds: u64,
    /// Where it ran: dieharder version, nice level or accelerator, QEMU and kernel.
    pub environment: String,
    pub quick: bool,
    /// Host runs: the bytes dieharder read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Guest runs of seeded algorithms: the comparison with the host's run of the same tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crosscheck: Option<String>,
    pub rows: Vec<Row>,
}

impl Record {
    fn counts(&self) -> Counts {
        counts(&self.rows)
    }

    /// Whether FAILED counts against the generator: glibc's rand() fails by design.
    fn failures_expected(&self) -> bool {
        self.algorithm == Algorithm::Glibc.name()
    }
}

/// `cargo xtask stats` options.
pub struct Options {
    /// Only rewrite the markdown from the records.
    pub render: bool,
    pub host: bool,
    pub guest: bool,
    pub quick: bool,
    pub tcg: bool,
    /// The host runs of these generators only (empty: all of them).
    pub algs: Vec<String>,
}

/// Where the files go.
fn dir(quick: bool) -> PathBuf {
    if quick {
        out_dir().join("stats-quick")
    } else {
        repo_root().join("docs/stats")
    }
}

pub fn main(o: Options) -> Result<()> {
    let dir = dir(o.quick);
    if o.render {
        return render(&dir);
    }
    apt::ensure_stats_packages()?;
    fs::create_dir_all(&dir)?;
    let version = dieharder_version()?;
    let producer = build_producer()?;
    let mut records = Vec::new();
    // The guest first: minutes, where the host's -a runs take hours.
    if o.guest {
        records.extend(guest_runs(&o, &dir, &version, &producer)?);
    }
    if o.host {
        records.extend(host_runs(&o, &dir, &version, &producer)?);
    }
    print_records(&dir, &records);
    verdict(&records)
}

/// The host runs of the generators `o.algs` names (all of them if none), each written.
fn host_runs(o: &Options, dir: &Path, version: &str, producer: &Path) -> Result<Vec<Record>> {
    let sel = if o.quick {
        Selection::Tests(HOST_QUICK)
    } else {
        Selection::All
    };
    for name in &o.algs {
        if !HOST_ALGS.iter().any(|a| a.name() == name) {
            bail!("--alg {name}: not one of the host runs' generators");
        }
    }
    let mut records = Vec::new();
    for alg in HOST_ALGS
        .into_iter()
        .filter(|a| o.algs.is_empty() || o.algs.iter().any(|n| n == a.name()))
    {
        let (r, raw) = host_run(producer, alg, sel, o.quick, version)?;
        write_record(dir, &r, &raw)?;
        records.push(r);
    }
    Ok(records)
}

/// Each record's counts, and its tests that did not pass.
fn print_records(dir: &Path, records: &[Record]) {
    step(&format!("dieharder results (files in {})", dir.display()));
    for r in records {
        let c = r.counts();
        println!(
            "{:<24} {:>3} tests: {:>3} PASSED {:>2} WEAK {:>3} FAILED  ({})",
            r.name,
            r.rows.len(),
            c.passed,
            c.weak,
            c.failed,
            duration(r.seconds)
        );
        for row in r.rows.iter().filter(|x| x.assessment != Assessment::Passed) {
            println!(
                "    {} {} ntup {}: p = {}",
                row.assessment.word(),
                row.test,
                row.ntup,
                row.p()
            );
        }
    }
}

/// Fails on a record with failures not expected of its generator, or a guest run that
/// differs from the host's run on the reference stream.
fn verdict(records: &[Record]) -> Result<()> {
    let mut bad = Vec::new();
    for r in records {
        if r.counts().failed > 0 && !r.failures_expected() {
            bad.push(format!("{}: {} FAILED", r.name, r.counts().failed));
        }
        if let Some(c) = &r.crosscheck {
            if !c.starts_with("identical") {
                bad.push(format!("{}: {c}", r.name));
            }
        }
    }
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(())
}

/// "3.31.1", from dieharder's banner.
fn dieharder_version() -> Result<String> {
    let out = Command::new("dieharder")
        .arg("-l")
        .output()
        .context("cannot run dieharder")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("dieharder version ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string)
        .context("dieharder -l printed no version")
}

/// The stream producer, built optimised: an unoptimised ChaCha20 would be slower than
/// dieharder and set the pace of the long runs.
fn build_producer() -> Result<PathBuf> {
    step("Building the reference stream producer (spec/examples/stream.rs, release)");
    run(Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args(["build", "--quiet", "--release", "-p", "my-rng-spec"])
        .args(["--example", "stream"]))?;
    Ok(repo_root().join("target/release/examples/stream"))
}

/// `nice -n 19 <program>`: another engineer's builds keep the machine.
fn niced(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nice");
    c.args(["-n", "19"]).arg(program);
    c
}

/// One dieharder (`args` plus `-g 200`) reading the reference stream of `alg` from
/// [`SEED`]; each result line goes to `progress`. Returns dieharder's output and the bytes
/// it read (the producer's count: give or take a pipe buffer).
fn dieharder_on_stream(
    producer: &Path,
    alg: Algorithm,
    args: &[String],
    mut progress: impl FnMut(&str),
) -> Result<(String, u64)> {
    let mut source = niced(producer)
        .arg(alg.name())
        .arg(SEED.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the stream producer")?;
    let pipe = source.stdout.take().context("producer without stdout")?;
    // The Command is dropped right after spawn so that only dieharder holds the pipe's read
    // end: when dieharder exits, the producer gets EPIPE and ends.
    let dieharder = {
        let mut c = niced("dieharder");
        c.args(args)
            .args(["-g", "200"])
            .stdin(pipe)
            .stdout(Stdio::piped());
        c.spawn()
    };
    let mut dieharder = match dieharder {
        Ok(d) => d,
        Err(e) => {
            let _ = source.kill();
            let _ = source.wait();
            return Err(e).context("cannot start dieharder");
        }
    };
    let mut text = String::new();
    for line in BufReader::new(dieharder.stdout.take().context("no stdout")?).lines() {
        let line = line?;
        progress(&line);
        text.push_str(&line);
        text.push('\n');
    }
    let status = dieharder.wait()?;
    let out = source.wait_with_output()?;
    ensure!(
        status.success(),
        "dieharder {} failed ({status})",
        args.join(" ")
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let bytes = err
        .lines()
        .find_map(|l| {
            l.strip_prefix("stream: ")?
                .strip_suffix(" bytes")?
                .parse()
                .ok()
        })
        .with_context(|| format!("the stream producer did not count its bytes: {err}"))?;
    Ok((text, bytes))
}

/// One generator's run on the host.
fn host_run(
    producer: &Path,
    alg: Algorithm,
    sel: Selection,
    quick: bool,
    version: &str,
) -> Result<(Record, String)> {
    let source = format!("nice -n 19 target/release/examples/stream {alg} {SEED}");
    let runs: Vec<Vec<String>> = match sel {
        Selection::All => vec![vec!["-a".into()]],
        Selection::Tests(tests) => tests
            .iter()
            .map(|d| vec!["-d".to_string(), d.to_string()])
            .collect(),
    };
    step(&format!(
        "dieharder {} on the reference {alg} stream (seed {SEED}), nice -n 19{}",
        if matches!(sel, Selection::All) {
            "-a (every test; takes long)".to_string()
        } else {
            format!("{} test(s)", runs.len())
        },
        if matches!(sel, Selection::All) {
            ""
        } else {
            ", one dieharder per test"
        }
    ));
    let date = crate::util::today();
    let start = Instant::now();
    let (text, bytes) = host_dieharders(producer, alg, &runs, start)?;
    let rows = parse(&text);
    ensure!(!rows.is_empty(), "dieharder printed no result for {alg}");
    let r = Record {
        name: format!("host-{alg}"),
        place: "host".into(),
        algorithm: alg.name().into(),
        seed: Some(SEED),
        command: sel.commands(&source, "nice -n 19 dieharder"),
        date,
        seconds: start.elapsed().as_secs(),
        environment: format!(
            "host ({} cores), dieharder {version}, producer and dieharder at nice 19",
            crate::util::jobs()
        ),
        quick,
        bytes: Some(bytes),
        crosscheck: None,
        rows,
    };
    Ok((r, text))
}

/// One dieharder per argument list of `runs` on `alg`'s stream, each result shown as it
/// comes: their output (headed by the command when there are several) and the bytes read.
fn host_dieharders(
    producer: &Path,
    alg: Algorithm,
    runs: &[Vec<String>],
    start: Instant,
) -> Result<(String, u64)> {
    let mut text = String::new();
    let mut n = 0;
    let mut bytes = 0;
    for args in runs {
        if runs.len() > 1 {
            text.push_str(&format!("== {alg}: dieharder -g 200 {}\n", args.join(" ")));
        }
        let (out, read) = dieharder_on_stream(producer, alg, args, |line| {
            if let Some(r) = parse_line(line) {
                n += 1;
                note(&format!(
                    "{alg} #{n} {} ntup {}: p = {} {} ({})",
                    r.test,
                    r.ntup,
                    r.p(),
                    r.assessment.word(),
                    duration(start.elapsed().as_secs())
                ));
            }
        })?;
        text.push_str(&out);
        bytes += read;
    }
    Ok((text, bytes))
}

/// Writes `<name>.txt` (dieharder's output, `raw`), `<name>.md`, `<name>.json`, and the
/// summary.
fn write_record(dir: &Path, r: &Record, raw: &str) -> Result<()> {
    fs::write(dir.join(format!("{}.txt", r.name)), raw)?;
    fs::write(dir.join(format!("{}.md", r.name)), run_markdown(r))?;
    fs::write(
        dir.join(format!("{}.json", r.name)),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    let all = load_records(dir)?;
    fs::write(dir.join("summary.md"), summary_markdown(&all))?;
    Ok(())
}

/// Every record in `dir`, host runs first, each in its generator order.
fn load_records(dir: &Path) -> Result<Vec<Record>> {
    let mut out: Vec<Record> = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "json") {
            let r: Record = serde_json::from_str(&fs::read_to_string(&p)?)
                .with_context(|| format!("reading {}", p.display()))?;
            out.push(r);
        }
    }
    let order = |r: &Record| {
        let algs: &[Algorithm] = if r.place == "host" {
            &HOST_ALGS
        } else {
            &GUEST_ALGS
        };
        let i = algs
            .iter()
            .position(|a| a.name() == r.algorithm)
            .unwrap_or(algs.len());
        (r.place != "host", i)
    };
    out.sort_by_key(order);
    Ok(out)
}

/// The guest boot: every guest algorithm through the selection, then the host's run of the
/// same selection on the reference stream of each seeded one.
fn guest_runs(o: &Options, dir: &Path, version: &str, producer: &Path) -> Result<Vec<Record>> {
    let tests = if o.quick { GUEST_QUICK } else { GUEST_TESTS };
    let (q, k, g) = crate::parts::build_parts(crate::cli::Variant::Guest)?;
    let initramfs = guest::initramfs_with_dieharder(&g, Some(&k.module()))?;
    let vm = vm::Vm {
        qemu: q.binary(),
        kernel: k.bzimage(),
        initramfs,
        devices: 1,
        extra_args: Vec::new(),
    };
    let accel = if o.tcg { vm::Accel::Tcg } else { vm.probe() };
    let algs: Vec<&str> = GUEST_ALGS.iter().map(|a| a.name()).collect();
    let limit = Duration::from_secs(if o.quick { 600 } else { 1800 });
    let boot = vm::Boot::new(Mode::Stats, limit)
        .echo()
        .append(&param::word(param::STATS_ALGS, algs.join(",")))
        .append(&param::word(
            param::STATS_TESTS,
            tests
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ))
        .append(&param::word(param::STATS_SEED, SEED))
        .log_name(if o.quick { "stats-quick" } else { "stats" });
    let date = crate::util::today();
    let run = vm.boot(accel, &boot)?;
    let kernel = run.step(step::UNAME).0.trim().to_string();
    let environment = format!(
        "guest under {}, QEMU {}, Linux {kernel}, C driver, dieharder {version} (Debian's, \
         packed into the initramfs)",
        run.accel.short(),
        crate::qemu::version_of(&vm.qemu),
    );
    let mut records = Vec::new();
    for alg in GUEST_ALGS {
        let made = Made {
            date: &date,
            environment: &environment,
            quick: o.quick,
        };
        let (mut r, text) = guest_record(&run, alg, tests, &made)?;
        if alg.is_deterministic() {
            // Only for the comparison: not a record of its own.
            let (host, _) = host_run(producer, alg, Selection::Tests(tests), o.quick, version)?;
            r.crosscheck = Some(crosscheck(&r.rows, &host.rows));
        }
        write_record(dir, &r, &text)?;
        records.push(r);
    }
    Ok(records)
}

/// When, where and at which scale a guest boot's records were made.
struct Made<'a> {
    date: &'a str,
    environment: &'a str,
    quick: bool,
}

/// The record of the guest's run of `alg` (and the step's text, dieharder's output).
fn guest_record(
    run: &vm::Run,
    alg: Algorithm,
    tests: &'static [u32],
    made: &Made<'_>,
) -> Result<(Record, String)> {
    let (text, rc) = run.step(&step::stats(alg));
    ensure!(
        rc == 0,
        "the guest's {} step exited {rc}:\n{}",
        step::stats(alg),
        text.trim()
    );
    let rows = parse(&text);
    ensure!(
        rows.len() >= tests.len(),
        "the guest's {} step printed {} result(s) for {} test(s):\n{}",
        step::stats(alg),
        rows.len(),
        tests.len(),
        text.trim()
    );
    // The guest times each dieharder itself: the boot's wall clock includes the boot.
    let seconds = text
        .lines()
        .filter_map(|l| l.strip_prefix("== seconds: "))
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .sum();
    let r = Record {
        name: format!("guest-{alg}"),
        place: "guest".into(),
        algorithm: alg.name().into(),
        seed: alg.is_deterministic().then_some(SEED),
        // As /init runs it (the host algorithm latches the seed and ignores it).
        command: format!(
            "my-rng algo {alg}; {}",
            Selection::Tests(tests)
                .commands(&format!("my-rng seed {SEED}; my-rng dump"), "dieharder")
        ),
        date: made.date.to_string(),
        seconds,
        environment: made.environment.to_string(),
        quick: made.quick,
        bytes: None,
        crosscheck: None,
        rows,
    };
    Ok((r, text))
}

/// Compares a guest run with the host's run of the same tests on the reference stream.
fn crosscheck(guest: &[Row], host: &[Row]) -> String {
    if guest == host {
        return format!(
            "identical to the host's run of the same tests on the reference stream (all {} \
             p-values equal): dieharder in the guest read the reference generator's bytes",
            guest.len()
        );
    }
    let diff: Vec<String> = guest
        .iter()
        .zip(host)
        .filter(|(g, h)| g != h)
        .map(|(g, h)| {
            format!(
                "{} ntup {}: guest p {} host p {}",
                g.test,
                g.ntup,
                g.p(),
                h.p()
            )
        })
        .collect();
    format!(
        "DIFFERENT from the host's run of the same tests on the reference stream ({} vs {} \
         rows; {})",
        guest.len(),
        host.len(),
        diff.join("; ")
    )
}

/// "2 h 05 min", "4 min 07 s", "12 s".
pub fn duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

/// "12.3 GB" (10^9 bytes), "456 MB", "789 kB".
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1_000_000_000 => format!("{:.1} GB", b / 1e9),
        n if n >= 1_000_000 => format!("{:.0} MB", b / 1e6),
        _ => format!("{:.0} kB", b / 1e3),
    }
}

/// Why glibc fails, in one sentence.
const GLIBC_WHY: &str = "glibc's rand() yields 31-bit values, so bit 31 of every 32-bit word \
     dieharder reads is 0: every test that looks at the top bit, or at the words as numbers \
     in [0, 2^32), sees a generator that never sets it.";

/// What WEAK and FAILED mean, and how often chance gives them.
const RATES: &str = "dieharder calls a p-value WEAK outside [0.005, 0.995] and FAILED \
     outside [0.000001, 0.999999]: a perfect generator gives a WEAK in 1% of the results (so one \
     or two in an `-a` run are expected by chance) and a FAILED in one in 500 000.";

/// One run's page.
pub fn run_markdown(r: &Record) -> String {
    let c = r.counts();
    let mut s = String::new();
    let _ = writeln!(s, "# dieharder: {} ({})\n", r.algorithm, r.place);
    let _ = writeln!(s, "- command: `{}`", r.command);
    let _ = writeln!(s, "- where: {}", r.environment);
    let _ = writeln!(s, "- date: {}, time: {}", r.date, duration(r.seconds));
    if let Some(b) = r.bytes {
        let _ = writeln!(s, "- dieharder read {}", size(b));
    }
    let _ = writeln!(
        s,
        "- results: {} — **{} PASSED, {} WEAK, {} FAILED**",
        r.rows.len(),
        c.passed,
        c.weak,
        c.failed
    );
    if let Some(x) = &r.crosscheck {
        let _ = writeln!(s, "- cross-check: {x}");
    }
    if r.quick {
        let _ = writeln!(s, "\n**Quick run**: a smoke check, not a measurement.");
    }
    if r.failures_expected() {
        let _ = writeln!(s, "\nFailures expected: {GLIBC_WHY}");
    }
    let _ = writeln!(s, "\n{RATES}\n");
    let _ = writeln!(
        s,
        "| test | ntup | tsamples | psamples | p-value | assessment |"
    );
    let _ = writeln!(
        s,
        "|------|-----:|---------:|---------:|--------:|------------|"
    );
    for row in &r.rows {
        let verdict = match row.assessment {
            Assessment::Passed => "PASSED".to_string(),
            a => format!("**{}**", a.word()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            row.test,
            row.ntup,
            row.tsamples,
            row.psamples,
            row.p(),
            verdict
        );
    }
    let _ = writeln!(s, "\ndieharder's own output: `{}.txt`.", r.name);
    s
}

/// The not-PASSED rows as "test (ntup n) p = x".
fn not_passed(r: &Record, a: Assessment) -> Vec<String> {
    r.rows
        .iter()
        .filter(|x| x.assessment == a)
        .map(|x| {
            if x.ntup == 0 {
                format!("{} (p = {})", x.test, x.p())
            } else {
                format!("{} ntup {} (p = {})", x.test, x.ntup, x.p())
            }
        })
        .collect()
}

/// What the summary says about dieharder's tests themselves.
const TEST_NOTES: &str = "`dieharder -l` rates diehard_opso, diehard_oqso and diehard_dna \
     \"Suspect\" and diehard_sums \"Do Not Use\"; `-a` runs them and they are counted here like \
     the others. Several tests give many p-values over overlapping data (sts_serial: two per \
     ntup 1..16 over the same bits; rgb_lagged_sum: lags 0..32), so their WEAK results are not \
     independent and can come in small clusters.";

/// The summary over every run.
pub fn summary_markdown(records: &[Record]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# my-rng: statistical quality (dieharder)\n");
    let _ = writeln!(
        s,
        "Made by `cargo xtask stats` with Debian bookworm's dieharder. The host runs read the \
         byte stream of the reference generator (`my-rng-spec`, the little-endian \
         `next_u64()` outputs: exactly the bytes read() of the device returns) from seed \
         {SEED} through a pipe (`spec/examples/stream.rs` → `dieharder -g 200`, raw 32-bit \
         words on stdin). The guest runs read the device itself: `my-rng dump` (read() of \
         `/dev/my_rng_driver`) piped into dieharder inside the guest.\n"
    );
    let _ = writeln!(
        s,
        "| run | generator | where | results | PASSED | WEAK | WEAK expected by chance | \
         FAILED | time |"
    );
    let _ = writeln!(
        s,
        "|-----|-----------|-------|--------:|-------:|-----:|------------------------:|\
         -------:|-----:|"
    );
    summary_table(&mut s, records);
    let _ = writeln!(s, "\n{RATES} {TEST_NOTES}\n");
    summary_notes(&mut s, records);
    let _ = writeln!(s, "## Runs\n");
    summary_runs(&mut s, records);
    s
}

/// The summary's table rows, one per record.
fn summary_table(s: &mut String, records: &[Record]) {
    for r in records {
        let c = r.counts();
        let _ = writeln!(
            s,
            "| [{}]({}.md) | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
            r.name,
            r.name,
            r.algorithm,
            r.place,
            r.rows.len(),
            c.passed,
            c.weak,
            r.rows.len() as f64 * 0.01,
            c.failed,
            duration(r.seconds)
        );
    }
}

/// The summary's notes on the host runs, the guest runs and glibc (those present).
fn summary_notes(s: &mut String, records: &[Record]) {
    let host_a: Vec<&Record> = records
        .iter()
        .filter(|r| r.place == "host" && r.command.contains(" -a "))
        .collect();
    if let Some(longest) = host_a.iter().map(|r| r.seconds).max() {
        let _ = writeln!(
            s,
            "**Host.** One `dieharder -a` per generator, one generator at a time, producer and \
             dieharder at `nice -n 19` on a 2-core machine shared with kernel builds (so the \
             times are those of a busy machine): up to {} per generator{}.\n",
            duration(longest),
            host_a
                .iter()
                .filter_map(|r| r.bytes)
                .max()
                .map_or(String::new(), |b| format!(
                    ", reading up to {} of the stream",
                    size(b)
                ))
        );
    }
    if records.iter().any(|r| r.place == "guest") {
        let a_time = host_a
            .iter()
            .map(|r| r.seconds)
            .max()
            .map_or(String::new(), |t| format!(" ({} on the host)", duration(t)));
        let _ = writeln!(
            s,
            "**Guest.** Under TCG dieharder runs some 15 to 25 times slower than on the host \
             (its own rands/second figure: about 2e6 in the guest against 5e7 on the host), \
             so `-a`{a_time} would take that many times as long per generator; the guest runs a selection of \
             tests that need few random numbers instead, each with its default options and \
             each reading a fresh `my-rng dump` from seed {SEED} (see each run's command). For \
             the seeded algorithms the host runs the same selection on the reference stream: \
             same bytes in, so the p-values must be identical, which checks that dieharder in \
             the guest measured the reference generator's bytes and nothing else.\n"
        );
    }
    if records.iter().any(|r| r.failures_expected()) {
        let _ = writeln!(s, "**glibc.** {GLIBC_WHY}\n");
    }
}

/// The summary's run list: each record's command, environment and tests not passed.
fn summary_runs(s: &mut String, records: &[Record]) {
    for r in records {
        let _ = writeln!(s, "**{}**: `{}`", r.name, r.command);
        let _ = writeln!(
            s,
            "({}; {}, {}).",
            r.environment,
            r.date,
            duration(r.seconds)
        );
        for (a, label) in [(Assessment::Weak, "WEAK"), (Assessment::Failed, "FAILED")] {
            let l = not_passed(r, a);
            if !l.is_empty() {
                let _ = writeln!(s, "{label}: {}.", l.join(", "));
            }
        }
        if let Some(x) = &r.crosscheck {
            let _ = writeln!(s, "Cross-check: {x}.");
        }
        if r.quick {
            let _ = writeln!(s, "Quick run: a smoke check, not a measurement.");
        }
        let _ = writeln!(s);
    }
}

/// `--render`: the markdown files again from the records in the folder (after a change to
/// how they are written; no dieharder runs).
fn render(dir: &Path) -> Result<()> {
    let records = load_records(dir)?;
    ensure!(
        !records.is_empty(),
        "no records (*.json) in {}",
        dir.display()
    );
    for r in &records {
        fs::write(dir.join(format!("{}.md", r.name)), run_markdown(r))?;
    }
    fs::write(dir.join("summary.md"), summary_markdown(&records))?;
    step(&format!(
        "Rewrote the markdown of {} run(s) in {}",
        records.len(),
        dir.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real dieharder 3.31.1 output (Debian bookworm), as captured: the whole of
    /// `stream xoshiro256pp 1 | nice -n 19 dieharder -a -g 200` on this project's host.
    const XOSHIRO_A: &str = include_str!("../../testdata/dieharder-xoshiro256pp-a.txt");
    /// A host quick run on glibc (one dieharder per test, with `-p 100`), with its FAILED lines.
    const GLIBC_QUICK: &str = include_str!("../../testdata/dieharder-glibc-quick.txt");
    /// A guest quick run's step output: `my-rng dump | dieharder` in the guest, with /init's
    /// `==` lines.
    const GUEST_QUICK_OUT: &str =
        include_str!("../../testdata/dieharder-guest-xoshiro256pp-quick.txt");

    fn row(test: &str, ntup: u32, ts: u64, ps: u64, p: f64, a: Assessment) -> Row {
        Row {
            test: test.into(),
            ntup,
            tsamples: ts,
            psamples: ps,
            p_value: p,
            assessment: a,
        }
    }

    fn find<'a>(rows: &'a [Row], test: &str, ntup: u32) -> Vec<&'a Row> {
        rows.iter()
            .filter(|r| r.test == test && r.ntup == ntup)
            .collect()
    }

    #[test]
    fn parses_a_whole_run() {
        let rows = parse(XOSHIRO_A);
        // Every line with a verdict, and nothing else (banners, header, generator line,
        // "Preparing to run test 207." lines).
        let verdict_lines = XOSHIRO_A
            .lines()
            .filter(|l| ["PASSED", "WEAK", "FAILED"].iter().any(|w| l.contains(w)))
            .count();
        assert_eq!(rows.len(), verdict_lines);
        assert_eq!(rows.len(), 114);
        assert_eq!(
            counts(&rows),
            Counts {
                passed: 110,
                weak: 4,
                failed: 0
            }
        );
        use Assessment::*;
        assert_eq!(
            rows[0],
            row("diehard_birthdays", 0, 100, 100, 0.72473008, Passed)
        );
        assert_eq!(
            rows[2],
            row("diehard_rank_32x32", 0, 40000, 100, 0.00450644, Weak)
        );
        assert_eq!(
            *find(&rows, "diehard_3dsphere", 3)[0],
            row("diehard_3dsphere", 3, 4000, 100, 0.99788055, Weak)
        );
        // Tests with two p-values per ntup keep both, in order.
        let serial9 = find(&rows, "sts_serial", 9);
        assert_eq!(serial9.len(), 2);
        assert_eq!(
            *serial9[1],
            row("sts_serial", 9, 100000, 100, 0.00041424, Weak)
        );
        assert_eq!(
            *rows.last().unwrap(),
            row("dab_monobit2", 12, 65000000, 1, 0.04723445, Passed)
        );
        // dieharder's %10.8f, back.
        assert_eq!(serial9[1].p(), "0.00041424");
        assert_eq!(rows[0].p(), "0.72473008");
    }

    #[test]
    fn parses_failures_and_guest_output() {
        let rows = parse(GLIBC_QUICK);
        assert_eq!(rows.len(), 7);
        assert_eq!(
            counts(&rows),
            Counts {
                passed: 4,
                weak: 0,
                failed: 3
            }
        );
        assert_eq!(
            rows[2],
            row(
                "diehard_count_1s_str",
                0,
                256000,
                100,
                0.0,
                Assessment::Failed
            )
        );
        assert_eq!(rows[2].p(), "0.00000000");
        let guest = parse(GUEST_QUICK_OUT);
        assert_eq!(guest.len(), 2);
        assert_eq!(
            guest[0],
            row(
                "diehard_birthdays",
                0,
                100,
                100,
                0.72473008,
                Assessment::Passed
            )
        );
        assert_eq!(guest[1].test, "sts_monobit");
    }

    #[test]
    fn other_lines_are_not_results() {
        for l in XOSHIRO_A.lines().take(8) {
            assert_eq!(parse_line(l), None, "{l:?}");
        }
        for l in [
            "Preparing to run test 207.  ntuple = 0",
            "== xoshiro256pp: dieharder -g 200 -d 0",
            "== seconds: 12",
            "[   12.345678] random: crng init done",
            "",
            // Cut short on the serial console.
            "   diehard_birthdays|   0|       100|     100|0.72473008|  PASS",
            "   diehard_birthdays|   0|       100|     100|0.7247",
            // Not a p-value.
            "   diehard_birthdays|   0|       100|     100|      nan|  PASSED  ",
            "   diehard_birthdays|   0|       100|     100|1.50000000|  PASSED  ",
            "diehard birthdays|   0|       100|     100|0.72473008|  PASSED  ",
        ] {
            assert_eq!(parse_line(l), None, "{l:?}");
        }
    }

    fn record(name: &str, place: &str, alg: &str, rows: Vec<Row>) -> Record {
        Record {
            name: name.into(),
            place: place.into(),
            algorithm: alg.into(),
            seed: Some(SEED),
            command: "stream x 1 | dieharder -a -g 200".into(),
            date: "2026-12-03 10:00 UTC".into(),
            seconds: 3725,
            environment: "host".into(),
            quick: false,
            bytes: None,
            crosscheck: None,
            rows,
        }
    }

    #[test]
    fn markdown_lists_rows_and_counts() {
        let r = record(
            "host-xoshiro256pp",
            "host",
            "xoshiro256pp",
            parse(XOSHIRO_A),
        );
        let md = run_markdown(&r);
        assert!(md.contains("**110 PASSED, 4 WEAK, 0 FAILED**"), "{md}");
        assert!(md.contains("| diehard_rank_32x32 | 0 | 40000 | 100 | 0.00450644 | **WEAK** |"));
        assert!(md.contains("| diehard_birthdays | 0 | 100 | 100 | 0.72473008 | PASSED |"));
        assert!(md.contains("time: 1 h 02 min"));
        assert!(!md.contains("Failures expected"));
        let g = record("host-glibc", "host", "glibc", parse(GLIBC_QUICK));
        let md = run_markdown(&g);
        assert!(md.contains("Failures expected"));
        assert!(md.contains("| sts_monobit | 1 | 100000 | 100 | 0.00000000 | **FAILED** |"));
    }

    #[test]
    fn summary_orders_runs_and_lists_weak_and_failed() {
        let dir = std::env::temp_dir().join(format!("xtask-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut guest = record("guest-host", "guest", "host", parse(GUEST_QUICK_OUT));
        guest.seed = None;
        write_record(&dir, &guest, GUEST_QUICK_OUT).unwrap();
        let glibc = record("host-glibc", "host", "glibc", parse(GLIBC_QUICK));
        write_record(&dir, &glibc, GLIBC_QUICK).unwrap();
        let x = record(
            "host-xoshiro256pp",
            "host",
            "xoshiro256pp",
            parse(XOSHIRO_A),
        );
        write_record(&dir, &x, XOSHIRO_A).unwrap();
        let names: Vec<String> = load_records(&dir)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["host-xoshiro256pp", "host-glibc", "guest-host"]);
        let md = fs::read_to_string(dir.join("summary.md")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("host-xoshiro256pp.txt")).unwrap(),
            XOSHIRO_A
        );
        let _ = fs::remove_dir_all(&dir);
        assert!(md.contains(
            "| [host-xoshiro256pp](host-xoshiro256pp.md) | xoshiro256pp | host | 114 | 110 | 4 | 1.1 | 0 | 1 h 02 min |"
        ));
        assert!(md.contains(
            "WEAK: diehard_rank_32x32 (p = 0.00450644), diehard_oqso (p = 0.99911890), \
             diehard_3dsphere ntup 3 (p = 0.99788055), sts_serial ntup 9 (p = 0.00041424)."
        ));
        assert!(md.contains(
            "FAILED: diehard_count_1s_str (p = 0.00000000), sts_monobit ntup 1 (p = 0.00000000), \
             dab_bytedistrib (p = 0.00000000)."
        ));
    }

    #[test]
    fn crosscheck_compares_every_row() {
        let a = parse(XOSHIRO_A);
        assert!(crosscheck(&a, &a).starts_with("identical"));
        let mut b = a.clone();
        b[1].p_value = 0.5;
        let c = crosscheck(&a, &b);
        assert!(c.starts_with("DIFFERENT"), "{c}");
        assert!(c.contains("diehard_operm5 ntup 0: guest p 0.85585351 host p 0.50000000"));
        assert!(crosscheck(&a, &a[..5]).starts_with("DIFFERENT"));
    }

    #[test]
    fn selections() {
        assert_eq!(
            Selection::Tests(&[0, 2, 100]).commands("stream glibc 1", "dieharder"),
            "stream glibc 1 | dieharder -g 200 -d N, for each N of 0, 2, 100"
        );
        assert_eq!(
            Selection::Tests(&[206]).commands("my-rng dump", "dieharder"),
            "my-rng dump | dieharder -g 200 -d 206"
        );
        assert_eq!(
            Selection::All.commands("stream chacha20 1", "nice -n 19 dieharder"),
            "stream chacha20 1 | nice -n 19 dieharder -a -g 200"
        );
        assert_eq!(duration(12), "12 s");
        assert_eq!(duration(247), "4 min 07 s");
        assert_eq!(duration(7500), "2 h 05 min");
        assert_eq!(size(123_456_789_012), "123.5 GB");
        assert_eq!(size(456_700_000), "457 MB");
        assert_eq!(size(1_048_576), "1 MB");
    }
}
