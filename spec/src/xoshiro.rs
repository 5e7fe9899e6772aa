//! SplitMix64 and xoshiro256++ (Blackman and Vigna), as the device seeds and runs them.

/// SplitMix64's additive constant (2^64 / golden ratio).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One SplitMix64 step: advances `x` and returns the mixed output.
pub fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(GOLDEN_GAMMA);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The four successive SplitMix64 outputs from `x = seed` (zero-extended): the xoshiro256++
/// state and, little-endian, the ChaCha20 key.
pub fn expand_seed(seed: u32) -> [u64; 4] {
    let mut x = u64::from(seed);
    core::array::from_fn(|_| splitmix64(&mut x))
}

/// xoshiro256++ state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// The device's seeding: state = [`expand_seed`]`(seed)`.
    pub fn new(seed: u32) -> Self {
        Xoshiro256pp {
            s: expand_seed(seed),
        }
    }

    /// A generator with an explicit state. An all-zero state is a fixed point (outputs 0
    /// forever); SplitMix64 seeding never produces it.
    pub const fn from_state(s: [u64; 4]) -> Self {
        Xoshiro256pp { s }
    }

    /// The current state (e.g. for migration).
    pub const fn state(&self) -> [u64; 4] {
        self.s
    }

    /// Restart from `seed` as [`Xoshiro256pp::new`] does.
    pub fn reseed(&mut self, seed: u32) {
        self.s = expand_seed(seed);
    }

    /// One xoshiro256++ step; the RNG64 value.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The RNG value: the high half of one step (the low bits are the weaker ones).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}
