//! Concurrent users of one device: what RAND, RAND64 and read() return to several threads
//! (sharing one file, or one file each) must be a serial interleaving of the reference
//! stream: each thread's values at increasing stream positions, every position taken exactly
//! once. The stream is the spec crate's reference generator (checked against the committed
//! vectors) as 32-bit words: the little-endian halves of successive RNG64 outputs.

use std::thread;

use my_rng::{Algorithm, Device};
use my_rng_spec::Generator;

use super::dma::PathAttr;
use super::stash::check_reference;
use super::{open, Ctx};
use crate::util::*;

/// What one call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Got {
    Rand(u32),
    Rand64(u64),
    Read(Vec<u8>),
}

/// A piece of the stream that one call took whole, with the bytes the caller saw of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    /// Words taken: 1 (a 32-bit output) or 2 (one RNG64 value).
    words: usize,
    /// The little-endian bytes of those words, where `known` has the byte's bit.
    bytes: [u8; 8],
    known: u8,
}

impl Unit {
    /// The units of `got` under `alg`, in order: xoshiro256++'s RAND takes one whole output
    /// and shows its high half; the others' RAND one word. RAND64 and each 8-byte value of a
    /// read take two words (a read's partial last value too: its other bytes are dropped).
    fn of(alg: Algorithm, got: &Got) -> Vec<Unit> {
        let mut b = [0u8; 8];
        match got {
            Got::Rand(v) if alg == Algorithm::Xoshiro256pp => {
                b[4..].copy_from_slice(&v.to_le_bytes());
                vec![Unit {
                    words: 2,
                    bytes: b,
                    known: 0xf0,
                }]
            }
            Got::Rand(v) => {
                b[..4].copy_from_slice(&v.to_le_bytes());
                vec![Unit {
                    words: 1,
                    bytes: b,
                    known: 0x0f,
                }]
            }
            Got::Rand64(v) => vec![Unit {
                words: 2,
                bytes: v.to_le_bytes(),
                known: 0xff,
            }],
            Got::Read(data) => data
                .chunks(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..c.len()].copy_from_slice(c);
                    Unit {
                        words: 2,
                        bytes: b,
                        known: ((1u16 << c.len()) - 1) as u8,
                    }
                })
                .collect(),
        }
    }

    /// Whether this unit is the stream's piece at word `pos`.
    fn matches(&self, stream: &[u32], pos: usize) -> bool {
        if pos + self.words > stream.len() {
            return false;
        }
        let mut s = [0u8; 8];
        for (i, w) in stream[pos..pos + self.words].iter().enumerate() {
            s[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        (0..8).all(|i| self.known & (1 << i) == 0 || s[i] == self.bytes[i])
    }
}

/// The first `n` words of `alg`'s stream from `seed`.
fn stream_words(alg: Algorithm, seed: u32, n: usize) -> Result<Vec<u32>, String> {
    check_reference(alg)?;
    let mut g = Generator::new(alg, seed).ok_or("no reference generator")?;
    Ok((0..n.div_ceil(2))
        .flat_map(|_| {
            let v = g.next_u64();
            [v as u32, (v >> 32) as u32]
        })
        .collect())
}

/// Whether the threads' units (each thread's in call order) are a serial interleaving of
/// `stream` from its start: a depth-first search for the thread whose next unit is the
/// stream's next piece (almost always exactly one; two only if values collide, then the
/// search backs up). `Err` describes the furthest point any interleaving reached.
fn interleaving(threads: &[Vec<Unit>], stream: &[u32]) -> TestResult {
    let total: usize = threads.iter().flatten().map(|u| u.words).sum();
    let limit = 20 * threads.iter().map(Vec::len).sum::<usize>() + 1000;
    let mut next = vec![0usize; threads.len()];
    let mut pos = 0;
    // Per step taken: the thread chosen and the other candidates not tried yet.
    let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut furthest = (0, next.clone());
    let candidates = |next: &[usize], pos: usize| -> Vec<usize> {
        (0..threads.len())
            .filter(|&t| {
                threads[t]
                    .get(next[t])
                    .is_some_and(|u| u.matches(stream, pos))
            })
            .collect()
    };
    let mut cands = candidates(&next, pos);
    for _ in 0..limit {
        if pos == total {
            return Ok(());
        }
        if let Some(t) = cands.pop() {
            pos += threads[t][next[t]].words;
            next[t] += 1;
            stack.push((t, cands));
            if pos > furthest.0 {
                furthest = (pos, next.clone());
            }
            cands = candidates(&next, pos);
            continue;
        }
        let Some((t, rest)) = stack.pop() else {
            return Err(stuck(threads, stream, &furthest));
        };
        next[t] -= 1;
        pos -= threads[t][next[t]].words;
        cands = rest;
    }
    Err(format!(
        "no verdict within {limit} steps (too many equal values to tell the threads apart)"
    ))
}

fn stuck(threads: &[Vec<Unit>], stream: &[u32], (pos, next): &(usize, Vec<usize>)) -> String {
    let heads: Vec<String> = threads
        .iter()
        .zip(next)
        .enumerate()
        .map(|(t, (units, &i))| match units.get(i) {
            Some(u) => format!(
                "thread {t} value #{i} {:02x?} (known {:#04x})",
                u.bytes, u.known
            ),
            None => format!("thread {t} done"),
        })
        .collect();
    let at = &stream[*pos..(*pos + 2).min(stream.len())];
    format!(
        "not a serial interleaving of the stream: at word {pos} (stream {at:08x?}) no thread's \
         next value fits: {}",
        heads.join(", ")
    )
}

/// One thread's calls: `n` of RAND, RAND64 and read() (mostly small, some of 4 KiB or more,
/// which the auto path does zero-copy) chosen by `rng`; stops at the first error.
fn calls(dev: &Device, mut rng: TestRng, n: usize) -> Result<Vec<Got>, String> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(match rng.below(100) {
            0..=44 => Got::Rand(ctx("RAND", dev.next_u32())?),
            45..=79 => Got::Rand64(ctx("RAND64", dev.next_u64())?),
            _ => {
                let len = if rng.below(10) == 0 {
                    rng.range(4096, 6000)
                } else {
                    rng.range(1, 40)
                };
                let mut buf = vec![0u8; len];
                let k = ctx("read", dev.read(&mut buf))?;
                buf.truncate(k);
                Got::Read(buf)
            }
        });
    }
    Ok(got)
}

/// How the threads reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Files {
    /// All threads use one file.
    Shared,
    /// Each thread opens its own.
    Own,
}

/// `THREADS` threads making `CALLS` calls each on the first device under `alg` from SEED
/// `seed`, with `read_path` set; `during` runs meanwhile on the test's thread (say, switching
/// ioctl_path) until they are done. Then the verdict of [`interleaving`].
pub(super) fn run(
    c: &Ctx,
    alg: Algorithm,
    files: Files,
    read_path: &str,
    during: &dyn Fn() -> TestResult,
) -> TestResult {
    const THREADS: usize = 4;
    const CALLS: usize = 500;
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    rp.set(read_path)?;
    let seed = 0x5eed_0000 | alg.id();
    start(&dev, alg, seed)?;
    let own: Vec<Device> = match files {
        Files::Shared => Vec::new(),
        Files::Own => (0..THREADS)
            .map(|_| open(&c.dev0))
            .collect::<Result<_, _>>()?,
    };
    let what = format!("{alg}, {files:?} files, read_path {read_path}");
    let results: Vec<Result<Vec<Got>, String>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = own.get(t).unwrap_or(&dev);
                s.spawn(move || calls(d, TestRng::new(u64::from(seed) ^ ((t as u64) << 32)), CALLS))
            })
            .collect();
        let mut side = Ok(());
        while side.is_ok() && !workers.iter().all(|w| w.is_finished()) {
            side = during();
        }
        let mut r: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect();
        if let Err(e) = side {
            r.push(Err(e));
        }
        r
    });
    let mut units = Vec::new();
    for (t, r) in results.into_iter().enumerate() {
        let got = r.map_err(|e| format!("{what}: thread {t}: {e}"))?;
        units.push(
            got.iter()
                .flat_map(|g| Unit::of(alg, g))
                .collect::<Vec<_>>(),
        );
    }
    let total = units.iter().flatten().map(|u| u.words).sum();
    interleaving(&units, &stream_words(alg, seed, total)?).map_err(|e| format!("{what}: {e}"))
}

/// Nothing to do beside the threads but wait a little.
pub(super) fn idle() -> TestResult {
    thread::sleep(std::time::Duration::from_millis(5));
    Ok(())
}

/// Each deterministic algorithm, all threads on one file, `auto` read path.
pub(super) fn shared_file(c: &Ctx) -> TestResult {
    for alg in Algorithm::DETERMINISTIC {
        run(c, alg, Files::Shared, "auto", &idle)?;
    }
    Ok(())
}

/// A file per thread, on each read path the device has (the algorithm changing too).
pub(super) fn own_files(c: &Ctx) -> TestResult {
    let paths = super::stash::read_paths(&open(&c.dev0)?)?;
    for (i, path) in paths.into_iter().enumerate() {
        let alg = Algorithm::DETERMINISTIC[i % 3];
        run(c, alg, Files::Own, path, &idle)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(alg: Algorithm, got: &[Got]) -> Vec<Unit> {
        got.iter().flat_map(|g| Unit::of(alg, g)).collect()
    }

    /// Two threads' calls cut from glibc's stream: words come from the committed vector.
    #[test]
    fn interleavings_are_recognised() {
        let alg = Algorithm::Glibc;
        let w: Vec<u32> = expected(alg, 0x42, 32)
            .unwrap()
            .iter()
            .map(|&v| v as u32)
            .collect();
        let s = stream_words(alg, 0x42, 40).unwrap();
        assert_eq!(s[..40], w[..40]);
        let q = |i: usize| u64::from(w[i]) | u64::from(w[i + 1]) << 32;
        let read = |i: usize, n: usize| {
            let mut b: Vec<u8> = w[i..i + 2 * n.div_ceil(8)]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            b.truncate(n);
            Got::Read(b)
        };
        // Thread A: RAND (0), RAND64 (3, 4), read(3) (7, 8). Thread B: RAND64 (1, 2), RAND (5),
        // RAND (6), read(12) (9..12).
        let a = vec![Got::Rand(w[0]), Got::Rand64(q(3)), read(7, 3)];
        let b = vec![
            Got::Rand64(q(1)),
            Got::Rand(w[5]),
            Got::Rand(w[6]),
            read(9, 12),
        ];
        assert!(interleaving(&[units(alg, &a), units(alg, &b)], &s).is_ok());
        // A value taken twice, a value skipped, a thread's values out of order: refused.
        let twice = vec![
            Got::Rand(w[0]),
            Got::Rand64(q(3)),
            Got::Rand(w[5]),
            read(7, 3),
        ];
        assert!(interleaving(&[units(alg, &twice), units(alg, &b)], &s).is_err());
        let skipped = vec![Got::Rand(w[0]), Got::Rand64(q(3)), read(8, 3)];
        let e = interleaving(&[units(alg, &skipped), units(alg, &b)], &s).unwrap_err();
        assert!(e.contains("at word 7"), "{e}");
        let swapped = vec![
            Got::Rand64(q(1)),
            Got::Rand(w[6]),
            Got::Rand(w[5]),
            read(9, 12),
        ];
        assert!(interleaving(&[units(alg, &a), units(alg, &swapped)], &s).is_err());
    }

    #[test]
    fn xoshiro_rand_is_a_whole_output() {
        let alg = Algorithm::Xoshiro256pp;
        let v = expected(alg, 1, 64).unwrap();
        let s = stream_words(alg, 1, 8).unwrap();
        let a = vec![Got::Rand((v[0] >> 32) as u32), Got::Rand64(v[2])];
        let b = vec![Got::Rand64(v[1]), Got::Rand((v[3] >> 32) as u32)];
        assert!(interleaving(&[units(alg, &a), units(alg, &b)], &s).is_ok());
        // The low half is not RAND under xoshiro256++.
        let lo = vec![Got::Rand(v[0] as u32), Got::Rand64(v[2])];
        assert!(interleaving(&[units(alg, &lo), units(alg, &b)], &s).is_err());
    }

    #[test]
    fn ambiguity_backs_up() {
        // Both threads' first value is word 0's; the first choice tried (the last candidate,
        // thread b) leads nowhere, so the search must back up and give word 0 to thread a.
        let s = [7u32, 9, 7, 1];
        let a = vec![Got::Rand(7), Got::Rand(9)];
        let b = vec![Got::Rand(7), Got::Rand(1)];
        let alg = Algorithm::Glibc;
        assert!(interleaving(&[units(alg, &a), units(alg, &b)], &s).is_ok());
    }
}
