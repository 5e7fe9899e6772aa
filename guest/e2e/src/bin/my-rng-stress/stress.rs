//! `stress`: worker processes doing mixed operations on the two devices at once. Every result
//! that can be checked is: SEED_READ against the committed vectors (it is atomic, so whatever
//! the other workers do, its values are a vector prefix of the algorithm in effect), error codes
//! of bad arguments, read() lengths and the bounds of partly bad buffers.
//!
//! The mix (see `one_op`) is mostly system calls that each take the device's lock once; bulk
//! reads of up to 2 MiB are a few percent of the calls, so that 8 x 100,000 operations finish
//! in minutes under TCG and KASAN while every size from 0 to 2 MiB still occurs thousands of
//! times.

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

/// The kinds of operation `one_op` returns, in its time breakdown.
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
            println!("@@RESULT stress failures=1 error=\"current_exe: {e}\"");
            return false;
        }
    };
    let start = Instant::now();
    let children = start_workers(&exe, workers, ops, limit, seed);
    let (total, complete) = collect(children);
    let want = u64::from(workers) * ops;
    let ok = complete == workers && total.failures == 0 && total.ops == want;
    println!(
        "@@RESULT {} workers={workers} complete={complete} want_ops={want} seconds={}",
        total.line("stress"),
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
            if line.starts_with("@@WORKER") {
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
        Ok((mut devs, expect, mut hwrng)) => {
            let mut r = Prng::new(seed.wrapping_mul(0x1_0000).wrapping_add(u64::from(i)));
            let mut buf = vec![0u8; READ_MAX];
            let guarded = match Guarded::new(READ_BOUND) {
                Ok(g) => g,
                Err(e) => {
                    st.fail(e);
                    return false;
                }
            };
            let deadline = Instant::now() + limit;
            while st.ops < ops {
                if Instant::now() > deadline {
                    st.fail(format!(
                        "time limit {} s reached after {} operations",
                        limit.as_secs(),
                        st.ops
                    ));
                    break;
                }
                // Mostly this worker's own device, sometimes the other one.
                let d = ((u64::from(i) + u64::from(r.percent(25))) % 2) as usize;
                let io = Io {
                    buf: &mut buf,
                    guarded: &guarded,
                    hwrng: hwrng.as_mut(),
                };
                let t = Instant::now();
                let kind = one_op(&mut r, &mut devs, d, &expect, io, &mut st);
                st.time[kind] += t.elapsed();
                st.ops += 1;
            }
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
    println!("{}", st.line(&format!("@@WORKER {i}")));
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

/// A worker's buffers: a plain one for good reads, one ending at a guard page for partly bad
/// reads, and /dev/hwrng.
struct Io<'a> {
    buf: &'a mut [u8],
    guarded: &'a Guarded,
    hwrng: Option<&'a mut File>,
}

/// One operation; returns its kind (an index into `KINDS`).
fn one_op(
    r: &mut Prng,
    devs: &mut Devs,
    d: usize,
    expect: &Expect,
    io: Io<'_>,
    st: &mut Stats,
) -> usize {
    let Io {
        buf,
        guarded,
        hwrng,
    } = io;
    let dev = &devs.dev[d];
    let name = &devs.paths[d];
    let pick = r.below(100);
    match pick {
        0..=24 => {
            st.ioctls += 1;
            let res = if r.percent(50) {
                dev.next_u32().map(drop)
            } else {
                dev.next_u64().map(drop)
            };
            st.check(res.map_err(|e| format!("{name}: RAND/RAND64: {e}")));
            0
        }
        25..=28 => {
            st.ioctls += 1;
            let s = r.next_u64() as u32;
            st.check(dev.seed(s).map_err(|e| format!("{name}: SEED: {e}")));
            0
        }
        29..=32 => {
            st.ioctls += 1;
            let a = ALGS[r.below(3) as usize];
            st.check(
                dev.set_algorithm(a)
                    .map_err(|e| format!("{name}: SET_ALGO {a}: {e}")),
            );
            0
        }
        33..=34 => {
            st.ioctls += 1;
            let bad = [4u32, 31, 32, 0xffff_ffff][r.below(4) as usize];
            st.check(util::expect_errno(
                &format!("{name}: SET_ALGO {bad}"),
                dev.set_algorithm_id(bad)
                    .map_err(|e| e.errno().unwrap_or(0)),
                libc::EINVAL,
            ));
            0
        }
        35..=37 => {
            st.ioctls += 1;
            match dev.algorithm_id() {
                Ok(a) if a <= 2 => {}
                Ok(a) => st.fail(format!("{name}: GET_ALGO {a}, only 0..2 are ever set")),
                Err(e) => st.fail(format!("{name}: GET_ALGO: {e}")),
            }
            0
        }
        38..=40 => {
            st.ioctls += 1;
            match dev.info() {
                Ok(info) if info.id >> 16 == my_rng::regs::ID_MAGIC => {}
                Ok(info) => st.fail(format!("{name}: INFO id {:#x}", info.id)),
                Err(e) => st.fail(format!("{name}: INFO: {e}")),
            }
            0
        }
        41..=52 => {
            st.ioctls += 1;
            let seed = SEEDS[r.below(SEEDS.len() as u64) as usize];
            let n = 1 + r.below(COUNT as u64) as usize;
            let mut out = vec![0u32; n];
            match dev.seed_read(seed, &mut out) {
                Ok(()) if expect.matches(seed, &out) => st.seed_reads_checked += 1,
                Ok(()) => st.fail(format!(
                    "{name}: SEED_READ seed {seed:#x} x{n} matches no algorithm's vector \
                     (first value {})",
                    out[0]
                )),
                Err(e) => st.fail(format!("{name}: SEED_READ: {e}")),
            }
            1
        }
        53..=54 => {
            st.ioctls += 1;
            seed_read_bad(r, dev, name, st);
            0
        }
        90..=95 => {
            // Half of them up to 2 MiB, half small (the bounce path's sizes).
            let size = if pick < 93 {
                r.log_size(READ_MAX)
            } else {
                r.log_size(4096)
            };
            match raw_read(dev.file().as_raw_fd(), buf.as_mut_ptr(), size) {
                Ok(n) if n <= size.min(READ_BOUND) && (n > 0) == (size > 0) => {
                    st.reads += 1;
                    st.read_bytes += n as u64;
                }
                Ok(n) => st.fail(format!("{name}: read({size}) returned {n}")),
                Err(e) => st.fail(format!("{name}: read({size}): {}", errno_name(e))),
            }
            2
        }
        96..=97 => {
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
            3
        }
        98 => {
            st.bad_pointer += 1;
            let p = bad_pointer(r);
            let size = 1 + r.below(64 * 1024) as usize;
            st.check(util::expect_errno(
                &format!("{name}: read({size}) into {p:#x}"),
                raw_read(dev.file().as_raw_fd(), p as *mut u8, size),
                libc::EFAULT,
            ));
            4
        }
        63..=74 => {
            if let Some(h) = hwrng {
                let n = 1 + r.below(256) as usize;
                match h.read(&mut buf[..n]) {
                    Ok(got) if got > 0 => st.hwrng += 1,
                    Ok(_) => st.fail("/dev/hwrng: read returned 0".into()),
                    Err(e) => st.fail(format!("/dev/hwrng: {e}")),
                }
            }
            5
        }
        75..=89 => {
            st.reopen += 1;
            match Device::open(name) {
                Ok(fresh) => {
                    st.check(
                        fresh
                            .next_u32()
                            .map(drop)
                            .map_err(|e| format!("{name}: {e}")),
                    );
                    // Replace the worker's handle now and then: the old file is closed.
                    if r.percent(50) {
                        devs.dev[d] = fresh;
                    }
                }
                Err(e) => st.fail(format!("reopen {name}: {e}")),
            }
            6
        }
        99 => {
            st.path_switch += 1;
            // Mostly back to auto, so that forced slow paths do not dominate the run.
            let p = if r.percent(60) {
                "auto"
            } else {
                PATHS[r.below(4) as usize]
            };
            let sys = my_rng::sysfs::Sysfs::default();
            let attr = sys.misc_dir_for_node(dev.path()).join("read_path");
            st.check(
                fs::write(&attr, p).map_err(|e| format!("{}: write {p}: {e}", attr.display())),
            );
            7
        }
        55..=58 => {
            st.ioctls += 1;
            let nr = 16 + r.below(200) as u8;
            let req = util::io(uapi::IOCTL_GROUP, nr);
            st.check(util::expect_errno(
                &format!("{name}: unknown ioctl nr {nr}"),
                raw_ioctl(dev, req, std::ptr::null_mut()),
                libc::ENOTTY,
            ));
            0
        }
        // 59..=62
        _ => {
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
            0
        }
    }
}

/// NULL, a kernel address, or an address never mapped in user space.
fn bad_pointer(r: &mut Prng) -> usize {
    match r.below(3) {
        0 => 0,
        1 => KERNEL_ADDR,
        _ => util::unmapped_addr().map(|p| p as usize).unwrap_or(0),
    }
}

/// SEED_READ with a count out of range (EINVAL) or a bad destination (EFAULT).
fn seed_read_bad(r: &mut Prng, dev: &Device, name: &str, st: &mut Stats) {
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
        let line = s.line("@@WORKER 0");
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
}
