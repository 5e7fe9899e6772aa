//! The my-rng device ABI, in code: register map and access decoding ([`regs`]), the
//! reference implementations of the device's deterministic algorithms ([`glibc`],
//! [`xoshiro`], [`chacha`], combined in [`Generator`]), the DMA engine ([`dma`]), the
//! drivers' user ABI ([`uapi`]: ioctls) and, with feature `std`, the committed test vectors
//! ([`vectors`]) and the generated C and Rust definitions of the drivers ([`linux_regs`]).
//!
//! `spec/my-rng.rst` is the normative prose; this crate must agree with it. The library is
//! `no_std` and allocation-free so that any device model or driver-side code can use it.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod chacha;
pub mod dma;
pub mod glibc;
#[cfg(feature = "std")]
pub mod linux_regs;
#[cfg(feature = "std")]
pub mod linux_uapi;
pub mod memmap;
#[cfg(feature = "std")]
pub mod qemu_header;
pub mod regs;
#[cfg(feature = "std")]
pub mod storm;
pub mod uapi;
#[cfg(feature = "std")]
pub mod vectors;
pub mod xoshiro;

use core::fmt;

/// An algorithm the device can run, by its ALGO register id.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// glibc `srandom_r`/`random_r` TYPE_3 (the seed exercise's `srand`/`rand`); reset default.
    Glibc = 0,
    /// xoshiro256++ seeded through SplitMix64.
    Xoshiro256pp = 1,
    /// ChaCha20 keystream, key from SplitMix64, nonce 0.
    ChaCha20 = 2,
    /// Host entropy; not reproducible, the seed is ignored.
    Host = 3,
}

impl Algorithm {
    /// Every algorithm, in id order (matches `regs::ALGOS_VALUE`).
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Glibc,
        Algorithm::Xoshiro256pp,
        Algorithm::ChaCha20,
        Algorithm::Host,
    ];
    /// The algorithms whose output is a function of the seed (those with test vectors).
    pub const DETERMINISTIC: [Algorithm; 3] = [
        Algorithm::Glibc,
        Algorithm::Xoshiro256pp,
        Algorithm::ChaCha20,
    ];

    /// The algorithm with ALGO register id `id`.
    pub const fn from_id(id: u32) -> Option<Self> {
        match id {
            0 => Some(Algorithm::Glibc),
            1 => Some(Algorithm::Xoshiro256pp),
            2 => Some(Algorithm::ChaCha20),
            3 => Some(Algorithm::Host),
            _ => None,
        }
    }

    /// The ALGO register id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Stable lower-case name, used by tools and vector file names.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Glibc => "glibc",
            Algorithm::Xoshiro256pp => "xoshiro256pp",
            Algorithm::ChaCha20 => "chacha20",
            Algorithm::Host => "host",
        }
    }

    /// Inverse of [`Algorithm::name`] (exact match).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Whether the output sequence is a function of the seed alone.
    pub const fn is_deterministic(self) -> bool {
        !matches!(self, Algorithm::Host)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The device's deterministic generator: exactly what the device computes for RNG (32-bit)
/// and RNG64 (64-bit) reads under a deterministic algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generator {
    inner: Inner,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Inner {
    Glibc(glibc::GlibcRandom),
    Xoshiro(xoshiro::Xoshiro256pp),
    ChaCha(chacha::ChaCha20),
}

impl Generator {
    /// The generator for `alg` freshly seeded with `seed`; `None` for [`Algorithm::Host`].
    pub fn new(alg: Algorithm, seed: u32) -> Option<Generator> {
        let inner = match alg {
            Algorithm::Glibc => Inner::Glibc(glibc::GlibcRandom::new(seed)),
            Algorithm::Xoshiro256pp => Inner::Xoshiro(xoshiro::Xoshiro256pp::new(seed)),
            Algorithm::ChaCha20 => Inner::ChaCha(chacha::ChaCha20::new(seed)),
            Algorithm::Host => return None,
        };
        Some(Generator { inner })
    }

    /// Which algorithm this generator runs.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::Glibc(_) => Algorithm::Glibc,
            Inner::Xoshiro(_) => Algorithm::Xoshiro256pp,
            Inner::ChaCha(_) => Algorithm::ChaCha20,
        }
    }

    /// Restart the sequence from `seed` (a SEED write, or an ALGO write with the latch).
    pub fn reseed(&mut self, seed: u32) {
        match &mut self.inner {
            Inner::Glibc(g) => g.reseed(seed),
            Inner::Xoshiro(g) => g.reseed(seed),
            Inner::ChaCha(g) => g.reseed(seed),
        }
    }

    /// The value of the next RNG (32-bit) read.
    pub fn next_u32(&mut self) -> u32 {
        match &mut self.inner {
            Inner::Glibc(g) => g.next_u32(),
            Inner::Xoshiro(g) => g.next_u32(),
            Inner::ChaCha(g) => g.next_u32(),
        }
    }

    /// The value of the next RNG64 (64-bit) read.
    pub fn next_u64(&mut self) -> u64 {
        match &mut self.inner {
            Inner::Glibc(g) => g.next_u64(),
            Inner::Xoshiro(g) => g.next_u64(),
            Inner::ChaCha(g) => g.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_ids_names_round_trip() {
        for (i, a) in Algorithm::ALL.into_iter().enumerate() {
            assert_eq!(a.id(), i as u32);
            assert_eq!(Algorithm::from_id(a.id()), Some(a));
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(a.is_deterministic(), Algorithm::DETERMINISTIC.contains(&a));
            // ALGOS advertises exactly the implemented ids.
            assert_ne!(regs::ALGOS_VALUE & (1 << a.id()), 0);
        }
        assert_eq!(regs::ALGOS_VALUE >> Algorithm::ALL.len(), 0);
        assert_eq!(Algorithm::from_id(4), None);
        assert_eq!(Algorithm::from_id(u32::MAX), None);
        assert_eq!(Algorithm::from_name("GLIBC"), None);
        assert_eq!(Algorithm::from_name(""), None);
    }

    #[test]
    fn generator_dispatch_and_reseed() {
        assert!(Generator::new(Algorithm::Host, 0).is_none());
        for alg in Algorithm::DETERMINISTIC {
            let mut g = Generator::new(alg, 0x42).unwrap();
            assert_eq!(g.algorithm(), alg);
            let first: [u32; 4] = core::array::from_fn(|_| g.next_u32());
            g.next_u64();
            g.reseed(0x42);
            let again: [u32; 4] = core::array::from_fn(|_| g.next_u32());
            assert_eq!(first, again, "{alg}: reseed restarts the sequence");
        }
    }
}
