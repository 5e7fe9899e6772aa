//! Bad input: bad user pointers (EFAULT) and unknown ioctls (ENOTTY).

use std::ffi::c_void;

use my_rng::uapi;
use my_rng::Algorithm;

use super::{open, want, Ctx};
use crate::util::*;

pub(super) fn bad_pointers_efault(c: &Ctx) -> TestResult {
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

pub(super) fn unknown_ioctls(c: &Ctx) -> TestResult {
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
