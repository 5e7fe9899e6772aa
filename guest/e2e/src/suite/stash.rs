//! One sequence through every call (issue 18's RAND stash): RAND, RAND64, read() on every read
//! path and SEED_READ, interleaved in any order, return exactly what register reads would
//! (spec, "64-bit reads": xoshiro256++'s RAND is the high half of one output, glibc's and
//! ChaCha20's RAND64 two 32-bit outputs, read() the little-endian RNG64 values). Every call is
//! checked against [`Model`], the registers driven by the spec crate's reference generators
//! (themselves checked against the committed vectors), never against what the driver said.
//!
//! These tests use only the driver's ABI and `read_path`: they hold for a driver with or
//! without a stash. The `ioctl_path` attribute's tests are in `ioctl_path.rs`.

use std::fmt;

use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::{COUNT, SEEDS};
use my_rng_spec::Generator;

use super::dma::PathAttr;
use super::{open, Ctx};
use crate::util::*;

/// The read paths a device offers: all four with DMA, else `auto` and `mmio`.
pub(super) fn read_paths(dev: &Device) -> Result<Vec<&'static str>, String> {
    let info = ctx("INFO", dev.info())?;
    Ok(if info.has_feature(my_rng::regs::FEAT_DMA) {
        vec!["auto", "mmio", "bounce", "zerocopy"]
    } else {
        vec!["auto", "mmio"]
    })
}

/// The reference generator of `alg` against the committed vectors (seeds 0 and 0x42, 32- and
/// 64-bit), so that a model built on it is known to be the spec's sequence.
pub(super) fn check_reference(alg: Algorithm) -> TestResult {
    for seed in [0, 0x42] {
        let mut g32 = Generator::new(alg, seed).ok_or("no reference generator")?;
        let mut g64 = g32.clone();
        let got32: Vec<u64> = (0..COUNT).map(|_| u64::from(g32.next_u32())).collect();
        let got64: Vec<u64> = (0..COUNT).map(|_| g64.next_u64()).collect();
        let what = format!("reference {alg} seed {seed:#x} against the committed vector");
        check_seq(&what, &got32, &expected(alg, seed, 32)?)?;
        check_seq(&what, &got64, &expected(alg, seed, 64)?)?;
    }
    Ok(())
}

/// The device's sequence as its registers give it: SEED latches the seed and reseeds, ALGO
/// selects and reseeds from the latch, RNG and RNG64 are the reference generator's next_u32
/// and next_u64, read() is whole RNG64 values with the bytes of a partial last one dropped.
pub(super) struct Model {
    latch: u32,
    /// `None` under the host algorithm, whose values nobody can predict.
    gen: Option<Generator>,
}

impl Model {
    /// The state after SET_ALGO `alg` and SEED `seed`.
    pub(super) fn new(alg: Algorithm, seed: u32) -> Result<Model, String> {
        for a in Algorithm::DETERMINISTIC {
            check_reference(a)?;
        }
        Ok(Model {
            latch: seed,
            gen: Generator::new(alg, seed),
        })
    }

    fn seed(&mut self, seed: u32) {
        self.latch = seed;
        if let Some(g) = &mut self.gen {
            g.reseed(seed);
        }
    }

    fn set_algo(&mut self, alg: Algorithm) {
        self.gen = Generator::new(alg, self.latch);
    }

    fn rand(&mut self) -> Option<u32> {
        self.gen.as_mut().map(Generator::next_u32)
    }

    fn rand64(&mut self) -> Option<u64> {
        self.gen.as_mut().map(Generator::next_u64)
    }

    fn read(&mut self, n: usize) -> Option<Vec<u8>> {
        let g = self.gen.as_mut()?;
        let mut v: Vec<u8> = (0..n.div_ceil(8))
            .flat_map(|_| g.next_u64().to_le_bytes())
            .collect();
        v.truncate(n);
        Some(v)
    }

    fn seed_read(&mut self, seed: u32, count: usize) -> Option<Vec<u32>> {
        self.seed(seed);
        let g = self.gen.as_mut()?;
        Some((0..count).map(|_| g.next_u32()).collect())
    }
}

/// One call of a sequence.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Rand,
    Rand64,
    /// One read(2) of this many bytes (at most 64 KiB, the MMIO path's bound).
    Read(usize),
    /// Select the read path of the reads that follow.
    ReadPath(&'static str),
    /// SEED_READ(seed, count).
    SeedRead(u32, usize),
    Seed(u32),
    SetAlgo(Algorithm),
    /// Write the `ioctl_path` attribute (its own tests only).
    IoctlPath(&'static str),
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Rand => write!(f, "RAND"),
            Call::Rand64 => write!(f, "RAND64"),
            Call::Read(n) => write!(f, "read({n})"),
            Call::ReadPath(p) => write!(f, "read_path={p}"),
            Call::SeedRead(s, n) => write!(f, "SEED_READ({s:#x},{n})"),
            Call::Seed(s) => write!(f, "SEED({s:#x})"),
            Call::SetAlgo(a) => write!(f, "SET_ALGO({a})"),
            Call::IoctlPath(p) => write!(f, "ioctl_path={p}"),
        }
    }
}

/// Runs calls on the first device and on a [`Model`] side by side.
pub(super) struct Runner<'a> {
    dev: &'a Device,
    model: Model,
    read_path: PathAttr,
    ioctl_path: Option<PathAttr>,
    /// Calls made so far, for the failure message.
    log: Vec<Call>,
    what: String,
}

impl<'a> Runner<'a> {
    /// SET_ALGO `alg` and SEED `seed` on `dev` (the first device); `what` names the sequence
    /// in failures (say, the seed of a random order). `ioctl_path` lets the calls include
    /// [`Call::IoctlPath`].
    pub(super) fn start(
        c: &Ctx,
        dev: &'a Device,
        (alg, seed): (Algorithm, u32),
        ioctl_path: bool,
        what: impl Into<String>,
    ) -> Result<Runner<'a>, String> {
        start(dev, alg, seed)?;
        Ok(Runner {
            dev,
            model: Model::new(alg, seed)?,
            read_path: PathAttr::read_path(c),
            ioctl_path: ioctl_path.then(|| PathAttr::ioctl_path(c)),
            log: Vec::new(),
            what: what.into(),
        })
    }

    /// Make `calls`, checking each one.
    pub(super) fn run(&mut self, calls: &[Call]) -> TestResult {
        for &call in calls {
            self.log.push(call);
            if let Err(e) = self.call(call) {
                let n = self.log.len();
                let recent = &self.log[n.saturating_sub(8)..n - 1];
                return Err(format!(
                    "{}: call #{} {call:?} (after ...{recent:?}): {e}",
                    self.what,
                    n - 1
                ));
            }
        }
        Ok(())
    }

    fn call(&mut self, call: Call) -> TestResult {
        let dev = self.dev;
        match call {
            Call::Rand => same(ctx("RAND", dev.next_u32())?, self.model.rand()),
            Call::Rand64 => same(ctx("RAND64", dev.next_u64())?, self.model.rand64()),
            Call::Read(n) => {
                let mut buf = vec![0u8; n];
                let got = ctx("read", dev.read(&mut buf))?;
                if got != n {
                    return Err(format!("read() returned {got} of {n} bytes"));
                }
                same_bytes(&buf, self.model.read(n))
            }
            Call::ReadPath(p) => self.read_path.set(p),
            Call::SeedRead(seed, count) => {
                let mut out = vec![0u32; count];
                ctx("SEED_READ", dev.seed_read(seed, &mut out))?;
                match self.model.seed_read(seed, count) {
                    Some(want) => same_seq(&out, &want),
                    None => Ok(()),
                }
            }
            Call::Seed(s) => {
                self.model.seed(s);
                ctx("SEED", dev.seed(s))
            }
            Call::SetAlgo(a) => {
                self.model.set_algo(a);
                ctx("SET_ALGO", dev.set_algorithm(a))
            }
            Call::IoctlPath(p) => match &self.ioctl_path {
                Some(attr) => attr.set(p),
                None => Err("ioctl_path is not to be touched by this test".into()),
            },
        }
    }
}

/// `got` equals `want`, unless the model cannot predict (host algorithm).
fn same<T: PartialEq + fmt::LowerHex>(got: T, want: Option<T>) -> TestResult {
    match want {
        Some(w) if w != got => Err(format!("got {got:#x}, expected {w:#x}")),
        _ => Ok(()),
    }
}

fn same_bytes(got: &[u8], want: Option<Vec<u8>>) -> TestResult {
    let Some(want) = want else { return Ok(()) };
    match got.iter().zip(&want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "byte {i} (in value #{}) is {:#04x}, expected {:#04x}; the value is {:02x?}, expected {:02x?}",
            i / 8,
            got[i],
            want[i],
            &got[i / 8 * 8..(i / 8 * 8 + 8).min(got.len())],
            &want[i / 8 * 8..(i / 8 * 8 + 8).min(want.len())]
        )),
    }
}

fn same_seq(got: &[u32], want: &[u32]) -> TestResult {
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "value #{i} is {:#x}, expected {:#x}",
            got[i], want[i]
        )),
    }
}

/// `n` copies of `call`.
fn times(n: usize, call: Call) -> Vec<Call> {
    vec![call; n]
}

/// Runs `calls(alg)` from SEED `seed` for each deterministic algorithm, with the device put
/// back on glibc and `auto` read path afterwards, pass or fail.
fn each_alg(c: &Ctx, seed: u32, calls: impl Fn(Algorithm) -> Vec<Call>) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    for alg in Algorithm::DETERMINISTIC {
        let mut r = Runner::start(c, &dev, (alg, seed), false, format!("{alg}"))?;
        r.run(&calls(alg))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- fixed sequences

/// Long runs of RAND, of RAND64, and both alternating (each RAND64 then at an odd word
/// position under glibc and ChaCha20), far past the vectors and across many refills of any
/// stash: 24,000 words per algorithm.
pub(super) fn long_runs(c: &Ctx) -> TestResult {
    each_alg(c, 0xdead_beef, |_| {
        let mut v = times(12_000, Call::Rand);
        v.push(Call::Seed(0x42));
        v.extend(times(3_000, Call::Rand64));
        v.push(Call::Seed(7));
        for _ in 0..2_000 {
            v.extend([Call::Rand, Call::Rand64]);
        }
        v
    })
}

/// RAND64 after k RANDs for every k up to 70 and around 1,000 (the word position odd or
/// even, at and across the ends of a stash's first refills), then the sequence goes on.
pub(super) fn rand64_positions(c: &Ctx) -> TestResult {
    each_alg(c, 1, |_| {
        let mut v = Vec::new();
        for k in (0..=70).chain(950..=1_030) {
            v.push(Call::Seed(k as u32));
            v.extend(times(k, Call::Rand));
            v.extend([Call::Rand64, Call::Rand, Call::Rand64]);
        }
        v
    })
}

/// After RANDs, reads whose size is not a multiple of 8 on every read path; RAND and RAND64
/// continue after them at the next whole value.
pub(super) fn read_after_rands(c: &Ctx) -> TestResult {
    let paths = read_paths(&open(&c.dev0)?)?;
    each_alg(c, 0x42, |_| {
        let mut v = Vec::new();
        for &p in &paths {
            v.push(Call::ReadPath(p));
            for (k, n) in [
                (1, 1),
                (2, 3),
                (3, 7),
                (5, 13),
                (1, 4095),
                (2, 4097),
                (7, 20_001),
            ] {
                v.push(Call::Seed(n as u32));
                v.extend(times(k, Call::Rand));
                v.extend([Call::Read(n), Call::Rand, Call::Rand64, Call::Read(12)]);
                v.extend([Call::Rand, Call::Read(5), Call::Rand64]);
            }
        }
        v
    })
}

/// Reads that take what a partly used stash holds and go on from the device, on every read
/// path: after a few RANDs (an odd number of words left: the value that straddles the stash's
/// end is completed from the device), after thousands (a stash grown large), and small reads
/// served from the stash alone.
pub(super) fn read_drains(c: &Ctx) -> TestResult {
    let paths = read_paths(&open(&c.dev0)?)?;
    each_alg(c, 0x7fff_ffff, |_| {
        let mut v = Vec::new();
        for &p in &paths {
            v.push(Call::ReadPath(p));
            for (k, n) in [(5, 4096 + 13), (1, 3), (2, 8), (3000, 60_000), (6000, 16)] {
                v.push(Call::Seed(k as u32));
                v.extend(times(k, Call::Rand));
                v.extend([Call::Read(n), Call::Rand, Call::Rand64, Call::Rand]);
            }
            // Reads back to back, each starting where the last one ended.
            v.push(Call::Rand);
            v.extend([
                Call::Read(1),
                Call::Read(9),
                Call::Read(64),
                Call::Read(5000),
            ]);
            v.push(Call::Rand64);
        }
        v
    })
}

/// SEED, SET_ALGO and SEED_READ in the middle of a partly used stash: the next value is the
/// new sequence's first; after SEED_READ of an odd or even count, RAND, RAND64 and read()
/// continue right after its last value.
pub(super) fn reseed_mid_stash(c: &Ctx) -> TestResult {
    each_alg(c, 0, |alg| {
        let other = if alg == Algorithm::Glibc {
            Algorithm::ChaCha20
        } else {
            Algorithm::Glibc
        };
        let mut v = times(10, Call::Rand);
        v.extend([Call::Seed(0x8000_0000), Call::Rand, Call::Rand64]);
        v.extend(times(3, Call::Rand));
        v.extend([Call::SetAlgo(other), Call::Rand, Call::Rand64]);
        v.extend([Call::SetAlgo(alg), Call::Rand64, Call::Rand]);
        for count in [1, 2, 7, 8, 999, 4095, 4096] {
            v.extend([Call::Rand, Call::SeedRead(count as u32, count)]);
            v.extend([Call::Rand, Call::Rand64, Call::Read(9), Call::Rand]);
            v.extend([Call::SeedRead(5, count), Call::Rand64, Call::Read(3)]);
        }
        v
    })
}

/// SET_ALGO through all four algorithms with calls in between: host entropy is served (and
/// not checked), and switching back reseeds from the latched seed.
pub(super) fn algo_switches(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let mut r = Runner::start(c, &dev, (Algorithm::Glibc, 0xffff_ffff), false, "switches")?;
    let mut v = Vec::new();
    for (i, &alg) in Algorithm::ALL.iter().cycle().take(17).enumerate() {
        v.push(Call::SetAlgo(alg));
        v.extend(times(i % 5, Call::Rand));
        v.extend([Call::Rand64, Call::Read(11), Call::Rand]);
        if i % 3 == 0 {
            v.push(Call::Seed(i as u32));
        }
        v.extend(times(300, Call::Rand));
    }
    r.run(&v)?;
    // Host entropy through RAND is not one repeated value.
    ctx("SET_ALGO host", dev.set_algorithm(Algorithm::Host))?;
    let vals = read_values(&dev, 32, 64)?;
    if vals.iter().all(|&x| x == vals[0]) {
        return Err(format!("64 RANDs of host entropy all read {:#x}", vals[0]));
    }
    Ok(())
}

// ---------------------------------------------------------------- random orders

/// A random call: mostly RAND and RAND64, then reads of every size class on a random path,
/// SEED_READ of small and large counts, and now and then SEED, SET_ALGO (deterministic
/// algorithms) and, if `ioctl_paths` is not empty, an ioctl_path switch.
pub(super) fn random_call(
    rng: &mut TestRng,
    read_paths: &[&'static str],
    ioctl_paths: &[&'static str],
) -> Call {
    match rng.below(1000) {
        0..=379 => Call::Rand,
        380..=619 => Call::Rand64,
        620..=819 => Call::Read(match rng.below(10) {
            0..=5 => rng.range(1, 24),
            6..=8 => rng.range(25, 4200),
            _ => rng.range(4201, 20_000),
        }),
        820..=879 => Call::ReadPath(read_paths[rng.below(read_paths.len())]),
        880..=909 => Call::SeedRead(
            rng.next_u64() as u32,
            if rng.below(4) == 0 {
                rng.range(1, 4096)
            } else {
                rng.range(1, 40)
            },
        ),
        910..=939 => Call::Seed(SEEDS[rng.below(SEEDS.len())]),
        940..=954 => Call::SetAlgo(Algorithm::DETERMINISTIC[rng.below(3)]),
        _ if !ioctl_paths.is_empty() => Call::IoctlPath(ioctl_paths[rng.below(ioctl_paths.len())]),
        _ => Call::Rand,
    }
}

/// `n` random calls from the order seeded with `seed`, starting from `alg`, checked call by
/// call; `ioctl_paths` as in [`random_call`].
pub(super) fn random_mix(
    c: &Ctx,
    alg: Algorithm,
    seed: u64,
    n: usize,
    ioctl_paths: &[&'static str],
) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let paths = read_paths(&dev)?;
    let mut rng = TestRng::new(seed);
    let calls: Vec<Call> = (0..n)
        .map(|_| random_call(&mut rng, &paths, ioctl_paths))
        .collect();
    let what = format!("random order {seed:#x} from {alg}");
    let mut r = Runner::start(c, &dev, (alg, 0x42), !ioctl_paths.is_empty(), what)?;
    r.run(&calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_the_register_view() {
        // Independent of Model: the committed vectors (32- and 64-bit) of seed 0x42.
        let v32 = expected(Algorithm::Glibc, 0x42, 32).unwrap();
        let v64 = expected(Algorithm::Glibc, 0x42, 64).unwrap();
        let mut m = Model::new(Algorithm::Glibc, 0x42).unwrap();
        assert_eq!(u64::from(m.rand().unwrap()), v32[0]);
        // RAND64 at an odd position: words 1 and 2.
        assert_eq!(m.rand64().unwrap(), v32[1] | v32[2] << 32);
        // A 3-byte read takes the whole value of words 3 and 4.
        assert_eq!(m.read(3).unwrap(), (v32[3] as u32).to_le_bytes()[..3]);
        assert_eq!(u64::from(m.rand().unwrap()), v32[5]);
        // SEED_READ reseeds; SET_ALGO reseeds from the latch.
        let sr = m.seed_read(0x42, 2).unwrap();
        assert_eq!([u64::from(sr[0]), u64::from(sr[1])], [v32[0], v32[1]]);
        m.set_algo(Algorithm::Glibc);
        assert_eq!(m.rand64().unwrap(), v64[0]);
        // xoshiro256++: RAND is the high half of one output.
        let x64 = expected(Algorithm::Xoshiro256pp, 0x42, 64).unwrap();
        m.set_algo(Algorithm::Xoshiro256pp);
        assert_eq!(u64::from(m.rand().unwrap()), x64[0] >> 32);
        assert_eq!(m.rand64().unwrap(), x64[1]);
        m.set_algo(Algorithm::Host);
        assert!(m.rand().is_none() && m.read(8).is_none());
    }

    #[test]
    fn comparisons_name_the_place() {
        assert!(same(5u32, Some(5)).is_ok());
        assert!(same(5u32, None).is_ok());
        assert!(same(5u64, Some(6)).unwrap_err().contains("expected 0x6"));
        assert!(same_bytes(&[1, 2], Some(vec![1, 2])).is_ok());
        assert!(same_bytes(&[1, 3], Some(vec![1, 2]))
            .unwrap_err()
            .contains("byte 1"));
        assert!(same_seq(&[1, 2], &[1, 3]).unwrap_err().contains("#1"));
    }

    #[test]
    fn random_calls_cover_every_kind() {
        let mut rng = TestRng::new(1);
        let calls: Vec<Call> = (0..5000)
            .map(|_| random_call(&mut rng, &["auto", "mmio"], &["stash", "mmio"]))
            .collect();
        let has = |f: &dyn Fn(&Call) -> bool| calls.iter().any(f);
        assert!(has(&|c| *c == Call::Rand) && has(&|c| *c == Call::Rand64));
        assert!(has(
            &|c| matches!(c, Call::Read(n) if n % 8 != 0 && *n > 4200)
        ));
        assert!(has(&|c| matches!(c, Call::SeedRead(_, n) if *n > 40)));
        assert!(has(&|c| matches!(c, Call::Seed(_))));
        assert!(has(&|c| matches!(c, Call::SetAlgo(_))));
        assert!(has(&|c| matches!(c, Call::ReadPath("mmio"))));
        assert!(has(&|c| matches!(c, Call::IoctlPath("stash"))));
        let mut rng = TestRng::new(1);
        assert!(
            !(0..5000).any(|_| matches!(random_call(&mut rng, &["auto"], &[]), Call::IoctlPath(_)))
        );
    }
}
