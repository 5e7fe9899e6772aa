//! ChaCha20 (Bernstein; block function as in RFC 8439 but with the original 64-bit block
//! counter and 64-bit nonce layout), used as a keystream generator.

use crate::xoshiro::expand_seed;

/// "expand 32-byte k" as four little-endian words: state words 0..3.
pub const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Words per block.
pub const BLOCK_WORDS: usize = 16;

#[inline(always)]
fn quarter_round(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

/// The ChaCha20 block function. Input state: words 0..3 [`CONSTANTS`], 4..11 `key`,
/// 12 counter low, 13 counter high, 14..15 `nonce`. Returns the 16 output words (20 rounds,
/// then the input added word-wise); their little-endian bytes are the keystream block.
///
/// RFC 8439's 32-bit counter and 96-bit nonce map onto this as: counter = counter32 |
/// nonce_word0 << 32, nonce = [nonce_word1, nonce_word2].
pub fn block(key: &[u32; 8], counter: u64, nonce: [u32; 2]) -> [u32; 16] {
    let mut input = [0u32; BLOCK_WORDS];
    input[..4].copy_from_slice(&CONSTANTS);
    input[4..12].copy_from_slice(key);
    input[12] = counter as u32;
    input[13] = (counter >> 32) as u32;
    input[14] = nonce[0];
    input[15] = nonce[1];
    let mut x = input;
    for _ in 0..10 {
        // Column round.
        quarter_round(&mut x, 0, 4, 8, 12);
        quarter_round(&mut x, 1, 5, 9, 13);
        quarter_round(&mut x, 2, 6, 10, 14);
        quarter_round(&mut x, 3, 7, 11, 15);
        // Diagonal round.
        quarter_round(&mut x, 0, 5, 10, 15);
        quarter_round(&mut x, 1, 6, 11, 12);
        quarter_round(&mut x, 2, 7, 8, 13);
        quarter_round(&mut x, 3, 4, 9, 14);
    }
    for (o, i) in x.iter_mut().zip(input) {
        *o = o.wrapping_add(i);
    }
    x
}

/// The device's key for `seed`: the four [`expand_seed`] outputs, each little-endian, i.e.
/// key word 2i = low half and 2i+1 = high half of output i.
pub fn key_from_seed(seed: u32) -> [u32; 8] {
    let w = expand_seed(seed);
    core::array::from_fn(|i| (w[i / 2] >> (32 * (i % 2))) as u32)
}

/// A ChaCha20 keystream reader: successive words of blocks 0, 1, 2, ... (nonce fixed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaCha20 {
    key: [u32; 8],
    nonce: [u32; 2],
    /// Counter of the next block to compute.
    counter: u64,
    buf: [u32; BLOCK_WORDS],
    /// Next unread word of `buf`; `BLOCK_WORDS` when `buf` is used up.
    index: usize,
}

impl ChaCha20 {
    /// The device's generator for `seed`: key [`key_from_seed`], nonce 0, counter 0.
    pub fn new(seed: u32) -> Self {
        Self::from_key(key_from_seed(seed), [0, 0])
    }

    /// Keystream of `key`/`nonce` from block 0.
    pub fn from_key(key: [u32; 8], nonce: [u32; 2]) -> Self {
        ChaCha20 {
            key,
            nonce,
            counter: 0,
            buf: [0; BLOCK_WORDS],
            index: BLOCK_WORDS,
        }
    }

    /// Keystream of a 32-byte key given as bytes (little-endian words), nonce 0.
    pub fn from_seed_bytes(seed: [u8; 32]) -> Self {
        let key = core::array::from_fn(|i| {
            u32::from_le_bytes([
                seed[4 * i],
                seed[4 * i + 1],
                seed[4 * i + 2],
                seed[4 * i + 3],
            ])
        });
        Self::from_key(key, [0, 0])
    }

    /// Restart as [`ChaCha20::new`]`(seed)`.
    pub fn reseed(&mut self, seed: u32) {
        *self = Self::new(seed);
    }

    /// The next keystream word (the RNG value).
    pub fn next_u32(&mut self) -> u32 {
        if self.index == BLOCK_WORDS {
            self.buf = block(&self.key, self.counter, self.nonce);
            // Wraps after 2^64 blocks (2^70 bytes): unreachable in practice.
            self.counter = self.counter.wrapping_add(1);
            self.index = 0;
        }
        let w = self.buf[self.index];
        self.index += 1;
        w
    }

    /// `lo | hi << 32` of the next two keystream words (the RNG64 value); may straddle a
    /// block boundary.
    pub fn next_u64(&mut self) -> u64 {
        let lo = u64::from(self.next_u32());
        let hi = u64::from(self.next_u32());
        lo | (hi << 32)
    }
}
