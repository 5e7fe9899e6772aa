//! `my-rng bench`: throughput of every way of getting random bytes in the guest, measured in
//! one process (a process start costs more than many calls): the device's ioctls (on the
//! driver's default path and on the register path), read() on each read path, /dev/hwrng
//! backed by this device and by virtio-rng, and the guest kernel's own getrandom() and
//! /dev/zero as references.
//!
//! `--json` prints one object, `{"rows": [{"id", "label", "bytes_per_call", "bytes",
//! "seconds"[, "error" | "skipped"]}], "kernel", "hwrng_available", "pci"}`, which `cargo
//! xtask bench` reads; `pci` is the device's PCI address (the host tells its devices apart by
//! it). Every row is present (`--rows` picks some); one that cannot run carries an `error`,
//! or `skipped` when the driver lacks an optional attribute the row needs (a driver without
//! `ioctl_path` has no RAND stash: its RAND rows already read the registers).

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use my_rng::regs::FEAT_DMA;
use my_rng::uapi::SEED_READ_MAX;
use my_rng::Algorithm;
use my_rng_protocol::bench::row as id;
use my_rng_protocol::{BenchReport, BenchRow};

use crate::dev::RngDevice;
use crate::{CmdResult, Env, Failure};

/// How long each row runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Time spent calling, per row.
    pub seconds: f64,
    /// At most this many timed calls per row.
    pub max_calls: u64,
}

impl Budget {
    /// A normal run: `seconds` per row.
    pub fn timed(seconds: f64) -> Self {
        Budget {
            seconds,
            max_calls: u64::MAX,
        }
    }

    /// `--smoke`: a few calls per row, to show every row works (CI), not to measure.
    pub const SMOKE: Budget = Budget {
        seconds: 0.02,
        max_calls: 3,
    };
}

/// One measured row (see the module documentation for the JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub id: String,
    pub label: String,
    pub bytes_per_call: usize,
    pub calls: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub error: Option<String>,
    /// Set when the row did not run because the driver lacks an optional attribute.
    pub skipped: Option<String>,
}

/// Why a row did not run.
#[derive(Debug, Clone, PartialEq)]
enum NotRun {
    /// The driver lacks an optional attribute the row needs.
    Skipped(String),
    /// Anything else: the row should have run.
    Error(String),
}

impl From<String> for NotRun {
    fn from(e: String) -> Self {
        NotRun::Error(e)
    }
}

type Setup<'a> = Box<dyn FnMut() -> Result<(), NotRun> + 'a>;
type Op<'a> = Box<dyn FnMut() -> Result<usize, String> + 'a>;

/// One way of getting bytes: `setup` puts the system in the state the row measures (read
/// path, hw_random source, algorithm) or says why the row cannot run; each `op` call does
/// one operation and returns the bytes it produced.
struct Row<'a> {
    id: String,
    label: String,
    bytes_per_call: usize,
    setup: Setup<'a>,
    op: Op<'a>,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// The name of the ioctl path attribute (the drivers' RAND stash: auto, stash or mmio).
const IOCTL_PATH: &str = "ioctl_path";
/// (label, bytes per call) of the sizes most rows come in.
const SIZES: [(&str, usize); 3] = [("4 KiB", 4 * KIB), ("64 KiB", 64 * KIB), ("1 MiB", MIB)];

/// A sysfs attribute the bench changes: written back as found when dropped.
struct Knob {
    file: PathBuf,
    original: Option<String>,
}

impl Knob {
    fn new(file: PathBuf) -> Knob {
        let original = fs::read_to_string(&file)
            .ok()
            .map(|s| selected(&s).to_string());
        Knob { file, original }
    }

    fn set(&self, value: &str) -> Result<(), String> {
        if self.original.is_none() {
            return Err(format!("{} is missing or unreadable", self.file.display()));
        }
        fs::write(&self.file, value)
            .map_err(|e| format!("writing {value:?} to {}: {e}", self.file.display()))
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        if let Some(v) = &self.original {
            let _ = fs::write(&self.file, v);
        }
    }
}

/// The selected value of an attribute: its content, or the `[bracketed]` name among several.
fn selected(text: &str) -> &str {
    let t = text.trim();
    match (t.find('['), t.find(']')) {
        (Some(a), Some(b)) if a < b => &t[a + 1..b],
        _ => t,
    }
}

/// The first hw_random source in `available` whose name starts with `prefix`.
fn source<'s>(available: &'s str, prefix: &str) -> Option<&'s str> {
    available.split_whitespace().find(|s| s.starts_with(prefix))
}

/// The hw_random source of the device whose node is `node`: both drivers name them alike,
/// `my_rng_driver` → `my_rng`, `my_rng_driverN` → `my_rng.N`.
fn own_hwrng(node: &str) -> Option<String> {
    match node.strip_prefix(my_rng::DEFAULT_PATH.trim_start_matches("/dev/"))? {
        "" => Some("my_rng".into()),
        n if n.bytes().all(|b| b.is_ascii_digit()) => Some(format!("my_rng.{n}")),
        _ => None,
    }
}

/// What the rows need to know about the system, and the attributes they change.
struct System<'a> {
    dev: &'a dyn RngDevice,
    /// FEATURES from INFO, or why INFO failed.
    features: Result<u32, String>,
    read_path: Knob,
    ioctl_path: Knob,
    rng_current: Knob,
    /// This device's hw_random source, or why it is unknown.
    own_hwrng: Result<String, String>,
    /// `rng_available`, or why it is unreadable.
    available: Result<String, String>,
    hwrng: PathBuf,
}

impl System<'_> {
    fn require_dma(&self) -> Result<(), String> {
        match &self.features {
            Ok(f) if f & FEAT_DMA != 0 => Ok(()),
            Ok(f) => Err(format!("the device has no DMA (FEATURES {f:#x})")),
            Err(e) => Err(e.clone()),
        }
    }

    /// Force read() onto `path`. Without the attribute, MMIO is still right on a device
    /// without DMA (an ABI 2.0 driver has no other path).
    fn read_path(&self, path: &str) -> Result<(), String> {
        if path != "mmio" {
            self.require_dma()?;
        } else if self.read_path.original.is_none() && self.require_dma().is_err() {
            return Ok(());
        }
        self.read_path.set(path)
    }

    /// RAND and RAND64 on `path`. `auto` (the default path) needs no attribute: a driver
    /// without one reads the registers. `mmio` without the attribute is skipped: the
    /// default-path rows already measure the registers on such a driver.
    fn ioctl_path(&self, path: &str) -> Result<(), NotRun> {
        match (path, &self.ioctl_path.original) {
            ("auto", None) => Ok(()),
            (_, None) => Err(NotRun::Skipped(format!(
                "the driver has no {IOCTL_PATH} attribute (no RAND stash: the RAND rows \
                 above read the registers)"
            ))),
            _ => Ok(self.ioctl_path.set(path)?),
        }
    }

    /// Make the hw_random source whose name starts with `prefix` the current one; `None`:
    /// this device's own source.
    fn hwrng_source(&self, prefix: Option<&str>) -> Result<(), String> {
        let available = self.available.as_ref().map_err(Clone::clone)?;
        let name = match prefix {
            Some(p) => source(available, p),
            None => {
                let own = self.own_hwrng.as_deref().map_err(Clone::clone)?;
                available.split_whitespace().find(|s| *s == own)
            }
        };
        let name = name.ok_or_else(|| {
            format!(
                "no {} source in rng_available ({:?})",
                prefix.unwrap_or_else(|| self.own_hwrng.as_deref().unwrap_or("?")),
                available.trim()
            )
        })?;
        self.rng_current.set(name)
    }
}

fn read_into(f: &mut File, buf: &mut [u8], what: &Path) -> Result<usize, String> {
    loop {
        match f.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map_err(|e| format!("{}: {e}", what.display())),
        }
    }
}

/// Reads of `size` bytes from the file at `path`, opened at the first call.
fn file_op<'a>(path: PathBuf, size: usize) -> Op<'a> {
    let mut file: Option<File> = None;
    let mut buf = vec![0u8; size];
    Box::new(move || {
        if file.is_none() {
            file = Some(File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        let f = file.as_mut().expect("opened above");
        read_into(f, &mut buf, &path)
    })
}

fn getrandom_op<'a>(size: usize) -> Op<'a> {
    let mut buf = vec![0u8; size];
    Box::new(move || loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let r = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        match usize::try_from(r) {
            Ok(n) => return Ok(n),
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(format!("getrandom: {}", io::Error::last_os_error())),
        }
    })
}

fn dev_read_op<'a>(dev: &'a dyn RngDevice, size: usize) -> Op<'a> {
    let mut buf = vec![0u8; size];
    Box::new(move || dev.read(&mut buf).map_err(|e| e.to_string()))
}

/// SEED_READ of the largest count, a new seed each call (the old bench's bulk ioctl), on the
/// driver's default ioctl path.
fn seed_read_row<'a>(sys: &'a System<'a>) -> Row<'a> {
    let dev = sys.dev;
    let mut values = vec![0u32; SEED_READ_MAX as usize];
    let mut seed = 0u32;
    let size = values.len() * 4;
    row(
        id::IOCTL_SEED_READ.into(),
        format!("ioctl SEED_READ ({} KiB)", size / KIB),
        size,
        Box::new(move || sys.ioctl_path("auto")),
        Box::new(move || {
            seed = seed.wrapping_add(1);
            dev.seed_read(seed, &mut values)
                .map(|()| size)
                .map_err(|e| e.to_string())
        }),
    )
}

fn no_setup<'a>() -> Setup<'a> {
    Box::new(|| Ok(()))
}

/// Row `id`: RAND or RAND64 (`bits`) with the driver's ioctl path set to `path`, from a
/// fresh seed.
fn ioctl_row<'a>(sys: &'a System<'a>, id: &str, bits: u32, path: &'static str) -> Row<'a> {
    let dev = sys.dev;
    let (name, size) = if bits == 32 {
        ("rand", 4)
    } else {
        ("rand64", 8)
    };
    let label = match path {
        "auto" => "",
        _ => ", register path",
    };
    let op: Op<'a> = if bits == 32 {
        Box::new(move || dev.next_u32().map(|_| 4).map_err(|e| e.to_string()))
    } else {
        Box::new(move || dev.next_u64().map(|_| 8).map_err(|e| e.to_string()))
    };
    row(
        id.into(),
        format!("ioctl {} ({size} B){label}", name.to_uppercase()),
        size,
        Box::new(move || {
            sys.ioctl_path(path)?;
            // SEED empties the driver's stash (if it has one): words it fetched before would
            // otherwise serve the first calls on the register path, and every row starts from
            // the same state.
            Ok(dev.seed(1).map_err(|e| e.to_string())?)
        }),
        op,
    )
}

fn row<'a>(
    id: String,
    label: String,
    bytes_per_call: usize,
    setup: Setup<'a>,
    op: Op<'a>,
) -> Row<'a> {
    Row {
        id,
        label,
        bytes_per_call,
        setup,
        op,
    }
}

/// Every row, in output order.
fn rows<'a>(sys: &'a System<'a>, zero: &Path) -> Vec<Row<'a>> {
    let mut v = register_and_read_rows(sys);
    v.extend(reference_rows(sys, zero));
    v.extend(algorithm_rows(sys));
    v
}

/// The device's ioctls and read() on each read path.
fn register_and_read_rows<'a>(sys: &'a System<'a>) -> Vec<Row<'a>> {
    let dev = sys.dev;
    let mut v = vec![
        ioctl_row(sys, id::IOCTL_RAND, 32, "auto"),
        ioctl_row(sys, id::IOCTL_RAND64, 64, "auto"),
        ioctl_row(sys, id::IOCTL_RAND_MMIO, 32, "mmio"),
        ioctl_row(sys, id::IOCTL_RAND64_MMIO, 64, "mmio"),
        seed_read_row(sys),
        row(
            id::READ_MMIO_64K.into(),
            "read() MMIO path, 64 KiB".into(),
            64 * KIB,
            Box::new(move || Ok(sys.read_path("mmio")?)),
            dev_read_op(dev, 64 * KIB),
        ),
    ];
    let bounce = [id::READ_BOUNCE_4K, id::READ_BOUNCE_64K, id::READ_BOUNCE_1M];
    let zerocopy = [
        id::READ_ZEROCOPY_4K,
        id::READ_ZEROCOPY_64K,
        id::READ_ZEROCOPY_1M,
    ];
    for (path, name, ids) in [
        ("bounce", "DMA bounce", bounce),
        ("zerocopy", "DMA zero-copy", zerocopy),
    ] {
        for (row_id, (size_label, size)) in ids.into_iter().zip(SIZES) {
            v.push(row(
                row_id.into(),
                format!("read() {name}, {size_label}"),
                size,
                Box::new(move || Ok(sys.read_path(path)?)),
                dev_read_op(dev, size),
            ));
        }
    }
    v
}

/// hw_random (this device's and virtio-rng's), getrandom() and /dev/zero.
fn reference_rows<'a>(sys: &'a System<'a>, zero: &Path) -> Vec<Row<'a>> {
    let mut v = Vec::new();
    for (row_id, prefix, name) in [
        (id::HWRNG_MY_RNG, None, "my_rng"),
        (id::HWRNG_VIRTIO, Some("virtio"), "virtio-rng"),
    ] {
        v.push(row(
            row_id.into(),
            format!("/dev/hwrng ({name}), 4 KiB"),
            4 * KIB,
            Box::new(move || Ok(sys.hwrng_source(prefix)?)),
            file_op(sys.hwrng.clone(), 4 * KIB),
        ));
    }
    // 4 bytes: the calls per second the seed's RAND ioctl is compared to.
    let getrandom = [
        id::GETRANDOM_4B,
        id::GETRANDOM_4K,
        id::GETRANDOM_64K,
        id::GETRANDOM_1M,
    ];
    for (row_id, (size_label, size)) in getrandom
        .into_iter()
        .zip([("4 B", 4)].into_iter().chain(SIZES))
    {
        v.push(row(
            row_id.into(),
            format!("getrandom(), {size_label}"),
            size,
            no_setup(),
            getrandom_op(size),
        ));
    }
    for (row_id, (size_label, size)) in [id::ZERO_4K, id::ZERO_64K, id::ZERO_1M]
        .into_iter()
        .zip(SIZES)
    {
        v.push(row(
            row_id.into(),
            format!("/dev/zero, {size_label}"),
            size,
            no_setup(),
            file_op(zero.to_path_buf(), size),
        ));
    }
    v
}

/// read() of 1 MiB on the default path under each algorithm.
fn algorithm_rows<'a>(sys: &'a System<'a>) -> Vec<Row<'a>> {
    let dev = sys.dev;
    let mut v = Vec::new();
    let ids = [
        id::READ_DMA_1M_GLIBC,
        id::READ_DMA_1M_XOSHIRO,
        id::READ_DMA_1M_CHACHA,
        id::READ_DMA_1M_HOST,
    ];
    for (row_id, alg) in ids.into_iter().zip(Algorithm::ALL) {
        v.push(row(
            row_id.into(),
            format!("read() DMA (auto path), 1 MiB, {}", alg.name()),
            MIB,
            Box::new(move || {
                sys.read_path("auto")?;
                dev.set_algorithm_id(alg.id()).map_err(|e| e.to_string())?;
                Ok(dev.seed(1).map_err(|e| e.to_string())?)
            }),
            dev_read_op(dev, MIB),
        ));
    }
    v
}

/// Progress on stderr, only when a person is watching it.
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, msg: &str) {
        if self.tty {
            // \r + erase-line keeps it to one line; results go to stdout.
            eprint!("\r\x1b[K{msg}");
            let _ = io::stderr().flush();
        }
    }
}

/// Set the row up, make one untimed call (opens files, faults buffers in), then time calls
/// until the budget is used.
fn measure(row: &mut Row<'_>, budget: Budget, progress: &dyn Fn(f64)) -> Measured {
    let mut m = Measured {
        id: row.id.clone(),
        label: row.label.clone(),
        bytes_per_call: row.bytes_per_call,
        calls: 0,
        bytes: 0,
        seconds: 0.0,
        error: None,
        skipped: None,
    };
    match (row.setup)().and_then(|()| Ok((row.op)()?)) {
        Ok(_) => {}
        Err(NotRun::Skipped(why)) => {
            m.skipped = Some(why);
            return m;
        }
        Err(NotRun::Error(e)) => {
            m.error = Some(e);
            return m;
        }
    }
    let start = Instant::now();
    let mut last_shown = start;
    loop {
        match (row.op)() {
            Ok(n) => {
                m.calls += 1;
                m.bytes += n as u64;
            }
            Err(e) => {
                m.error = Some(e);
                break;
            }
        }
        let now = Instant::now();
        let spent = (now - start).as_secs_f64();
        // A coarse guest clock (jiffies: 4 ms steps) can show no time for a few fast calls:
        // go on until it moves, so that every row has a rate.
        if spent > 0.0 && (spent >= budget.seconds || m.calls >= budget.max_calls) {
            break;
        }
        if now - last_shown >= Duration::from_millis(200) {
            last_shown = now;
            progress((now - start).as_secs_f64() / budget.seconds);
        }
    }
    m.seconds = start.elapsed().as_secs_f64();
    m
}

fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The `--json` object: the protocol crate's bench report, which `cargo xtask bench` reads.
pub fn json(
    rows: &[Measured],
    kernel: &str,
    hwrng_available: &str,
    pci: Option<&str>,
) -> serde_json::Value {
    let report = BenchReport {
        rows: rows
            .iter()
            .map(|m| BenchRow {
                id: m.id.clone(),
                label: m.label.clone(),
                bytes_per_call: m.bytes_per_call as u64,
                bytes: m.bytes,
                seconds: m.seconds,
                error: m.error.clone(),
                skipped: m.skipped.clone(),
            })
            .collect(),
        kernel: kernel.into(),
        hwrng_available: hwrng_available.into(),
        pci: pci.map(Into::into),
    };
    serde_json::to_value(report).expect("the report is plain data")
}

fn table_row(out: &mut dyn Write, m: &Measured) -> io::Result<()> {
    if let Some(why) = &m.skipped {
        return writeln!(out, "{:<44} skipped: {why}", m.label);
    }
    if m.calls == 0 {
        let e = m.error.as_deref().unwrap_or("no call completed");
        return writeln!(out, "{:<44} unavailable: {e}", m.label);
    }
    writeln!(
        out,
        "{:<44} {:>12.0} {:>10.2}{}",
        m.label,
        m.calls as f64 / m.seconds,
        m.bytes as f64 / m.seconds / 1e6,
        // An error after some successes still yields a rate, but say so.
        m.error
            .as_ref()
            .map_or(String::new(), |e| format!("  (stopped: {e})"))
    )
}

/// The state the rows need and change, read from sysfs around `dev`.
fn system<'a>(dev: &'a dyn RngDevice, env: &Env) -> System<'a> {
    let misc = env.sys.misc_dir_for_node(dev.path());
    let hw = env.sys.root().join("class/misc/hw_random");
    let available = fs::read_to_string(hw.join("rng_available"))
        .map_err(|e| format!("{}: {e}", hw.join("rng_available").display()));
    let node = dev
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    System {
        dev,
        features: dev.info().map(|i| i.features).map_err(|e| e.to_string()),
        read_path: Knob::new(misc.join("read_path")),
        ioctl_path: Knob::new(misc.join(IOCTL_PATH)),
        rng_current: Knob::new(hw.join("rng_current")),
        own_hwrng: own_hwrng(&node)
            .ok_or_else(|| format!("cannot tell the hw_random source of {node}")),
        available,
        hwrng: env.hwrng.clone(),
    }
}

/// The rows whose ids `only` lists (all when it is empty), in output order.
fn select<'a>(rows: Vec<Row<'a>>, only: &[String]) -> Result<Vec<Row<'a>>, Failure> {
    if let Some(bad) = only.iter().find(|id| !rows.iter().any(|r| &r.id == *id)) {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        return Err(Failure::Msg(format!(
            "no bench row {bad:?} (rows: {})",
            ids.join(", ")
        )));
    }
    Ok(rows
        .into_iter()
        .filter(|r| only.is_empty() || only.contains(&r.id))
        .collect())
}

/// Measure `rows` in order; the table rows go to `out` as they come unless `as_json`.
fn measure_all(
    rows: &mut [Row<'_>],
    budget: Budget,
    as_json: bool,
    out: &mut dyn Write,
) -> io::Result<Vec<Measured>> {
    // Never with --json: the guest's init runs it on the console, where stderr is a terminal
    // too and the host reads the step's output.
    let progress = Progress {
        tty: !as_json && io::stderr().is_terminal(),
    };
    let total = rows.len();
    if !as_json {
        writeln!(out, "{:<44} {:>12} {:>10}", "interface", "calls/s", "MB/s")?;
    }
    let mut results = Vec::new();
    for (i, r) in rows.iter_mut().enumerate() {
        let name = format!("bench [{}/{total}] {}", i + 1, r.label);
        progress.show(&format!("{name} ..."));
        let m = measure(r, budget, &|f| {
            progress.show(&format!("{name} {:3.0}%", 100.0 * f))
        });
        progress.show("");
        if !as_json {
            table_row(out, &m)?;
            out.flush()?;
        }
        results.push(m);
    }
    Ok(results)
}

/// `my-rng bench [--json] [--smoke] [--rows ID,...]`.
pub fn run(
    dev: &dyn RngDevice,
    env: &Env,
    budget: Budget,
    as_json: bool,
    only: &[String],
    out: &mut dyn Write,
) -> CmdResult {
    let original_algo = dev.algorithm_id().ok();
    let sys = system(dev, env);
    let mut rows = select(rows(&sys, &env.zero), only)?;
    let results = measure_all(&mut rows, budget, as_json, out)?;
    if let Some(id) = original_algo {
        let _ = dev.set_algorithm_id(id);
    }
    let available = sys.available.clone().unwrap_or_default();
    // The knobs go back to what they were before the summary is printed.
    drop(rows);
    drop(sys);
    if as_json {
        let misc = env.sys.misc_dir_for_node(dev.path());
        let pci = env.sys.pci_device(&misc).ok().map(|p| p.address);
        let j = json(
            &results,
            &kernel_release(),
            available.trim(),
            pci.as_deref(),
        );
        writeln!(out, "{j}")?;
    } else {
        writeln!(
            out,
            "note: the RAND, SEED_READ and algorithm rows reseeded the device; seed it again before relying on a sequence"
        )?;
    }
    if results.iter().all(|m| m.calls == 0) {
        return Err(Failure::Msg("no interface could be measured".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeDevice;
    use my_rng::sysfs::Sysfs;
    use my_rng::Info;

    /// Every row id, in output order (the chart keeps it): the protocol's catalogue.
    const IDS: [&str; 25] = id::ALL;

    /// The node the fake devices stand for: the second my_rng device, whose hw_random
    /// source is my_rng.1.
    const NODE: &str = "my_rng_driver1";

    /// A sysfs tree with the device's class directory (attributes `read_path` and
    /// `ioctl_path` when given, its PCI function at 0000:00:10.0) and hw_random's attributes.
    fn tree(
        read_path: Option<&str>,
        ioctl_path: Option<&str>,
        available: &str,
    ) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let misc = root.path().join("class/misc");
        let pci = root.path().join("devices/pci0000:00/0000:00:10.0");
        fs::create_dir_all(misc.join(NODE)).unwrap();
        fs::create_dir_all(misc.join("hw_random")).unwrap();
        fs::create_dir_all(&pci).unwrap();
        fs::write(
            pci.join("uevent"),
            "DRIVER=my_rng\nPCI_SLOT_NAME=0000:00:10.0\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(&pci, misc.join(NODE).join("device")).unwrap();
        for (name, value) in [("read_path", read_path), (IOCTL_PATH, ioctl_path)] {
            if let Some(v) = value {
                fs::write(misc.join(NODE).join(name), v).unwrap();
            }
        }
        fs::write(misc.join("hw_random/rng_available"), available).unwrap();
        fs::write(misc.join("hw_random/rng_current"), "my_rng\n").unwrap();
        root
    }

    fn env(root: &Path) -> Env {
        Env {
            sys: Sysfs::at(root),
            // Any endless readable file stands in for /dev/hwrng on the host.
            hwrng: PathBuf::from("/dev/urandom"),
            zero: PathBuf::from("/dev/zero"),
        }
    }

    /// An ABI 2.0 device (no DMA) at /dev/my_rng_driver1.
    fn plain_device() -> FakeDevice {
        FakeDevice {
            path: PathBuf::from("/dev").join(NODE),
            ..FakeDevice::new()
        }
    }

    fn dma_device() -> FakeDevice {
        let d = plain_device();
        FakeDevice {
            info: Info {
                id: 0x4d52_0201,
                features: 0x1f,
                abi_version: Some((2, 1)),
                ..d.info
            },
            ..d
        }
    }

    fn run_json(dev: &FakeDevice, env: &Env, only: &[&str]) -> serde_json::Value {
        let mut out = Vec::new();
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        run(dev, env, Budget::SMOKE, true, &only, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn row<'j>(j: &'j serde_json::Value, id: &str) -> &'j serde_json::Value {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no row {id}"))
    }

    fn ids(j: &serde_json::Value) -> Vec<&str> {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn json_has_every_row_in_order_and_restores_the_knobs() {
        let root = tree(
            Some("auto\n"),
            Some("auto\n"),
            "my_rng my_rng.1 virtio_rng.0\n",
        );
        let dev = dma_device();
        dev.set_algorithm_id(2).unwrap();
        let j = run_json(&dev, &env(root.path()), &[]);

        let obj = j.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["hwrng_available", "kernel", "pci", "rows"]);
        assert_eq!(j["hwrng_available"], "my_rng my_rng.1 virtio_rng.0");
        assert_eq!(j["pci"], "0000:00:10.0");
        assert!(!j["kernel"].as_str().unwrap().is_empty());
        assert_eq!(ids(&j), IDS);
        for r in j["rows"].as_array().unwrap() {
            let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(
                keys,
                ["bytes", "bytes_per_call", "id", "label", "seconds"],
                "{r}"
            );
            assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
            assert!(r["seconds"].as_f64().unwrap() > 0.0, "{r}");
        }
        assert_eq!(row(&j, "ioctl-rand")["bytes"], 12);
        assert_eq!(row(&j, "ioctl-rand64")["bytes_per_call"], 8);
        assert_eq!(
            row(&j, "ioctl-rand-mmio")["label"],
            "ioctl RAND (4 B), register path"
        );
        assert_eq!(row(&j, "ioctl-rand64-mmio")["bytes"], 24);
        assert_eq!(row(&j, "getrandom-4b")["bytes_per_call"], 4);
        assert_eq!(row(&j, "getrandom-4b")["label"], "getrandom(), 4 B");
        assert_eq!(row(&j, "read-zerocopy-1m")["bytes_per_call"], 1 << 20);
        assert_eq!(
            row(&j, "read-dma-1m-chacha20")["label"],
            "read() DMA (auto path), 1 MiB, chacha20"
        );
        assert_eq!(
            row(&j, "hwrng-virtio")["label"],
            "/dev/hwrng (virtio-rng), 4 KiB"
        );

        // Attributes as found, the algorithm as found.
        let misc = root.path().join("class/misc");
        for name in ["read_path", IOCTL_PATH] {
            assert_eq!(
                fs::read_to_string(misc.join(NODE).join(name)).unwrap(),
                "auto"
            );
        }
        assert_eq!(
            fs::read_to_string(misc.join("hw_random/rng_current")).unwrap(),
            "my_rng"
        );
        assert_eq!(dev.algorithm_id().unwrap(), 2);
        let calls = dev.calls();
        for alg in 0..4 {
            assert!(calls.contains(&format!("SET_ALGO {alg}")), "{calls:?}");
        }
        assert_eq!(calls.last().unwrap(), "GET_ALGO");
        // Each RAND/RAND64 row seeds first (a stash left by earlier rows is dropped):
        // SEED right before the row's first RAND.
        let first_rand = calls.iter().position(|c| c == "RAND").unwrap();
        assert_eq!(calls[first_rand - 1], "SEED 0x1", "{calls:?}");
        let seeds_before_seed_read = calls
            .iter()
            .take_while(|c| !c.starts_with("SEED_READ"))
            .filter(|c| *c == "SEED 0x1")
            .count();
        assert_eq!(seeds_before_seed_read, 4, "{calls:?}");
    }

    #[test]
    fn rows_that_cannot_run_say_why() {
        // An ABI 2.0 device and driver: no read_path or ioctl_path attribute, no virtio-rng.
        let root = tree(None, None, "my_rng my_rng.1\n");
        let dev = plain_device();
        let j = run_json(&dev, &env(root.path()), &[]);
        assert_eq!(j["rows"].as_array().unwrap().len(), IDS.len());
        for id in ["read-bounce-4k", "read-zerocopy-1m", "read-dma-1m-host"] {
            assert_eq!(
                row(&j, id)["error"],
                "the device has no DMA (FEATURES 0x7)",
                "{id}"
            );
            assert_eq!(row(&j, id)["bytes"], 0);
        }
        assert_eq!(
            row(&j, "hwrng-virtio")["error"],
            "no virtio source in rng_available (\"my_rng my_rng.1\")"
        );
        // Without ioctl_path the register-path rows are skipped (not errors): the default
        // rows ran on the registers.
        for id in ["ioctl-rand-mmio", "ioctl-rand64-mmio"] {
            let r = row(&j, id);
            assert!(r.get("error").is_none(), "{r}");
            assert!(
                r["skipped"]
                    .as_str()
                    .unwrap()
                    .starts_with("the driver has no ioctl_path"),
                "{r}"
            );
            assert_eq!(r["bytes"], 0);
        }
        assert!(row(&j, "ioctl-rand")["bytes"].as_u64().unwrap() > 0);
        // MMIO is the only path there, so it runs without the attribute.
        assert!(row(&j, "read-mmio-64k").get("error").is_none());
        assert!(row(&j, "hwrng-my_rng").get("error").is_none());
        let misc = root.path().join("class/misc").join(NODE);
        assert!(!misc.join("read_path").exists());
        assert!(!misc.join(IOCTL_PATH).exists());

        // A DMA device whose driver lacks the attribute cannot force the MMIO path.
        let dev = dma_device();
        let j = run_json(&dev, &env(root.path()), &[]);
        let e = row(&j, "read-mmio-64k")["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with(&format!("{NODE}/read_path is missing or unreadable")),
            "{e}"
        );
        assert!(!misc.join("read_path").exists());
    }

    #[test]
    fn hwrng_row_reads_this_devices_own_source() {
        // my_rng (the first device's) is there, my_rng.1 (this one's) is not.
        let root = tree(None, None, "my_rng virtio_rng.0\n");
        // (One row that runs: a bench in which nothing runs fails.)
        let j = run_json(
            &plain_device(),
            &env(root.path()),
            &["ioctl-rand", "hwrng-my_rng"],
        );
        assert_eq!(
            row(&j, "hwrng-my_rng")["error"],
            "no my_rng.1 source in rng_available (\"my_rng virtio_rng.0\")"
        );
        assert_eq!(own_hwrng("my_rng_driver"), Some("my_rng".into()));
        assert_eq!(own_hwrng("my_rng_driver12"), Some("my_rng.12".into()));
        assert_eq!(own_hwrng("my_rng_driverx"), None);
        assert_eq!(own_hwrng("fake_rng"), None);
    }

    #[test]
    fn rows_option_picks_rows_in_output_order() {
        let root = tree(None, None, "my_rng.1\n");
        let dev = plain_device();
        let j = run_json(&dev, &env(root.path()), &["hwrng-my_rng", "ioctl-rand"]);
        assert_eq!(ids(&j), ["ioctl-rand", "hwrng-my_rng"]);
        let mut out = Vec::new();
        let only = ["ioctl-rnd".to_string()];
        let e = run(
            &dev,
            &env(root.path()),
            Budget::SMOKE,
            true,
            &only,
            &mut out,
        );
        match e {
            Err(Failure::Msg(m)) => assert!(
                m.starts_with("no bench row \"ioctl-rnd\" (rows: ioctl-rand, ioctl-rand64,"),
                "{m}"
            ),
            _ => panic!("an unknown row id is accepted"),
        }
        assert!(out.is_empty());
    }

    #[test]
    fn table_output() {
        let root = tree(None, None, "my_rng.1\n");
        let dev = plain_device();
        let mut out = Vec::new();
        run(&dev, &env(root.path()), Budget::SMOKE, false, &[], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("interface"), "{text}");
        assert_eq!(lines.len(), 1 + IDS.len() + 1, "{text}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("read() DMA bounce, 4 KiB")
                && l.ends_with("unavailable: the device has no DMA (FEATURES 0x7)")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("ioctl RAND (4 B), register path")
                && l.contains("skipped: the driver has no ioctl_path")));
        assert!(lines.last().unwrap().starts_with("note: "));
    }

    #[test]
    fn a_device_gone_mid_row_keeps_the_figures_and_the_error() {
        let dev = FakeDevice::new().failing_after(4);
        let mut r = row_of(&dev);
        let m = measure(&mut r, Budget::timed(10.0), &|_| {});
        assert_eq!(m.calls, 3);
        assert_eq!(m.bytes, 12);
        assert!(m.error.unwrap().contains("ENODEV"));
        let j = json(
            &[Measured {
                error: Some("x".into()),
                ..measure(&mut row_of(&FakeDevice::new()), Budget::SMOKE, &|_| {})
            }],
            "k",
            "a b",
            None,
        );
        assert_eq!(j["rows"][0]["error"], "x");
        assert_eq!(j["rows"][0]["bytes"], 12);
        assert_eq!(j["pci"], serde_json::Value::Null);
    }

    fn row_of(dev: &FakeDevice) -> Row<'_> {
        super::row(
            "ioctl-rand".into(),
            "x".into(),
            4,
            no_setup(),
            Box::new(move || dev.next_u32().map(|_| 4).map_err(|e| e.to_string())),
        )
    }

    #[test]
    fn attribute_values() {
        assert_eq!(selected("auto\n"), "auto");
        assert_eq!(selected("auto [bounce] zerocopy\n"), "bounce");
        assert_eq!(
            source("my_rng my_rng.1 virtio_rng.0", "virtio"),
            Some("virtio_rng.0")
        );
        assert_eq!(source("my_rng.1 my_rng", "my_rng"), Some("my_rng.1"));
        assert_eq!(source("", "my_rng"), None);
    }
}
