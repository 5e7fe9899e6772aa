//! SEED_READ: vectors, argument checks, and atomicity under concurrent users.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use my_rng::uapi::{self, RawSeedRead};
use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::{COUNT, SEEDS};

use super::{open, want, Ctx};
use crate::util::*;

pub(super) fn seed_read_raw(dev: &Device, seed: u32, count: u32, buf: u64) -> Result<i32, i32> {
    let mut arg = RawSeedRead { seed, count, buf };
    raw_ioctl(dev, uapi::SEED_READ, (&raw mut arg).cast())
}

pub(super) fn seed_read_vectors(c: &Ctx) -> TestResult {
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

pub(super) fn seed_read_einval(c: &Ctx) -> TestResult {
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

pub(super) fn seed_read_efault(c: &Ctx) -> TestResult {
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

pub(super) fn seed_read_concurrent(c: &Ctx) -> TestResult {
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
    // It reports its end, so that none of its calls can land in the next test.
    let (disturber_done, disturber_end) = mpsc::channel::<()>();
    {
        let dev = Arc::new(open(&c.dev0)?);
        let stop = stop.clone();
        thread::spawn(move || {
            let _done = Signal(disturber_done);
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
    if disturber_end.recv_timeout(Duration::from_secs(10)) == Err(mpsc::RecvTimeoutError::Timeout) {
        errs.push("the disturbing thread did not stop within 10 s".into());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}
