//! read() of the device node.

use std::os::fd::AsRawFd;

use my_rng::Algorithm;
use my_rng_spec::vectors::{COUNT, SEEDS};

use super::dma::PathAttr;
use super::{open, want, Ctx};
use crate::util::*;

pub(super) fn le_bytes(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(super) fn read_vectors(c: &Ctx) -> TestResult {
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

pub(super) fn read_1mib(c: &Ctx) -> TestResult {
    const TOTAL: usize = 1 << 20;
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    // The 64 KiB bound is the MMIO path's: pin it on a device with DMA (whose paths have
    // their own bound, see the dma tests).
    let _path = if ctx("INFO", dev.info())?.has_feature(my_rng::regs::FEAT_DMA) {
        let rp = PathAttr::read_path(c);
        rp.set("mmio")?;
        Some(rp)
    } else {
        None
    };
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

pub(super) fn read_3_bytes(c: &Ctx) -> TestResult {
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

pub(super) fn read_efault(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    for (what, p) in bad_pointers()? {
        // SAFETY: the kernel must reject the bad buffer; nothing is written in user space.
        let r = unsafe { libc::read(dev.as_raw_fd(), p, 64) };
        let r = if r < 0 { Err(errno()) } else { Ok(r) };
        expect_errno(&format!("read() into {what} buffer"), r, libc::EFAULT)?;
    }
    Ok(())
}
