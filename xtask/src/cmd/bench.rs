//! `cargo xtask bench`: one guest with a my_rng device in QEMU (the C device), a Rust device
//! (vfio-user) and a virtio-rng device runs `my-rng bench --json`: every row on the C device
//! with the C driver, the device's rows again on the Rust device, then again on the C device
//! with the Rust driver (my_rng_rust.ko), all in one boot. Before the boot the host measures
//! the Rust device's per-access round trip against a bare UNIX-socket round trip
//! (`my-rng-vfio-user-rtt`). The host rates every row against the seed's RAND ioctl and
//! /dev/zero, evaluates the goals (the twins' ratios among them) and writes docs/bench/
//! (bench.json, bench.md, bench.png). `--smoke` runs every row briefly and writes to
//! target/my-rng/bench-smoke/ instead: it checks that every row produces a number (or was
//! skipped for a reason the tree explains), never how fast.

use crate::util::{note, out_dir, repo_root, step};
use crate::vfio_user::{self, BENCH_ADDR};
use crate::{checks, parts, vm};
use anyhow::{ensure, Context, Result};
use my_rng_protocol::bench::row as id;
use my_rng_protocol::{param, step, BenchReport, BenchRow, Mode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The reference row every other is compared to: the seed's path, one RAND ioctl per 4 bytes.
const SEED_ROW: &str = id::IOCTL_RAND;
/// The framed step of the guest's /init that prints the JSON.
const STEP: &str = step::BENCH;
/// The font of the chart's text (Debian's fonts-dejavu-core, a host package).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The device's rows: measured on the C device with the C driver, and again on the Rust
/// device and with the Rust driver (ids prefixed [`RUST_DEVICE`], [`RUST_DRIVER`]).
pub const TWIN_ROWS: &[&str] = &id::TWINS;
pub use id::{RUST_DEVICE, RUST_DRIVER};
/// The host's rows: a bare UNIX-socket round trip, and a REGION_READ through the server.
pub const FLOOR_ROW: &str = "host-socket-floor";
pub const ROUND_TRIP_ROW: &str = "host-region-read";
/// The Rust twins' goal: at most this many times slower than the C twin.
const TWIN_FACTOR: f64 = 1.5;
/// The round trip's goal: at most this many times the socket floor.
const ROUND_TRIP_FACTOR: f64 = 2.0;
/// The seed's RAND ioctl against getrandom() of 4 bytes, calls per second.
const RAND_VS_GETRANDOM: f64 = 0.8;
/// Rows that read a register per call whatever the driver: on the Rust device each is a
/// vfio-user round trip, judged by the round-trip goal instead of the 1.5× one.
const REGISTER_ROWS: &[&str] = &[
    id::IOCTL_RAND_MMIO,
    id::IOCTL_RAND64_MMIO,
    id::READ_MMIO_64K,
];
/// Rows that read registers only on a driver without the RAND stash (no ioctl_path).
const STASH_ROWS: &[&str] = &[id::IOCTL_RAND, id::IOCTL_RAND64, id::IOCTL_SEED_READ];
/// The /dev/zero rows, each row's ceiling at its size.
const ZERO_ROWS: &[&str] = &[id::ZERO_4K, id::ZERO_64K, id::ZERO_1M];

/// One row as `my-rng bench --json` reports it.
pub type Row = BenchRow;

/// The guest's report.
pub type Report = BenchReport;

/// The host's own rows (`host-…`): measured by xtask, not in the guest.
fn is_host(row: &Row) -> bool {
    row.id.starts_with("host-")
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
    pub calls_per_s: Option<f64>,
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
            // The host's rows measure a socket, not a source of bytes.
            let v = r.mb_per_s().filter(|_| !is_host(r));
            let zero = rows
                .iter()
                .find(|z| {
                    ZERO_ROWS.contains(&z.id.as_str()) && z.bytes_per_call == r.bytes_per_call
                })
                .and_then(Row::mb_per_s);
            Rated {
                row: r.clone(),
                mb_per_s: r.mb_per_s(),
                calls_per_s: r.calls_per_s(),
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
const DMA_1M: &str = id::READ_DMA_1M_GLIBC;

/// The benchmark's throughput goals (issue "DMA ... benchmark").
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
        base: id::GETRANDOM_1M,
        factor: 1.0,
    },
    Goal {
        what: "DMA read 1 MiB ≥ 50% of /dev/zero 1 MiB",
        row: DMA_1M,
        base: id::ZERO_1M,
        factor: 0.5,
    },
    Goal {
        what: "zero-copy read 1 MiB ≥ bounce-buffer read 1 MiB",
        row: id::READ_ZEROCOPY_1M,
        base: id::READ_BOUNCE_1M,
        factor: 1.0,
    },
    Goal {
        what: "hw_random my_rng ≥ 10× hw_random virtio-rng",
        row: id::HWRNG_MY_RNG,
        base: id::HWRNG_VIRTIO,
        factor: 10.0,
    },
];

/// How a goal came out.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    Short,
    /// A row has no number.
    NotMeasured,
    /// A row was skipped (the driver lacks the attribute it needs).
    Skipped,
    /// The Rust device on a row that reads a register per call: the round-trip goal
    /// stands for it (the ratio is shown, not judged).
    RoundTrip,
}

impl Status {
    fn of(met: bool) -> Status {
        if met {
            Status::Met
        } else {
            Status::Short
        }
    }

    fn word(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Short => "short",
            Status::NotMeasured => "not measured",
            Status::Skipped => "skipped",
            Status::RoundTrip => "round trip",
        }
    }
}

#[derive(Serialize, Debug)]
pub struct Verdict {
    pub goal: String,
    pub status: Status,
    pub detail: String,
    /// For the twins' goals: the row (without prefix) and which twin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twin: Option<(String, &'static str)>,
    /// The ratio the goal judges, if measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

/// `f` of the rows `ids`, or a "not measured" verdict naming those without a number.
fn figures(
    rated: &[Rated],
    goal: &str,
    ids: &[&str],
    f: fn(&Rated) -> Option<f64>,
) -> Result<Vec<f64>, Verdict> {
    let found: Vec<Option<f64>> = ids
        .iter()
        .map(|id| rated.iter().find(|r| r.row.id == *id).and_then(f))
        .collect();
    if found.iter().all(Option::is_some) {
        return Ok(found.into_iter().flatten().collect());
    }
    let missing: Vec<&str> = ids
        .iter()
        .zip(&found)
        .filter(|(_, v)| v.is_none())
        .map(|(id, _)| *id)
        .collect();
    let skip = missing.iter().find_map(|id| {
        let r = rated.iter().find(|r| r.row.id == *id)?;
        r.row
            .skipped
            .as_deref()
            .map(|why| format!("{id} skipped: {why}"))
    });
    let (status, detail) = match skip {
        Some(why) => (Status::Skipped, why),
        None => (
            Status::NotMeasured,
            format!("no number for {}", missing.join(", ")),
        ),
    };
    Err(Verdict {
        goal: goal.into(),
        status,
        detail,
        twin: None,
        ratio: None,
    })
}

fn verdict(goal: String, status: Status, ratio: f64, detail: String) -> Verdict {
    Verdict {
        goal,
        status,
        detail,
        twin: None,
        ratio: Some(ratio),
    }
}

fn throughput_goal(rated: &[Rated], g: &Goal) -> Verdict {
    let (v, b) = match figures(rated, g.what, &[g.row, g.base], |r| r.mb_per_s) {
        Ok(f) => (f[0], f[1]),
        Err(v) => return v,
    };
    let ratio = v / b;
    let detail = format!(
        "{} {} MB/s vs {} {} MB/s = {}× (goal ≥ {}×)",
        g.row,
        num(v),
        g.base,
        num(b),
        num(ratio),
        g.factor
    );
    verdict(g.what.into(), Status::of(ratio >= g.factor), ratio, detail)
}

/// The seed's RAND ioctl against getrandom() of 4 bytes, on each device and driver.
fn rand_goals(rated: &[Rated]) -> Vec<Verdict> {
    [
        ("C device", SEED_ROW.to_string()),
        ("Rust device", format!("{RUST_DEVICE}{SEED_ROW}")),
        ("Rust driver", format!("{RUST_DRIVER}{SEED_ROW}")),
    ]
    .into_iter()
    .map(|(who, rand)| {
        let goal = format!("ioctl RAND ≥ {RAND_VS_GETRANDOM}× getrandom(4 B) calls/s, {who}");
        let rows = [rand.as_str(), id::GETRANDOM_4B];
        let (v, b) = match figures(rated, &goal, &rows, |r| r.calls_per_s) {
            Ok(f) => (f[0], f[1]),
            Err(v) => return v,
        };
        let detail = format!(
            "{rand} {} calls/s vs {} {} calls/s = {}× (goal ≥ {RAND_VS_GETRANDOM}×, \
             1× wanted)",
            num(v),
            id::GETRANDOM_4B,
            num(b),
            num(v / b)
        );
        verdict(goal, Status::of(v / b >= RAND_VS_GETRANDOM), v / b, detail)
    })
    .collect()
}

/// The Rust device's REGION_READ round trip against the socket floor, µs per call.
fn round_trip_goal(rated: &[Rated]) -> Verdict {
    let goal = format!(
        "Rust device's register round trip ≤ {ROUND_TRIP_FACTOR}× a bare UNIX-socket round trip"
    );
    let us = |r: &Rated| r.calls_per_s.map(|c| 1e6 / c);
    let (rt, floor) = match figures(rated, &goal, &[ROUND_TRIP_ROW, FLOOR_ROW], us) {
        Ok(f) => (f[0], f[1]),
        Err(v) => return v,
    };
    let detail = format!(
        "{ROUND_TRIP_ROW} {} µs vs {FLOOR_ROW} {} µs = {}× (goal ≤ {ROUND_TRIP_FACTOR}×)",
        num(rt),
        num(floor),
        num(rt / floor)
    );
    let met = rt / floor <= ROUND_TRIP_FACTOR;
    verdict(goal, Status::of(met), rt / floor, detail)
}

/// Whether `id` reads a register per call on the Rust device with the C driver: always on
/// the register rows, and on the RAND rows when the driver has no stash (its register-path
/// row was skipped for want of the attribute).
fn register_bound(rated: &[Rated], id: &str) -> bool {
    let no_stash = rated
        .iter()
        .any(|r| r.row.id == format!("{RUST_DEVICE}ioctl-rand-mmio") && r.row.skipped.is_some());
    REGISTER_ROWS.contains(&id) || (no_stash && STASH_ROWS.contains(&id))
}

/// Per device row: the Rust driver's and the Rust device's time against the C twin's, in
/// the same boot (C ÷ Rust in MB/s: above 1, the Rust twin is slower).
fn twin_goals(rated: &[Rated]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for id in TWIN_ROWS {
        for (prefix, who) in [(RUST_DRIVER, "Rust driver"), (RUST_DEVICE, "Rust device")] {
            let twin = format!("{prefix}{id}");
            let goal = format!("{who} ≤ {TWIN_FACTOR}× the C twin: {id}");
            let mut v = match figures(rated, &goal, &[id, &twin], |r| r.mb_per_s) {
                Ok(f) => {
                    let ratio = f[0] / f[1];
                    let status = if prefix == RUST_DEVICE && register_bound(rated, id) {
                        Status::RoundTrip
                    } else {
                        Status::of(ratio <= TWIN_FACTOR)
                    };
                    let detail = format!(
                        "C {} MB/s, {who} {} MB/s: C ÷ Rust = {}×",
                        num(f[0]),
                        num(f[1]),
                        num(ratio)
                    );
                    verdict(goal, status, ratio, detail)
                }
                Err(v) => v,
            };
            v.twin = Some((id.to_string(), who));
            out.push(v);
        }
    }
    out
}

fn evaluate(rated: &[Rated]) -> Vec<Verdict> {
    let mut v: Vec<Verdict> = GOALS.iter().map(|g| throughput_goal(rated, g)).collect();
    v.extend(rand_goals(rated));
    v.push(round_trip_goal(rated));
    v.extend(twin_goals(rated));
    v
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

/// A table cell for a row's figure: the number, or why there is none.
fn figure_cell(r: &Rated, v: Option<f64>) -> String {
    let esc = |t: &str| t.replace('|', "\\|");
    match (&r.row.skipped, &r.row.error, v) {
        (Some(why), _, None) => format!("skipped: {}", esc(why)),
        (_, Some(e), None) => format!("error: {}", esc(e)),
        (_, Some(e), Some(v)) => format!("{} (stopped: {})", num(v), esc(e)),
        (_, None, v) => v.map_or("–".to_string(), num),
    }
}

/// The markdown page: setup, table, goals.
pub fn markdown(setup: &Setup, rated: &[Rated], verdicts: &[Verdict]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# my-rng throughput\n");
    let _ = writeln!(
        s,
        "Measured {} by `cargo xtask bench{}` in one guest under {}, QEMU {}, guest Linux {}: \
         a my_rng device in QEMU (the C device), the same device in Rust (vfio-user, \
         `[Rust device]`) and virtio-rng-pci. Every row runs on the C device with the C \
         driver; the device's rows run again on the Rust device and, with the Rust driver \
         bound instead, on the C device (`[Rust driver]`). MB/s are 10^6 bytes per second of \
         the guest's wall clock; every row is compared to the seed's path (one RAND ioctl per \
         4 bytes) and to reading /dev/zero with the same size per call. The `host:` rows are \
         measured on the host before the boot (`my-rng-vfio-user-rtt`): a bare UNIX-socket \
         request/reply between two threads, and a 4-byte REGION_READ through the Rust \
         device's server.\n",
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
    let _ = writeln!(s, "| row | calls/s | MB/s | × seed path | % of /dev/zero |");
    let _ = writeln!(s, "|-----|--------:|-----:|------------:|---------------:|");
    for r in rated {
        let cell = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".to_string(), f);
        let _ = writeln!(
            s,
            "| {} (`{}`) | {} | {} | {} | {} |",
            r.row.label,
            r.row.id,
            cell(r.calls_per_s, &|v| format!("{v:.0}")),
            figure_cell(r, r.mb_per_s),
            cell(r.x_seed, &|v| format!("{}×", num(v))),
            cell(r.pct_of_zero, &|v| format!("{}%", num(v))),
        );
    }
    goals_markdown(&mut s, verdicts);
    let _ = writeln!(
        s,
        "\nThe chart (bench.png) shows the same MB/s on a log scale, each device row's twins \
         side by side; bench.json has the raw bytes and seconds of every row."
    );
    s
}

/// The goals: one line each, then the twins' ratios as a table.
fn goals_markdown(s: &mut String, verdicts: &[Verdict]) {
    let _ = writeln!(s, "\n## Goals\n");
    for v in verdicts.iter().filter(|v| v.twin.is_none()) {
        let _ = writeln!(s, "- **{}**: {}: {}", v.status.word(), v.goal, v.detail);
    }
    let _ = writeln!(
        s,
        "\n### The Rust twins against the C twins (same boot; C ÷ Rust, goal ≤ {TWIN_FACTOR}×)\n\n\
         On the Rust device, a row that reads a register per call costs a vfio-user round \
         trip per call: its ratio is shown as *round trip*, judged by the round-trip goal \
         above.\n"
    );
    let _ = writeln!(s, "| row | Rust driver | Rust device |");
    let _ = writeln!(s, "|-----|------------:|------------:|");
    let cell = |v: &Verdict| match v.ratio {
        Some(r) => format!("{}× {}", num(r), v.status.word()),
        None => v.status.word().to_string(),
    };
    for pair in verdicts
        .iter()
        .filter(|v| v.twin.is_some())
        .collect::<Vec<_>>()
        .chunks(2)
    {
        if let [drv, dev] = pair {
            let id = &drv.twin.as_ref().expect("twin").0;
            let _ = writeln!(s, "| `{id}` | {} | {} |", cell(drv), cell(dev));
        }
    }
}

/// The terminal table.
fn table(rated: &[Rated]) -> String {
    let names: Vec<String> = rated
        .iter()
        .map(|r| format!("{} ({})", r.row.label, r.row.id))
        .collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(3);
    let mut s = format!(
        "{:<w$} {:>10} {:>10} {:>10} {:>8}\n",
        "row", "calls/s", "MB/s", "x seed", "% zero"
    );
    for (r, name) in rated.iter().zip(&names) {
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
        if r.mb_per_s.is_none() {
            let _ = writeln!(s, "{name:<w$} {}", figure_cell(r, None));
            continue;
        }
        let _ = writeln!(
            s,
            "{name:<w$} {:>10} {:>10} {:>10} {:>8}{}",
            opt(r.calls_per_s, &|v| format!("{v:.0}")),
            opt(r.mb_per_s, &num),
            opt(r.x_seed, &num),
            opt(r.pct_of_zero, &|v| format!("{}%", num(v))),
            r.row
                .error
                .as_ref()
                .map_or(String::new(), |e| format!("  (stopped: {e})"))
        );
    }
    s
}

/// Who measured a bar: twins get their own colours.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Twin {
    /// A row without twins (references, virtio-rng, the host's rows).
    Single,
    C,
    RustDriver,
    RustDevice,
}

/// One bar of the chart: a row, its group's label or its twin's name, and its place.
struct Bar<'r> {
    rated: &'r Rated,
    label: String,
    twin: Twin,
    slot: usize,
}

/// The bars in chart order: each device row followed by its Rust driver and Rust device
/// twins (grouped, a blank slot between groups), the other rows alone.
fn bars(rated: &[Rated]) -> (Vec<Bar<'_>>, usize) {
    let find = |id: &str| rated.iter().find(|r| r.row.id == id);
    let base_of = |id: &str| {
        [RUST_DRIVER, RUST_DEVICE]
            .iter()
            .find_map(|p| id.strip_prefix(p))
            .filter(|b| find(b).is_some())
            .map(str::to_string)
    };
    let (mut out, mut slot) = (Vec::new(), 0);
    for r in rated.iter().filter(|r| base_of(&r.row.id).is_none()) {
        let twins: Vec<(&Rated, &str, Twin)> = [
            (RUST_DRIVER, "Rust driver", Twin::RustDriver),
            (RUST_DEVICE, "Rust device", Twin::RustDevice),
        ]
        .iter()
        .filter_map(|(p, n, t)| find(&format!("{p}{}", r.row.id)).map(|x| (x, *n, *t)))
        .collect();
        if !twins.is_empty() && slot > 0 && out.last().is_some_and(|b: &Bar| b.slot + 1 == slot) {
            slot += 1;
        }
        let twin = if twins.is_empty() {
            Twin::Single
        } else {
            Twin::C
        };
        let label = r.row.label.clone();
        out.push(Bar {
            rated: r,
            label,
            twin,
            slot,
        });
        slot += 1;
        for (x, name, t) in &twins {
            let label = name.to_string();
            out.push(Bar {
                rated: x,
                label,
                twin: *t,
                slot,
            });
            slot += 1;
        }
        if !twins.is_empty() {
            slot += 1;
        }
    }
    let slots = out.last().map_or(0, |b| b.slot + 1);
    (out, slots)
}

/// A horizontal bar chart of MB/s on a log scale: one bar per row, the device rows' twins
/// side by side.
pub fn chart(path: &Path, setup: &Setup, rated: &[Rated]) -> Result<()> {
    chart_sized(path, setup, rated, 1400)
}

/// Height of a chart of `slots` bar places.
fn chart_height(slots: usize) -> u32 {
    200 + 30 * slots as u32
}

fn register_chart_font() -> Result<()> {
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
    .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))
}

/// [`chart`] `width` pixels wide: the same text on a narrower canvas is larger when the
/// picture is scaled to a column (the report's copy).
pub fn chart_sized(path: &Path, setup: &Setup, rated: &[Rated], width: u32) -> Result<()> {
    use plotters::prelude::*;

    register_chart_font()?;
    let (bars, slots) = bars(rated);
    let values: Vec<f64> = rated.iter().filter_map(|r| r.mb_per_s).collect();
    let (lo, hi) = log_range(&values);
    let canvas = BitMapBackend::new(path, (width, chart_height(slots))).into_drawing_area();
    canvas.fill(&WHITE)?;
    let title = format!(
        "my-rng throughput, MB/s (log scale) — {}, QEMU {}, Linux {}{}",
        setup.accelerator,
        setup.qemu,
        setup.kernel,
        if setup.smoke { " — SMOKE RUN" } else { "" }
    );
    // A narrow canvas (the report's column) needs a smaller title to hold it.
    let titled = canvas.titled(&title, ("sans-serif", if width < 1000 { 16 } else { 22 }))?;
    let (legend, root) = titled.split_vertically(30);
    draw_legend(&legend)?;
    // The label column fits the longest label as drawn, so none is clipped at the left edge.
    let label_font: TextStyle = ("sans-serif", 15).into();
    let mut label_width = 0;
    for b in &bars {
        label_width = label_width.max(root.estimate_text_size(&b.label, &label_font)?.0);
    }
    let mut labels = vec![String::new(); slots];
    for b in &bars {
        labels[b.slot] = b.label.clone();
    }
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        // Room for the last bar's note; a narrow canvas has less of it in the plot.
        .margin_right(if width < 1000 { 150 } else { 60 })
        .x_label_area_size(40)
        .y_label_area_size(label_width + 24)
        // The segmented range 0..last has one band per value 0..=last.
        .build_cartesian_2d((lo..hi).log_scale(), (0..slots.max(1) - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(slots)
        .y_label_style(label_font)
        .x_label_style(("sans-serif", 15))
        .x_desc("MB/s")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < slots => labels[slots - 1 - i].clone(),
            _ => String::new(),
        })
        .draw()?;
    draw_bars(&mut chart, &bars, slots, lo)?;
    canvas.present()?;
    Ok(())
}

/// The twins' colours, in a strip above the plot (inside it, they would cover bars).
fn draw_legend(
    area: &plotters::drawing::DrawingArea<
        plotters::backend::BitMapBackend<'_>,
        plotters::coord::Shift,
    >,
) -> Result<()> {
    use plotters::prelude::*;
    let font: TextStyle = ("sans-serif", 15).into();
    let mut x = 16;
    for (twin, name) in [
        (Twin::C, "C driver, C device"),
        (Twin::RustDriver, "Rust driver, C device"),
        (Twin::RustDevice, "C driver, Rust device"),
    ] {
        let c = twin_color(twin).unwrap_or(BLACK);
        area.draw(&Rectangle::new([(x, 8), (x + 16, 22)], c.filled()))?;
        area.draw(&Text::new(name, (x + 22, 7), font.clone()))?;
        x += 22 + area.estimate_text_size(name, &font)?.0 as i32 + 24;
    }
    Ok(())
}

type Chart<'a, 'b> = plotters::chart::ChartContext<
    'a,
    plotters::backend::BitMapBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::combinators::LogCoord<f64>,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize>,
    >,
>;

/// The bars (slot 0 at the top, as in the table), their figures, and the twins' legend.
fn draw_bars<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    bars: &[Bar<'_>],
    slots: usize,
    lo: f64,
) -> Result<()> {
    use plotters::prelude::*;
    let y = |slot: usize| slots - 1 - slot;
    for b in bars {
        let Some(v) = b.rated.mb_per_s else {
            let why = b
                .rated
                .row
                .skipped
                .as_deref()
                .map(|s| format!("skipped: {s}"));
            let why = why.unwrap_or_else(|| {
                format!(
                    "error: {}",
                    b.rated.row.error.as_deref().unwrap_or("no number")
                )
            });
            chart.draw_series(std::iter::once(Text::new(
                why,
                (lo * 1.1, SegmentValue::CenterOf(y(b.slot))),
                ("sans-serif", 14).into_font().color(&RED),
            )))?;
            continue;
        };
        let mut bar = Rectangle::new(
            [
                (lo, SegmentValue::Exact(y(b.slot))),
                (v, SegmentValue::Exact(y(b.slot) + 1)),
            ],
            bar_color(b).filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        chart.draw_series(std::iter::once(bar))?;
        let note = match (b.rated.x_seed, b.rated.calls_per_s) {
            (Some(x), _) => format!("{} MB/s  ({}× seed)", num(v), num(x)),
            // The host's rows: what they measure is time per round trip.
            (None, Some(c)) if is_host(&b.rated.row) => format!("{} µs per call", num(1e6 / c)),
            (None, _) => format!("{} MB/s", num(v)),
        };
        chart.draw_series(std::iter::once(Text::new(
            note,
            (v * 1.08, SegmentValue::CenterOf(y(b.slot))),
            ("sans-serif", 13).into_font(),
        )))?;
    }
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

/// The twins' colours: C blue, Rust driver orange, Rust device green.
fn twin_color(t: Twin) -> Option<plotters::style::RGBColor> {
    use plotters::style::RGBColor;
    match t {
        Twin::Single => None,
        Twin::C => Some(RGBColor(40, 100, 200)),
        Twin::RustDriver => Some(RGBColor(230, 130, 20)),
        Twin::RustDevice => Some(RGBColor(30, 150, 80)),
    }
}

/// A twin's colour, else one grey or muted colour per kind of reference.
fn bar_color(b: &Bar<'_>) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    twin_color(b.twin).unwrap_or_else(|| match b.rated.row.id.split('-').next().unwrap_or("") {
        "hwrng" => RGBColor(200, 170, 120),
        "getrandom" => RGBColor(140, 80, 170),
        "zero" => RGBColor(200, 200, 200),
        "host" => RGBColor(120, 120, 120),
        _ => RGBColor(90, 90, 90),
    })
}

/// Whether the driver that ran `row` defines the sysfs attribute `attr` in this tree: the C
/// driver, or the Rust driver for the rows measured with it.
fn driver_defines(row: &str, attr: &str) -> Result<bool> {
    let root = repo_root();
    let files: Vec<PathBuf> = if row.starts_with(RUST_DRIVER) {
        // Its files, and those of its module directory (my_rng_rust/) when it has one.
        let mut v = Vec::new();
        for dir in [
            "linux/rust/drivers/misc",
            "linux/rust/drivers/misc/my_rng_rust",
        ] {
            if let Ok(entries) = fs::read_dir(root.join(dir)) {
                v.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
        v.retain(|p| p.is_file());
        v
    } else {
        vec![root.join("linux/c/drivers/misc/my-rng.c")]
    };
    for f in files {
        let text = fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?;
        if text.contains(attr) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rows that produced no number and why it is wrong: the smoke check. A skipped row is
/// right only when the driver that ran it has no `ioctl_path` attribute in this tree.
pub fn missing_numbers(rated: &[Rated]) -> Result<Vec<String>> {
    missing_numbers_with(rated, |id| driver_defines(id, "ioctl_path"))
}

/// [`missing_numbers`], with `defines(row id)` telling whether the row's driver has the
/// attribute.
fn missing_numbers_with(
    rated: &[Rated],
    defines: impl Fn(&str) -> Result<bool>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in rated.iter().filter(|r| r.mb_per_s.is_none()) {
        let why = match (&r.row.skipped, &r.row.error) {
            (Some(s), _) if !defines(&r.row.id)? => {
                note(&format!("{} skipped, as expected: {s}", r.row.id));
                continue;
            }
            (Some(s), _) => format!("skipped ({s}) but the driver's source defines ioctl_path"),
            (None, e) => e.as_deref().unwrap_or("no bytes measured").to_string(),
        };
        out.push(format!("{} ({why})", r.row.id));
    }
    Ok(out)
}

/// Everything one bench run produced, rated; the files written.
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

/// The PCI address a bench step measured.
fn pci_of(report: &Report, step: &str) -> Result<String> {
    report
        .pci
        .clone()
        .with_context(|| format!("the guest's {step} step does not say which device it measured"))
}

/// The bench boot: the C device (QEMU's my_rng), the Rust device (one vfio-user server, at
/// its own PCI slot) and virtio-rng. Every row on the C device with the C driver, the
/// device's rows on the Rust device, then the C device moved to the Rust driver
/// (my_rng_rust.ko) and its rows again: every twin measured in the same boot.
pub fn boot(vm: &vm::Vm, accel: vm::Accel, smoke: bool) -> Result<(Report, Setup)> {
    let servers = crate::vfio_user::Servers::start(&crate::vfio_user::build_server()?, 1)?;
    let base = vm::Vm {
        devices: 1,
        ..vm.clone()
    };
    let vm = crate::parts::beside(&servers, &base, crate::vfio_user::BENCH_SLOT);
    let twin = param::word(param::BENCH_TWIN, crate::vfio_user::BENCH_ADDR);
    let rows = param::word(param::BENCH_ROWS, TWIN_ROWS.join(","));
    let rust_driver = param::word(param::BENCH_RUST_DRIVER, 1);
    let append = [rust_driver.as_str(), twin.as_str(), rows.as_str()];
    let (mut report, setup, run) = boot_run(&vm, accel, smoke, Mode::Bench.as_str(), &append)?;
    let c = pci_of(&report, STEP)?;
    ensure!(
        c != crate::vfio_user::BENCH_ADDR,
        "the main bench step measured the Rust device ({c}), not the C device"
    );
    let drv = pci_of(
        &step_report(&run, step::BENCH_RUST_DRIVER)?,
        step::BENCH_RUST_DRIVER,
    )?;
    ensure!(
        drv == c,
        "the Rust driver's bench measured {drv}, not the C device {c}"
    );
    report.rows.extend(rust_device_rows(&run)?);
    // Both functions, the C device and the Rust device, went to the Rust driver.
    report.rows.extend(rust_driver_rows(&run, 2)?);
    servers.stop()?;
    Ok((report, setup))
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

/// A bench boot of `vm` (and virtio-rng) with `append` on the kernel command line; the
/// serial log is guest-`log`[-smoke].log. Gives the run, for the steps `append` asked for.
fn boot_run(
    vm: &vm::Vm,
    accel: vm::Accel,
    smoke: bool,
    log: &str,
    append: &[&str],
) -> Result<(Report, Setup, vm::Run)> {
    let mut b = vm::Boot::new(
        Mode::Bench,
        Duration::from_secs(if smoke { 600 } else { 1800 }),
    )
    .device("virtio-rng-pci")
    .log_name(log);
    for w in append {
        b = b.append(w);
    }
    if smoke {
        b = b
            .append(&param::word(param::BENCH, "smoke"))
            .log_name(&format!("{log}-smoke"));
    }
    let run = vm.boot(accel, &b)?;
    let report = step_report(&run, STEP)?;
    let kernel = report.kernel.clone();
    let setup = Setup {
        date: crate::util::today(),
        accelerator: run.accel.short().into(),
        qemu: crate::qemu::version_of(&vm.qemu),
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

/// One bench run: the host's round trip first (the machine is quiet then), then the boot.
fn measure(vm: &vm::Vm, accel: vm::Accel, smoke: bool) -> Result<(Report, Setup)> {
    let host = host_rows(smoke)?;
    let (mut report, setup) = boot(vm, accel, smoke)?;
    report.rows.extend(host);
    Ok((report, setup))
}

/// Runs the smoke bench: Ok if every row produced a number (or was skipped as expected).
pub fn smoke(vm: &vm::Vm, accel: vm::Accel) -> Result<Outcome> {
    let (report, setup) = measure(vm, accel, true)?;
    let out = write_files(&dir(true), &setup, &report)?;
    let missing = missing_numbers(&out.rated)?;
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
    let vm = parts::build_all(&[])?;
    let accel = if tcg { vm::Accel::Tcg } else { vm.probe() };
    let out = if smoke_only {
        smoke(&vm, accel)?
    } else {
        let (report, setup) = measure(&vm, accel, false)?;
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
        println!("goal {:<12} {}: {}", v.status.word(), v.goal, v.detail);
    }
    Ok(())
}

/// The host's DMA command row (`my-rng-vfio-user-rtt`'s `dma_us`) and its command size.
const DMA_ROW: &str = "host-dma-command-4k";
const DMA_ROW_BYTES: u64 = 4096;

/// The Rust device's rows for `cargo xtask bench`, from the bench boot's step that ran the
/// device's rows on it (`bench::boot`), as `rust-<id>`.
pub fn rust_device_rows(run: &vm::Run) -> Result<Vec<Row>> {
    const STEP: &str = step::BENCH_RUST_DEVICE;
    let report = step_report(run, STEP)?;
    ensure!(
        report.pci.as_deref() == Some(BENCH_ADDR),
        "the guest's {STEP} step measured {}, not the Rust device at {BENCH_ADDR}",
        report.pci.as_deref().unwrap_or("null")
    );
    let rows: Vec<Row> = report
        .rows
        .into_iter()
        .filter(|r| TWIN_ROWS.contains(&r.id.as_str()))
        .map(|r| Row {
            id: format!("{}{}", RUST_DEVICE, r.id),
            label: format!("{} [Rust device]", r.label),
            ..r
        })
        .collect();
    ensure!(
        rows.len() == TWIN_ROWS.len(),
        "the Rust device's bench lacks rows: {} of {}",
        rows.len(),
        TWIN_ROWS.len()
    );
    Ok(rows)
}

/// The Rust driver's rows for `cargo xtask bench`, from the bench boot's second half (its
/// `devices` my_rng functions moved to my_rng_rust.ko, see `bench::boot`): the device's rows
/// (`TWIN_ROWS`), as `rustdrv-<id>`, beside the C driver's rows of the same ids from the
/// same boot.
pub fn rust_driver_rows(run: &vm::Run, devices: usize) -> Result<Vec<Row>> {
    // The device's rows, the same as the C driver's and the Rust device's (bench.rs).
    const ROWS: &[&str] = TWIN_ROWS;
    let (t, rc) = run.step(step::RUST_DRIVER);
    ensure!(
        rc == 0,
        "moving the device to my_rng_rust.ko failed (exit {rc}): {t}"
    );
    checks::check_bound(&t, crate::cli::Driver::Rust, devices)?;
    let rows: Vec<Row> = step_report(run, step::BENCH_RUST_DRIVER)?
        .rows
        .into_iter()
        .filter(|r| ROWS.contains(&r.id.as_str()))
        .map(|r| Row {
            id: format!("{}{}", RUST_DRIVER, r.id),
            label: format!("{} [Rust driver]", r.label),
            ..r
        })
        .collect();
    ensure!(
        rows.len() == ROWS.len(),
        "the Rust driver's bench lacks rows: {} of {}",
        rows.len(),
        ROWS.len()
    );
    Ok(rows)
}

/// One host row from `my-rng-vfio-user-rtt --json`'s `key` (µs per call): the 4-byte
/// accesses were `calls` calls each, the DMA row `dma_calls` commands of 4 KiB.
fn host_row(j: &serde_json::Value, calls: u32, id: &str, label: &str, key: &str) -> Result<Row> {
    let us = j[key]
        .as_f64()
        .with_context(|| format!("no {key} in {j}"))?;
    let (size, n) = if key == "dma_us" {
        let n = j["dma_calls"].as_u64().context("no dma_calls")?;
        (DMA_ROW_BYTES, n)
    } else {
        (4, u64::from(calls))
    };
    Ok(Row {
        id: id.into(),
        label: label.into(),
        bytes_per_call: size,
        bytes: size * n,
        seconds: n as f64 * us / 1e6,
        error: None,
        skipped: None,
    })
}

/// The host's round-trip rows (`my-rng-vfio-user-rtt`, built with the server): a bare
/// UNIX-socket request/reply between two threads, a 4-byte REGION_READ through the real
/// server, and one 4 KiB DMA command run as a driver runs it (posted writes, the MSI
/// eventfd, three register reads), measured in alternating rounds; each as a row of calls.
pub fn host_rows(smoke: bool) -> Result<Vec<Row>> {
    let bin = vfio_user::build_server()?.with_file_name("my-rng-vfio-user-rtt");
    let (calls, rounds) = if smoke { (200u32, 1) } else { (20_000, 5) };
    let text = crate::util::output(
        Command::new(&bin)
            .args([
                "--calls",
                &calls.to_string(),
                "--rounds",
                &rounds.to_string(),
            ])
            .arg("--json"),
    )?;
    let j: serde_json::Value = serde_json::from_str(text.trim())
        .with_context(|| format!("{} printed {text:?}", bin.display()))?;
    step(&format!(
        "host round trip: floor {:.2} µs, REGION_READ {:.2} µs, 4 KiB DMA command {:.2} µs \
         (median of {rounds} rounds of {calls} calls); server: {}",
        j["floor_us"].as_f64().unwrap_or(f64::NAN),
        j["region_read_us"].as_f64().unwrap_or(f64::NAN),
        j["dma_us"].as_f64().unwrap_or(f64::NAN),
        j["server_timing"].as_str().unwrap_or("?")
    ));
    let floor = "host: UNIX-socket request/reply between two threads (floor), 4 B";
    let rr = "host: REGION_READ through my-rng-vfio-user, 4 B";
    let dma = "host: one DMA command through my-rng-vfio-user as a driver runs it, 4 KiB";
    Ok(vec![
        host_row(&j, calls, FLOOR_ROW, floor, "floor_us")?,
        host_row(&j, calls, ROUND_TRIP_ROW, rr, "region_read_us")?,
        host_row(&j, calls, DMA_ROW, dma, "dma_us")?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written report in the guest's schema, with kernel lines in between.
    const SAMPLE: &str = r#"[    3.120000] random: crng init done
{"rows":[{"id":"ioctl-rand","label":"ioctl RAND (4 B)","bytes_per_call":4,"bytes":4000000,"seconds":1.0},
[    4.500000] my_rng 0000:00:03.0: something
{"id":"read-bounce-1m","label":"read() DMA bounce, 1 MiB","bytes_per_call":1048576,"bytes":800000000,"seconds":1.0},{"id":"read-zerocopy-1m","label":"read() DMA zero-copy, 1 MiB","bytes_per_call":1048576,"bytes":1000000000,"seconds":1.0},{"id":"getrandom-1m","label":"getrandom(), 1 MiB","bytes_per_call":1048576,"bytes":500000000,"seconds":1.0},{"id":"zero-1m","label":"/dev/zero, 1 MiB","bytes_per_call":1048576,"bytes":4000000000,"seconds":2.0},{"id":"hwrng-my_rng","label":"/dev/hwrng (my_rng), 4 KiB","bytes_per_call":4096,"bytes":50000000,"seconds":1.0},{"id":"hwrng-virtio","label":"/dev/hwrng (virtio-rng), 4 KiB","bytes_per_call":4096,"bytes":0,"seconds":0.0,"error":"no virtio source in rng_available"},{"id":"read-dma-1m-glibc","label":"read() DMA (auto path), 1 MiB, glibc","bytes_per_call":1048576,"bytes":1000000000,"seconds":1.0},{"id":"ioctl-rand-mmio","label":"ioctl RAND (4 B), register path","bytes_per_call":4,"bytes":0,"seconds":0.0,"skipped":"the driver has no ioctl_path attribute"}],"kernel":"7.3.4","hwrng_available":"my_rng my_rng.1 virtio_rng.0","pci":"0000:00:03.0"}
"#;

    fn rated() -> Vec<Rated> {
        rate(&parse_report(SAMPLE).unwrap().rows)
    }

    /// A row of `calls` calls of `bpc` bytes in `seconds`.
    fn row(id: &str, bpc: u64, calls: u64, seconds: f64) -> Row {
        Row {
            id: id.into(),
            label: format!("label of {id}"),
            bytes_per_call: bpc,
            bytes: bpc * calls,
            seconds,
            error: None,
            skipped: None,
        }
    }

    fn skipped(id: &str) -> Row {
        Row {
            skipped: Some("the driver has no ioctl_path attribute".into()),
            ..row(id, 4, 0, 0.0)
        }
    }

    fn find<'v>(v: &'v [Verdict], goal: &str) -> &'v Verdict {
        v.iter()
            .find(|v| v.goal == goal)
            .unwrap_or_else(|| panic!("no goal {goal:?}"))
    }

    #[test]
    fn report_is_found_between_kernel_lines() {
        let r = parse_report(SAMPLE).unwrap();
        assert_eq!(r.rows.len(), 9);
        assert_eq!(r.kernel, "7.3.4");
        assert_eq!(r.pci.as_deref(), Some("0000:00:03.0"));
        assert_eq!(
            r.rows[6].error.as_deref(),
            Some("no virtio source in rng_available")
        );
        assert_eq!(
            r.rows[8].skipped.as_deref(),
            Some("the driver has no ioctl_path attribute")
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
        let mut rows = parse_report(SAMPLE).unwrap().rows;
        rows.push(row(FLOOR_ROW, 4, 100_000, 1.0));
        let r = rate(&rows);
        let get = |id: &str| r.iter().find(|x| x.row.id == id).unwrap();
        assert_eq!(get("ioctl-rand").mb_per_s, Some(4.0));
        assert_eq!(get("ioctl-rand").calls_per_s, Some(1e6));
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
        // The host's rows have rates but are no source of bytes: no comparison.
        assert_eq!(get(FLOOR_ROW).calls_per_s, Some(100_000.0));
        assert_eq!(
            (get(FLOOR_ROW).x_seed, get(FLOOR_ROW).pct_of_zero),
            (None, None)
        );
    }

    #[test]
    fn smoke_accepts_a_skip_only_where_the_driver_lacks_the_attribute() {
        let r = rated();
        let missing = missing_numbers_with(&r, |_| Ok(false)).unwrap();
        assert_eq!(
            missing,
            ["hwrng-virtio (no virtio source in rng_available)"]
        );
        let missing = missing_numbers_with(&r, |_| Ok(true)).unwrap();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert_eq!(
            missing[1],
            "ioctl-rand-mmio (skipped (the driver has no ioctl_path attribute) but the \
             driver's source defines ioctl_path)"
        );
        // The tree's drivers: both define read_path, neither a made-up attribute.
        for id in ["read-mmio-64k", "rustdrv-read-mmio-64k"] {
            assert!(driver_defines(id, "read_path").unwrap(), "{id}");
            assert!(!driver_defines(id, "no_such_attribute_x").unwrap(), "{id}");
        }
    }

    #[test]
    fn throughput_goals() {
        let v = evaluate(&rated());
        let st: Vec<Status> = v[..5].iter().map(|v| v.status).collect();
        // 250× seed, 2× getrandom, exactly 50% of zero, 1000 ≥ 800, virtio unmeasured.
        use Status::*;
        assert_eq!(st, [Met, Met, Met, Met, NotMeasured]);
        assert!(v[4].detail.contains("hwrng-virtio"), "{}", v[4].detail);
        assert!(v[0].detail.contains("250×"), "{}", v[0].detail);
        let mut slow = parse_report(SAMPLE).unwrap().rows;
        // DMA 100 MB/s: 25× seed, below getrandom and 50% of zero; zero-copy below bounce.
        slow[7].bytes = 100_000_000;
        slow[2].bytes = 100_000_000;
        let v = evaluate(&rate(&slow));
        let st: Vec<Status> = v[..5].iter().map(|v| v.status).collect();
        assert_eq!(st, [Short, Short, Short, Short, NotMeasured]);
    }

    #[test]
    fn rand_against_getrandom_and_round_trip_against_the_floor() {
        let rows = vec![
            row("ioctl-rand", 4, 80, 1.0),
            row("rust-ioctl-rand", 4, 79, 1.0),
            row("getrandom-4b", 4, 100, 1.0),
            row(FLOOR_ROW, 4, 1000, 0.01),
            row(ROUND_TRIP_ROW, 4, 1000, 0.02),
        ];
        let v = evaluate(&rate(&rows));
        let c = find(&v, "ioctl RAND ≥ 0.8× getrandom(4 B) calls/s, C device");
        assert_eq!((c.status, c.ratio), (Status::Met, Some(0.8)));
        assert!(c
            .detail
            .contains("ioctl-rand 80.0 calls/s vs getrandom-4b 100 calls/s"));
        let d = find(&v, "ioctl RAND ≥ 0.8× getrandom(4 B) calls/s, Rust device");
        assert_eq!(d.status, Status::Short);
        let n = find(&v, "ioctl RAND ≥ 0.8× getrandom(4 B) calls/s, Rust driver");
        assert_eq!(n.status, Status::NotMeasured);
        assert!(n.detail.contains("rustdrv-ioctl-rand"), "{}", n.detail);
        // 20 µs against 10 µs: exactly 2×.
        let rt = find(
            &v,
            "Rust device's register round trip ≤ 2× a bare UNIX-socket round trip",
        );
        assert_eq!(rt.status, Status::Met, "{}", rt.detail);
        assert!(rt
            .detail
            .contains("host-region-read 20.0 µs vs host-socket-floor 10.0 µs = 2.00×"));
        let mut slow = rows.clone();
        slow[4].seconds = 0.021;
        let v = evaluate(&rate(&slow));
        let rt = find(
            &v,
            "Rust device's register round trip ≤ 2× a bare UNIX-socket round trip",
        );
        assert_eq!(rt.status, Status::Short);
    }

    #[test]
    fn twins_against_the_c_twin() {
        let mut rows = vec![
            row("read-zerocopy-1m", 1 << 20, 300, 1.0),
            row("rustdrv-read-zerocopy-1m", 1 << 20, 200, 1.0),
            row("rust-read-zerocopy-1m", 1 << 20, 201, 1.0),
            row("read-mmio-64k", 65536, 300, 1.0),
            row("rust-read-mmio-64k", 65536, 3, 1.0),
            row("ioctl-rand", 4, 1000, 1.0),
            row("rust-ioctl-rand", 4, 10, 1.0),
            row("rust-ioctl-rand-mmio", 4, 10, 1.0),
        ];
        let v = twin_goals(&rate(&rows));
        assert_eq!(v.len(), 2 * TWIN_ROWS.len());
        let get = |v: &[Verdict], id: &str, who: &str| {
            let g = format!("{who} ≤ 1.5× the C twin: {id}");
            let x = find(v, &g);
            (x.status, x.ratio.map(|r| (r * 1000.0).round() / 1000.0))
        };
        // 300 ÷ 200 = 1.5 (met), 300 ÷ 201 < 1.5.
        assert_eq!(
            get(&v, "read-zerocopy-1m", "Rust driver"),
            (Status::Met, Some(1.5))
        );
        assert_eq!(get(&v, "read-zerocopy-1m", "Rust device").0, Status::Met);
        // A register row on the Rust device is the round trip's to judge.
        assert_eq!(
            get(&v, "read-mmio-64k", "Rust device"),
            (Status::RoundTrip, Some(100.0))
        );
        assert_eq!(
            get(&v, "read-mmio-64k", "Rust driver").0,
            Status::NotMeasured
        );
        // RAND with a stash (the register-path row ran) is judged...
        assert_eq!(get(&v, "ioctl-rand", "Rust device").0, Status::Short);
        // ... without one (that row skipped) it reads a register per call.
        rows[7] = skipped("rust-ioctl-rand-mmio");
        let v = twin_goals(&rate(&rows));
        assert_eq!(get(&v, "ioctl-rand", "Rust device").0, Status::RoundTrip);
        assert_eq!(get(&v, "ioctl-rand-mmio", "Rust device").0, Status::Skipped);
        assert_eq!(
            get(&v, "ioctl-rand-mmio", "Rust driver").0,
            Status::NotMeasured
        );
        let t = v.iter().find(|v| v.twin.is_some()).unwrap();
        assert_eq!(t.twin, Some(("ioctl-rand".to_string(), "Rust driver")));
    }

    fn setup(smoke: bool) -> Setup {
        Setup {
            date: "2026-11-25".into(),
            accelerator: "TCG".into(),
            qemu: "10.2.2".into(),
            kernel: "7.3.4".into(),
            smoke,
        }
    }

    #[test]
    fn markdown_table() {
        let mut rows = parse_report(SAMPLE).unwrap().rows;
        rows.push(row("rust-ioctl-rand", 4, 40_000, 1.0));
        let r = rate(&rows);
        let md = markdown(&setup(false), &r, &evaluate(&r));
        assert!(md.contains("| row | calls/s | MB/s | × seed path | % of /dev/zero |"));
        assert!(md.contains(
            "| read() DMA zero-copy, 1 MiB (`read-zerocopy-1m`) | 954 | 1000 | 250× | 50.0% |"
        ));
        assert!(md.contains(
            "| /dev/hwrng (virtio-rng), 4 KiB (`hwrng-virtio`) | – | \
             error: no virtio source in rng_available | – | – |"
        ));
        assert!(md.contains(
            "| ioctl RAND (4 B), register path (`ioctl-rand-mmio`) | – | \
             skipped: the driver has no ioctl_path attribute | – | – |"
        ));
        assert!(md.contains("- **not measured**: hw_random my_rng"));
        assert!(
            md.contains("| `ioctl-rand` | not measured | 25.0× short |"),
            "{md}"
        );
        assert!(
            md.contains("| `ioctl-rand-mmio` | skipped | skipped |"),
            "{md}"
        );
        assert!(md.contains("under TCG, QEMU 10.2.2, guest Linux 7.3.4"));
    }

    #[test]
    fn bars_put_twins_side_by_side() {
        let rows = vec![
            row("ioctl-rand", 4, 1, 1.0),
            row("getrandom-4b", 4, 1, 1.0),
            row("read-mmio-64k", 4, 1, 1.0),
            row("zero-1m", 4, 1, 1.0),
            row("rustdrv-ioctl-rand", 4, 1, 1.0),
            row("rust-ioctl-rand", 4, 1, 1.0),
            row("rust-read-mmio-64k", 4, 1, 1.0),
            row("rust-only-here", 4, 1, 1.0),
        ];
        let r = rate(&rows);
        let (b, slots) = bars(&r);
        let got: Vec<(&str, Twin, usize)> = b
            .iter()
            .map(|b| (b.rated.row.id.as_str(), b.twin, b.slot))
            .collect();
        assert_eq!(
            got,
            [
                ("ioctl-rand", Twin::C, 0),
                ("rustdrv-ioctl-rand", Twin::RustDriver, 1),
                ("rust-ioctl-rand", Twin::RustDevice, 2),
                ("getrandom-4b", Twin::Single, 4),
                ("read-mmio-64k", Twin::C, 6),
                ("rust-read-mmio-64k", Twin::RustDevice, 7),
                ("zero-1m", Twin::Single, 9),
                ("rust-only-here", Twin::Single, 10),
            ]
        );
        assert_eq!(slots, 11);
        assert_eq!(b[1].label, "Rust driver");
        assert_eq!(b[0].label, "label of ioctl-rand");
    }

    #[test]
    fn chart_is_drawn() {
        let mut rows = parse_report(SAMPLE).unwrap().rows;
        rows.push(row("rust-ioctl-rand", 4, 40_000, 1.0));
        rows.push(row("rustdrv-read-zerocopy-1m", 1 << 20, 600, 1.0));
        let r = rate(&rows);
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let png = dir.join("bench.png");
        chart(&png, &setup(true), &r).unwrap();
        let data = fs::read(&png).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n");
        // 1400 px wide, as high as its bar places (IHDR).
        assert_eq!(u32::from_be_bytes(data[16..20].try_into().unwrap()), 1400);
        assert_eq!(
            u32::from_be_bytes(data[20..24].try_into().unwrap()),
            chart_height(bars(&r).1)
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
