//! The end-to-end tests. Each is independent: it opens its own handles, sets up the algorithm
//! and seed it needs, and puts the device back on glibc when done.

use std::ffi::c_void;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use my_rng::sysfs::Sysfs;
use my_rng::uapi::{self, RawSeedRead};
use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::{COUNT, SEEDS};

use crate::util::*;

/// What the tests run against.
pub struct Ctx {
    /// First device node (`/dev/my_rng_driver`).
    pub dev0: PathBuf,
    /// Second device node (`/dev/my_rng_driver1`).
    pub dev1: PathBuf,
    /// sysfs.
    pub sys: Sysfs,
}

type TestFn = Box<dyn Fn(&Ctx) -> TestResult + Send + Sync>;

/// A named test.
pub struct Test {
    pub name: String,
    pub run: TestFn,
    /// Lower bound on the runner's per-test limit, for tests whose own internal time limits
    /// add up to more than the default.
    pub min_limit: Duration,
}

fn t(name: impl Into<String>, f: impl Fn(&Ctx) -> TestResult + Send + Sync + 'static) -> Test {
    Test {
        name: name.into(),
        run: Box::new(f),
        min_limit: Duration::ZERO,
    }
}

/// Every test, in run order. `unbind-while-open` is the only destructive one and runs last
/// but for `kmsg-clean`, which then also sees anything the unbind/bind cycle logged.
pub fn all() -> Vec<Test> {
    let mut v = vec![
        t("classic-seed-0", |c| classic_sequence(c, 0)),
        t("classic-seed-0x42", |c| classic_sequence(c, 0x42)),
        t("classic-reseed-replays", classic_reseed_replays),
    ];
    for alg in Algorithm::DETERMINISTIC {
        v.push(t(format!("algo-vectors-{alg}"), move |c| {
            algo_vectors(c, alg)
        }));
    }
    v.extend([
        t("algo-switch-reseeds-from-latch", algo_switch_reseeds),
        t("algo-get-roundtrip", algo_get_roundtrip),
        t("algo-set-invalid", algo_set_invalid),
        t("info", info),
        t("read-vectors", read_vectors),
        t("read-1mib", read_1mib),
        t("read-3-bytes", read_3_bytes),
        t("read-efault", read_efault),
        t("seed-read-vectors", seed_read_vectors),
        t("seed-read-einval", seed_read_einval),
        t("seed-read-efault", seed_read_efault),
        t("seed-read-concurrent", seed_read_concurrent),
        t("bad-pointers-efault", bad_pointers_efault),
        t("unknown-ioctls-enotty", unknown_ioctls),
        t("hwrng-present", hwrng_present),
        t("hwrng-read", hwrng_read),
        t("hwrng-does-not-disturb", hwrng_does_not_disturb),
        t("two-devices-present", two_devices_present),
        t("two-devices-independent", two_devices_independent),
        // Its steps have their own limits (unbind 30 s, ENODEV 10 s, bind 30 s, node 10 s).
        Test {
            min_limit: Duration::from_secs(120),
            ..t("unbind-while-open", unbind_while_open)
        },
        t("kmsg-clean", kmsg_clean),
    ]);
    v
}

fn open(path: &Path) -> Result<Device, String> {
    Device::open(path).map_err(|e| e.to_string())
}

/// Expected `n`-value prefix, with the vector's length checked.
fn want(alg: Algorithm, seed: u32, bits: u32, n: usize) -> Result<Vec<u64>, String> {
    let v = expected(alg, seed, bits)?;
    if v.len() < n {
        return Err(format!(
            "{alg} seed {seed:#x} {bits}-bit vector has {} values, need {n}",
            v.len()
        ));
    }
    Ok(v[..n].to_vec())
}

/// Seeds glibc with `seed` and checks the first five RAND values against the vector.
fn glibc_starts(what: &str, dev: &Device, seed: u32) -> TestResult {
    start(dev, Algorithm::Glibc, seed)?;
    check_seq(
        what,
        &read_values(dev, 32, 5)?,
        &want(Algorithm::Glibc, seed, 32, 5)?,
    )
}

// ---------------------------------------------------------------- classic (seed) ioctls

fn classic_sequence(c: &Ctx, seed: u32) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    start(&dev, Algorithm::Glibc, seed)?;
    let got = read_values(&dev, 32, COUNT)?;
    let w = want(Algorithm::Glibc, seed, 32, COUNT)?;
    check_seq(&format!("first 5 RAND after SEED {seed:#x}"), &got[..5], &w)?;
    check_seq(
        &format!("first {COUNT} RAND after SEED {seed:#x}"),
        &got,
        &w,
    )
}

fn classic_reseed_replays(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    ctx("SET_ALGO glibc", dev.set_algorithm(Algorithm::Glibc))?;
    // The seed app: two rounds of SEED 0 + five RAND.
    let w0 = want(Algorithm::Glibc, 0, 32, 5)?;
    for round in 0..2 {
        ctx("SEED 0", dev.seed(0))?;
        check_seq(&format!("round {round}"), &read_values(&dev, 32, 5)?, &w0)?;
    }
    // Reseeding mid-sequence restarts it.
    let w42 = want(Algorithm::Glibc, 0x42, 32, 12)?;
    ctx("SEED 0x42", dev.seed(0x42))?;
    check_seq("SEED 0x42", &read_values(&dev, 32, 7)?, &w42)?;
    ctx("SEED 0x42", dev.seed(0x42))?;
    check_seq("SEED 0x42 again", &read_values(&dev, 32, 12)?, &w42)?;
    ctx("SEED 0", dev.seed(0))?;
    check_seq("back to SEED 0", &read_values(&dev, 32, 5)?, &w0)
}

// ---------------------------------------------------------------- algorithms

fn algo_vectors(c: &Ctx, alg: Algorithm) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for seed in SEEDS {
        start(&dev, alg, seed)?;
        let w = want(alg, seed, 32, COUNT)?;
        check_seq(
            &format!("{alg} seed {seed:#x} RAND"),
            &read_values(&dev, 32, COUNT)?,
            &w,
        )?;
        ctx("SEED", dev.seed(seed))?;
        let w = want(alg, seed, 64, COUNT)?;
        check_seq(
            &format!("{alg} seed {seed:#x} RAND64"),
            &read_values(&dev, 64, COUNT)?,
            &w,
        )?;
    }
    Ok(())
}

fn algo_switch_reseeds(c: &Ctx) -> TestResult {
    // ALGO write = select + reseed with the latched seed.
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for alg in Algorithm::DETERMINISTIC {
        ctx("SEED 0xdeadbeef", dev.seed(0xdead_beef))?;
        read_values(&dev, 32, 3)?;
        ctx(&format!("SET_ALGO {alg}"), dev.set_algorithm(alg))?;
        let w = want(alg, 0xdead_beef, 32, 5)?;
        check_seq(
            &format!("after SEED 0xdeadbeef, SET_ALGO {alg}"),
            &read_values(&dev, 32, 5)?,
            &w,
        )?;
    }
    Ok(())
}

fn algo_get_roundtrip(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for alg in Algorithm::ALL {
        ctx(&format!("SET_ALGO {alg}"), dev.set_algorithm(alg))?;
        let id = ctx("GET_ALGO", dev.algorithm_id())?;
        if id != alg.id() {
            return Err(format!("SET_ALGO {} then GET_ALGO gave {id}", alg.id()));
        }
        let info = ctx("INFO", dev.info())?;
        if info.algo != alg.id() {
            return Err(format!(
                "SET_ALGO {} then INFO.algo is {}",
                alg.id(),
                info.algo
            ));
        }
        // Every algorithm, including the non-deterministic one, must produce values.
        ctx("RAND", dev.next_u32())?;
        ctx("RAND64", dev.next_u64())?;
    }
    Ok(())
}

fn algo_set_invalid(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    start(&dev, Algorithm::Glibc, 0x42)?;
    let w = want(Algorithm::Glibc, 0x42, 32, 10)?;
    check_seq("before", &read_values(&dev, 32, 5)?, &w)?;
    for bad in [4u32, 5, 31, 32, 0xffff_ffff] {
        let mut v = bad;
        let r = raw_ioctl(&dev, uapi::SET_ALGO, (&raw mut v).cast());
        expect_errno(&format!("SET_ALGO {bad:#x}"), r, libc::EINVAL)?;
    }
    let id = ctx("GET_ALGO", dev.algorithm_id())?;
    if id != Algorithm::Glibc.id() {
        return Err(format!("rejected SET_ALGO changed the algorithm to {id}"));
    }
    // A rejected write must not reseed either: the sequence just continues.
    check_seq(
        "sequence across rejected SET_ALGO",
        &[w[..5].to_vec(), read_values(&dev, 32, 5)?].concat(),
        &w,
    )
}

fn info(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let info = ctx("INFO", dev.info())?;
    let mut errs = Vec::new();
    // Literals from the spec (spec/my-rng.rst), not from the device.
    if info.id != 0x4d52_0200 {
        errs.push(format!("id {:#x} != 0x4d520200", info.id));
    }
    if info.features != 0x7 {
        errs.push(format!("features {:#x} != 0x7", info.features));
    }
    if info.algos != 0xf {
        errs.push(format!("algos {:#x} != 0xf", info.algos));
    }
    if info.abi_version != Some((2, 0)) {
        errs.push(format!("abi version {:?} != 2.0", info.abi_version));
    }
    let id = ctx("GET_ALGO", dev.algorithm_id())?;
    if info.algo != id {
        errs.push(format!("INFO.algo {} != GET_ALGO {id}", info.algo));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

// ---------------------------------------------------------------- read()

fn le_bytes(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_vectors(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for alg in Algorithm::DETERMINISTIC {
        for seed in SEEDS {
            start(&dev, alg, seed)?;
            let mut buf = vec![0u8; 8 * COUNT];
            ctx("read", dev.fill_bytes(&mut buf))?;
            let w = le_bytes(&want(alg, seed, 64, COUNT)?);
            if let Some(i) = buf.iter().zip(&w).position(|(a, b)| a != b) {
                return Err(format!(
                    "{alg} seed {seed:#x}: read() byte {i} (value #{}) is {:#04x}, expected {:#04x}",
                    i / 8,
                    buf[i],
                    w[i]
                ));
            }
        }
        // read() and RAND64 draw from the same stream.
        start(&dev, alg, 0x42)?;
        let mut buf = [0u8; 16];
        ctx("read", dev.fill_bytes(&mut buf))?;
        let w = want(alg, 0x42, 64, 3)?;
        check_seq(
            &format!("{alg}: RAND64 after a 16-byte read"),
            &[
                u64::from_le_bytes(buf[..8].try_into().unwrap()),
                u64::from_le_bytes(buf[8..].try_into().unwrap()),
                ctx("RAND64", dev.next_u64())?,
            ],
            &w,
        )?;
    }
    Ok(())
}

fn read_1mib(c: &Ctx) -> TestResult {
    const TOTAL: usize = 1 << 20;
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    start(&dev, Algorithm::Xoshiro256pp, 1)?;
    let mut buf = vec![0u8; TOTAL];
    let mut done = 0;
    let mut calls = 0;
    while done < TOTAL {
        let n = ctx("read", dev.read(&mut buf[done..]))?;
        calls += 1;
        if n == 0 {
            return Err(format!("read returned 0 (EOF) after {done} bytes"));
        }
        // The design bounds one call to 64 KiB.
        if n > 64 * 1024 {
            return Err(format!("one read returned {n} bytes, more than 64 KiB"));
        }
        done += n;
    }
    // Spot-check the start of the stream.
    let w = le_bytes(&want(Algorithm::Xoshiro256pp, 1, 64, COUNT)?);
    if buf[..w.len()] != w[..] {
        return Err("first 8000 bytes differ from the xoshiro256pp seed 1 vector".into());
    }
    if calls < TOTAL / (64 * 1024) {
        return Err(format!("{calls} calls for 1 MiB"));
    }
    Ok(())
}

fn read_3_bytes(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    start(&dev, Algorithm::Xoshiro256pp, 0x42)?;
    let mut buf = [0u8; 3];
    let n = ctx("read(3)", dev.read(&mut buf))?;
    if n != 3 {
        return Err(format!("read of 3 bytes returned {n}"));
    }
    let w = want(Algorithm::Xoshiro256pp, 0x42, 64, 1)?[0].to_le_bytes();
    if buf != w[..3] {
        return Err(format!(
            "3 bytes {buf:02x?} are not the first bytes of the first RNG64 value {:02x?}",
            &w[..3]
        ));
    }
    Ok(())
}

fn read_efault(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    for (what, p) in bad_pointers()? {
        // SAFETY: the kernel must reject the bad buffer; nothing is written in user space.
        let r = unsafe { libc::read(dev.as_raw_fd(), p, 64) };
        let r = if r < 0 { Err(errno()) } else { Ok(r) };
        expect_errno(&format!("read() into {what} buffer"), r, libc::EFAULT)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- SEED_READ

fn seed_read_raw(dev: &Device, seed: u32, count: u32, buf: u64) -> Result<i32, i32> {
    let mut arg = RawSeedRead { seed, count, buf };
    raw_ioctl(dev, uapi::SEED_READ, (&raw mut arg).cast())
}

fn seed_read_vectors(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for alg in Algorithm::DETERMINISTIC {
        ctx(&format!("SET_ALGO {alg}"), dev.set_algorithm(alg))?;
        for seed in SEEDS {
            let mut out = vec![0u32; COUNT];
            ctx("SEED_READ", dev.seed_read(seed, &mut out))?;
            let got: Vec<u64> = out.iter().map(|&v| u64::from(v)).collect();
            check_seq(
                &format!("{alg} SEED_READ seed {seed:#x}"),
                &got,
                &want(alg, seed, 32, COUNT)?,
            )?;
        }
        // Largest count accepted; afterwards RAND continues the same sequence.
        let mut out = vec![0u32; uapi::SEED_READ_MAX as usize];
        ctx("SEED_READ count 4096", dev.seed_read(0x42, &mut out))?;
        let got: Vec<u64> = out[..COUNT].iter().map(|&v| u64::from(v)).collect();
        check_seq(
            &format!("{alg} SEED_READ 4096"),
            &got,
            &want(alg, 0x42, 32, COUNT)?,
        )?;
        let mut out = [0u32; 10];
        ctx("SEED_READ count 10", dev.seed_read(1, &mut out))?;
        let next = ctx("RAND", dev.next_u32())?;
        let w = want(alg, 1, 32, 11)?;
        if u64::from(next) != w[10] {
            return Err(format!(
                "{alg}: RAND after SEED_READ(seed 1, count 10) gave {next}, expected value #10 {}",
                w[10]
            ));
        }
    }
    Ok(())
}

fn seed_read_einval(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    start(&dev, Algorithm::Glibc, 0x42)?;
    let w = want(Algorithm::Glibc, 0x42, 32, 10)?;
    check_seq("before", &read_values(&dev, 32, 5)?, &w)?;
    let mut buf = vec![0u32; 8192];
    let p = buf.as_mut_ptr() as u64;
    for count in [0u32, 4097, 8192, u32::MAX] {
        expect_errno(
            &format!("SEED_READ count {count}"),
            seed_read_raw(&dev, 7, count, p),
            libc::EINVAL,
        )?;
    }
    // Rejected calls must not reseed: the sequence just continues.
    check_seq(
        "sequence across rejected SEED_READ",
        &[w[..5].to_vec(), read_values(&dev, 32, 5)?].concat(),
        &w,
    )
}

fn seed_read_efault(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    for (what, p) in bad_pointers()? {
        expect_errno(
            &format!("SEED_READ with {what} buf"),
            seed_read_raw(&dev, 1, 10, p as u64),
            libc::EFAULT,
        )?;
        expect_errno(
            &format!("SEED_READ with {what} argument pointer"),
            raw_ioctl(&dev, uapi::SEED_READ, p),
            libc::EFAULT,
        )?;
    }
    Ok(())
}

fn seed_read_concurrent(c: &Ctx) -> TestResult {
    const THREADS: u32 = 4;
    const ITERS: u32 = 100;
    let shared = Arc::new(open(&c.dev0)?);
    let _restore_dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&_restore_dev);
    ctx("SET_ALGO glibc", shared.set_algorithm(Algorithm::Glibc))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<String, String>>();

    for i in 0..THREADS {
        let seed = SEEDS[i as usize % SEEDS.len()];
        let w = expected(Algorithm::Glibc, seed, 32)?;
        // Half the threads share one file, half have their own: atomicity is per device.
        let dev = if i % 2 == 0 {
            shared.clone()
        } else {
            Arc::new(open(&c.dev0)?)
        };
        let tx = tx.clone();
        thread::spawn(move || {
            let mut out = vec![0u32; w.len()];
            for it in 0..ITERS {
                if let Err(e) = dev.seed_read(seed, &mut out) {
                    let _ = tx.send(Err(format!("thread {i} iteration {it}: {e}")));
                    return;
                }
                if let Some(k) = out
                    .iter()
                    .zip(w.iter())
                    .position(|(g, w)| u64::from(*g) != *w)
                {
                    let _ = tx.send(Err(format!(
                        "thread {i} (seed {seed:#x}) iteration {it}: value #{k} is {}, expected {}: not atomic",
                        out[k], w[k]
                    )));
                    return;
                }
            }
            let _ = tx.send(Ok(format!("thread {i} done")));
        });
    }
    // A disturber reseeding and drawing through the classic ioctls and read() in between.
    {
        let dev = Arc::new(open(&c.dev0)?);
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut s = 0u32;
            while !stop.load(Ordering::Relaxed) {
                s = s.wrapping_add(0x9e37_79b9);
                if dev.seed(s).is_err()
                    || dev.next_u32().is_err()
                    || dev.next_u64().is_err()
                    || dev.read(&mut buf).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut errs = Vec::new();
    let mut done = 0;
    while done < THREADS {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(_)) => done += 1,
            Ok(Err(e)) => {
                done += 1;
                errs.push(e);
            }
            Err(_) => {
                errs.push(format!(
                    "{} of {THREADS} threads did not finish within 45 s (deadlock?)",
                    THREADS - done
                ));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

// ---------------------------------------------------------------- bad input

fn bad_pointers_efault(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let reqs = [
        ("RAND", uapi::RAND),
        ("SEED", uapi::SEED),
        ("RAND64", uapi::RAND64),
        ("INFO", uapi::INFO),
        ("GET_ALGO", uapi::GET_ALGO),
        ("SET_ALGO", uapi::SET_ALGO),
    ];
    for (name, req) in reqs {
        for (what, p) in bad_pointers()? {
            expect_errno(
                &format!("{name} with {what} pointer"),
                raw_ioctl(&dev, req, p),
                libc::EFAULT,
            )?;
        }
    }
    // Writes through bad pointers must have no effect.
    start(&dev, Algorithm::Glibc, 0x42)?;
    let w = want(Algorithm::Glibc, 0x42, 32, 10)?;
    check_seq("before", &read_values(&dev, 32, 5)?, &w)?;
    for (_, p) in bad_pointers()? {
        let _ = raw_ioctl(&dev, uapi::SEED, p);
        let _ = raw_ioctl(&dev, uapi::SET_ALGO, p);
    }
    if ctx("GET_ALGO", dev.algorithm_id())? != Algorithm::Glibc.id() {
        return Err("SET_ALGO with a bad pointer changed the algorithm".into());
    }
    check_seq(
        "sequence across SEED/SET_ALGO with bad pointers",
        &[w[..5].to_vec(), read_values(&dev, 32, 5)?].concat(),
        &w,
    )
}

fn unknown_ioctls(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let unknown = [
        ("_IOR('q', 99, u32)", ior::<u32>(b'q', 99)),
        ("_IO('x', 1)", io(b'x', 1)),
        ("_IO('q', 1)", io(b'q', 1)),
        (
            "_IOR('q', 1, u64) (RAND with the wrong size)",
            ior::<u64>(b'q', 1),
        ),
        ("_IOR('q', 6, u32)", ior::<u32>(b'q', 6)),
    ];
    for (name, req) in unknown {
        // A valid buffer, so that only the request number can be the problem.
        let mut buf = [0u64; 8];
        expect_errno(
            &format!("ioctl {name} = {req:#x}"),
            raw_ioctl(&dev, req, buf.as_mut_ptr().cast::<c_void>()),
            libc::ENOTTY,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- hw_random

const HWRNG: &str = "/dev/hwrng";
const HWRNG_SYSFS: &str = "class/misc/hw_random";

fn my_rng_sources(sys: &Sysfs) -> Result<Vec<String>, String> {
    let p = sys.root().join(HWRNG_SYSFS).join("rng_available");
    let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .split_whitespace()
        .filter(|s| s.contains("my_rng"))
        .map(str::to_string)
        .collect())
}

fn hwrng_present(c: &Ctx) -> TestResult {
    let md = fs::metadata(HWRNG).map_err(|e| format!("{HWRNG}: {e}"))?;
    if !md.file_type().is_char_device() {
        return Err(format!("{HWRNG} is not a character device"));
    }
    let sources = my_rng_sources(&c.sys)?;
    let devices = [&c.dev0, &c.dev1].iter().filter(|p| p.exists()).count();
    if sources.is_empty() || sources.len() < devices {
        return Err(format!(
            "rng_available lists {} my_rng source(s) {sources:?} for {devices} device node(s)",
            sources.len()
        ));
    }
    Ok(())
}

/// Read `n` bytes from /dev/hwrng, giving up after 10 s.
fn read_hwrng(n: usize) -> Result<Vec<u8>, String> {
    with_timeout("hwrng read", Duration::from_secs(10), move || {
        let mut f = File::open(HWRNG).map_err(|e| format!("{HWRNG}: {e}"))?;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf)
            .map_err(|e| format!("reading {n} bytes from {HWRNG}: {e}"))?;
        Ok(buf)
    })?
}

fn hwrng_read(_c: &Ctx) -> TestResult {
    let buf = read_hwrng(4096)?;
    if buf.iter().all(|&b| b == 0) {
        return Err("4096 bytes from /dev/hwrng are all zero".into());
    }
    Ok(())
}

fn hwrng_does_not_disturb(c: &Ctx) -> TestResult {
    let current_file = c.sys.root().join(HWRNG_SYSFS).join("rng_current");
    let original = fs::read_to_string(&current_file)
        .map_err(|e| format!("{}: {e}", current_file.display()))?;
    let sources = my_rng_sources(&c.sys)?;
    if sources.is_empty() {
        return Err("no my_rng hw_random source".into());
    }
    let mut devs = vec![open(&c.dev0)?];
    if c.dev1.exists() {
        devs.push(open(&c.dev1)?);
    }
    let _restore: Vec<_> = devs.iter().map(RestoreGlibc).collect();
    let w = want(Algorithm::Glibc, 0x42, 32, 10)?;
    for d in &devs {
        start(d, Algorithm::Glibc, 0x42)?;
        check_seq("before", &read_values(d, 32, 5)?, &w)?;
    }
    // Read through every my_rng source in turn, so whichever is the current one is covered.
    let mut result = Ok(());
    for src in &sources {
        if let Err(e) = fs::write(&current_file, src) {
            result = Err(format!("selecting {src} in rng_current: {e}"));
            break;
        }
        if let Err(e) = read_hwrng(4096) {
            result = Err(format!("with {src}: {e}"));
            break;
        }
    }
    let _ = fs::write(&current_file, original.trim());
    result?;
    for (i, d) in devs.iter().enumerate() {
        check_seq(
            &format!("device {i} sequence across hwrng reads"),
            &[w[..5].to_vec(), read_values(d, 32, 5)?].concat(),
            &w,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- two devices

fn two_devices_present(c: &Ctx) -> TestResult {
    let mut rdevs = Vec::new();
    let mut addrs = Vec::new();
    for p in [&c.dev0, &c.dev1] {
        let md = fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if !md.file_type().is_char_device() {
            return Err(format!("{} is not a character device", p.display()));
        }
        rdevs.push(md.rdev());
        let pci = c
            .sys
            .pci_device(&c.sys.misc_dir_for_node(p))
            .map_err(|e| format!("PCI device of {}: {e}", p.display()))?;
        addrs.push(pci.address);
        open(p)?;
    }
    if rdevs[0] == rdevs[1] {
        return Err("both nodes have the same device number".into());
    }
    if addrs[0] == addrs[1] {
        return Err(format!("both nodes belong to PCI device {}", addrs[0]));
    }
    Ok(())
}

fn two_devices_independent(c: &Ctx) -> TestResult {
    let a = open(&c.dev0)?;
    let b = open(&c.dev1)?;
    let _ra = RestoreGlibc(&a);
    let _rb = RestoreGlibc(&b);

    // Same algorithm, different seeds, reads interleaved one by one.
    start(&a, Algorithm::Glibc, 0)?;
    start(&b, Algorithm::Glibc, 0x42)?;
    let wa = want(Algorithm::Glibc, 0, 32, COUNT)?;
    let wb = want(Algorithm::Glibc, 0x42, 32, COUNT)?;
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for i in 0..COUNT {
        ga.push(u64::from(ctx("RAND dev0", a.next_u32())?));
        gb.push(u64::from(ctx("RAND dev1", b.next_u32())?));
        // Reseeding one device mid-way must not affect the other.
        if i == COUNT / 2 {
            ctx("SEED dev0", a.seed(0))?;
        }
    }
    let mut wa2 = wa[..=COUNT / 2].to_vec();
    wa2.extend_from_slice(&wa[..COUNT - COUNT / 2 - 1]);
    check_seq("dev0 (glibc seed 0, reseeded half-way)", &ga, &wa2)?;
    check_seq("dev1 (glibc seed 0x42)", &gb, &wb)?;

    // Different algorithms at once.
    start(&a, Algorithm::Xoshiro256pp, 1)?;
    start(&b, Algorithm::ChaCha20, 0xdead_beef)?;
    let wa = want(Algorithm::Xoshiro256pp, 1, 64, COUNT)?;
    let wb = want(Algorithm::ChaCha20, 0xdead_beef, 64, COUNT)?;
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for _ in 0..COUNT {
        gb.push(ctx("RAND64 dev1", b.next_u64())?);
        ga.push(ctx("RAND64 dev0", a.next_u64())?);
    }
    check_seq("dev0 (xoshiro256pp seed 1)", &ga, &wa)?;
    check_seq("dev1 (chacha20 seed 0xdeadbeef)", &gb, &wb)
}

// ---------------------------------------------------------------- unbind while open

fn unbind_while_open(c: &Ctx) -> TestResult {
    let misc = c.sys.misc_dir_for_node(&c.dev1);
    let pci = c
        .sys
        .pci_device(&misc)
        .map_err(|e| format!("PCI device of {}: {e}", c.dev1.display()))?;
    let driver = pci
        .driver
        .clone()
        .ok_or_else(|| format!("{} is bound to no driver", pci.address))?;
    let unbind = c.sys.pci_driver_file(&driver, "unbind");
    let bind = c.sys.pci_driver_file(&driver, "bind");
    let addr = pci.address.clone();

    let dev = Arc::new(open(&c.dev1)?);
    glibc_starts("before unbind", &dev, 0)?;

    // Reader: RAND ioctls until one fails, reporting the errno.
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Option<i32>>();
    {
        let (dev, count, stop) = (dev.clone(), count.clone(), stop.clone());
        thread::spawn(move || loop {
            if stop.load(Ordering::Relaxed) {
                let _ = tx.send(None);
                return;
            }
            match dev.next_u32() {
                Ok(_) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let _ = tx.send(Some(e.errno().unwrap_or(-1)));
                    return;
                }
            }
        });
    }
    if !wait_for(Duration::from_secs(5), || {
        count.load(Ordering::Relaxed) >= 100
    }) {
        stop.store(true, Ordering::Relaxed);
        return Err(format!(
            "reader made only {} RAND calls in 5 s before unbind",
            count.load(Ordering::Relaxed)
        ));
    }

    let (u, a) = (unbind.clone(), addr.clone());
    match with_timeout("unbind", Duration::from_secs(30), move || fs::write(&u, &a)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            stop.store(true, Ordering::Relaxed);
            return Err(format!("writing {addr} to {}: {e}", unbind.display()));
        }
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(format!(
                "{e} (driver remove blocks while the file is open?)"
            ));
        }
    }

    let mut errs = Vec::new();
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(e)) if e == libc::ENODEV => {}
        Ok(Some(e)) => errs.push(format!("reader got {} instead of ENODEV", errno_name(e))),
        Ok(None) => errs.push("reader stopped without an error".into()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            stop.store(true, Ordering::Relaxed);
            errs.push(
                "reader still running 10 s after unbind: RAND never failed with ENODEV (or hung)"
                    .into(),
            );
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => errs.push("reader thread panicked".into()),
    }
    // The stale file keeps answering ENODEV, without touching the (gone) device.
    let e = dev.next_u32().err().and_then(|e| e.errno());
    if e != Some(libc::ENODEV) {
        errs.push(format!(
            "RAND on the open file after unbind: {e:?}, expected ENODEV"
        ));
    }
    let mut buf = [0u8; 16];
    let e = dev.read(&mut buf).err().and_then(|e| e.errno());
    if e != Some(libc::ENODEV) {
        errs.push(format!(
            "read() on the open file after unbind: {e:?}, expected ENODEV"
        ));
    }
    drop(dev); // close (the reader has exited or been told to stop)

    let (b, a) = (bind.clone(), addr.clone());
    match with_timeout("bind", Duration::from_secs(30), move || fs::write(&b, &a)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            errs.push(format!("writing {addr} to {}: {e}", bind.display()));
            return Err(errs.join("; "));
        }
        Err(e) => {
            errs.push(e);
            return Err(errs.join("; "));
        }
    }

    // The node comes back (possibly under another name if minors were reshuffled).
    let mut node = None;
    let found = wait_for(Duration::from_secs(10), || {
        node = c
            .sys
            .misc_names_for_pci(&addr)
            .unwrap_or_default()
            .into_iter()
            .map(|n| Path::new("/dev").join(n))
            .find(|p| p.exists());
        node.is_some()
    });
    let node = match (found, node) {
        (true, Some(n)) => n,
        _ => {
            errs.push(format!("no my_rng device node for {addr} 10 s after bind"));
            return Err(errs.join("; "));
        }
    };
    let dev = open(&node)?;
    let _restore = RestoreGlibc(&dev);
    if let Err(e) = glibc_starts(&format!("{} after rebind", node.display()), &dev, 0x42) {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

// ---------------------------------------------------------------- the loadable module

/// Where the guest's initramfs keeps the out-of-tree build of the driver.
pub const MODULE_PATH: &str = "/lib/modules/my_rng.ko";
const MODULE_SYSFS: &str = "module/my_rng";

/// Runs a busybox module tool; Ok(true) if it exited 0.
fn modtool(args: &[&str]) -> Result<bool, String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    Ok(out.status.success())
}

/// Tests that need the driver loaded as my_rng.ko (not built in): `my-rng-e2e --module`.
pub fn module_tests() -> Vec<Test> {
    vec![t("module-unload-reload", module_unload_reload)]
}

/// An open file pins the module; once closed, rmmod removes every node, and a new insmod
/// brings the devices back with their v1 behaviour.
fn module_unload_reload(c: &Ctx) -> TestResult {
    let refcnt = c.sys.root().join(MODULE_SYSFS).join("refcnt");
    if !refcnt.exists() {
        return Err(format!(
            "{} missing: my_rng is not a loaded module",
            refcnt.display()
        ));
    }
    let dev = open(&c.dev0)?;
    if modtool(&["rmmod", "my_rng"])? {
        return Err("rmmod succeeded while a file was open".into());
    }
    glibc_starts("open file after refused rmmod", &dev, 0)?;
    drop(dev);
    if !modtool(&["rmmod", "my_rng"])? {
        return Err("rmmod failed with no file open".into());
    }
    let gone = wait_for(Duration::from_secs(10), || {
        !c.dev0.exists() && !c.dev1.exists() && !refcnt.exists()
    });
    if !gone {
        return Err("device nodes or the module still present 10 s after rmmod".into());
    }
    if !modtool(&["insmod", MODULE_PATH])? {
        return Err(format!("insmod {MODULE_PATH} failed after rmmod"));
    }
    if !wait_for(Duration::from_secs(10), || {
        c.dev0.exists() && c.dev1.exists()
    }) {
        return Err("device nodes not back 10 s after insmod".into());
    }
    for p in [&c.dev0, &c.dev1] {
        glibc_starts(&format!("{} after reload", p.display()), &open(p)?, 0x42)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- kernel log

fn kmsg_clean(_c: &Ctx) -> TestResult {
    const BAD: [&str; 5] = [
        "WARNING:",
        "BUG:",
        "Oops",
        "general protection fault",
        "UBSAN:",
    ];
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| format!("/dev/kmsg: {e}"))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut hits = Vec::new();
    let mut records = 0u64;
    // One record per read(); EAGAIN marks the end of the buffer.
    while records < 1_000_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                records += 1;
                let rec = String::from_utf8_lossy(&buf[..n]);
                let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
                let line = msg.lines().next().unwrap_or("");
                if BAD.iter().any(|b| line.contains(b)) {
                    hits.push(line.trim().to_string());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten while reading; carry on with the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("/dev/kmsg: {e}")),
        }
    }
    if records == 0 {
        return Err("/dev/kmsg returned no records".into());
    }
    if hits.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} suspicious kernel log line(s), first: {}",
            hits.len(),
            hits.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_order_is_fixed() {
        let names: Vec<String> = all().into_iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.last().map(String::as_str), Some("kmsg-clean"));
        assert_eq!(names[names.len() - 2], "unbind-while-open");
        assert!(names.contains(&"algo-vectors-chacha20".to_string()));
    }

    #[test]
    fn info_struct_is_the_c_layout() {
        assert_eq!(std::mem::size_of::<uapi::RawInfo>(), 16);
    }
}
