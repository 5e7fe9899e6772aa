//! The kernel log after everything else.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;

use super::Ctx;
use crate::util::*;

pub(super) fn kmsg_clean(_c: &Ctx) -> TestResult {
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
