//! `cargo xtask report`: renders `docs/report.md` to `docs/report.pdf` (A4, at most two
//! pages) with pandoc and WeasyPrint.
//!
//! `docs/report.md` is a template: its figures are `{{...}}` placeholders filled from the
//! benchmark (`docs/bench/bench.json`), the dieharder records (`docs/stats/*.json`) and the
//! suite's result lines recorded in `docs/results/` (`cargo xtask report --record` copies the
//! last `cargo xtask test` run there), so no figure is typed by hand. `docs/report.sources`
//! holds the digest of every input and the page count; the suite's check compares them, so a
//! PDF that is stale against its sources, or longer than two pages, fails the suite.

use crate::util::{out_dir, repo_root, run, step};
use crate::{apt, bench};
use anyhow::{bail, ensure, Context, Result};
use my_rng_protocol::bench::row as id;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The suite's check of the PDF (suite.rs prints it under this name).
pub const CHECK_NAME: &str = "report PDF current, at most two pages";

/// The report's length limit (the exercise's "two-page report").
pub const MAX_PAGES: u32 = 2;

/// Host packages of the renderer (bookworm's own): pandoc makes HTML, WeasyPrint the PDF,
/// poppler-utils counts the pages (pdfinfo) and draws them for review (pdftoppm), Liberation
/// fonts set more text per page than DejaVu at the same size.
pub const PACKAGES: &[&str] = &["pandoc", "weasyprint", "poppler-utils", "fonts-liberation2"];

/// Where `cargo xtask test` leaves its result lines, and where `--record` keeps them.
pub fn suite_results() -> PathBuf {
    out_dir().join("suite-results.txt")
}

/// The recorded runs: the whole suite at CI's scale, and the stress and hot-unplug stages at
/// the goal's scale (`--full`).
fn recorded(scope: &str) -> PathBuf {
    repo_root().join(format!("docs/results/suite-{scope}.txt"))
}

fn docs() -> PathBuf {
    repo_root().join("docs")
}

/// The files the PDF is made from, relative to the repository.
fn inputs() -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = [
        "docs/report.md",
        "docs/report.css",
        "docs/bench/bench.json",
        "docs/results/suite-ci.txt",
        "docs/results/suite-full.txt",
        "docs/results/fuzz-qemu.txt",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let mut stats: Vec<PathBuf> = fs::read_dir(docs().join("stats"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.strip_prefix(repo_root()).unwrap().to_path_buf())
        .collect();
    stats.sort();
    v.extend(stats);
    Ok(v)
}

/// `docs/report.sources`: one `sha256  path` line per input, then `pages N`.
fn sources_text(pages: u32) -> Result<String> {
    let mut s = String::from(
        "# Written by `cargo xtask report`: the inputs docs/report.pdf was made from.\n",
    );
    for p in inputs()? {
        let data = fs::read(repo_root().join(&p)).with_context(|| format!("{}", p.display()))?;
        let _ = writeln!(s, "{:x}  {}", Sha256::digest(&data), p.display());
    }
    let _ = writeln!(s, "pages {pages}");
    Ok(s)
}

/// The page count of a PDF (pdfinfo).
fn pages(pdf: &Path) -> Result<u32> {
    let out = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .context("pdfinfo (package poppler-utils)")?;
    ensure!(out.status.success(), "pdfinfo {} failed", pdf.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .context("pdfinfo printed no page count")
}

/// `cargo xtask report [--record]`.
pub fn main(record: bool) -> Result<()> {
    if record {
        record_results()?;
    }
    apt::ensure_extra_packages(PACKAGES)?;
    let pdf = docs().join("report.pdf");
    let n = render(&pdf)?;
    fs::write(docs().join("report.sources"), sources_text(n)?)?;
    println!("{} ({n} page(s))", pdf.display());
    ensure!(
        n <= MAX_PAGES,
        "docs/report.pdf has {n} pages, more than {MAX_PAGES}: shorten docs/report.md"
    );
    Ok(())
}

/// The suite's check: the PDF exists, has at most two pages, and was made from the current
/// sources.
pub fn check() -> Result<String> {
    let pdf = docs().join("report.pdf");
    ensure!(
        pdf.exists(),
        "docs/report.pdf is missing: run `cargo xtask report`"
    );
    let n = pages(&pdf)?;
    ensure!(
        n <= MAX_PAGES,
        "docs/report.pdf has {n} pages (at most {MAX_PAGES})"
    );
    let want = sources_text(n)?;
    let have = fs::read_to_string(docs().join("report.sources")).unwrap_or_default();
    if want != have {
        let stale: Vec<String> = want
            .lines()
            .filter(|l| !have.lines().any(|h| h == *l))
            .filter_map(|l| l.split_once("  ").map(|(_, p)| p.to_string()))
            .collect();
        bail!(
            "docs/report.pdf is stale against {}: run `cargo xtask report`",
            if stale.is_empty() {
                "its sources".to_string()
            } else {
                stale.join(", ")
            }
        );
    }
    Ok(format!(
        "docs/report.pdf: {n} page(s), current against {} sources",
        inputs()?.len()
    ))
}

/// Copies the last suite run's result lines into docs/results/: a whole-suite run at CI's
/// scale as `suite-ci.txt`, a `--full` run as `suite-full.txt`. Only runs without failures.
fn record_results() -> Result<()> {
    let src = suite_results();
    let text = fs::read_to_string(&src)
        .with_context(|| format!("{}: run `cargo xtask test` first", src.display()))?;
    let r = Results::parse(&text)?;
    // The report's own check fails whenever its sources changed, this run's results among
    // them: it is the one failure a run may have and still be recorded.
    let failed = text
        .lines()
        .filter(|l| l.starts_with("FAIL ") && !l.starts_with(&format!("FAIL {CHECK_NAME}")))
        .count();
    ensure!(
        failed == 0,
        "{}: {failed} check(s) failed; only a green run is recorded",
        src.display()
    );
    let scope = if r.header("scale") == Some("full") {
        "full"
    } else {
        ensure!(
            r.header("stages") == Some("all"),
            "{}: a CI-scale run of some stages only; record a whole-suite run",
            src.display()
        );
        "ci"
    };
    let dst = recorded(scope);
    fs::create_dir_all(dst.parent().unwrap())?;
    // Without the report's own check, which judged the PDF this run's results replace; the
    // totals counted again.
    let mut kept: String = text
        .lines()
        .filter(|l| !l.contains(&format!(" {CHECK_NAME} (")))
        // The "N passed, M failed" line.
        .filter(|l| !(l.ends_with(" failed") && l.starts_with(|c: char| c.is_ascii_digit())))
        .map(|l| format!("{l}\n"))
        .collect();
    let k = Results::parse(&kept)?;
    kept.push_str(&format!("{} passed, {} failed\n", k.passed, k.failed));
    fs::write(&dst, kept)?;
    step(&format!("Recorded {} as {}", src.display(), dst.display()));
    Ok(())
}

/// A recorded suite run: `# key: value` header lines, then `PASS`/`FAIL` lines.
struct Results {
    headers: BTreeMap<String, String>,
    /// (name, detail) of each check, in order.
    checks: Vec<(String, String)>,
    passed: usize,
    failed: usize,
}

impl Results {
    fn parse(text: &str) -> Result<Self> {
        let mut r = Results {
            headers: BTreeMap::new(),
            checks: Vec::new(),
            passed: 0,
            failed: 0,
        };
        for l in text.lines() {
            if let Some(h) = l.strip_prefix("# ") {
                if let Some((k, v)) = h.split_once(": ") {
                    r.headers.insert(k.to_string(), v.to_string());
                }
            } else if let Some(rest) = l.strip_prefix("PASS ") {
                r.passed += 1;
                r.checks.push(split_check(rest));
            } else if l.starts_with("FAIL ") {
                r.failed += 1;
            }
        }
        ensure!(r.passed + r.failed > 0, "no PASS/FAIL lines");
        Ok(r)
    }

    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).map(String::as_str)
    }

    /// The detail of the first passed check whose name starts with `name`.
    fn detail(&self, name: &str) -> Result<&str> {
        self.checks
            .iter()
            .find(|(n, _)| n.starts_with(name))
            .map(|(_, d)| d.as_str())
            .with_context(|| format!("no passed check named {name:?}"))
    }
}

/// `name (12 s): detail` → (name, detail). The time in parentheses is dropped.
fn split_check(rest: &str) -> (String, String) {
    let (head, detail) = rest.split_once("): ").unwrap_or((rest, ""));
    let name = head.rsplit_once(" (").map_or(head, |(n, _)| n);
    (name.to_string(), detail.to_string())
}

/// The number in `text` where `pattern` has `{}`: the text around `{}` must match literally.
fn capture(text: &str, pattern: &str) -> Option<u64> {
    let (before, after) = pattern.split_once("{}")?;
    let mut from = 0;
    while let Some(i) = text[from..].find(before) {
        let start = from + i + before.len();
        let digits: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        // A number starts here, not inside one (matters when `before` is empty).
        let boundary = before.is_empty()
            && text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_digit());
        if !digits.is_empty() && !boundary && text[start + digits.len()..].starts_with(after) {
            return digits.parse().ok();
        }
        // On past this match (at least one character, so an empty `before` cannot loop).
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        if from > text.len() {
            break;
        }
    }
    None
}

/// The suite figures the report quotes: key, recorded run, check name, pattern.
const FIGURES: &[(&str, &str, &str, &str)] = &[
    ("qtest-cases", "ci", "qtest", "{} qtest cases passed"),
    ("storm-accesses", "ci", "qtest", "{} accesses ("),
    ("storm-dma", "ci", "qtest", "DMA: {} commands started"),
    ("storm-msi", "ci", "qtest", "{} MSI messages"),
    ("storm-ram", "ci", "qtest", "{} MiB of RAM compared"),
    (
        "introspected",
        "ci",
        "QEMU generic qtest: device-introspect-test",
        "my_rng introspected {} times",
    ),
    (
        "e2e",
        "ci",
        "guest: in-guest e2e tests",
        "{} in-guest tests passed",
    ),
    (
        "e2e-rust-driver",
        "ci",
        "rust driver: in-guest e2e tests",
        "{} in-guest tests passed",
    ),
    (
        "e2e-rust-device",
        "ci",
        "rust device: in-guest e2e tests",
        "{} in-guest tests passed",
    ),
    (
        "stress-ops",
        "full",
        "stress, c driver: 8 processes",
        "= {} operations",
    ),
    (
        "stress-c-secs",
        "full",
        "stress, c driver: 8 processes",
        "operations in {} s",
    ),
    (
        "stress-rust-secs",
        "full",
        "stress, rust driver: 8 processes",
        "operations in {} s",
    ),
    (
        "stress-seed-reads",
        "full",
        "stress, c driver: 8 processes",
        "{} SEED_READs checked",
    ),
    (
        "fuzz-calls",
        "full",
        "stress, c driver: ioctl/read fuzzer",
        "{} calls",
    ),
    (
        "fuzz-unknown",
        "full",
        "stress, c driver: ioctl/read fuzzer",
        "{} unknown",
    ),
    (
        "hotplug-cycles",
        "full",
        "hotplug, c driver: QMP cycles",
        "{} device_del",
    ),
    (
        "hotplug-c-ops",
        "full",
        "hotplug, c driver: users",
        "users: {} operations",
    ),
    (
        "hotplug-rust-ops",
        "full",
        "hotplug, rust driver: users",
        "users: {} operations",
    ),
    (
        "hotplug-selftests",
        "full",
        "hotplug, c driver: users",
        "{} self-tests passed",
    ),
    (
        "migrations",
        "ci",
        "migration: migrations done",
        "{} live migrations",
    ),
    (
        "migration-words",
        "ci",
        "migration: divergent words",
        "0 divergent of {} 64-bit words",
    ),
    (
        "migration-in-flight",
        "ci",
        "migration: a DMA transfer in flight",
        "{} of ",
    ),
];

/// The benchmark rows of the report's chart (docs/bench/bench.png has all of them, too many
/// to read at a column's width): the C twins', then (prefix, row) of the Rust twins'.
const CHART_ROWS: &[&str] = &[
    id::IOCTL_RAND,
    id::IOCTL_SEED_READ,
    id::READ_MMIO_64K,
    id::READ_BOUNCE_1M,
    id::READ_ZEROCOPY_1M,
    id::READ_DMA_1M_GLIBC,
    id::READ_DMA_1M_CHACHA,
    id::HWRNG_MY_RNG,
    id::HWRNG_VIRTIO,
    id::GETRANDOM_1M,
    id::ZERO_1M,
];
const CHART_TWIN_ROWS: &[(&str, &str)] = &[
    (id::RUST_DRIVER, id::READ_DMA_1M_GLIBC),
    (id::RUST_DEVICE, id::IOCTL_RAND),
    (id::RUST_DEVICE, id::READ_ZEROCOPY_1M),
];

/// The report's chart, drawn from docs/bench/bench.json like docs/bench/bench.png.
fn chart(bench: &serde_json::Value, path: &Path) -> Result<()> {
    let rows: Vec<crate::bench::Row> = serde_json::from_value(bench["rows"].clone())?;
    let setup: crate::bench::Setup = serde_json::from_value(bench["setup"].clone())?;
    let rated = crate::bench::rate(&rows);
    let twins = CHART_TWIN_ROWS.iter().map(|(p, r)| format!("{p}{r}"));
    let mut picked = Vec::new();
    for want in CHART_ROWS.iter().map(|r| r.to_string()).chain(twins) {
        let r = rated
            .iter()
            .position(|r| r.row.id == want)
            .with_context(|| format!("bench.json has no row {want:?}"))?;
        picked.push(r);
    }
    let rated: Vec<_> = rated
        .into_iter()
        .enumerate()
        .filter(|(i, _)| picked.contains(i))
        .map(|(_, r)| r)
        .collect();
    crate::bench::chart_sized(path, &setup, &rated, 760)
}

/// `{{fuzz <key>}}`: a figure of the recorded fuzzer run.
fn fuzz_value(key: &str) -> Result<String> {
    let p = docs().join("results/fuzz-qemu.txt");
    let text = fs::read_to_string(&p)
        .with_context(|| format!("{}: `cargo xtask fuzz qemu --time N --record`", p.display()))?;
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .with_context(|| format!("{}: no {key:?}", p.display()))?;
    Ok(match v.parse::<u64>() {
        Ok(n) => thousands(n),
        Err(_) => v.to_string(),
    })
}

/// Everything the template can quote.
struct Sources {
    bench: serde_json::Value,
    suites: BTreeMap<&'static str, Results>,
    stats: Vec<serde_json::Value>,
}

impl Sources {
    fn load() -> Result<Self> {
        let bench: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(docs().join("bench/bench.json"))?)?;
        let mut suites = BTreeMap::new();
        for scope in ["ci", "full"] {
            let p = recorded(scope);
            let text = fs::read_to_string(&p).with_context(|| {
                format!(
                    "{}: record a green run with `cargo xtask report --record`",
                    p.display()
                )
            })?;
            suites.insert(scope, Results::parse(&text)?);
        }
        let mut stats = Vec::new();
        for p in inputs()?.iter().filter(|p| p.starts_with("docs/stats")) {
            stats.push(serde_json::from_str(&fs::read_to_string(
                repo_root().join(p),
            )?)?);
        }
        Ok(Sources {
            bench,
            suites,
            stats,
        })
    }

    fn mbps(&self, id: &str) -> Result<f64> {
        self.bench["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["id"] == id))
            .and_then(|r| r["mb_per_s"].as_f64())
            .with_context(|| format!("bench.json has no row {id:?}"))
    }

    /// The value of one placeholder: its words are a function and its arguments.
    fn value(&self, words: &[&str]) -> Result<String> {
        Ok(match words {
            ["chart"] => {
                let png = out_dir().join("report/bench-report.png");
                chart(&self.bench, &png)?;
                format!("![]({}){{.chart}}", png.display())
            }
            ["mbps", id] => bench::num(self.mbps(id)?),
            ["ratio", a, b] => format!("{}×", bench::num(self.mbps(a)? / self.mbps(b)?)),
            ["percent", a, b] => format!("{:.0} %", 100.0 * self.mbps(a)? / self.mbps(b)?),
            ["bench", key] => self.bench["setup"][key]
                .as_str()
                .with_context(|| format!("bench.json setup has no {key:?}"))?
                .to_string(),
            ["suite", scope, key] => self.suite_value(scope, key)?,
            ["fig", key] => self.figure(key)?,
            ["fuzz", key] => fuzz_value(key)?,
            ["stats", name, key] => self.stats_value(name, key)?,
            _ => bail!("unknown placeholder {{{{{}}}}}", words.join(" ")),
        })
    }

    /// `{{suite <scope> <key>}}`: a recorded run's counts or one of its headers.
    fn suite_value(&self, scope: &str, key: &str) -> Result<String> {
        let r = self
            .suites
            .get(scope)
            .with_context(|| format!("no recorded run {scope:?}"))?;
        Ok(match key {
            "passed" => r.passed.to_string(),
            "failed" => r.failed.to_string(),
            k => r
                .header(k)
                .with_context(|| format!("suite-{scope}.txt has no header {k:?}"))?
                .to_string(),
        })
    }

    /// `{{fig <key>}}`: a figure from a check's line, where [`FIGURES`] says.
    fn figure(&self, key: &str) -> Result<String> {
        let (_, scope, check, pattern) = FIGURES
            .iter()
            .find(|f| f.0 == key)
            .with_context(|| format!("no figure {key:?} in report.rs's FIGURES"))?;
        let detail = self.suites[scope].detail(check)?;
        let n = capture(detail, pattern).with_context(|| {
            format!("figure {key:?}: {pattern:?} not found in {check:?}: {detail}")
        })?;
        Ok(thousands(n))
    }

    /// `{{stats <name> <key>}}`: a dieharder record's counts.
    fn stats_value(&self, name: &str, key: &str) -> Result<String> {
        let r = self
            .stats
            .iter()
            .find(|r| r["name"] == name)
            .with_context(|| format!("no dieharder record {name:?} in docs/stats"))?;
        let rows = r["rows"].as_array().context("rows")?;
        let count = |a: &str| rows.iter().filter(|x| x["assessment"] == a).count();
        Ok(match key {
            "results" => rows.len().to_string(),
            "passed" => count("PASSED").to_string(),
            "weak" => count("WEAK").to_string(),
            "failed" => count("FAILED").to_string(),
            k => bail!("stats {name}: no key {k:?}"),
        })
    }

    /// The template with every placeholder filled.
    fn fill(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let end = rest[i..]
                .find("}}")
                .context("a placeholder without its closing }}")?;
            let words: Vec<&str> = rest[i + 2..i + end].split_whitespace().collect();
            out.push_str(&self.value(&words)?);
            rest = &rest[i + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fills the template and renders it; returns the page count.
fn render(pdf: &Path) -> Result<u32> {
    step("Rendering docs/report.md to docs/report.pdf (pandoc, WeasyPrint)");
    // Filling the template draws the chart into `work`: it must exist first (a fresh clone).
    let work = out_dir().join("report");
    fs::create_dir_all(&work)?;
    let sources = Sources::load()?;
    let md = sources.fill(&fs::read_to_string(docs().join("report.md"))?)?;
    let filled = work.join("report.md");
    fs::write(&filled, md)?;
    let html = work.join("report.html");
    run(Command::new("pandoc")
        .arg(&filled)
        .args(["--from", "markdown", "--to", "html5", "--standalone"])
        .args(["--metadata", "pagetitle=my-rng report"])
        .arg("--css")
        .arg(docs().join("report.css"))
        // Image paths in the template are relative to docs/.
        .arg("--resource-path")
        .arg(docs())
        .arg("--self-contained")
        .arg("-o")
        .arg(&html))?;
    run(Command::new("weasyprint")
        .args(["--quiet", "--presentational-hints"])
        .arg(&html)
        .arg(pdf))?;
    pages(pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_numbers_by_pattern() {
        let d = "8 workers x 100000 = 800000 operations in 493 s: 504305 ioctls";
        assert_eq!(capture(d, "= {} operations"), Some(800000));
        assert_eq!(capture(d, "operations in {} s"), Some(493));
        assert_eq!(capture(d, "{} ioctls"), Some(504305));
        assert_eq!(capture(d, "{} reads"), None);
        let m = "6 of 20 migrations caught a DMA command in flight";
        assert_eq!(capture(m, "{} of "), Some(6));
        assert_eq!(capture("x 12 of 20", "{} of "), Some(12));
        assert_eq!(capture("no number", "{} of "), None);
    }

    #[test]
    fn splits_check_lines() {
        let (n, d) = split_check("qtest (49 s): 31 qtest cases passed in 49 s; storm: x (y)");
        assert_eq!(n, "qtest");
        assert_eq!(d, "31 qtest cases passed in 49 s; storm: x (y)");
        let (n, _) = split_check("guest: seed's C app (boot 95 s): 2 identical rounds");
        assert_eq!(n, "guest: seed's C app");
    }

    #[test]
    fn parses_results_and_counts() {
        let t = "# scale: ci\n# stages: all\nPASS a (1 s): x 5 y\nFAIL b (0 s): no\n\
                 PASS c (2 s): z\n3 passed, 1 failed\n";
        let r = Results::parse(t).unwrap();
        assert_eq!((r.passed, r.failed), (2, 1));
        assert_eq!(r.header("scale"), Some("ci"));
        assert_eq!(r.detail("c").unwrap(), "z");
        assert!(r.detail("b").is_err(), "a failed check is not quoted");
    }

    #[test]
    fn formats_figures() {
        assert_eq!(thousands(1254115708), "1,254,115,708");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn every_figure_pattern_has_one_slot() {
        for (key, scope, _, pattern) in FIGURES {
            assert_eq!(pattern.matches("{}").count(), 1, "{key}");
            assert!(["ci", "full"].contains(scope), "{key}");
        }
    }
}
