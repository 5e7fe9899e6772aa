//! Shared by the oracle tests.
#![allow(dead_code)]

/// `vectors::SEEDS`, repeated so the oracle tests also run without feature `std`
/// (`tests/vectors.rs` checks the two agree).
pub const SEEDS: [u32; 7] = [
    0,
    1,
    0x42,
    0x7fff_ffff,
    0x8000_0000,
    0xdead_beef,
    0xffff_ffff,
];

/// SEEDS plus a spread of others, many >= 2^31.
pub fn seeds() -> Vec<u32> {
    let mut s = SEEDS.to_vec();
    // Numerical Recipes LCG: just a reproducible spread.
    let mut x = 0x1234_5678u32;
    for _ in 0..500 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        s.push(x);
    }
    s.extend([
        2,
        3,
        127_773,
        127_774,
        0x7fff_fffe,
        0x8000_0001,
        0xffff_fffe,
    ]);
    s
}
