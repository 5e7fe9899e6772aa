//! glibc's `srandom_r`/`random_r` for TYPE_3 (the generator behind `srand`/`rand`), bit-exact.
//!
//! TYPE_3 is an additive lagged Fibonacci generator over 31 `int32_t` words with taps 31
//! and 3 ("sep"), seeded by the Lehmer LCG `x * 16807 mod (2^31 - 1)`.

/// Number of state words (glibc `DEG_3`).
pub const DEG: usize = 31;
/// Distance between the front and rear pointers (glibc `SEP_3`).
pub const SEP: usize = 3;

/// glibc TYPE_3 `random_r` state: 31 words plus the front (`fptr`) and rear (`rptr`) indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlibcRandom {
    state: [u32; DEG],
    front: usize,
    rear: usize,
}

impl GlibcRandom {
    /// State after `srandom_r(seed)`.
    pub fn new(seed: u32) -> Self {
        let mut g = GlibcRandom {
            state: [0; DEG],
            front: SEP,
            rear: 0,
        };
        g.reseed(seed);
        g
    }

    /// `srandom_r(seed)`.
    pub fn reseed(&mut self, seed: u32) {
        // glibc: "We must make sure the seed is not 0.  Take arbitrarily 1 in this case."
        let seed = if seed == 0 { 1 } else { seed };
        self.state[0] = seed;
        // glibc keeps `word` in an int32_t, so seeds >= 2^31 start negative; the
        // truncating `/` and `%` of i64 match C's semantics for those.
        let mut word = seed as i32;
        for i in 1..DEG {
            // Schrage's method for 16807 * word mod (2^31 - 1) without overflow.
            let hi = i64::from(word) / 127_773;
            let lo = i64::from(word) % 127_773;
            word = (16_807 * lo - 2_836 * hi) as i32;
            if word < 0 {
                word += 2_147_483_647;
            }
            self.state[i] = word as u32;
        }
        self.front = SEP;
        self.rear = 0;
        // glibc discards 10 * DEG outputs to decorrelate the LCG seeding.
        for _ in 0..DEG * 10 {
            self.next_u32();
        }
    }

    /// One `random_r` output: 31 bits, bit 31 always 0.
    pub fn next_u32(&mut self) -> u32 {
        let val = self.state[self.front].wrapping_add(self.state[self.rear]);
        self.state[self.front] = val;
        // front and rear stay SEP apart modulo DEG, so advancing both modulo DEG is what
        // glibc's pointer juggling amounts to.
        self.front = (self.front + 1) % DEG;
        self.rear = (self.rear + 1) % DEG;
        val >> 1
    }

    /// The device's 64-bit composition: `lo | hi << 32` of the next two outputs, so that
    /// one RNG64 read equals two RNG reads.
    pub fn next_u64(&mut self) -> u64 {
        let lo = u64::from(self.next_u32());
        let hi = u64::from(self.next_u32());
        lo | (hi << 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_zero_is_seed_one() {
        let mut a = GlibcRandom::new(0);
        let mut b = GlibcRandom::new(1);
        for _ in 0..100 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn outputs_are_31_bits() {
        let mut g = GlibcRandom::new(0xdead_beef);
        assert!((0..10_000).all(|_| g.next_u32() >> 31 == 0));
    }
}
