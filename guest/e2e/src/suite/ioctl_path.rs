//! The `ioctl_path` attribute beside `read_path` (`auto`, `stash`, `mmio`): where RAND, RAND64
//! and SEED_READ take their values. Its values, EINVAL for anything else (and for `stash` on a
//! device without DMA), writes for root only; and whatever it is switched to, whenever, the
//! calls keep returning the one sequence (alone, in random orders, and beside other users).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;

use my_rng::Algorithm;

use super::dma::PathAttr;
use super::interleave::{self, Files};
use super::stash::{random_mix, Call, Runner};
use super::{open, Ctx};
use crate::util::*;

/// The values the attribute takes; `auto` is the default.
const VALUES: [&str; 3] = ["auto", "stash", "mmio"];

pub(super) fn attribute(c: &Ctx) -> TestResult {
    let dma = ctx("INFO", open(&c.dev0)?.info())?.has_feature(my_rng::regs::FEAT_DMA);
    let attr = PathAttr::ioctl_path(c);
    let first = attr.get()?;
    if first != "auto" {
        return Err(format!(
            "ioctl_path is {first:?} before any test, not \"auto\""
        ));
    }
    for v in VALUES.iter().rev() {
        if *v == "stash" && !dma {
            expect_errno("writing \"stash\" without DMA", attr.write(v), libc::EINVAL)?;
            continue;
        }
        attr.set(v)?;
        let now = attr.get()?;
        if now != *v {
            return Err(format!("ioctl_path reads {now:?} after writing {v:?}"));
        }
    }
    attr.set("mmio")?;
    for junk in [
        "junk",
        "stash2",
        "mmio stash",
        "bounce",
        "zerocopy",
        "dma",
        "0",
    ] {
        expect_errno(
            &format!("writing {junk:?} to ioctl_path"),
            attr.write(junk),
            libc::EINVAL,
        )?;
        let now = attr.get()?;
        if now != "mmio" {
            return Err(format!(
                "rejected {junk:?} changed ioctl_path from \"mmio\" to {now:?}"
            ));
        }
    }
    // A newline, as `echo` writes it, is accepted.
    let last = if dma { "stash" } else { "auto" };
    attr.set(&format!("{last}\n"))?;
    match attr.get()? {
        now if now == last => Ok(()),
        other => Err(format!(
            "ioctl_path is {other:?} after writing \"{last}\\n\""
        )),
    }
}

/// Both path attributes are writable by root only: mode 0644, owned by root (what the VFS
/// checks before a write reaches the driver). An unprivileged write cannot be tried here: the
/// guest kernel is built without multi-user support (CONFIG_MULTIUSER off, setresuid() is
/// ENOSYS), so every process is root.
pub(super) fn root_only(c: &Ctx) -> TestResult {
    for name in ["ioctl_path", "read_path"] {
        let attr = PathAttr::named(c, name);
        let file: &Path = attr.file();
        let md = fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if md.mode() & 0o7777 != 0o644 || md.uid() != 0 || md.gid() != 0 {
            return Err(format!(
                "{name}: mode {:o}, owner {}:{}: expected 644 and root:root",
                md.mode() & 0o7777,
                md.uid(),
                md.gid()
            ));
        }
    }
    Ok(())
}

/// `mmio` alone: the register path returns the vectors (RAND, RAND64, SEED_READ).
pub(super) fn mmio_vectors(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let _path = PathAttr::ioctl_path(c);
    for alg in Algorithm::DETERMINISTIC {
        let mut r = Runner::start(c, &dev, (alg, 0x42), true, format!("{alg} on mmio"))?;
        let mut v = vec![Call::IoctlPath("mmio")];
        v.extend(vec![Call::Rand; 1000]);
        v.push(Call::Seed(1));
        v.extend(vec![Call::Rand64; 500]);
        v.extend([
            Call::SeedRead(7, 1001),
            Call::Rand,
            Call::Rand64,
            Call::Read(5),
        ]);
        r.run(&v)?;
    }
    Ok(())
}

/// Switches between `stash`, `mmio` and `auto` at awkward places: with words left in the
/// stash (they are handed out first, then the registers take over), with one word left before
/// a RAND64 (the stash's word is its low half, a register read its high half), before and
/// after SEED_READ of odd and even counts, and around reads.
pub(super) fn switch_keeps_sequence(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let _path = PathAttr::ioctl_path(c);
    let paths = super::stash::read_paths(&dev)?;
    for alg in Algorithm::DETERMINISTIC {
        let mut r = Runner::start(c, &dev, (alg, 0xdead_beef), true, format!("{alg}"))?;
        let mut v = Vec::new();
        for (i, k) in [0, 1, 5, 62, 63, 64, 65, 200, 1000].into_iter().enumerate() {
            v.push(Call::ReadPath(paths[i % paths.len()]));
            v.extend([Call::IoctlPath("stash"), Call::Seed(k as u32)]);
            v.extend(vec![Call::Rand; k]);
            v.extend([Call::IoctlPath("mmio"), Call::Rand64, Call::Rand]);
            v.extend(vec![Call::Rand; 70]);
            v.extend([Call::IoctlPath("auto"), Call::Rand, Call::Rand64]);
            v.extend([Call::IoctlPath("mmio"), Call::Read(13), Call::Rand]);
            v.extend([Call::IoctlPath("stash"), Call::SeedRead(3, 2 * k + 1)]);
            v.extend([Call::IoctlPath("mmio"), Call::Rand64, Call::Rand]);
            v.extend([
                Call::SeedRead(4, k + 2),
                Call::IoctlPath("auto"),
                Call::Rand64,
            ]);
        }
        r.run(&v)?;
    }
    Ok(())
}

/// Random orders of every call with random switches of ioctl_path (and of read_path).
pub(super) fn mix(c: &Ctx, alg: Algorithm) -> TestResult {
    let _path = PathAttr::ioctl_path(c);
    let paths: &[&str] = if ctx("INFO", open(&c.dev0)?.info())?.has_feature(my_rng::regs::FEAT_DMA)
    {
        &VALUES
    } else {
        &["auto", "mmio"]
    };
    random_mix(c, alg, 0x10c7_1000 + u64::from(alg.id()), 1500, paths)
}

/// Concurrent users while another thread keeps switching ioctl_path: still one serial
/// interleaving of the stream.
pub(super) fn interleave_switching(c: &Ctx) -> TestResult {
    let attr = PathAttr::ioctl_path(c);
    let dma = ctx("INFO", open(&c.dev0)?.info())?.has_feature(my_rng::regs::FEAT_DMA);
    let flips: &[&str] = if dma {
        &["stash", "mmio", "auto", "mmio"]
    } else {
        &["auto", "mmio"]
    };
    let i = std::cell::Cell::new(0);
    let flip = || {
        i.set(i.get() + 1);
        attr.set(flips[i.get() % flips.len()])?;
        thread::sleep(std::time::Duration::from_millis(1));
        Ok(())
    };
    for (alg, files) in [
        (Algorithm::Glibc, Files::Shared),
        (Algorithm::Xoshiro256pp, Files::Own),
        (Algorithm::ChaCha20, Files::Own),
    ] {
        interleave::run(c, alg, files, "auto", &flip)?;
    }
    if i.get() < 10 {
        return Err(format!("ioctl_path was switched only {} times", i.get()));
    }
    Ok(())
}
