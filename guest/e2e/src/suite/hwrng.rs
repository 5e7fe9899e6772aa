//! The hw_random sources (/dev/hwrng).

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use my_rng::sysfs::Sysfs;
use my_rng::Algorithm;

use super::{open, want, Ctx};
use crate::util::*;

const HWRNG: &str = "/dev/hwrng";
const HWRNG_SYSFS: &str = "class/misc/hw_random";

pub(super) fn my_rng_sources(sys: &Sysfs) -> Result<Vec<String>, String> {
    let p = sys.root().join(HWRNG_SYSFS).join("rng_available");
    let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(text
        .split_whitespace()
        .filter(|s| s.contains("my_rng"))
        .map(str::to_string)
        .collect())
}

pub(super) fn hwrng_present(c: &Ctx) -> TestResult {
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
pub(super) fn read_hwrng(n: usize) -> Result<Vec<u8>, String> {
    with_timeout("hwrng read", Duration::from_secs(10), move || {
        let mut f = File::open(HWRNG).map_err(|e| format!("{HWRNG}: {e}"))?;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf)
            .map_err(|e| format!("reading {n} bytes from {HWRNG}: {e}"))?;
        Ok(buf)
    })?
}

pub(super) fn hwrng_read(_c: &Ctx) -> TestResult {
    let buf = read_hwrng(4096)?;
    if buf.iter().all(|&b| b == 0) {
        return Err("4096 bytes from /dev/hwrng are all zero".into());
    }
    Ok(())
}

pub(super) fn hwrng_does_not_disturb(c: &Ctx) -> TestResult {
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
