//! The drivers' user-space ABI (`<uapi/misc/my_rng.h>`): ioctl numbers, argument structures
//! and limits, shared by the C driver, the Rust driver and the guest programs.
//!
//! Numbers follow Linux's generic `_IOC` layout (x86, arm, riscv, ...): direction in bits
//! 31..30, argument size in 29..16, type in 15..8, number in 7..0. RAND and SEED are the seed
//! exercise's two ioctls and keep its numbers (checked below against the exercise's text).

/// The ioctl type byte of every my_rng ioctl.
pub const IOCTL_TYPE: u8 = b'q';

/// Largest count of `MY_RNG_IOCTL_SEED_READ`.
pub const SEED_READ_MAX: u32 = 4096;

/// Direction of an ioctl's argument, as `_IOC_WRITE`/`_IOC_READ` (user's view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// `_IOW`: the driver reads the argument.
    Write = 1,
    /// `_IOR`: the driver writes the argument.
    Read = 2,
    /// `_IOWR`: both.
    ReadWrite = 3,
}

impl Dir {
    /// The C macro that builds such a number.
    pub const fn c_macro(self) -> &'static str {
        match self {
            Dir::Write => "_IOW",
            Dir::Read => "_IOR",
            Dir::ReadWrite => "_IOWR",
        }
    }
}

/// The argument of an ioctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `__u32`.
    U32,
    /// `__u64`.
    U64,
    /// `struct my_rng_info`: id, features, algos, algo (four `__u32`).
    Info,
    /// `struct my_rng_seed_read`: `__u32` seed, `__u32` count, `__u64` buf.
    SeedRead,
}

impl Arg {
    /// Size in bytes (the same for 32-bit and 64-bit callers: no implicit padding).
    pub const fn size(self) -> u32 {
        match self {
            Arg::U32 => 4,
            Arg::U64 => 8,
            Arg::Info | Arg::SeedRead => 16,
        }
    }

    /// The C type in the uapi header.
    pub const fn c_type(self) -> &'static str {
        match self {
            Arg::U32 => "__u32",
            Arg::U64 => "__u64",
            Arg::Info => "struct my_rng_info",
            Arg::SeedRead => "struct my_rng_seed_read",
        }
    }
}

/// One ioctl of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioctl {
    /// Name after `MY_RNG_IOCTL_`.
    pub name: &'static str,
    /// Direction.
    pub dir: Dir,
    /// Number within [`IOCTL_TYPE`].
    pub nr: u8,
    /// Argument.
    pub arg: Arg,
    /// What it does, for the header's table.
    pub doc: &'static str,
}

impl Ioctl {
    /// The request number: `_IOC(dir, IOCTL_TYPE, nr, size)`.
    pub const fn number(&self) -> u32 {
        ((self.dir as u32) << 30)
            | (self.arg.size() << 16)
            | ((IOCTL_TYPE as u32) << 8)
            | self.nr as u32
    }
}

const fn ioctl(name: &'static str, dir: Dir, nr: u8, arg: Arg, doc: &'static str) -> Ioctl {
    Ioctl {
        name,
        dir,
        nr,
        arg,
        doc,
    }
}

/// `_IOR('q', 1, __u32)`: the next 32-bit value (the seed exercise's RAND).
pub const RAND: Ioctl = ioctl("RAND", Dir::Read, 1, Arg::U32, "read the next 32-bit value");
/// `_IOW('q', 1, __u32)`: seed the current algorithm (the seed exercise's SEED).
pub const SEED: Ioctl = ioctl(
    "SEED",
    Dir::Write,
    1,
    Arg::U32,
    "seed the current algorithm",
);
/// `_IOR('q', 2, __u64)`: the next 64-bit value.
pub const RAND64: Ioctl = ioctl(
    "RAND64",
    Dir::Read,
    2,
    Arg::U64,
    "read the next 64-bit value",
);
/// `_IOW('q', 3, __u32)`: select (and reseed) an algorithm.
pub const SET_ALGO: Ioctl = ioctl(
    "SET_ALGO",
    Dir::Write,
    3,
    Arg::U32,
    "select (and reseed) an algorithm",
);
/// `_IOR('q', 3, __u32)`: the current algorithm id.
pub const GET_ALGO: Ioctl = ioctl("GET_ALGO", Dir::Read, 3, Arg::U32, "current algorithm id");
/// `_IOR('q', 4, struct my_rng_info)`.
pub const INFO: Ioctl = ioctl("INFO", Dir::Read, 4, Arg::Info, "struct my_rng_info");
/// `_IOWR('q', 5, struct my_rng_seed_read)`: seed, then read `count` values, atomically.
pub const SEED_READ: Ioctl = ioctl(
    "SEED_READ",
    Dir::ReadWrite,
    5,
    Arg::SeedRead,
    "struct my_rng_seed_read (16 bytes)",
);

/// Every ioctl, in the header's order.
pub const IOCTLS: [Ioctl; 7] = [RAND, SEED, RAND64, SET_ALGO, GET_ALGO, INFO, SEED_READ];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_exercise_numbers() {
        // From the exercise's app: #define RAND_IOCTL 0x80047101, SEED_IOCTL 0x40047101.
        assert_eq!(RAND.number(), 0x8004_7101);
        assert_eq!(SEED.number(), 0x4004_7101);
    }

    #[test]
    fn numbers_are_distinct_and_sizes_fit() {
        for (i, a) in IOCTLS.iter().enumerate() {
            assert!(a.arg.size() < 1 << 14, "{}", a.name);
            for b in &IOCTLS[i + 1..] {
                assert_ne!(a.number(), b.number(), "{} {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(SEED_READ.number(), 0xc010_7105);
        assert_eq!(INFO.number(), 0x8010_7104);
    }
}
