//! BAR0 register map (ABI 2.0) and the pure decoding of a guest access.
//!
//! Offsets are `u64` (QEMU's `hwaddr`), register values `u32`. RNG64 is the only 64-bit
//! register; its value is a `u64`.

use core::fmt;

/// BAR0 size: one 4 KiB page of 32-bit non-prefetchable MMIO.
pub const BAR_SIZE: u64 = 0x1000;

/// RNG (R, 4): next 32-bit output of the current algorithm.
pub const RNG: u64 = 0x00;
/// SEED (W, 4): latch the value and reseed the current algorithm with it.
pub const SEED: u64 = 0x04;
/// ID (R, 4): [`ID_VALUE`].
pub const ID: u64 = 0x08;
/// FEATURES (R, 4): [`FEATURES_VALUE`].
pub const FEATURES: u64 = 0x0c;
/// ALGO (RW, 4): current algorithm id; a valid write selects it and reseeds it from the latch.
pub const ALGO: u64 = 0x10;
/// ALGOS (R, 4): [`ALGOS_VALUE`], bitmask of implemented algorithm ids.
pub const ALGOS: u64 = 0x14;
/// ENTROPY (R, 4): 32 bits of host entropy, independent of the algorithm state.
pub const ENTROPY: u64 = 0x18;
/// RNG64 (R, 8): next 64-bit output of the current algorithm.
pub const RNG64: u64 = 0x20;
/// First offset of the block reserved for a later DMA engine.
pub const DMA_BASE: u64 = 0x40;
/// End (exclusive) of the DMA block: `[DMA_BASE, DMA_END)`.
pub const DMA_END: u64 = 0x80;

/// ID bits 31..16: "MR".
pub const ID_MAGIC: u32 = 0x4d52;
/// ID bits 15..8.
pub const ABI_MAJOR: u32 = 2;
/// ID bits 7..0.
pub const ABI_MINOR: u32 = 0;
/// The value read from ID.
pub const ID_VALUE: u32 = 0x4d52_0200;

/// FEATURES bit: RNG64 register.
pub const FEAT_RNG64: u32 = 1 << 0;
/// FEATURES bit: ALGO/ALGOS registers.
pub const FEAT_ALGO: u32 = 1 << 1;
/// FEATURES bit: ENTROPY register.
pub const FEAT_ENTROPY: u32 = 1 << 2;
/// FEATURES bit: DMA engine (0 in ABI 2.0).
pub const FEAT_DMA: u32 = 1 << 3;
/// The value read from FEATURES in ABI 2.0.
pub const FEATURES_VALUE: u32 = 0x7;
/// The value read from ALGOS: ids 0..=3.
pub const ALGOS_VALUE: u32 = 0xf;

// The composite constants must agree with their parts.
const _: () = assert!(ID_VALUE == (ID_MAGIC << 16) | (ABI_MAJOR << 8) | ABI_MINOR);
const _: () = assert!(FEATURES_VALUE == FEAT_RNG64 | FEAT_ALGO | FEAT_ENTROPY);
const _: () = assert!(FEATURES_VALUE & FEAT_DMA == 0);

/// Direction of a guest access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Guest load.
    Read,
    /// Guest store.
    Write,
}

/// A register of the ABI 2.0 map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Register {
    /// [`RNG`]
    Rng,
    /// [`SEED`]
    Seed,
    /// [`ID`]
    Id,
    /// [`FEATURES`]
    Features,
    /// [`ALGO`]
    Algo,
    /// [`ALGOS`]
    Algos,
    /// [`ENTROPY`]
    Entropy,
    /// [`RNG64`]
    Rng64,
}

impl Register {
    /// Every register, by offset.
    pub const ALL: [Register; 8] = [
        Register::Rng,
        Register::Seed,
        Register::Id,
        Register::Features,
        Register::Algo,
        Register::Algos,
        Register::Entropy,
        Register::Rng64,
    ];

    /// Offset in BAR0.
    pub const fn offset(self) -> u64 {
        match self {
            Register::Rng => RNG,
            Register::Seed => SEED,
            Register::Id => ID,
            Register::Features => FEATURES,
            Register::Algo => ALGO,
            Register::Algos => ALGOS,
            Register::Entropy => ENTROPY,
            Register::Rng64 => RNG64,
        }
    }

    /// Width in bytes: the only access size the register accepts.
    pub const fn size(self) -> u32 {
        match self {
            Register::Rng64 => 8,
            _ => 4,
        }
    }

    /// Whether guest reads are allowed.
    pub const fn readable(self) -> bool {
        !matches!(self, Register::Seed)
    }

    /// Whether guest writes are allowed.
    pub const fn writable(self) -> bool {
        matches!(self, Register::Seed | Register::Algo)
    }

    /// Upper-case name as in the register table.
    pub const fn name(self) -> &'static str {
        match self {
            Register::Rng => "RNG",
            Register::Seed => "SEED",
            Register::Id => "ID",
            Register::Features => "FEATURES",
            Register::Algo => "ALGO",
            Register::Algos => "ALGOS",
            Register::Entropy => "ENTROPY",
            Register::Rng64 => "RNG64",
        }
    }

    /// The register whose bytes `[offset, offset + size)` contain `offset`, if any.
    pub const fn containing(offset: u64) -> Option<Register> {
        let mut i = 0;
        while i < Self::ALL.len() {
            let r = Self::ALL[i];
            if offset >= r.offset() && offset < r.offset() + r.size() as u64 {
                return Some(r);
            }
            i += 1;
        }
        None
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an access is a guest error. Every error has the same effect (logged; a read returns 0
/// and consumes nothing, a write is ignored); the kind only words the log message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessError {
    /// The access does not lie entirely inside BAR0.
    OutOfRange,
    /// The offset is in no register and not in the DMA block.
    Reserved,
    /// The offset is in the DMA block `[DMA_BASE, DMA_END)`, reserved for a later minor version.
    Dma,
    /// Size not in {1, 2, 4, 8}, or not the register's width.
    BadSize,
    /// The offset is inside a register but not at its start.
    Unaligned,
    /// Read of a write-only register (SEED).
    WriteOnly,
    /// Write of a read-only register.
    ReadOnly,
}

impl AccessError {
    /// Short description for guest-error logs.
    pub const fn description(self) -> &'static str {
        match self {
            AccessError::OutOfRange => "access outside BAR0",
            AccessError::Reserved => "reserved offset",
            AccessError::Dma => "DMA block not implemented",
            AccessError::BadSize => "wrong access size",
            AccessError::Unaligned => "access not at a register's start",
            AccessError::WriteOnly => "read of a write-only register",
            AccessError::ReadOnly => "write of a read-only register",
        }
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Decode a guest access of `size` bytes at BAR0 `offset`.
///
/// Checks, first failure wins: size in {1, 2, 4, 8} ([`AccessError::BadSize`]); access
/// inside BAR0 ([`AccessError::OutOfRange`]); offset not in the DMA block
/// ([`AccessError::Dma`]); offset inside a register ([`AccessError::Reserved`]); at its start
/// ([`AccessError::Unaligned`]); size equal to its width ([`AccessError::BadSize`]);
/// direction allowed ([`AccessError::WriteOnly`] / [`AccessError::ReadOnly`]).
pub const fn decode(offset: u64, size: u32, access: Access) -> Result<Register, AccessError> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(AccessError::BadSize);
    }
    // size <= 8, so offset + size only overflows when offset is already out of range.
    if offset >= BAR_SIZE || offset + size as u64 > BAR_SIZE {
        return Err(AccessError::OutOfRange);
    }
    if offset >= DMA_BASE && offset < DMA_END {
        return Err(AccessError::Dma);
    }
    let reg = match Register::containing(offset) {
        Some(r) => r,
        None => return Err(AccessError::Reserved),
    };
    if offset != reg.offset() {
        return Err(AccessError::Unaligned);
    }
    if size != reg.size() {
        return Err(AccessError::BadSize);
    }
    match access {
        Access::Read if !reg.readable() => Err(AccessError::WriteOnly),
        Access::Write if !reg.writable() => Err(AccessError::ReadOnly),
        _ => Ok(reg),
    }
}

/// ABI `(major, minor)` from an ID register value; `None` when the magic is absent, i.e. an
/// ABI 1 device (the seed exercise's RNG+SEED-only device, whose offset 0x08 is undefined).
pub const fn abi_version(id: u32) -> Option<(u32, u32)> {
    if id >> 16 == ID_MAGIC {
        Some(((id >> 8) & 0xff, id & 0xff))
    } else {
        None
    }
}

/// Whether an ALGO write of `value` is valid (selects an implemented algorithm). Invalid
/// values are guest errors: ignored, the current algorithm and its state are kept.
pub const fn algo_write_valid(value: u32) -> bool {
    value < 32 && ALGOS_VALUE & (1 << value) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::{Read, Write};
    use AccessError::*;

    const SIZES: [u32; 4] = [1, 2, 4, 8];

    #[test]
    fn valid_accesses() {
        let ok = [
            (RNG, 4, Read, Register::Rng),
            (SEED, 4, Write, Register::Seed),
            (ID, 4, Read, Register::Id),
            (FEATURES, 4, Read, Register::Features),
            (ALGO, 4, Read, Register::Algo),
            (ALGO, 4, Write, Register::Algo),
            (ALGOS, 4, Read, Register::Algos),
            (ENTROPY, 4, Read, Register::Entropy),
            (RNG64, 8, Read, Register::Rng64),
        ];
        for (off, size, dir, reg) in ok {
            assert_eq!(decode(off, size, dir), Ok(reg), "{off:#x}/{size}/{dir:?}");
        }
    }

    /// Exhaustive over offsets 0..BAR_SIZE + 16, sizes 0..=16 and both directions: exactly
    /// the nine (offset, size, direction) triples above decode, nothing else.
    #[test]
    fn only_the_table_decodes() {
        let mut n_ok = 0;
        for off in 0..BAR_SIZE + 16 {
            for size in 0..=16 {
                for dir in [Read, Write] {
                    if let Ok(reg) = decode(off, size, dir) {
                        n_ok += 1;
                        assert_eq!(reg.offset(), off);
                        assert_eq!(reg.size(), size);
                        let allowed = match dir {
                            Read => reg.readable(),
                            Write => reg.writable(),
                        };
                        assert!(allowed);
                    }
                }
            }
        }
        assert_eq!(n_ok, 9);
    }

    #[test]
    fn direction_errors() {
        assert_eq!(decode(SEED, 4, Read), Err(WriteOnly));
        for off in [RNG, ID, FEATURES, ALGOS, ENTROPY] {
            assert_eq!(decode(off, 4, Write), Err(ReadOnly), "{off:#x}");
        }
        assert_eq!(decode(RNG64, 8, Write), Err(ReadOnly));
    }

    #[test]
    fn register_starts_with_other_sizes() {
        for reg in Register::ALL {
            for size in SIZES {
                for dir in [Read, Write] {
                    let r = decode(reg.offset(), size, dir);
                    if size != reg.size() {
                        assert_eq!(r, Err(BadSize), "{reg} size {size} {dir:?}");
                    }
                }
            }
        }
        // 8-byte access at a 4-byte register: BadSize, not "spills into the next one".
        assert_eq!(decode(RNG, 8, Read), Err(BadSize));
        assert_eq!(decode(ENTROPY, 8, Read), Err(BadSize));
        assert_eq!(decode(RNG64, 4, Read), Err(BadSize));
    }

    #[test]
    fn inside_a_register_is_unaligned() {
        for reg in Register::ALL {
            for delta in 1..u64::from(reg.size()) {
                for size in SIZES {
                    for dir in [Read, Write] {
                        assert_eq!(
                            decode(reg.offset() + delta, size, dir),
                            Err(Unaligned),
                            "{reg}+{delta} size {size} {dir:?}"
                        );
                    }
                }
            }
        }
        // The upper half of RNG64 is not a 32-bit register.
        assert_eq!(decode(RNG64 + 4, 4, Read), Err(Unaligned));
    }

    #[test]
    fn reserved_offsets() {
        let reserved = (0x1c..0x20).chain(0x28..0x40).chain(0x80..BAR_SIZE - 8);
        for off in reserved {
            for size in SIZES {
                for dir in [Read, Write] {
                    assert_eq!(decode(off, size, dir), Err(Reserved), "{off:#x}");
                }
            }
        }
        // Last bytes of the BAR: reserved as long as the access fits.
        assert_eq!(decode(BAR_SIZE - 1, 1, Read), Err(Reserved));
        assert_eq!(decode(BAR_SIZE - 4, 4, Write), Err(Reserved));
        assert_eq!(decode(BAR_SIZE - 8, 8, Read), Err(Reserved));
    }

    #[test]
    fn dma_block() {
        for off in DMA_BASE..DMA_END {
            for size in SIZES {
                for dir in [Read, Write] {
                    assert_eq!(decode(off, size, dir), Err(Dma), "{off:#x}");
                }
            }
        }
        assert_eq!(decode(DMA_BASE - 4, 4, Read), Err(Reserved));
        assert_eq!(decode(DMA_END, 4, Read), Err(Reserved));
    }

    #[test]
    fn out_of_range() {
        for size in SIZES {
            for dir in [Read, Write] {
                assert_eq!(decode(BAR_SIZE, size, dir), Err(OutOfRange));
                assert_eq!(decode(u64::MAX, size, dir), Err(OutOfRange));
                assert_eq!(decode(u64::MAX - 3, size, dir), Err(OutOfRange));
                // Straddling the end of the BAR.
                if size > 1 {
                    assert_eq!(decode(BAR_SIZE - 1, size, dir), Err(OutOfRange));
                }
            }
        }
        assert_eq!(decode(BAR_SIZE - 4, 8, Read), Err(OutOfRange));
    }

    #[test]
    fn bad_sizes_first() {
        for size in [0, 3, 5, 6, 7, 9, 16, u32::MAX] {
            for off in [RNG, SEED, RNG64, 0x1c, DMA_BASE, BAR_SIZE] {
                assert_eq!(decode(off, size, Read), Err(BadSize));
                assert_eq!(decode(off, size, Write), Err(BadSize));
            }
        }
    }

    #[test]
    fn id_decoding() {
        assert_eq!(abi_version(ID_VALUE), Some((ABI_MAJOR, ABI_MINOR)));
        assert_eq!(abi_version(ID_VALUE), Some((2, 0)));
        assert_eq!(abi_version(0x4d52_0301), Some((3, 1)));
        // What a v1 device may return at 0x08: 0, or a rand() value.
        assert_eq!(abi_version(0), None);
        assert_eq!(abi_version(1_804_289_383), None);
        assert_eq!(abi_version(0x524d_0200), None);
    }

    #[test]
    fn algo_values() {
        for v in 0..4 {
            assert!(algo_write_valid(v));
        }
        for v in [4, 5, 31, 32, 33, u32::MAX] {
            assert!(!algo_write_valid(v), "{v}");
        }
    }

    #[test]
    fn register_metadata() {
        let mut prev_end = 0;
        for r in Register::ALL {
            assert!(r.offset() >= prev_end, "registers overlap");
            assert_eq!(r.offset() % u64::from(r.size()), 0, "naturally aligned");
            assert!(r.readable() || r.writable());
            assert_eq!(Register::containing(r.offset()), Some(r));
            prev_end = r.offset() + u64::from(r.size());
        }
        assert!(prev_end <= DMA_BASE);
    }
}
