//! `stress`: worker processes doing mixed operations on the two devices at once. Every result
//! that can be checked is: SEED_READ against the committed vectors (it is atomic, so whatever
//! the other workers do, its values are a vector prefix of the algorithm in effect), error codes
//! of bad arguments, read() lengths and the bounds of partly bad buffers.
//!
//! The operations and their weights are the table `OPS`: one function per kind of operation.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use my_rng::uapi::{self, RawSeedRead};
use my_rng::{Algorithm, Device};
use my_rng_e2e::util::{self, errno_name, expected, raw_ioctl, KERNEL_ADDR};
use my_rng_spec::vectors::{COUNT, SEEDS};

use crate::mem::{raw_read, Guarded};
use crate::Prng;
use my_rng_protocol::{marker, record, Record};

/// The algorithms the workers switch between: the deterministic ones, so that every
/// SEED_READ is checkable (host entropy is exercised by /dev/hwrng and the fuzz mode).
const ALGS: [Algorithm; 3] = [
    Algorithm::Glibc,
    Algorithm::Xoshiro256pp,
    Algorithm::ChaCha20,
];
/// read() returns at most this much per call (the DMA paths' bound; MMIO's is smaller).
const READ_BOUND: usize = 1 << 20;
/// The largest read() asked for: twice the bound, so that bounded reads are exercised.
const READ_MAX: usize = 2 << 20;
const PATHS: [&str; 4] = ["auto", "mmio", "bounce", "zerocopy"];
/// Failures printed per worker (all are counted).
const SHOWN: usize = 5;

/// Counts by kind of operation, and the failures.
#[derive(Default, Debug)]
struct Stats {
    ops: u64,
    ioctls: u64,
    seed_reads_checked: u64,
    reads: u64,
    read_bytes: u64,
    partly_bad: u64,
    bad_pointer: u64,
    hwrng: u64,
    reopen: u64,
    path_switch: u64,
    failures: u64,
    shown: Vec<String>,
    /// Time spent per kind of operation (see `KINDS`), for the breakdown line.
    time: [Duration; KINDS.len()],
}

/// The kinds of operation in the time breakdown line, in the order of their names in `KINDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ioctl,
    SeedRead,
    Read,
    PartlyBad,
    BadRead,
    Hwrng,
    Reopen,
    Path,
}

/// The names of the kinds of operation, in the time breakdown line.
const KINDS: [&str; 8] = [
    "ioctl",
    "seed_read",
    "read",
    "partly_bad",
    "bad_read",
    "hwrng",
    "reopen",
    "path",
];

impl Stats {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.shown.len() < SHOWN {
            self.shown.push(what);
        }
    }

    /// `Err` becomes a failure.
    fn check(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Milliseconds per kind of operation.
    fn breakdown(&self) -> String {
        KINDS
            .iter()
            .zip(self.time)
            .map(|(k, t)| format!("{k}={}ms", t.as_millis()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn line(&self, who: &str) -> String {
        format!(
            "{who} ops={} ioctls={} seed_reads_checked={} reads={} read_bytes={} partly_bad={} \
             bad_pointer={} hwrng={} reopen={} path_switch={} failures={}",
            self.ops,
            self.ioctls,
            self.seed_reads_checked,
            self.reads,
            self.read_bytes,
            self.partly_bad,
            self.bad_pointer,
            self.hwrng,
            self.reopen,
            self.path_switch,
            self.failures
        )
    }

    /// Adds a worker's `@@WORKER` line's counts.
    fn add_line(&mut self, line: &str) -> bool {
        let mut seen = 0;
        for kv in line.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let f = match k {
                "ops" => &mut self.ops,
                "ioctls" => &mut self.ioctls,
                "seed_reads_checked" => &mut self.seed_reads_checked,
                "reads" => &mut self.reads,
                "read_bytes" => &mut self.read_bytes,
                "partly_bad" => &mut self.partly_bad,
                "bad_pointer" => &mut self.bad_pointer,
                "hwrng" => &mut self.hwrng,
                "reopen" => &mut self.reopen,
                "path_switch" => &mut self.path_switch,
                "failures" => &mut self.failures,
                _ => continue,
            };
            *f += v;
            seen += 1;
        }
        seen == 11
    }
}

/// The parent: starts the workers as processes, waits for them, sums their counts.
pub fn run(workers: u32, ops: u64, limit: Duration, seed: u64) -> bool {
    println!(
        "stress: {workers} worker processes x {ops} operations on /dev/my_rng_driver and \
         /dev/my_rng_driver1, seed {seed}, limit {} s",
        limit.as_secs()
    );
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let r = Record::new(record::STRESS).field("failures", 1);
            println!("{}", r.quoted("error", format!("current_exe: {e}")));
            return false;
        }
    };
    let start = Instant::now();
    let children = start_workers(&exe, workers, ops, limit, seed);
    let (total, complete) = collect(children);
    let want = u64::from(workers) * ops;
    let ok = complete == workers && total.failures == 0 && total.ops == want;
    println!(
        "{} {} workers={workers} complete={complete} want_ops={want} seconds={}",
        record::RESULT,
        total.line(record::STRESS),
        start.elapsed().as_secs()
    );
    ok
}

/// Starts worker processes 0..`workers` of this program, their output piped to the parent.
fn start_workers(exe: &Path, workers: u32, ops: u64, limit: Duration, seed: u64) -> Vec<Child> {
    let mut children = Vec::new();
    for i in 0..workers {
        let child = Command::new(exe)
            .args(["stress", "--worker", &i.to_string()])
            .args(["--ops", &ops.to_string()])
            .args(["--seconds", &limit.as_secs().to_string()])
            .args(["--seed", &seed.to_string()])
            .stdout(Stdio::piped())
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => println!("worker {i}: cannot start: {e}"),
        }
    }
    children
}

/// Relays the workers' output, waits for them and sums their `@@WORKER` lines: returns the
/// sum and how many workers ended successfully with a result.
fn collect(children: Vec<Child>) -> (Stats, u32) {
    let mut total = Stats::default();
    let mut complete = 0u32;
    for (i, mut c) in children.into_iter().enumerate() {
        let out = c.stdout.take().expect("piped");
        let mut result = None;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with(marker::WORKER) {
                result = Some(line);
            } else {
                println!("worker {i}: {line}");
            }
        }
        let status = c.wait();
        match (result, status) {
            (Some(line), Ok(st)) => {
                println!("{line}");
                if !total.add_line(&line) {
                    total.fail(format!("worker {i}: unreadable result line"));
                }
                if st.success() {
                    complete += 1;
                }
            }
            (_, st) => total.fail(format!("worker {i} ended without a result ({st:?})")),
        }
    }
    (total, complete)
}

/// Precomputed SEED_READ expectations: per vector seed, the 32-bit vectors of each algorithm.
struct Expect(Vec<(u32, Vec<std::sync::Arc<Vec<u64>>>)>);

impl Expect {
    fn load() -> Result<Expect, String> {
        let mut v = Vec::new();
        for seed in SEEDS {
            let per_alg = ALGS
                .iter()
                .map(|&a| expected(a, seed, 32))
                .collect::<Result<Vec<_>, _>>()?;
            v.push((seed, per_alg));
        }
        Ok(Expect(v))
    }

    /// Whether `got` (SEED_READ after `seed`) starts the vector of one of the algorithms.
    fn matches(&self, seed: u32, got: &[u32]) -> bool {
        let Some((_, per_alg)) = self.0.iter().find(|(s, _)| *s == seed) else {
            return false;
        };
        per_alg.iter().any(|want| {
            got.len() <= want.len()
                && got
                    .iter()
                    .zip(want.iter())
                    .all(|(g, w)| u64::from(*g) == *w)
        })
    }
}

/// The devices a worker uses, reopened when churned.
struct Devs {
    dev: [Device; 2],
    paths: [String; 2],
}

/// One worker process: `ops` operations, or fewer if `limit` passes first (then it fails).
pub fn worker(i: u32, ops: u64, limit: Duration, seed: u64) -> bool {
    let mut st = Stats::default();
    let ok = match setup() {
        Ok((devs, expect, hwrng)) => {
            let r = Prng::new(seed.wrapping_mul(0x1_0000).wrapping_add(u64::from(i)));
            let buf = vec![0u8; READ_MAX];
            let guarded = match Guarded::new(READ_BOUND) {
                Ok(g) => g,
                Err(e) => {
                    st.fail(e);
                    return false;
                }
            };
            let mut w = Worker {
                r,
                devs,
                d: 0,
                expect,
                buf,
                guarded,
                hwrng,
                st: &mut st,
            };
            w.work(i, ops, limit);
            st.failures == 0
        }
        Err(e) => {
            st.fail(e);
            false
        }
    };
    for s in &st.shown {
        println!("FAIL {s}");
    }
    println!("time by kind: {}", st.breakdown());
    println!("{}", st.line(&marker::worker(i)));
    ok
}

fn setup() -> Result<(Devs, Expect, Option<File>), String> {
    let paths = [0, 1].map(|n| Device::index_path(n).display().to_string());
    let open = |p: &String| Device::open(p).map_err(|e| format!("open {p}: {e}"));
    let dev = [open(&paths[0])?, open(&paths[1])?];
    let expect = Expect::load()?;
    let hwrng = File::open("/dev/hwrng").ok();
    Ok((Devs { dev, paths }, expect, hwrng))
}

/// What a worker's operations work with: its random choices, its devices (`d` is the one the
/// current operation uses), the SEED_READ expectations, its buffers (a plain one for good
/// reads, one ending at a guard page for partly bad reads), /dev/hwrng and its counts.
struct Worker<'a> {
    r: Prng,
    devs: Devs,
    d: usize,
    expect: Expect,
    buf: Vec<u8>,
    guarded: Guarded,
    hwrng: Option<File>,
    st: &'a mut Stats,
}

impl Worker<'_> {
    /// Runs operations until `ops` are done, or fails when `limit` passes first.
    fn work(&mut self, i: u32, ops: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.st.ops < ops {
            if Instant::now() > deadline {
                self.st.fail(format!(
                    "time limit {} s reached after {} operations",
                    limit.as_secs(),
                    self.st.ops
                ));
                break;
            }
            // Mostly this worker's own device, sometimes the other one.
            self.d = ((u64::from(i) + u64::from(self.r.percent(25))) % 2) as usize;
            let t = Instant::now();
            let kind = self.one_op();
            self.st.time[kind as usize] += t.elapsed();
            self.st.ops += 1;
        }
    }

    /// One operation drawn from `OPS`; returns its kind.
    fn one_op(&mut self) -> Kind {
        let op = op_for(self.r.below(TOTAL_WEIGHT));
        (op.run)(self);
        op.kind
    }

    /// The current operation's device and its node's path, the random choices and the counts.
    fn parts(&mut self) -> (&Device, &str, &mut Prng, &mut Stats) {
        let d = self.d;
        (
            &self.devs.dev[d],
            &self.devs.paths[d],
            &mut self.r,
            &mut *self.st,
        )
    }
}

/// One kind of operation in the mix.
struct Op {
    /// Chances in `TOTAL_WEIGHT` (100) of being drawn.
    weight: u64,
    // Read by the tests, which pin the mix by name.
    #[cfg_attr(not(test), expect(dead_code))]
    name: &'static str,
    kind: Kind,
    run: fn(&mut Worker<'_>),
}

const fn op(weight: u64, name: &'static str, kind: Kind, run: fn(&mut Worker<'_>)) -> Op {
    Op {
        weight,
        name,
        kind,
        run,
    }
}

/// The mix of operations, in percent: mostly system calls that each take the device's lock
/// once; bulk reads of up to 2 MiB are 3% of the calls, so that 8 x 100,000 operations finish
/// in minutes under TCG and KASAN while every size from 0 to 2 MiB still occurs thousands of
/// times. One draw of `below(TOTAL_WEIGHT)` per operation picks the entry whose share of
/// `0..TOTAL_WEIGHT` it falls in, in this order: the order is part of what a seed reproduces.
const OPS: [Op; 17] = [
    op(25, "rand", Kind::Ioctl, rand),
    op(4, "seed", Kind::Ioctl, seed),
    op(4, "set_algo", Kind::Ioctl, set_algo),
    op(2, "set_algo_bad", Kind::Ioctl, set_algo_bad),
    op(3, "get_algo", Kind::Ioctl, get_algo),
    op(3, "info", Kind::Ioctl, info),
    op(12, "seed_read", Kind::SeedRead, seed_read),
    op(2, "seed_read_bad", Kind::Ioctl, seed_read_bad),
    op(4, "unknown_ioctl", Kind::Ioctl, unknown_ioctl),
    op(4, "ioctl_bad_pointer", Kind::Ioctl, ioctl_bad_pointer),
    op(12, "hwrng", Kind::Hwrng, hwrng),
    op(15, "reopen", Kind::Reopen, reopen),
    op(3, "read", Kind::Read, read),
    op(3, "read_small", Kind::Read, read_small),
    op(2, "partly_bad", Kind::PartlyBad, partly_bad),
    op(1, "bad_read", Kind::BadRead, bad_read),
    op(1, "path_switch", Kind::Path, path_switch),
];

const TOTAL_WEIGHT: u64 = total_weight();

const fn total_weight() -> u64 {
    let (mut sum, mut k) = (0, 0);
    while k < OPS.len() {
        sum += OPS[k].weight;
        k += 1;
    }
    sum
}

// The weights are percentages: a change to one must be balanced by another.
const _: () = assert!(TOTAL_WEIGHT == 100);

/// The entry of `OPS` that the draw `pick` (in `0..TOTAL_WEIGHT`) falls in.
fn op_for(pick: u64) -> &'static Op {
    let mut end = 0;
    OPS.iter()
        .find(|op| {
            end += op.weight;
            pick < end
        })
        .unwrap_or(&OPS[OPS.len() - 1])
}

/// RAND or RAND64.
fn rand(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let res = if r.percent(50) {
        dev.next_u32().map(drop)
    } else {
        dev.next_u64().map(drop)
    };
    st.check(res.map_err(|e| format!("{name}: RAND/RAND64: {e}")));
}

fn seed(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let s = r.next_u64() as u32;
    st.check(dev.seed(s).map_err(|e| format!("{name}: SEED: {e}")));
}

fn set_algo(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let a = ALGS[r.below(3) as usize];
    st.check(
        dev.set_algorithm(a)
            .map_err(|e| format!("{name}: SET_ALGO {a}: {e}")),
    );
}

/// SET_ALGO of an algorithm that does not exist: EINVAL.
fn set_algo_bad(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let bad = [4u32, 31, 32, 0xffff_ffff][r.below(4) as usize];
    st.check(util::expect_errno(
        &format!("{name}: SET_ALGO {bad}"),
        dev.set_algorithm_id(bad)
            .map_err(|e| e.errno().unwrap_or(0)),
        libc::EINVAL,
    ));
}

fn get_algo(w: &mut Worker<'_>) {
    let (dev, name, _, st) = w.parts();
    st.ioctls += 1;
    match dev.algorithm_id() {
        Ok(a) if a <= 2 => {}
        Ok(a) => st.fail(format!("{name}: GET_ALGO {a}, only 0..2 are ever set")),
        Err(e) => st.fail(format!("{name}: GET_ALGO: {e}")),
    }
}

fn info(w: &mut Worker<'_>) {
    let (dev, name, _, st) = w.parts();
    st.ioctls += 1;
    match dev.info() {
        Ok(info) if my_rng::regs::abi_version(info.id).is_some() => {}
        Ok(info) => st.fail(format!("{name}: INFO id {:#x}", info.id)),
        Err(e) => st.fail(format!("{name}: INFO: {e}")),
    }
}

/// SEED_READ of a vector seed, checked against the vectors.
fn seed_read(w: &mut Worker<'_>) {
    let (dev, name) = (&w.devs.dev[w.d], &w.devs.paths[w.d]);
    let (r, st) = (&mut w.r, &mut *w.st);
    st.ioctls += 1;
    let seed = SEEDS[r.below(SEEDS.len() as u64) as usize];
    let n = 1 + r.below(COUNT as u64) as usize;
    let mut out = vec![0u32; n];
    match dev.seed_read(seed, &mut out) {
        Ok(()) if w.expect.matches(seed, &out) => st.seed_reads_checked += 1,
        Ok(()) => st.fail(format!(
            "{name}: SEED_READ seed {seed:#x} x{n} matches no algorithm's vector \
             (first value {})",
            out[0]
        )),
        Err(e) => st.fail(format!("{name}: SEED_READ: {e}")),
    }
}

/// SEED_READ with a count out of range (EINVAL) or a bad destination (EFAULT).
fn seed_read_bad(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let (count, buf, want) = if r.percent(50) {
        let c = [0u32, uapi::SEED_READ_MAX + 1, u32::MAX][r.below(3) as usize];
        (c, 0u64, libc::EINVAL)
    } else {
        (1 + r.below(64) as u32, bad_pointer(r) as u64, libc::EFAULT)
    };
    let mut arg = RawSeedRead {
        seed: 1,
        count,
        buf,
    };
    st.check(util::expect_errno(
        &format!("{name}: SEED_READ count {count} buf {buf:#x}"),
        raw_ioctl(dev, uapi::SEED_READ, (&mut arg as *mut RawSeedRead).cast()),
        want,
    ));
}

/// A command number of the driver's group that it does not have: ENOTTY.
fn unknown_ioctl(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let nr = 16 + r.below(200) as u8;
    let req = util::io(uapi::IOCTL_GROUP, nr);
    st.check(util::expect_errno(
        &format!("{name}: unknown ioctl nr {nr}"),
        raw_ioctl(dev, req, std::ptr::null_mut()),
        libc::ENOTTY,
    ));
}

/// A command with a bad argument pointer: EFAULT.
fn ioctl_bad_pointer(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.ioctls += 1;
    let p = bad_pointer(r);
    let req = [
        uapi::RAND,
        uapi::SEED,
        uapi::RAND64,
        uapi::INFO,
        uapi::SET_ALGO,
    ][r.below(5) as usize];
    st.check(util::expect_errno(
        &format!("{name}: ioctl {req:#x} with {p:#x}"),
        raw_ioctl(dev, req, p as *mut _),
        libc::EFAULT,
    ));
}

/// A read of /dev/hwrng (the driver's hw_random source), when there is one.
fn hwrng(w: &mut Worker<'_>) {
    if let Some(h) = &mut w.hwrng {
        let n = 1 + w.r.below(256) as usize;
        match h.read(&mut w.buf[..n]) {
            Ok(got) if got > 0 => w.st.hwrng += 1,
            Ok(_) => w.st.fail("/dev/hwrng: read returned 0".into()),
            Err(e) => w.st.fail(format!("/dev/hwrng: {e}")),
        }
    }
}

/// Opens the node again and uses the new file; now and then it replaces the worker's handle,
/// which closes the old file.
fn reopen(w: &mut Worker<'_>) {
    let name = &w.devs.paths[w.d];
    w.st.reopen += 1;
    match Device::open(name) {
        Ok(fresh) => {
            w.st.check(
                fresh
                    .next_u32()
                    .map(drop)
                    .map_err(|e| format!("{name}: {e}")),
            );
            if w.r.percent(50) {
                w.devs.dev[w.d] = fresh;
            }
        }
        Err(e) => w.st.fail(format!("reopen {name}: {e}")),
    }
}

/// read() of up to 2 MiB: past the bound, so that bounded reads are exercised.
fn read(w: &mut Worker<'_>) {
    let size = w.r.log_size(READ_MAX);
    read_of(w, size);
}

/// read() of up to a page: the bounce path's sizes.
fn read_small(w: &mut Worker<'_>) {
    let size = w.r.log_size(4096);
    read_of(w, size);
}

/// read() of `size` bytes into the plain buffer: at most the bound, 0 only when asked for 0.
fn read_of(w: &mut Worker<'_>, size: usize) {
    let (dev, name, st) = (&w.devs.dev[w.d], &w.devs.paths[w.d], &mut *w.st);
    match raw_read(dev.file().as_raw_fd(), w.buf.as_mut_ptr(), size) {
        Ok(n) if n <= size.min(READ_BOUND) && (n > 0) == (size > 0) => {
            st.reads += 1;
            st.read_bytes += n as u64;
        }
        Ok(n) => st.fail(format!("{name}: read({size}) returned {n}")),
        Err(e) => st.fail(format!("{name}: read({size}): {}", errno_name(e))),
    }
}

/// read() into a buffer whose end is followed by a guard page: short or EFAULT, never past.
fn partly_bad(w: &mut Worker<'_>) {
    let guarded = &w.guarded;
    let (dev, name, r, st) = (&w.devs.dev[w.d], &w.devs.paths[w.d], &mut w.r, &mut *w.st);
    st.partly_bad += 1;
    let good = r.log_size(READ_BOUND);
    let extra = 1 + r.below(64 * 1024) as usize;
    match raw_read(dev.file().as_raw_fd(), guarded.last(good), good + extra) {
        Ok(n) if n <= good => st.read_bytes += n as u64,
        Ok(n) => st.fail(format!("{name}: read past {good} good bytes: {n}")),
        Err(libc::EFAULT) => {}
        Err(e) => st.fail(format!(
            "{name}: read into {good} good bytes: {}",
            errno_name(e)
        )),
    }
}

/// read() into a bad pointer: EFAULT.
fn bad_read(w: &mut Worker<'_>) {
    let (dev, name, r, st) = w.parts();
    st.bad_pointer += 1;
    let p = bad_pointer(r);
    let size = 1 + r.below(64 * 1024) as usize;
    st.check(util::expect_errno(
        &format!("{name}: read({size}) into {p:#x}"),
        raw_read(dev.file().as_raw_fd(), p as *mut u8, size),
        libc::EFAULT,
    ));
}

/// Switches the device's read path (sysfs `read_path`).
fn path_switch(w: &mut Worker<'_>) {
    let (dev, _, r, st) = w.parts();
    st.path_switch += 1;
    // Mostly back to auto, so that forced slow paths do not dominate the run.
    let p = if r.percent(60) {
        "auto"
    } else {
        PATHS[r.below(4) as usize]
    };
    let sys = my_rng::sysfs::Sysfs::default();
    let attr = sys.misc_dir_for_node(dev.path()).join("read_path");
    st.check(fs::write(&attr, p).map_err(|e| format!("{}: write {p}: {e}", attr.display())));
}

/// NULL, a kernel address, or an address never mapped in user space.
fn bad_pointer(r: &mut Prng) -> usize {
    match r.below(3) {
        0 => 0,
        1 => KERNEL_ADDR,
        _ => util::unmapped_addr().map(|p| p as usize).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lines_add_up() {
        let mut s = Stats {
            ops: 3,
            reads: 1,
            ..Default::default()
        };
        let line = s.line(&marker::worker(0));
        let mut t = Stats::default();
        assert!(t.add_line(&line));
        assert!(t.add_line(&line));
        assert_eq!((t.ops, t.reads, t.failures), (6, 2, 0));
        s.fail("x".into());
        assert!(!Stats::default().add_line("@@WORKER 1 ops=3"));
    }

    #[test]
    fn seed_read_expectations_come_from_the_vectors() {
        let e = Expect::load().unwrap();
        let glibc = expected(Algorithm::Glibc, 0x42, 32).unwrap();
        let got: Vec<u32> = glibc[..5].iter().map(|&v| v as u32).collect();
        assert_eq!(
            got,
            [286129175, 1594929109, 971802288, 222134722, 1335014133]
        );
        assert!(e.matches(0x42, &got));
        let mut wrong = got.clone();
        wrong[4] ^= 1;
        assert!(!e.matches(0x42, &wrong));
        assert!(
            !e.matches(0x4242_4242, &got),
            "a seed without vectors never matches"
        );
    }

    /// The draws of each operation before the table (the `match` on `below(100)` it replaced):
    /// the same draw must still pick the same operation, so a seed reproduces the same run.
    #[test]
    fn the_table_keeps_the_mix() {
        let old: [(u64, u64, &str); 17] = [
            (0, 24, "rand"),
            (25, 28, "seed"),
            (29, 32, "set_algo"),
            (33, 34, "set_algo_bad"),
            (35, 37, "get_algo"),
            (38, 40, "info"),
            (41, 52, "seed_read"),
            (53, 54, "seed_read_bad"),
            (55, 58, "unknown_ioctl"),
            (59, 62, "ioctl_bad_pointer"),
            (63, 74, "hwrng"),
            (75, 89, "reopen"),
            (90, 92, "read"),
            (93, 95, "read_small"),
            (96, 97, "partly_bad"),
            (98, 98, "bad_read"),
            (99, 99, "path_switch"),
        ];
        assert_eq!(TOTAL_WEIGHT, 100);
        for (lo, hi, name) in old {
            for pick in lo..=hi {
                assert_eq!(op_for(pick).name, name, "draw {pick}");
            }
        }
        let kinds = |k: Kind| OPS.iter().filter(|op| op.kind == k).count();
        assert_eq!(kinds(Kind::Ioctl), 9);
        assert_eq!(kinds(Kind::Read), 2);
        assert_eq!(Kind::Path as usize, KINDS.len() - 1);
    }
}
