//! `cargo xtask bench`: one guest with one my_rng device and a virtio-rng device runs
//! `my-rng bench --json`; the host rates every row against the seed's RAND ioctl and /dev/zero,
//! evaluates the goals and writes docs/bench/ (bench.json, bench.md, bench.png).
//! `--smoke` runs every row briefly and writes to target/my-rng/bench-smoke/ instead: it checks
//! that every row produces a number, never how fast.

use crate::util::{note, out_dir, repo_root, step};
use crate::{run, vm};
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The reference row every other is compared to: the seed's path, one RAND ioctl per 4 bytes.
const SEED_ROW: &str = "ioctl-rand";
/// The framed step of the guest's /init that prints the JSON.
const STEP: &str = "bench";
/// The font of the chart's text (Debian's fonts-dejavu-core, a host package).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One row as `my-rng bench --json` reports it.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Row {
    pub id: String,
    pub label: String,
    pub bytes_per_call: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Row {
    /// Throughput in MB/s (10^6 bytes), if the row measured anything.
    pub fn mb_per_s(&self) -> Option<f64> {
        (self.bytes > 0 && self.seconds > 0.0).then(|| self.bytes as f64 / self.seconds / 1e6)
    }
}

/// The guest's report.
#[derive(Deserialize, Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    #[serde(default)]
    pub kernel: Value,
    #[serde(default)]
    pub hwrng_available: Value,
}

/// Picks the JSON object out of the step's output: kernel console lines (`[  1.234] ...`) may
/// be interleaved with it.
pub fn parse_report(text: &str) -> Result<Report> {
    let clean: String = text
        .lines()
        .filter(|l| !is_kernel_line(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let start = clean
        .find('{')
        .context("the bench step printed no JSON object")?;
    let mut it = serde_json::Deserializer::from_str(&clean[start..]).into_iter::<Report>();
    it.next()
        .context("the bench step's JSON ended early")?
        .context("the bench step's JSON does not match the schema")
}

fn is_kernel_line(l: &str) -> bool {
    let Some(rest) = l.trim_start().strip_prefix('[') else {
        return false;
    };
    rest.split_once(']').is_some_and(|(ts, _)| {
        !ts.trim().is_empty() && ts.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

/// A row with its rates.
#[derive(Serialize, Debug)]
pub struct Rated {
    #[serde(flatten)]
    pub row: Row,
    pub mb_per_s: Option<f64>,
    /// Multiple of the seed path's throughput.
    pub x_seed: Option<f64>,
    /// Percent of /dev/zero read with the same size per call.
    pub pct_of_zero: Option<f64>,
}

pub fn rate(rows: &[Row]) -> Vec<Rated> {
    let mbs = |id: &str| rows.iter().find(|r| r.id == id).and_then(Row::mb_per_s);
    let seed = mbs(SEED_ROW);
    rows.iter()
        .map(|r| {
            let v = r.mb_per_s();
            let zero = rows
                .iter()
                .find(|z| z.id.starts_with("zero-") && z.bytes_per_call == r.bytes_per_call)
                .and_then(Row::mb_per_s);
            Rated {
                row: r.clone(),
                mb_per_s: v,
                x_seed: v.zip(seed).map(|(v, s)| v / s),
                pct_of_zero: v.zip(zero).map(|(v, z)| 100.0 * v / z),
            }
        })
        .collect()
}

/// A goal: row `row` at least `factor` times as fast as row `base`.
struct Goal {
    what: &'static str,
    row: &'static str,
    base: &'static str,
    factor: f64,
}

/// The row that stands for "DMA read 1 MiB": read() of 1 MiB on the driver's default (auto)
/// path with the seed's algorithm, glibc, the one the seed's RAND ioctl row reads too.
const DMA_1M: &str = "read-dma-1m-glibc";

/// The benchmark's goals (issue "DMA ... benchmark").
const GOALS: &[Goal] = &[
    Goal {
        what: "DMA read 1 MiB ≥ 100× the seed's RAND ioctl",
        row: DMA_1M,
        base: SEED_ROW,
        factor: 100.0,
    },
    Goal {
        what: "DMA read 1 MiB ≥ 1× getrandom() 1 MiB",
        row: DMA_1M,
        base: "getrandom-1m",
        factor: 1.0,
    },
    Goal {
        what: "DMA read 1 MiB ≥ 50% of /dev/zero 1 MiB",
        row: DMA_1M,
        base: "zero-1m",
        factor: 0.5,
    },
    Goal {
        what: "zero-copy read 1 MiB ≥ bounce-buffer read 1 MiB",
        row: "read-zerocopy-1m",
        base: "read-bounce-1m",
        factor: 1.0,
    },
    Goal {
        what: "hw_random my_rng ≥ 10× hw_random virtio-rng",
        row: "hwrng-my_rng",
        base: "hwrng-virtio",
        factor: 10.0,
    },
];

#[derive(Serialize, Debug)]
pub struct Verdict {
    pub goal: String,
    /// None when a row is missing or has no number.
    pub met: Option<bool>,
    pub detail: String,
}

fn evaluate(rated: &[Rated]) -> Vec<Verdict> {
    let find = |id: &str| rated.iter().find(|r| r.row.id == id);
    GOALS
        .iter()
        .map(|g| {
            let (row, base) = (find(g.row), find(g.base));
            let (Some(v), Some(b)) = (row.and_then(|r| r.mb_per_s), base.and_then(|r| r.mb_per_s))
            else {
                let missing = [(g.row, row), (g.base, base)]
                    .iter()
                    .filter(|(_, r)| r.and_then(|r| r.mb_per_s).is_none())
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Verdict {
                    goal: g.what.into(),
                    met: None,
                    detail: format!("not measured: no number for {missing}"),
                };
            };
            let ratio = v / b;
            Verdict {
                goal: g.what.into(),
                met: Some(ratio >= g.factor),
                detail: format!(
                    "{} {} MB/s vs {} {} MB/s = {}× (goal ≥ {}×)",
                    g.row,
                    num(v),
                    g.base,
                    num(b),
                    num(ratio),
                    g.factor
                ),
            }
        })
        .collect()
}

/// Three significant digits, without exponent notation: the benchmark's table and the
/// report quote figures the same way.
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

/// What ran: for the record next to the numbers.
#[derive(Serialize, Deserialize, Debug)]
pub struct Setup {
    pub date: String,
    pub accelerator: String,
    pub qemu: String,
    pub kernel: String,
    pub smoke: bool,
}

/// The markdown page: setup, table, goals.
pub fn markdown(setup: &Setup, rated: &[Rated], verdicts: &[Verdict]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# my-rng throughput\n");
    let _ = writeln!(
        s,
        "Measured {} by `cargo xtask bench{}` in one guest (one my_rng device and one \
         virtio-rng-pci) under {}, QEMU {}, guest Linux {}. MB/s are 10^6 bytes per second of \
         the guest's wall clock; every row is compared to the seed's path (one RAND ioctl per \
         4 bytes) and to reading /dev/zero with the same size per call.\n",
        setup.date,
        if setup.smoke { " --smoke" } else { "" },
        setup.accelerator,
        setup.qemu,
        setup.kernel
    );
    if setup.smoke {
        let _ = writeln!(
            s,
            "**Smoke run**: a few calls per row, to show that every row works; the numbers \
             are not measurements.\n"
        );
    }
    let _ = writeln!(s, "| row | MB/s | × seed path | % of /dev/zero |");
    let _ = writeln!(s, "|-----|-----:|------------:|---------------:|");
    for r in rated {
        let cell = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".to_string(), f);
        let mbs = match (&r.row.error, r.mb_per_s) {
            (Some(e), None) => format!("error: {}", e.replace('|', "\\|")),
            (Some(e), Some(v)) => format!("{} (stopped: {})", num(v), e.replace('|', "\\|")),
            (None, v) => cell(v, &num),
        };
        let _ = writeln!(
            s,
            "| {} (`{}`) | {} | {} | {} |",
            r.row.label,
            r.row.id,
            mbs,
            cell(r.x_seed, &|v| format!("{}×", num(v))),
            cell(r.pct_of_zero, &|v| format!("{}%", num(v))),
        );
    }
    let _ = writeln!(s, "\n## Goals\n");
    for v in verdicts {
        let word = match v.met {
            Some(true) => "met",
            Some(false) => "short",
            None => "not measured",
        };
        let _ = writeln!(s, "- **{word}**: {}: {}", v.goal, v.detail);
    }
    let _ = writeln!(
        s,
        "\nThe chart (bench.png) shows the same MB/s on a log scale; bench.json has the raw \
         bytes and seconds of every row."
    );
    s
}

/// The terminal table.
fn table(rated: &[Rated]) -> String {
    let names: Vec<String> = rated
        .iter()
        .map(|r| format!("{} ({})", r.row.label, r.row.id))
        .collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(3);
    let mut s = format!(
        "{:<w$} {:>10} {:>10} {:>8}\n",
        "row", "MB/s", "x seed", "% zero"
    );
    for (r, name) in rated.iter().zip(&names) {
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
        match (&r.row.error, r.mb_per_s) {
            (Some(e), None) => {
                let _ = writeln!(s, "{name:<w$} error: {e}");
            }
            (e, v) => {
                let _ = writeln!(
                    s,
                    "{name:<w$} {:>10} {:>10} {:>8}{}",
                    opt(v, &num),
                    opt(r.x_seed, &num),
                    opt(r.pct_of_zero, &|v| format!("{}%", num(v))),
                    e.as_ref()
                        .map_or(String::new(), |e| format!("  (stopped: {e})"))
                );
            }
        }
    }
    s
}

/// A horizontal bar chart of MB/s on a log scale, one bar per row.
pub fn chart(path: &Path, setup: &Setup, rated: &[Rated]) -> Result<()> {
    chart_sized(path, setup, rated, 1400)
}

/// [`chart`] `width` pixels wide: the same text on a narrower canvas is larger when the
/// picture is scaled to a column (the report's copy).
pub fn chart_sized(path: &Path, setup: &Setup, rated: &[Rated], width: u32) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::{register_font, FontStyle};

    let font = fs::read(FONT).with_context(|| {
        format!("reading the chart font {FONT} (package fonts-dejavu-core: `cargo xtask setup`)")
    })?;
    // plotters keeps registered fonts for the life of the program.
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;

    let n = rated.len();
    let values: Vec<f64> = rated.iter().filter_map(|r| r.mb_per_s).collect();
    let (lo, hi) = log_range(&values);
    let height = 140 + 34 * n as u32;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "my-rng throughput, MB/s (log scale) — {}, QEMU {}, Linux {}{}",
        setup.accelerator,
        setup.qemu,
        setup.kernel,
        if setup.smoke { " — SMOKE RUN" } else { "" }
    );
    let labels: Vec<String> = rated.iter().map(|r| r.row.label.clone()).collect();
    // The label column fits the longest label as drawn, so none is clipped at the left edge.
    let label_font: TextStyle = ("sans-serif", 16).into();
    let mut label_width = 0;
    for l in &labels {
        label_width = label_width.max(root.estimate_text_size(l, &label_font)?.0);
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        // Room for the last bar's note; a narrow canvas has less of it in the plot.
        .margin_right(if width < 1000 { 150 } else { 60 })
        .x_label_area_size(40)
        .y_label_area_size(label_width + 24)
        // The segmented range 0..last has one band per value 0..=last.
        .build_cartesian_2d((lo..hi).log_scale(), (0..n.max(1) - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_style(label_font)
        .x_label_style(("sans-serif", 15))
        .x_desc("MB/s")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => labels[n - 1 - i].clone(),
            _ => String::new(),
        })
        .draw()?;
    // Row 0 at the top, as in the table.
    let y = |i: usize| n - 1 - i;
    for (i, r) in rated.iter().enumerate() {
        let Some(v) = r.mb_per_s else {
            chart.draw_series(std::iter::once(Text::new(
                format!("error: {}", r.row.error.as_deref().unwrap_or("no number")),
                (lo * 1.1, SegmentValue::CenterOf(y(i))),
                ("sans-serif", 15).into_font().color(&RED),
            )))?;
            continue;
        };
        let color = group_color(&r.row.id);
        let mut bar = Rectangle::new(
            [
                (lo, SegmentValue::Exact(y(i))),
                (v, SegmentValue::Exact(y(i) + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        chart.draw_series(std::iter::once(bar))?;
        let note = match r.x_seed {
            Some(x) => format!("{} MB/s  ({}× seed)", num(v), num(x)),
            None => format!("{} MB/s", num(v)),
        };
        chart.draw_series(std::iter::once(Text::new(
            note,
            (v * 1.08, SegmentValue::CenterOf(y(i))),
            ("sans-serif", 14).into_font(),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// The x axis: whole decades around the values, so that the shortest bar is still visible
/// and the longest has room for its label.
fn log_range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if values.is_empty() {
        return (0.01, 100.0);
    }
    (
        10f64.powf((lo / 2.0).log10().floor()),
        10f64.powf((hi * 3.0).log10().ceil()),
    )
}

/// An axis label: 0.1, 1, 10, 100.
fn tick(v: f64) -> String {
    let s = num(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One colour per kind of path, so the families stand out.
fn group_color(id: &str) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    match id.split('-').next().unwrap_or("") {
        "ioctl" => RGBColor(150, 150, 150),
        "read" if id.starts_with("read-mmio") => RGBColor(120, 160, 220),
        "read" if id.starts_with("read-dma") => RGBColor(30, 150, 80),
        "read" => RGBColor(40, 100, 200),
        "hwrng" => RGBColor(230, 140, 30),
        "getrandom" => RGBColor(140, 80, 170),
        "zero" => RGBColor(200, 200, 200),
        _ => RGBColor(90, 90, 90),
    }
}

/// Rows that produced no number: the smoke check.
pub fn missing_numbers(rated: &[Rated]) -> Vec<String> {
    rated
        .iter()
        .filter(|r| r.mb_per_s.is_none())
        .map(|r| {
            format!(
                "{} ({})",
                r.row.id,
                r.row.error.as_deref().unwrap_or("no bytes measured")
            )
        })
        .collect()
}

/// Everything one bench boot produced, rated; the files written.
pub struct Outcome {
    pub rated: Vec<Rated>,
    pub verdicts: Vec<Verdict>,
    pub dir: PathBuf,
}

/// Writes bench.json, bench.md and bench.png into `dir`.
pub fn write_files(dir: &Path, setup: &Setup, report: &Report) -> Result<Outcome> {
    let rated = rate(&report.rows);
    let verdicts = evaluate(&rated);
    fs::create_dir_all(dir)?;
    let record = json!({
        "setup": setup,
        "rows": rated,
        "goals": verdicts,
        "guest": { "kernel": report.kernel, "hwrng_available": report.hwrng_available },
    });
    fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&record)? + "\n",
    )?;
    fs::write(dir.join("bench.md"), markdown(setup, &rated, &verdicts))?;
    chart(&dir.join("bench.png"), setup, &rated)?;
    Ok(Outcome {
        rated,
        verdicts,
        dir: dir.to_path_buf(),
    })
}

pub fn qemu_version(qemu: &Path) -> String {
    crate::util::output(Command::new(qemu).arg("--version"))
        .ok()
        .and_then(|v| {
            v.lines()
                .next()
                .and_then(|l| l.split("version ").nth(1))
                .map(|v| v.split_whitespace().next().unwrap_or(v).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn today() -> String {
    crate::util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|_| "unknown date".into())
}

/// The main bench boot: one my_rng device and virtio-rng, measured with the C driver bound,
/// then the same device moved to the Rust driver (my_rng_rust.ko) and measured again, so that
/// the two drivers' rows come from one boot.
pub fn boot(vm: &vm::Vm, accel: vm::Accel, smoke: bool) -> Result<(Report, Setup)> {
    let vm = vm::Vm {
        devices: 1,
        ..vm.clone()
    };
    let (mut report, setup, run) =
        boot_run(&vm, accel, smoke, "bench", &["MYRNG_BENCH_RUST_DRIVER=1"])?;
    report.rows.extend(crate::rust_driver::bench_rows(&run)?);
    Ok((report, setup))
}

/// A bench boot of `vm` with its own devices (and virtio-rng); the serial log is
/// guest-`log`[-smoke].log.
pub fn boot_vm(vm: &vm::Vm, accel: vm::Accel, smoke: bool, log: &str) -> Result<(Report, Setup)> {
    boot_run(vm, accel, smoke, log, &[]).map(|(r, s, _)| (r, s))
}

/// The report of a bench step's output (its JSON line).
pub fn step_report(run: &vm::Run, step: &str) -> Result<Report> {
    let (text, rc) = run.step(step);
    let report = parse_report(&text)
        .with_context(|| format!("{step} step (exit {rc}) output:\n{}", text.trim()))?;
    ensure!(
        !report.rows.is_empty(),
        "the guest's {step} step reported no rows"
    );
    if rc != 0 {
        note(&format!("the guest's {step} step exited {rc}"));
    }
    Ok(report)
}

/// [`boot_vm`] with `append` on the kernel command line; also gives the run, for the steps
/// `append` asked for.
fn boot_run(
    vm: &vm::Vm,
    accel: vm::Accel,
    smoke: bool,
    log: &str,
    append: &[&str],
) -> Result<(Report, Setup, vm::Run)> {
    let mut b = vm::Boot::new("bench", Duration::from_secs(if smoke { 600 } else { 1800 }))
        .device("virtio-rng-pci")
        .log_name(log);
    for w in append {
        b = b.append(w);
    }
    if smoke {
        b = b
            .append("MYRNG_BENCH=smoke")
            .log_name(&format!("{log}-smoke"));
    }
    let run = vm.boot(accel, &b)?;
    let report = step_report(&run, STEP)?;
    let kernel = report
        .kernel
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| report.kernel.to_string());
    let setup = Setup {
        date: today(),
        accelerator: run.accel.short().into(),
        qemu: qemu_version(&vm.qemu),
        kernel,
        smoke,
    };
    Ok((report, setup, run))
}

/// Where the files go.
pub fn dir(smoke: bool) -> PathBuf {
    if smoke {
        out_dir().join("bench-smoke")
    } else {
        repo_root().join("docs/bench")
    }
}

/// Runs the smoke bench: Ok if every row produced a number.
pub fn smoke(vm: &vm::Vm, accel: vm::Accel) -> Result<Outcome> {
    let (mut report, setup) = boot(vm, accel, true)?;
    report
        .rows
        .extend(crate::vfio_user::bench_rows(vm, accel, true)?);
    ensure!(
        !report.rows.is_empty(),
        "the guest's bench reported no rows"
    );
    let out = write_files(&dir(true), &setup, &report)?;
    let missing = missing_numbers(&out.rated);
    ensure!(
        missing.is_empty(),
        "{} of {} rows produced no number: {}",
        missing.len(),
        out.rated.len(),
        missing.join("; ")
    );
    Ok(out)
}

/// `cargo xtask bench [--smoke]`.
pub fn main(smoke_only: bool, tcg: bool) -> Result<()> {
    let vm = run::build_all(&[])?;
    let accel = if tcg { vm::Accel::Tcg } else { vm.probe() };
    let out = if smoke_only {
        smoke(&vm, accel)?
    } else {
        let (mut report, setup) = boot(&vm, accel, false)?;
        report
            .rows
            .extend(crate::vfio_user::bench_rows(&vm, accel, false)?);
        write_files(&dir(false), &setup, &report)?
    };
    step(&format!(
        "Benchmark results (files in {})",
        out.dir.display()
    ));
    print!("{}", table(&out.rated));
    if smoke_only {
        println!("(smoke run: every row produced a number; the numbers are not measurements)");
        return Ok(());
    }
    println!();
    for v in &out.verdicts {
        let word = match v.met {
            Some(true) => "met  ",
            Some(false) => "short",
            None => "n/a  ",
        };
        println!("goal {word} {}: {}", v.goal, v.detail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written report in the guest's schema, with kernel lines in between.
    const SAMPLE: &str = r#"[    3.120000] random: crng init done
{"rows":[{"id":"ioctl-rand","label":"ioctl RAND (4 B)","bytes_per_call":4,"bytes":4000000,"seconds":1.0},
[    4.500000] my_rng 0000:00:03.0: something
{"id":"read-bounce-1m","label":"read() DMA bounce, 1 MiB","bytes_per_call":1048576,"bytes":800000000,"seconds":1.0},{"id":"read-zerocopy-1m","label":"read() DMA zero-copy, 1 MiB","bytes_per_call":1048576,"bytes":1000000000,"seconds":1.0},{"id":"getrandom-1m","label":"getrandom(), 1 MiB","bytes_per_call":1048576,"bytes":500000000,"seconds":1.0},{"id":"zero-1m","label":"/dev/zero, 1 MiB","bytes_per_call":1048576,"bytes":4000000000,"seconds":2.0},{"id":"hwrng-my_rng","label":"/dev/hwrng (my_rng), 4 KiB","bytes_per_call":4096,"bytes":50000000,"seconds":1.0},{"id":"hwrng-virtio","label":"/dev/hwrng (virtio-rng), 4 KiB","bytes_per_call":4096,"bytes":0,"seconds":0.0,"error":"no virtio source in rng_available"},{"id":"read-dma-1m-glibc","label":"read() DMA (auto path), 1 MiB, glibc","bytes_per_call":1048576,"bytes":1000000000,"seconds":1.0}],"kernel":"7.3.4","hwrng_available":"my_rng my_rng.1"}
"#;

    fn rated() -> Vec<Rated> {
        rate(&parse_report(SAMPLE).unwrap().rows)
    }

    #[test]
    fn report_is_found_between_kernel_lines() {
        let r = parse_report(SAMPLE).unwrap();
        assert_eq!(r.rows.len(), 8);
        assert_eq!(r.kernel, "7.3.4");
        assert_eq!(
            r.rows[6].error.as_deref(),
            Some("no virtio source in rng_available")
        );
        assert!(parse_report("[ 1.0] no json here\n").is_err());
        assert!(parse_report("{\"rows\":[{\"id\":\"x\"").is_err());
        assert!(
            parse_report("{\"rows\":[{\"id\":\"x\"}]}").is_err(),
            "label missing"
        );
    }

    #[test]
    fn rates_against_seed_and_zero() {
        let r = rated();
        let get = |id: &str| r.iter().find(|x| x.row.id == id).unwrap();
        assert_eq!(get("ioctl-rand").mb_per_s, Some(4.0));
        assert_eq!(get("ioctl-rand").x_seed, Some(1.0));
        assert_eq!(
            get("ioctl-rand").pct_of_zero,
            None,
            "no 4-byte /dev/zero row"
        );
        let z = get("read-zerocopy-1m");
        assert_eq!(z.mb_per_s, Some(1000.0));
        assert_eq!(z.x_seed, Some(250.0));
        assert_eq!(z.pct_of_zero, Some(50.0));
        assert_eq!(get("hwrng-virtio").mb_per_s, None);
        assert_eq!(
            missing_numbers(&r),
            ["hwrng-virtio (no virtio source in rng_available)"]
        );
    }

    #[test]
    fn goals() {
        let v = evaluate(&rated());
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        // 250× seed, 2× getrandom, exactly 50% of zero, 1000 ≥ 800, virtio unmeasured.
        assert_eq!(met, [Some(true), Some(true), Some(true), Some(true), None]);
        assert!(v[4].detail.contains("hwrng-virtio"), "{}", v[4].detail);
        assert!(v[0].detail.contains("250×"), "{}", v[0].detail);
        let mut slow = parse_report(SAMPLE).unwrap().rows;
        // DMA 100 MB/s: 25× seed, below getrandom and 50% of zero; zero-copy below bounce.
        slow[7].bytes = 100_000_000;
        slow[2].bytes = 100_000_000;
        let v = evaluate(&rate(&slow));
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        assert_eq!(
            met,
            [Some(false), Some(false), Some(false), Some(false), None]
        );
    }

    #[test]
    fn markdown_table() {
        let r = rated();
        let setup = Setup {
            date: "2026-11-25".into(),
            accelerator: "TCG".into(),
            qemu: "10.2.2".into(),
            kernel: "7.3.4".into(),
            smoke: false,
        };
        let md = markdown(&setup, &r, &evaluate(&r));
        assert!(md.contains("| row | MB/s | × seed path | % of /dev/zero |"));
        assert!(md.contains(
            "| read() DMA zero-copy, 1 MiB (`read-zerocopy-1m`) | 1000 | 250× | 50.0% |"
        ));
        assert!(md.contains(
            "| /dev/hwrng (virtio-rng), 4 KiB (`hwrng-virtio`) | \
             error: no virtio source in rng_available | – | – |"
        ));
        assert!(md.contains("- **not measured**: hw_random my_rng"));
        assert!(md.contains("under TCG, QEMU 10.2.2, guest Linux 7.3.4"));
    }

    #[test]
    fn chart_is_drawn() {
        let r = rated();
        let setup = Setup {
            date: "2026-11-25".into(),
            accelerator: "TCG".into(),
            qemu: "10.2.2".into(),
            kernel: "7.3.4".into(),
            smoke: true,
        };
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let png = dir.join("bench.png");
        chart(&png, &setup, &r).unwrap();
        let data = fs::read(&png).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n");
        // 1400 px wide, 140 + 34 px per row high (IHDR).
        assert_eq!(u32::from_be_bytes(data[16..20].try_into().unwrap()), 1400);
        assert_eq!(
            u32::from_be_bytes(data[20..24].try_into().unwrap()),
            140 + 34 * r.len() as u32
        );
    }

    #[test]
    fn chart_axis() {
        assert_eq!(log_range(&[1.05, 786.0]), (0.1, 10000.0));
        assert_eq!(log_range(&[2.5, 200.0]), (1.0, 1000.0));
        assert_eq!(log_range(&[]), (0.01, 100.0));
        assert_eq!(tick(0.1), "0.1");
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(10000.0), "10000");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1234.4), "1234");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.01234), "0.0123");
        assert_eq!(num(250.0), "250");
        assert_eq!(num(41.06), "41.1");
        assert_eq!(num(1.3297), "1.33");
        assert_eq!(num(0.987), "0.987");
    }

    #[test]
    fn kernel_lines() {
        assert!(is_kernel_line("[    1.234567] x"));
        assert!(!is_kernel_line("[{\"id\":1}]"));
        assert!(!is_kernel_line("{\"rows\":["));
    }
}
