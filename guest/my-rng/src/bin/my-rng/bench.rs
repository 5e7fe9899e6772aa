//! `my-rng bench`: throughput of every way of getting numbers out of the device.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use my_rng::uapi::SEED_READ_MAX;

use crate::dev::RngDevice;
use crate::{CmdResult, Failure};

/// One interface under test: each call does one operation and returns the bytes it produced.
struct Case<'a> {
    name: String,
    op: Box<dyn FnMut() -> Result<usize, String> + 'a>,
}

const READ_SIZES: [usize; 5] = [8, 64, 512, 4096, 65536];
const HWRNG: &str = "/dev/hwrng";

fn cases(dev: &dyn RngDevice) -> Vec<Case<'_>> {
    let mut v: Vec<Case<'_>> = vec![
        Case {
            name: "ioctl RAND (4 B)".into(),
            op: Box::new(|| dev.next_u32().map(|_| 4).map_err(|e| e.to_string())),
        },
        Case {
            name: "ioctl RAND64 (8 B)".into(),
            op: Box::new(|| dev.next_u64().map(|_| 8).map_err(|e| e.to_string())),
        },
    ];
    let mut sr = vec![0u32; SEED_READ_MAX as usize];
    let mut seed = 0u32;
    v.push(Case {
        name: format!("ioctl SEED_READ ({} B)", sr.len() * 4),
        op: Box::new(move || {
            seed = seed.wrapping_add(1);
            dev.seed_read(seed, &mut sr)
                .map(|_| sr.len() * 4)
                .map_err(|e| e.to_string())
        }),
    });
    for size in READ_SIZES {
        let mut buf = vec![0u8; size];
        v.push(Case {
            name: format!("read() {size} B"),
            op: Box::new(move || dev.read(&mut buf).map_err(|e| e.to_string())),
        });
    }
    let mut hw: Option<File> = None;
    let mut buf = vec![0u8; 4096];
    v.push(Case {
        name: format!("{HWRNG} 4096 B"),
        op: Box::new(move || {
            if hw.is_none() {
                hw = Some(File::open(HWRNG).map_err(|e| format!("{HWRNG}: {e}"))?);
            }
            let f = hw.as_mut().expect("opened above");
            f.read(&mut buf).map_err(|e| format!("{HWRNG}: {e}"))
        }),
    });
    v
}

/// Progress on stderr, only when a person is watching it.
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, msg: &str) {
        if self.tty {
            // \r + erase-line keeps it to one line; results go to stdout.
            eprint!("\r\x1b[K{msg}");
            let _ = io::stderr().flush();
        }
    }

    fn clear(&self) {
        self.show("");
    }
}

pub fn run(dev: &dyn RngDevice, seconds: f64, out: &mut dyn Write) -> CmdResult {
    let budget = Duration::from_secs_f64(seconds);
    let progress = Progress {
        tty: io::stderr().is_terminal(),
    };
    let mut cases = cases(dev);
    let total = cases.len();
    writeln!(out, "{:<26} {:>14} {:>10}", "interface", "ops/s", "MB/s")?;
    let mut failures = 0;
    for (i, case) in cases.iter_mut().enumerate() {
        progress.show(&format!("bench [{}/{total}] {} ...", i + 1, case.name));
        let start = Instant::now();
        let (mut ops, mut bytes) = (0u64, 0u64);
        let mut error = None;
        let mut last_shown = start;
        loop {
            match (case.op)() {
                Ok(n) => {
                    ops += 1;
                    bytes += n as u64;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            let now = Instant::now();
            if now - start >= budget {
                break;
            }
            if progress.tty && now - last_shown >= Duration::from_millis(200) {
                last_shown = now;
                let pct = 100.0 * (now - start).as_secs_f64() / seconds;
                progress.show(&format!(
                    "bench [{}/{total}] {} {pct:3.0}%",
                    i + 1,
                    case.name
                ));
            }
        }
        let secs = start.elapsed().as_secs_f64();
        progress.clear();
        match error {
            Some(e) if ops == 0 => {
                failures += 1;
                writeln!(out, "{:<26} unavailable: {e}", case.name)?;
            }
            // An error after some successes still yields a rate, but say so.
            _ => {
                writeln!(
                    out,
                    "{:<26} {:>14.0} {:>10.2}{}",
                    case.name,
                    ops as f64 / secs,
                    bytes as f64 / secs / 1e6,
                    error.map_or(String::new(), |e| format!("  (stopped: {e})"))
                )?;
            }
        }
        out.flush()?;
    }
    writeln!(
        out,
        "note: SEED_READ reseeded the device; seed it again before relying on a sequence"
    )?;
    if failures == total {
        return Err(Failure::Msg("no interface could be measured".into()));
    }
    Ok(())
}
