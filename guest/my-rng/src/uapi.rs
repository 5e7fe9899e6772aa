//! The driver's user-space ABI (`linux/c/include/uapi/misc/my_rng.h`), mirrored in Rust.
//!
//! Opcodes are computed with rustix's `_IOR`/`_IOW`/`_IOWR` equivalents from the C
//! declarations rather than copied as literals, so a wrong struct size shows up as a
//! mismatch in the unit tests (which compare against the literals of the uapi header comment).

pub use rustix::ioctl::{opcode, Opcode};

/// ioctl group ("type") byte used by every my_rng ioctl.
pub const IOCTL_GROUP: u8 = b'q';

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
pub const SEED_READ_MAX: u32 = 4096;

/// `_IOR('q', 1, __u32)`: next 32-bit value (the seed exercise's RAND_IOCTL).
pub const RAND: Opcode = opcode::read::<u32>(IOCTL_GROUP, 1);
/// `_IOW('q', 1, __u32)`: reseed (the seed exercise's SEED_IOCTL).
pub const SEED: Opcode = opcode::write::<u32>(IOCTL_GROUP, 1);
/// `_IOR('q', 2, __u64)`: next 64-bit value.
pub const RAND64: Opcode = opcode::read::<u64>(IOCTL_GROUP, 2);
/// `_IOW('q', 3, __u32)`: select an algorithm (reseeds it with the latched seed).
pub const SET_ALGO: Opcode = opcode::write::<u32>(IOCTL_GROUP, 3);
/// `_IOR('q', 3, __u32)`: current algorithm id.
pub const GET_ALGO: Opcode = opcode::read::<u32>(IOCTL_GROUP, 3);
/// `_IOR('q', 4, struct my_rng_info)`.
pub const INFO: Opcode = opcode::read::<RawInfo>(IOCTL_GROUP, 4);
/// `_IOWR('q', 5, struct my_rng_seed_read)`: seed + read `count` values atomically.
pub const SEED_READ: Opcode = opcode::read_write::<RawSeedRead>(IOCTL_GROUP, 5);

#[cfg(test)]
mod tests {
    use super::*;

    // Literals from the C header's comment (linux/c/include/uapi/misc/my_rng.h), which the
    // driver checks with static_assert; deliberately not derived from the computation above.
    #[test]
    fn opcodes_match_the_c_header() {
        assert_eq!(u64::from(RAND), 0x8004_7101);
        assert_eq!(u64::from(SEED), 0x4004_7101);
        assert_eq!(u64::from(RAND64), 0x8008_7102);
        assert_eq!(u64::from(SET_ALGO), 0x4004_7103);
        assert_eq!(u64::from(GET_ALGO), 0x8004_7103);
        assert_eq!(u64::from(INFO), 0x8010_7104);
        assert_eq!(u64::from(SEED_READ), 0xc010_7105);
    }

    #[test]
    fn struct_layouts_match_the_c_header() {
        assert_eq!(core::mem::size_of::<RawInfo>(), 16);
        assert_eq!(core::mem::size_of::<RawSeedRead>(), 16);
        assert_eq!(core::mem::align_of::<RawSeedRead>(), 8);
        // The size field of each opcode (bits 29..16) is the argument's size.
        assert_eq!((u64::from(INFO) >> 16) & 0x3fff, 16);
        assert_eq!((u64::from(SEED_READ) >> 16) & 0x3fff, 16);
    }
}
