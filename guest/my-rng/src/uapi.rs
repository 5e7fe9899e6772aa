//! The driver's user-space ABI (`linux/c/include/uapi/misc/my_rng.h`), mirrored in Rust.
//!
//! The numbers are the spec crate's (`my_rng_spec::uapi`, which the C header is generated
//! from); the unit tests compute each again with rustix's `_IOR`/`_IOW`/`_IOWR` equivalents
//! from the structures below, so a wrong structure size shows up as a mismatch.

pub use rustix::ioctl::{opcode, Opcode};

use my_rng_spec::uapi as spec;

/// ioctl group ("type") byte used by every my_rng ioctl.
pub const IOCTL_GROUP: u8 = spec::IOCTL_TYPE;

/// `struct my_rng_info` (returned by [`INFO`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawInfo {
    /// ID register; 0 on a v1 (seed-exercise) device that has no ID register.
    pub id: u32,
    /// FEATURES register.
    pub features: u32,
    /// ALGOS register: bitmask of implemented algorithm ids.
    pub algos: u32,
    /// Current algorithm id.
    pub algo: u32,
}

/// `struct my_rng_seed_read` (argument of [`SEED_READ`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawSeedRead {
    /// Seed written before reading.
    pub seed: u32,
    /// Number of `u32` values to read, 1..=[`SEED_READ_MAX`].
    pub count: u32,
    /// User address of a `u32[count]` buffer (a `__u64` so 32-bit user space has the same layout).
    pub buf: u64,
}

/// Largest `count` accepted by [`SEED_READ`].
pub const SEED_READ_MAX: u32 = spec::SEED_READ_MAX;

/// `_IOR('q', 1, __u32)`: next 32-bit value (the seed exercise's RAND_IOCTL).
pub const RAND: Opcode = spec::RAND.number() as Opcode;
/// `_IOW('q', 1, __u32)`: reseed (the seed exercise's SEED_IOCTL).
pub const SEED: Opcode = spec::SEED.number() as Opcode;
/// `_IOR('q', 2, __u64)`: next 64-bit value.
pub const RAND64: Opcode = spec::RAND64.number() as Opcode;
/// `_IOW('q', 3, __u32)`: select an algorithm (reseeds it with the latched seed).
pub const SET_ALGO: Opcode = spec::SET_ALGO.number() as Opcode;
/// `_IOR('q', 3, __u32)`: current algorithm id.
pub const GET_ALGO: Opcode = spec::GET_ALGO.number() as Opcode;
/// `_IOR('q', 4, struct my_rng_info)`.
pub const INFO: Opcode = spec::INFO.number() as Opcode;
/// `_IOWR('q', 5, struct my_rng_seed_read)`: seed + read `count` values atomically.
pub const SEED_READ: Opcode = spec::SEED_READ.number() as Opcode;

#[cfg(test)]
mod tests {
    use super::*;

    // The seed exercise's two numbers, as its app writes them.
    #[test]
    fn the_seed_exercise_numbers() {
        assert_eq!(u64::from(RAND), 0x8004_7101);
        assert_eq!(u64::from(SEED), 0x4004_7101);
    }

    // Each number again, by rustix from the C declaration and this module's structures.
    #[test]
    fn opcodes_match_the_c_declarations() {
        let g = IOCTL_GROUP;
        assert_eq!(RAND, opcode::read::<u32>(g, 1));
        assert_eq!(SEED, opcode::write::<u32>(g, 1));
        assert_eq!(RAND64, opcode::read::<u64>(g, 2));
        assert_eq!(SET_ALGO, opcode::write::<u32>(g, 3));
        assert_eq!(GET_ALGO, opcode::read::<u32>(g, 3));
        assert_eq!(INFO, opcode::read::<RawInfo>(g, 4));
        assert_eq!(SEED_READ, opcode::read_write::<RawSeedRead>(g, 5));
    }

    #[test]
    fn struct_layouts_match_the_c_header() {
        assert_eq!(core::mem::size_of::<RawInfo>(), 16);
        assert_eq!(core::mem::size_of::<RawSeedRead>(), 16);
        assert_eq!(core::mem::align_of::<RawSeedRead>(), 8);
    }
}
