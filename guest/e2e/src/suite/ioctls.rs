//! The classic (seed) ioctls and the algorithm ioctls, checked against the vectors.

use my_rng::uapi;
use my_rng::Algorithm;
use my_rng_spec::vectors::{COUNT, SEEDS};

use super::{open, want, Ctx};
use crate::util::*;

pub(super) fn classic_sequence(c: &Ctx, seed: u32) -> TestResult {
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

pub(super) fn classic_reseed_replays(c: &Ctx) -> TestResult {
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

pub(super) fn algo_vectors(c: &Ctx, alg: Algorithm) -> TestResult {
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

pub(super) fn algo_switch_reseeds(c: &Ctx) -> TestResult {
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

pub(super) fn algo_get_roundtrip(c: &Ctx) -> TestResult {
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

pub(super) fn algo_set_invalid(c: &Ctx) -> TestResult {
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

pub(super) fn info(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let info = ctx("INFO", dev.info())?;
    let mut errs = Vec::new();
    // Literals from the spec (spec/my-rng.rst), not from the device. With --expect-dma the
    // device must be ABI 2.1; without, it may be either version, but all of it that one.
    const V2_0: (u32, u32, (u32, u32)) = (0x4d52_0200, 0x7, (2, 0));
    const V2_1: (u32, u32, (u32, u32)) = (0x4d52_0201, 0x1f, (2, 1));
    let (want_id, want_features, want_abi) = if c.expect_dma || info.id == V2_1.0 {
        V2_1
    } else {
        V2_0
    };
    if info.id != want_id {
        errs.push(format!("id {:#x} != {want_id:#x}", info.id));
    }
    if info.features != want_features {
        errs.push(format!(
            "features {:#x} != {want_features:#x}",
            info.features
        ));
    }
    if info.algos != 0xf {
        errs.push(format!("algos {:#x} != 0xf", info.algos));
    }
    if info.abi_version != Some(want_abi) {
        errs.push(format!(
            "abi version {:?} != {}.{}",
            info.abi_version, want_abi.0, want_abi.1
        ));
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
