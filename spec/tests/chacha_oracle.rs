//! Oracle: rand_chacha's ChaCha20Rng (stream 0) and the RFC 8439 block-function test vectors
//! against `my_rng_spec::chacha`.

mod common;

use common::{seeds, SEEDS};
use my_rng_spec::chacha::{block, key_from_seed, ChaCha20};
use my_rng_spec::{Algorithm, Generator};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

/// The device's key computed independently: rand_xoshiro's SplitMix64 filling 32 bytes
/// (it writes each u64 output little-endian).
fn oracle_key(seed: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    SplitMix64::seed_from_u64(u64::from(seed)).fill_bytes(&mut key);
    key
}

fn le_words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn key_layout_matches_splitmix_bytes() {
    for seed in SEEDS {
        assert_eq!(key_from_seed(seed).to_vec(), le_words(&oracle_key(seed)));
    }
}

#[test]
fn u32_matches_rand_chacha() {
    for seed in seeds() {
        // 5000 words cross many 16-word blocks (and rand_chacha's 4-block buffers).
        let n = if SEEDS.contains(&seed) { 5000 } else { 100 };
        let mut theirs = ChaCha20Rng::from_seed(oracle_key(seed));
        let mut ours = Generator::new(Algorithm::ChaCha20, seed).unwrap();
        for i in 0..n {
            assert_eq!(ours.next_u32(), theirs.next_u32(), "seed {seed:#x} #{i}");
        }
    }
}

#[test]
fn u64_matches_rand_chacha() {
    for seed in seeds() {
        let n = if SEEDS.contains(&seed) { 5000 } else { 100 };
        let mut theirs = ChaCha20Rng::from_seed(oracle_key(seed));
        let mut ours = Generator::new(Algorithm::ChaCha20, seed).unwrap();
        for i in 0..n {
            assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed:#x} #{i}");
        }
    }
}

#[test]
fn interleaved_reads_match_rand_chacha() {
    // Odd numbers of u32 reads put u64 reads across block boundaries.
    for seed in SEEDS {
        let mut theirs = ChaCha20Rng::from_seed(oracle_key(seed));
        let mut ours = ChaCha20::new(seed);
        for i in 0..3000u32 {
            if i.count_ones() % 2 == 0 {
                assert_eq!(ours.next_u32(), theirs.next_u32(), "seed {seed:#x} #{i}");
            } else {
                assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed:#x} #{i}");
            }
        }
    }
}

#[test]
fn from_seed_bytes_matches_rand_chacha() {
    let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 3) as u8);
    let mut theirs = ChaCha20Rng::from_seed(key);
    let mut ours = ChaCha20::from_seed_bytes(key);
    for _ in 0..1000 {
        assert_eq!(ours.next_u32(), theirs.next_u32());
    }
}

/// RFC 8439 2.3.2: key 00:01:..:1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block count 1.
#[test]
fn rfc8439_2_3_2() {
    let key: Vec<u8> = (0u8..32).collect();
    let key: [u32; 8] = le_words(&key).try_into().unwrap();
    // 96-bit nonce words (LE) 0x09000000, 0x4a000000, 0: the first is state word 13, which
    // this layout calls the counter's high half.
    let counter = 1 | (0x0900_0000u64 << 32);
    let out = block(&key, counter, [0x4a00_0000, 0]);
    let want = [
        0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3, 0xc7f4d1c7, 0x0368c033, 0x9aaa2204,
        0x4e6cd4c3, 0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9, 0xd19c12b5, 0xb94e16de,
        0xe883d0cb, 0x4e3c50a2,
    ];
    assert_eq!(out, want);
    // And the serialized block printed there.
    let serialized = hex(concat!(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e",
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    ));
    assert_eq!(le_words(&serialized), want.to_vec());
}

/// RFC 8439 A.1, test vectors #1..#5 (keystream bytes of one block).
#[test]
fn rfc8439_a_1() {
    // (key hex, 96-bit nonce hex, 32-bit block counter, keystream hex)
    let cases = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
            0u32,
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
            1,
            "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed\
             29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000001",
            "000000000000000000000000",
            1,
            "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a\
             8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0",
        ),
        (
            "00ff000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
            2,
            "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca\
             13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000002",
            0,
            "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7\
             8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d",
        ),
    ];
    for (i, (key, nonce, count, stream)) in cases.into_iter().enumerate() {
        let key: [u32; 8] = le_words(&hex(key)).try_into().unwrap();
        let n = le_words(&hex(nonce));
        let counter = u64::from(count) | (u64::from(n[0]) << 32);
        let out = block(&key, counter, [n[1], n[2]]);
        assert_eq!(
            out.to_vec(),
            le_words(&hex(stream)),
            "A.1 test vector #{}",
            i + 1
        );
    }
}

/// RFC 8439 A.1 #1 and #2 are blocks 0 and 1 of the all-zero key: the keystream reader
/// must produce them in order.
#[test]
fn keystream_reader_zero_key() {
    let mut g = ChaCha20::from_key([0; 8], [0, 0]);
    let words: Vec<u32> = (0..32).map(|_| g.next_u32()).collect();
    let want = hex(concat!(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7",
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed",
        "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"
    ));
    assert_eq!(words, le_words(&want));
}
