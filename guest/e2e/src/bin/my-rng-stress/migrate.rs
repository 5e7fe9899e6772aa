//! `migrate`: reads seeded streams for a while and verifies every word, while the host moves
//! the running VM from one QEMU to another. Each round selects an algorithm and a seed, seeds
//! once, then reads one continuous stream in parts of odd numbers of 64-bit outputs: RAND64
//! ioctls (MMIO), then read() calls (DMA, zero-copy), so that a migration finds the generator
//! anywhere inside its state (mid-block, mid-word pair), and most of the time a DMA command
//! running. Lost or repeated generator state, or a DMA command in flight that did not resume
//! at the same byte, shows as divergent words.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use my_rng::{Algorithm, Device};
use my_rng_e2e::util::{errno_name, stream};
use my_rng_spec::vectors::SEEDS;

use crate::mem::raw_read;
use my_rng_protocol::{marker, record, Record};

const ALGS: [Algorithm; 3] = [
    Algorithm::Glibc,
    Algorithm::Xoshiro256pp,
    Algorithm::ChaCha20,
];
/// One round's parts, in 64-bit outputs: RAND64 ioctls first, then one read() each. All odd,
/// so that no part ends on a ChaCha20 block or a glibc word pair; the reads are below the
/// driver's 1 MiB bound, so each is one DMA call.
const IOCTLS: usize = 1001;
const READS: [usize; 5] = [1003, 131_071, 131_069, 131_067, 131_065];
/// Seeds per algorithm: the expected streams are computed once and kept (a few MB each).
const SEEDS_PER_ALG: usize = 2;

fn round_outputs() -> usize {
    IOCTLS + READS.iter().sum::<usize>()
}

/// Words compared and words that differed.
#[derive(Default)]
struct Tally {
    words: u64,
    divergent: u64,
    errors: u64,
}

impl Tally {
    fn compare(&mut self, what: &str, got: &[u8], want: &[u8]) {
        let n = got.len().min(want.len()) / 8;
        let bad = (0..n)
            .filter(|&i| got[8 * i..8 * i + 8] != want[8 * i..8 * i + 8])
            .count();
        self.words += n as u64;
        if bad > 0 {
            self.divergent += bad as u64;
            println!("{what}: {bad} of {n} words differ");
        }
    }
}

pub fn run(limit: Duration) -> bool {
    let dev = match Device::open_index(0) {
        Ok(d) => d,
        Err(e) => {
            let r = Record::new(record::MIGRATE)
                .field("rounds", 0)
                .field("words", 0);
            println!(
                "{}",
                r.field("divergent", 0)
                    .field("errors", 1)
                    .tail(format!("({e})"))
            );
            return false;
        }
    };
    let mut want: HashMap<(u32, u32), Vec<u8>> = HashMap::new();
    let mut t = Tally::default();
    let mut buf = vec![0u8; 8 * READS.iter().max().copied().unwrap_or(0)];
    let mut rounds = 0u64;
    println!("{}", marker::MIG_READY);
    let end = Instant::now() + limit;
    'outer: while Instant::now() < end {
        for alg in ALGS {
            for &seed in SEEDS.iter().take(SEEDS_PER_ALG) {
                if Instant::now() >= end {
                    break 'outer;
                }
                let w = match want.get(&(alg.id(), seed)) {
                    Some(w) => w,
                    None => match stream(alg, seed, 8 * round_outputs()) {
                        Ok(s) => want.entry((alg.id(), seed)).or_insert(s),
                        Err(e) => {
                            println!("{e}");
                            t.errors += 1;
                            break 'outer;
                        }
                    },
                };
                if let Err(e) = round(&dev, alg, seed, w, &mut buf, &mut t) {
                    println!("{alg} seed {seed:#x}: {e}");
                    t.errors += 1;
                }
                rounds += 1;
            }
        }
    }
    let _ = dev.set_algorithm(Algorithm::Glibc);
    let r = Record::new(record::MIGRATE)
        .field("rounds", rounds)
        .field("words", t.words)
        .field("divergent", t.divergent)
        .field("errors", t.errors);
    println!("{r}");
    t.divergent == 0 && t.errors == 0 && t.words > 0
}

fn round(
    dev: &Device,
    alg: Algorithm,
    seed: u32,
    want: &[u8],
    buf: &mut [u8],
    t: &mut Tally,
) -> Result<(), String> {
    let what = format!("{alg} seed {seed:#x}");
    dev.set_algorithm(alg).map_err(|e| e.to_string())?;
    dev.seed(seed).map_err(|e| e.to_string())?;
    let mut got = Vec::with_capacity(8 * IOCTLS);
    for _ in 0..IOCTLS {
        got.extend_from_slice(&dev.next_u64().map_err(|e| e.to_string())?.to_le_bytes());
    }
    t.compare(
        &format!("{what} RAND64 x{IOCTLS}"),
        &got,
        &want[..got.len()],
    );
    let mut at = got.len();
    for outputs in READS {
        let len = 8 * outputs;
        let n = raw_read(dev.file().as_raw_fd(), buf.as_mut_ptr(), len)
            .map_err(|e| format!("read({len}): {}", errno_name(e)))?;
        if n != len {
            return Err(format!("read({len}) returned {n}"));
        }
        t.compare(
            &format!("{what} read({len}) at byte {at}"),
            &buf[..n],
            &want[at..at + n],
        );
        at += n;
    }
    Ok(())
}
