//! BAR0 register map (ABI 2.1) and the pure decoding of a guest access.
//!
//! Offsets are `u64` (QEMU's `hwaddr`), register values `u32`. RNG64 is the only 64-bit
//! register; its value is a `u64`. The DMA engine's behaviour is modelled in [`crate::dma`];
//! this module holds its register layout: offsets, limits and the bits of DMA_CMD,
//! DMA_STATUS and IRQ_STATUS/IRQ_ENABLE.

use core::fmt;

/// PCI vendor id: QEMU's (`PCI_VENDOR_ID_QEMU`, not in Linux's pci_ids.h).
pub const PCI_VENDOR_ID: u16 = 0x1234;
/// PCI device id of my-rng.
pub const PCI_DEVICE_ID: u16 = 0xcafe;
/// PCI revision id (the seed exercise's 0x10, kept by every ABI).
pub const PCI_REVISION: u8 = 0x10;
/// PCI class code (base class and subclass; programming interface 0).
pub const PCI_CLASS: u16 = 0x00ff;

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

/// DMA_ADDR_LO (RW, 4): bus address of the segment list, bits 31..0.
pub const DMA_ADDR_LO: u64 = 0x40;
/// DMA_ADDR_HI (RW, 4): bus address of the segment list, bits 63..32.
pub const DMA_ADDR_HI: u64 = 0x44;
/// DMA_COUNT (RW, 4): number of segments in the list.
pub const DMA_COUNT: u64 = 0x48;
/// DMA_CMD (W, 4): command ([`DMA_CMD_FILL`], [`DMA_CMD_FILL_HOST`], [`DMA_CMD_ABORT`]).
pub const DMA_CMD: u64 = 0x4c;
/// DMA_STATUS (R, 4): state, REJECTED, error code and SEGS_DONE ([`DmaStatus`]).
pub const DMA_STATUS: u64 = 0x50;
/// DMA_BYTES (R, 4): bytes written to guest memory by the current or last command.
pub const DMA_BYTES: u64 = 0x54;
/// DMA_MAX_SEGS (R, 4): [`DMA_MAX_SEGS_VALUE`].
pub const DMA_MAX_SEGS: u64 = 0x58;
/// DMA_MAX_BYTES (R, 4): [`DMA_MAX_BYTES_VALUE`].
pub const DMA_MAX_BYTES: u64 = 0x5c;
/// IRQ_STATUS (RW1C, 4): pending interrupt causes ([`IRQ_DMA_DONE`]).
pub const IRQ_STATUS: u64 = 0x60;
/// IRQ_ENABLE (RW, 4): enabled interrupt causes; only [`IRQ_DMA_DONE`] is stored.
pub const IRQ_ENABLE: u64 = 0x64;
/// First offset of the DMA registers (announced by [`FEAT_DMA`]).
pub const DMA_BASE: u64 = DMA_ADDR_LO;
/// End (exclusive) of the DMA registers: `[DMA_BASE, DMA_END)`.
pub const DMA_END: u64 = 0x60;
/// First offset of the interrupt registers (announced by [`FEAT_IRQ`]).
pub const IRQ_BASE: u64 = IRQ_STATUS;
/// End (exclusive) of the interrupt registers; `[IRQ_END, BAR_SIZE)` is reserved.
pub const IRQ_END: u64 = 0x68;

/// ID bits 31..16: "MR".
pub const ID_MAGIC: u32 = 0x4d52;
/// Where the magic starts in ID.
pub const ID_MAGIC_SHIFT: u32 = 16;
/// Where the major version starts in ID; the minor one is bits 7..0.
pub const ID_MAJOR_SHIFT: u32 = 8;
/// Width of each version field of ID.
pub const ID_VERSION_MASK: u32 = 0xff;
/// ID bits 15..8.
pub const ABI_MAJOR: u32 = 2;
/// ID bits 7..0.
pub const ABI_MINOR: u32 = 1;
/// The value read from ID.
pub const ID_VALUE: u32 = 0x4d52_0201;

/// FEATURES bit: RNG64 register.
pub const FEAT_RNG64: u32 = 1 << 0;
/// FEATURES bit: ALGO/ALGOS registers.
pub const FEAT_ALGO: u32 = 1 << 1;
/// FEATURES bit: ENTROPY register.
pub const FEAT_ENTROPY: u32 = 1 << 2;
/// FEATURES bit: DMA engine (registers `[DMA_BASE, DMA_END)`, segment-list commands).
pub const FEAT_DMA: u32 = 1 << 3;
/// FEATURES bit: IRQ_STATUS/IRQ_ENABLE, an MSI capability (1 vector, 64-bit) and INTA#.
pub const FEAT_IRQ: u32 = 1 << 4;
/// Every FEATURES bit with its name (`FEAT_<name>`), lowest first.
pub const FEATURE_BITS: [(&str, u32); 5] = [
    ("RNG64", FEAT_RNG64),
    ("ALGO", FEAT_ALGO),
    ("ENTROPY", FEAT_ENTROPY),
    ("DMA", FEAT_DMA),
    ("IRQ", FEAT_IRQ),
];
/// The value read from FEATURES in ABI 2.1.
pub const FEATURES_VALUE: u32 = 0x1f;
/// The value read from ALGOS: ids 0..=3.
pub const ALGOS_VALUE: u32 = 0xf;

/// The value read from DMA_MAX_SEGS: the largest valid DMA_COUNT.
pub const DMA_MAX_SEGS_VALUE: u32 = 512;
/// The value read from DMA_MAX_BYTES (1 MiB): the largest segment length and the largest
/// sum of the segment lengths of one command.
pub const DMA_MAX_BYTES_VALUE: u32 = 0x10_0000;
/// Size in bytes of one segment-list entry (`u64 addr, u32 len, u32 flags`, little-endian).
pub const DMA_SEG_SIZE: u64 = 16;
/// Offset of a list entry's `u64` bus address.
pub const DMA_SEG_ADDR: u64 = 0;
/// Offset of a list entry's `u32` length.
pub const DMA_SEG_LEN: u64 = 8;
/// Offset of a list entry's `u32` flags (reserved, 0).
pub const DMA_SEG_FLAGS: u64 = 12;

/// DMA_CMD bit 0: START a command.
pub const DMA_CMD_START: u32 = 1 << 0;
/// DMA_CMD bit 1: with START, the source is host entropy instead of the current algorithm.
pub const DMA_CMD_SRC_HOST: u32 = 1 << 1;
/// DMA_CMD bit 2 (and command value): ABORT the running command.
pub const DMA_CMD_ABORT: u32 = 1 << 2;
/// DMA_CMD value FILL: fill the segments from the current algorithm.
pub const DMA_CMD_FILL: u32 = DMA_CMD_START;
/// DMA_CMD value FILL_HOST: fill the segments with host entropy.
pub const DMA_CMD_FILL_HOST: u32 = DMA_CMD_START | DMA_CMD_SRC_HOST;

/// DMA_STATUS bits 1..0: STATE.
pub const DMA_STATUS_STATE_MASK: u32 = 0x3;
/// STATE 0: no command since reset.
pub const DMA_STATE_IDLE: u32 = 0;
/// STATE 1: a command is running.
pub const DMA_STATE_BUSY: u32 = 1;
/// STATE 2: the last command completed.
pub const DMA_STATE_DONE: u32 = 2;
/// STATE 3: the last command ended with the error in bits 15..8.
pub const DMA_STATE_ERROR: u32 = 3;
/// DMA_STATUS bit 2: a START (or any command but ABORT) arrived while BUSY and was refused.
pub const DMA_STATUS_REJECTED: u32 = 1 << 2;
/// DMA_STATUS bits 15..8: error code ([`DmaError::code`]), 0 unless STATE is ERROR.
pub const DMA_STATUS_ERROR_SHIFT: u32 = 8;
/// Mask of the error code field.
pub const DMA_STATUS_ERROR_MASK: u32 = 0xff << DMA_STATUS_ERROR_SHIFT;
/// DMA_STATUS bits 31..16: SEGS_DONE, the number of leading segments written completely.
pub const DMA_STATUS_SEGS_SHIFT: u32 = 16;
/// Mask of the SEGS_DONE field.
pub const DMA_STATUS_SEGS_MASK: u32 = 0xffff << DMA_STATUS_SEGS_SHIFT;

/// IRQ_STATUS/IRQ_ENABLE bit 0: a DMA command ended.
pub const IRQ_DMA_DONE: u32 = 1 << 0;
/// The bits IRQ_STATUS and IRQ_ENABLE implement; others read 0 and ignore writes.
pub const IRQ_MASK: u32 = IRQ_DMA_DONE;

// The composite constants must agree with their parts.
const _: () =
    assert!(ID_VALUE == (ID_MAGIC << ID_MAGIC_SHIFT) | (ABI_MAJOR << ID_MAJOR_SHIFT) | ABI_MINOR);
const _: () =
    assert!(FEATURES_VALUE == FEAT_RNG64 | FEAT_ALGO | FEAT_ENTROPY | FEAT_DMA | FEAT_IRQ);
// The named list has every bit, lowest first.
const _: () = {
    let (mut i, mut all) = (0, 0);
    while i < FEATURE_BITS.len() {
        assert!(FEATURE_BITS[i].1 == 1 << i);
        all |= FEATURE_BITS[i].1;
        i += 1;
    }
    assert!(all == FEATURES_VALUE);
};
// 2.1 keeps every 2.0 feature bit (a 2.0 driver works unchanged).
const _: () = assert!(FEATURES_VALUE & 0x7 == 0x7);
const _: () = assert!(DMA_CMD_FILL == 0x1 && DMA_CMD_FILL_HOST == 0x3 && DMA_CMD_ABORT == 0x4);
// SEGS_DONE (16 bits) holds every segment count; a whole list fits in the 16-bit count.
const _: () = assert!(DMA_MAX_SEGS_VALUE <= 0xffff);
// DMA_BYTES (32 bits) holds every command's byte count.
const _: () = assert!(DMA_MAX_BYTES_VALUE as u64 <= u32::MAX as u64);
const _: () = assert!(DMA_END == IRQ_BASE && IRQ_END <= BAR_SIZE);

/// Direction of a guest access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Guest load.
    Read,
    /// Guest store.
    Write,
}

/// A register of the ABI 2.1 map.
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
    /// [`DMA_ADDR_LO`]
    DmaAddrLo,
    /// [`DMA_ADDR_HI`]
    DmaAddrHi,
    /// [`DMA_COUNT`]
    DmaCount,
    /// [`DMA_CMD`]
    DmaCmd,
    /// [`DMA_STATUS`]
    DmaStatus,
    /// [`DMA_BYTES`]
    DmaBytes,
    /// [`DMA_MAX_SEGS`]
    DmaMaxSegs,
    /// [`DMA_MAX_BYTES`]
    DmaMaxBytes,
    /// [`IRQ_STATUS`]
    IrqStatus,
    /// [`IRQ_ENABLE`]
    IrqEnable,
}

impl Register {
    /// Every register, by offset.
    pub const ALL: [Register; 18] = [
        Register::Rng,
        Register::Seed,
        Register::Id,
        Register::Features,
        Register::Algo,
        Register::Algos,
        Register::Entropy,
        Register::Rng64,
        Register::DmaAddrLo,
        Register::DmaAddrHi,
        Register::DmaCount,
        Register::DmaCmd,
        Register::DmaStatus,
        Register::DmaBytes,
        Register::DmaMaxSegs,
        Register::DmaMaxBytes,
        Register::IrqStatus,
        Register::IrqEnable,
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
            Register::DmaAddrLo => DMA_ADDR_LO,
            Register::DmaAddrHi => DMA_ADDR_HI,
            Register::DmaCount => DMA_COUNT,
            Register::DmaCmd => DMA_CMD,
            Register::DmaStatus => DMA_STATUS,
            Register::DmaBytes => DMA_BYTES,
            Register::DmaMaxSegs => DMA_MAX_SEGS,
            Register::DmaMaxBytes => DMA_MAX_BYTES,
            Register::IrqStatus => IRQ_STATUS,
            Register::IrqEnable => IRQ_ENABLE,
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
        !matches!(self, Register::Seed | Register::DmaCmd)
    }

    /// Whether guest writes are allowed.
    pub const fn writable(self) -> bool {
        matches!(
            self,
            Register::Seed
                | Register::Algo
                | Register::DmaAddrLo
                | Register::DmaAddrHi
                | Register::DmaCount
                | Register::DmaCmd
                | Register::IrqStatus
                | Register::IrqEnable
        )
    }

    /// The FEATURES bit that announces the register; 0 for the ABI 2.0 base registers
    /// (RNG, SEED, ID and FEATURES, which every 2.x device has).
    pub const fn feature(self) -> u32 {
        match self {
            Register::Rng | Register::Seed | Register::Id | Register::Features => 0,
            Register::Algo | Register::Algos => FEAT_ALGO,
            Register::Entropy => FEAT_ENTROPY,
            Register::Rng64 => FEAT_RNG64,
            Register::IrqStatus | Register::IrqEnable => FEAT_IRQ,
            _ => FEAT_DMA,
        }
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
            Register::DmaAddrLo => "DMA_ADDR_LO",
            Register::DmaAddrHi => "DMA_ADDR_HI",
            Register::DmaCount => "DMA_COUNT",
            Register::DmaCmd => "DMA_CMD",
            Register::DmaStatus => "DMA_STATUS",
            Register::DmaBytes => "DMA_BYTES",
            Register::DmaMaxSegs => "DMA_MAX_SEGS",
            Register::DmaMaxBytes => "DMA_MAX_BYTES",
            Register::IrqStatus => "IRQ_STATUS",
            Register::IrqEnable => "IRQ_ENABLE",
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
    /// The offset is in no register.
    Reserved,
    /// Size not in {1, 2, 4, 8}, or not the register's width.
    BadSize,
    /// The offset is inside a register but not at its start.
    Unaligned,
    /// Read of a write-only register (SEED, DMA_CMD).
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
/// inside BAR0 ([`AccessError::OutOfRange`]); offset inside a register
/// ([`AccessError::Reserved`]); at its start ([`AccessError::Unaligned`]); size equal to its
/// width ([`AccessError::BadSize`]); direction allowed ([`AccessError::WriteOnly`] /
/// [`AccessError::ReadOnly`]).
pub const fn decode(offset: u64, size: u32, access: Access) -> Result<Register, AccessError> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(AccessError::BadSize);
    }
    // size <= 8, so offset + size only overflows when offset is already out of range.
    if offset >= BAR_SIZE || offset + size as u64 > BAR_SIZE {
        return Err(AccessError::OutOfRange);
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
    if id >> ID_MAGIC_SHIFT == ID_MAGIC {
        Some((
            (id >> ID_MAJOR_SHIFT) & ID_VERSION_MASK,
            id & ID_VERSION_MASK,
        ))
    } else {
        None
    }
}

/// Whether an ALGO write of `value` is valid (selects an implemented algorithm). Invalid
/// values are guest errors: ignored, the current algorithm and its state are kept.
pub const fn algo_write_valid(value: u32) -> bool {
    value < 32 && ALGOS_VALUE & (1 << value) != 0
}

/// A DMA error code (DMA_STATUS bits 15..8 when STATE is ERROR).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DmaError {
    /// 1: DMA_CMD written with a value that is no command.
    BadCmd = 1,
    /// 2: DMA_COUNT is 0 or greater than [`DMA_MAX_SEGS_VALUE`].
    BadCount = 2,
    /// 3: the list `[addr, addr + 16 * count)` wraps past 2^64.
    ListWrap = 3,
    /// 4: the list is not entirely in guest RAM, or could not be read.
    ListFault = 4,
    /// 5: a segment with len 0, len > [`DMA_MAX_BYTES_VALUE`], flags != 0, or a wrapping end.
    BadSegment = 5,
    /// 6: the segment lengths add up to more than [`DMA_MAX_BYTES_VALUE`].
    TooLong = 6,
    /// 7: part of a segment is not writable guest RAM, or a write failed.
    WriteFault = 7,
    /// 8: bus mastering is off at START or when a chunk is due.
    NoMaster = 8,
    /// 9: ABORT while BUSY.
    Aborted = 9,
}

impl DmaError {
    /// Every error, in code order.
    pub const ALL: [DmaError; 9] = [
        DmaError::BadCmd,
        DmaError::BadCount,
        DmaError::ListWrap,
        DmaError::ListFault,
        DmaError::BadSegment,
        DmaError::TooLong,
        DmaError::WriteFault,
        DmaError::NoMaster,
        DmaError::Aborted,
    ];

    /// The code in DMA_STATUS bits 15..8.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The error with `code`; `None` for 0 and unassigned codes.
    pub const fn from_code(code: u8) -> Option<DmaError> {
        match code {
            1 => Some(DmaError::BadCmd),
            2 => Some(DmaError::BadCount),
            3 => Some(DmaError::ListWrap),
            4 => Some(DmaError::ListFault),
            5 => Some(DmaError::BadSegment),
            6 => Some(DmaError::TooLong),
            7 => Some(DmaError::WriteFault),
            8 => Some(DmaError::NoMaster),
            9 => Some(DmaError::Aborted),
            _ => None,
        }
    }

    /// Upper-case name as in the spec.
    pub const fn name(self) -> &'static str {
        match self {
            DmaError::BadCmd => "BAD_CMD",
            DmaError::BadCount => "BAD_COUNT",
            DmaError::ListWrap => "LIST_WRAP",
            DmaError::ListFault => "LIST_FAULT",
            DmaError::BadSegment => "BAD_SEGMENT",
            DmaError::TooLong => "TOO_LONG",
            DmaError::WriteFault => "WRITE_FAULT",
            DmaError::NoMaster => "NO_MASTER",
            DmaError::Aborted => "ABORTED",
        }
    }

    /// Whether the error is found at START, before anything is written (DMA_BYTES and
    /// SEGS_DONE 0, generator untouched). NO_MASTER is such an error only at START.
    pub const fn before_any_write(self) -> bool {
        (self as u8) <= DmaError::TooLong as u8
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// DMA_STATUS bits 1..0 (STATE), with the error code of the ERROR state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaState {
    /// No command since reset.
    Idle,
    /// A command is running.
    Busy,
    /// The last command completed: every segment written.
    Done,
    /// The last command ended with this error.
    Error(DmaError),
}

/// A DMA_STATUS value, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DmaStatus {
    /// STATE and, for ERROR, the error code.
    pub state: DmaState,
    /// REJECTED: a command other than ABORT was written while BUSY.
    pub rejected: bool,
    /// SEGS_DONE: the number of leading segments written completely.
    pub segs_done: u16,
}

impl DmaStatus {
    /// The value after reset.
    pub const IDLE: DmaStatus = DmaStatus {
        state: DmaState::Idle,
        rejected: false,
        segs_done: 0,
    };

    /// The register value.
    pub const fn value(self) -> u32 {
        let (state, code) = match self.state {
            DmaState::Idle => (DMA_STATE_IDLE, 0),
            DmaState::Busy => (DMA_STATE_BUSY, 0),
            DmaState::Done => (DMA_STATE_DONE, 0),
            DmaState::Error(e) => (DMA_STATE_ERROR, e.code() as u32),
        };
        let rejected = if self.rejected {
            DMA_STATUS_REJECTED
        } else {
            0
        };
        state
            | rejected
            | (code << DMA_STATUS_ERROR_SHIFT)
            | ((self.segs_done as u32) << DMA_STATUS_SEGS_SHIFT)
    }

    /// Decode a register value; `None` if it is not one a device may show: a reserved bit
    /// (7..3) set, an error code without STATE ERROR, or STATE ERROR with an unassigned code.
    pub const fn from_value(value: u32) -> Option<DmaStatus> {
        let reserved = !(DMA_STATUS_STATE_MASK
            | DMA_STATUS_REJECTED
            | DMA_STATUS_ERROR_MASK
            | DMA_STATUS_SEGS_MASK);
        if value & reserved != 0 {
            return None;
        }
        let code = ((value & DMA_STATUS_ERROR_MASK) >> DMA_STATUS_ERROR_SHIFT) as u8;
        let state = match (value & DMA_STATUS_STATE_MASK, code) {
            (DMA_STATE_IDLE, 0) => DmaState::Idle,
            (DMA_STATE_BUSY, 0) => DmaState::Busy,
            (DMA_STATE_DONE, 0) => DmaState::Done,
            (DMA_STATE_ERROR, c) => match DmaError::from_code(c) {
                Some(e) => DmaState::Error(e),
                None => return None,
            },
            _ => return None,
        };
        Some(DmaStatus {
            state,
            rejected: value & DMA_STATUS_REJECTED != 0,
            segs_done: (value >> DMA_STATUS_SEGS_SHIFT) as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::{Read, Write};
    use AccessError::*;

    const SIZES: [u32; 4] = [1, 2, 4, 8];

    /// The register table of the spec, written out independently of [`Register`]:
    /// (offset, size, readable, writable).
    const TABLE: [(u64, u32, bool, bool); 18] = [
        (0x000, 4, true, false), // RNG
        (0x004, 4, false, true), // SEED
        (0x008, 4, true, false), // ID
        (0x00c, 4, true, false), // FEATURES
        (0x010, 4, true, true),  // ALGO
        (0x014, 4, true, false), // ALGOS
        (0x018, 4, true, false), // ENTROPY
        (0x020, 8, true, false), // RNG64
        (0x040, 4, true, true),  // DMA_ADDR_LO
        (0x044, 4, true, true),  // DMA_ADDR_HI
        (0x048, 4, true, true),  // DMA_COUNT
        (0x04c, 4, false, true), // DMA_CMD
        (0x050, 4, true, false), // DMA_STATUS
        (0x054, 4, true, false), // DMA_BYTES
        (0x058, 4, true, false), // DMA_MAX_SEGS
        (0x05c, 4, true, false), // DMA_MAX_BYTES
        (0x060, 4, true, true),  // IRQ_STATUS
        (0x064, 4, true, true),  // IRQ_ENABLE
    ];

    /// The access rules of the spec, evaluated on [`TABLE`].
    fn expected(off: u64, size: u32, dir: Access) -> Result<u64, AccessError> {
        if ![1, 2, 4, 8].contains(&size) {
            return Err(BadSize);
        }
        if off >= 0x1000 || off + u64::from(size) > 0x1000 {
            return Err(OutOfRange);
        }
        let Some(&(start, width, r, w)) = TABLE
            .iter()
            .find(|(start, width, _, _)| (*start..start + u64::from(*width)).contains(&off))
        else {
            return Err(Reserved);
        };
        if off != start {
            return Err(Unaligned);
        }
        if size != width {
            return Err(BadSize);
        }
        match dir {
            Read if !r => Err(WriteOnly),
            Write if !w => Err(ReadOnly),
            _ => Ok(start),
        }
    }

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
            (DMA_ADDR_LO, 4, Read, Register::DmaAddrLo),
            (DMA_ADDR_LO, 4, Write, Register::DmaAddrLo),
            (DMA_ADDR_HI, 4, Read, Register::DmaAddrHi),
            (DMA_ADDR_HI, 4, Write, Register::DmaAddrHi),
            (DMA_COUNT, 4, Read, Register::DmaCount),
            (DMA_COUNT, 4, Write, Register::DmaCount),
            (DMA_CMD, 4, Write, Register::DmaCmd),
            (DMA_STATUS, 4, Read, Register::DmaStatus),
            (DMA_BYTES, 4, Read, Register::DmaBytes),
            (DMA_MAX_SEGS, 4, Read, Register::DmaMaxSegs),
            (DMA_MAX_BYTES, 4, Read, Register::DmaMaxBytes),
            (IRQ_STATUS, 4, Read, Register::IrqStatus),
            (IRQ_STATUS, 4, Write, Register::IrqStatus),
            (IRQ_ENABLE, 4, Read, Register::IrqEnable),
            (IRQ_ENABLE, 4, Write, Register::IrqEnable),
        ];
        for (off, size, dir, reg) in ok {
            assert_eq!(decode(off, size, dir), Ok(reg), "{off:#x}/{size}/{dir:?}");
        }
    }

    /// Exhaustive over offsets 0..BAR_SIZE + 16, sizes 0..=16 and both directions: exactly
    /// the 24 (offset, size, direction) triples above decode, nothing else.
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
        assert_eq!(n_ok, 24);
    }

    /// Every offset of the BAR (and past it), every size 0..=16 and both directions are
    /// classified exactly as the spec's rules say on the independently written table.
    #[test]
    fn every_access_classified() {
        for off in (0..BAR_SIZE + 16).chain([u64::MAX - 8, u64::MAX - 3, u64::MAX]) {
            for size in (0..=16).chain([u32::MAX]) {
                for dir in [Read, Write] {
                    let got = decode(off, size, dir).map(Register::offset);
                    assert_eq!(got, expected(off, size, dir), "{off:#x}/{size}/{dir:?}");
                }
            }
        }
    }

    #[test]
    fn direction_errors() {
        assert_eq!(decode(SEED, 4, Read), Err(WriteOnly));
        assert_eq!(decode(DMA_CMD, 4, Read), Err(WriteOnly));
        for off in [
            RNG,
            ID,
            FEATURES,
            ALGOS,
            ENTROPY,
            DMA_STATUS,
            DMA_BYTES,
            DMA_MAX_SEGS,
            DMA_MAX_BYTES,
        ] {
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
        // The 64-bit list address is two 32-bit registers, not one 64-bit one.
        assert_eq!(decode(DMA_ADDR_LO, 8, Write), Err(BadSize));
        assert_eq!(decode(IRQ_ENABLE, 8, Read), Err(BadSize));
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
        let reserved = (0x1c..0x20).chain(0x28..0x40).chain(IRQ_END..BAR_SIZE - 8);
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

    /// ABI 2.0 reported the whole of 0x040-0x07f as "DMA block"; in 2.1 the registers decode
    /// and the rest of that block is an ordinary reserved hole.
    #[test]
    fn dma_and_irq_block() {
        for off in 0x68..0x80 {
            for size in SIZES {
                for dir in [Read, Write] {
                    assert_eq!(decode(off, size, dir), Err(Reserved), "{off:#x}");
                }
            }
        }
        for reg in Register::ALL {
            let in_dma = (DMA_BASE..DMA_END).contains(&reg.offset());
            let in_irq = (IRQ_BASE..IRQ_END).contains(&reg.offset());
            assert_eq!(in_dma, reg.feature() == FEAT_DMA, "{reg}");
            assert_eq!(in_irq, reg.feature() == FEAT_IRQ, "{reg}");
        }
        // Every offset of the two blocks belongs to a register.
        for off in DMA_BASE..IRQ_END {
            assert!(Register::containing(off).is_some(), "{off:#x}");
        }
        assert_eq!(decode(DMA_BASE - 4, 4, Read), Err(Reserved));
        assert_eq!(decode(IRQ_END, 4, Read), Err(Reserved));
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
            for off in [RNG, SEED, RNG64, 0x1c, DMA_BASE, DMA_CMD, 0x68, BAR_SIZE] {
                assert_eq!(decode(off, size, Read), Err(BadSize));
                assert_eq!(decode(off, size, Write), Err(BadSize));
            }
        }
    }

    #[test]
    fn id_decoding() {
        assert_eq!(abi_version(ID_VALUE), Some((ABI_MAJOR, ABI_MINOR)));
        assert_eq!(abi_version(ID_VALUE), Some((2, 1)));
        assert_eq!(ID_VALUE, 0x4d52_0201);
        assert_eq!(abi_version(0x4d52_0200), Some((2, 0)));
        assert_eq!(abi_version(0x4d52_0301), Some((3, 1)));
        // What a v1 device may return at 0x08: 0, or a rand() value.
        assert_eq!(abi_version(0), None);
        assert_eq!(abi_version(1_804_289_383), None);
        assert_eq!(abi_version(0x524d_0200), None);
    }

    #[test]
    fn feature_bits() {
        assert_eq!(FEATURES_VALUE, 0x1f);
        assert_eq!(
            [FEAT_RNG64, FEAT_ALGO, FEAT_ENTROPY, FEAT_DMA, FEAT_IRQ],
            [0x01, 0x02, 0x04, 0x08, 0x10]
        );
        for reg in Register::ALL {
            assert_eq!(FEATURES_VALUE & reg.feature(), reg.feature(), "{reg}");
        }
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
        for (r, t) in Register::ALL.into_iter().zip(TABLE) {
            assert!(r.offset() >= prev_end, "registers overlap");
            assert_eq!(r.offset() % u64::from(r.size()), 0, "naturally aligned");
            assert!(r.readable() || r.writable());
            assert_eq!(Register::containing(r.offset()), Some(r));
            assert_eq!((r.offset(), r.size(), r.readable(), r.writable()), t, "{r}");
            prev_end = r.offset() + u64::from(r.size());
        }
        assert_eq!(prev_end, IRQ_END);
        let names: [&str; 18] = core::array::from_fn(|i| Register::ALL[i].name());
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "duplicate name {n}");
        }
    }

    #[test]
    fn dma_constants() {
        assert_eq!(DMA_MAX_SEGS_VALUE, 512);
        assert_eq!(DMA_MAX_BYTES_VALUE, 1 << 20);
        assert_eq!(DMA_SEG_SIZE, 16);
        assert_eq!((DMA_CMD_START, DMA_CMD_SRC_HOST, DMA_CMD_ABORT), (1, 2, 4));
        assert_eq!((DMA_CMD_FILL, DMA_CMD_FILL_HOST), (1, 3));
        assert_eq!(IRQ_DMA_DONE, 1);
        assert_eq!(IRQ_MASK, 1);
    }

    #[test]
    fn dma_error_codes() {
        for (i, e) in DmaError::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(e.code()), i + 1, "{e}");
            assert_eq!(DmaError::from_code(e.code()), Some(e));
            assert_eq!(e.before_any_write(), e.code() <= 6, "{e}");
        }
        for c in [0, 10, 0x7f, 0xff] {
            assert_eq!(DmaError::from_code(c), None, "{c}");
        }
        let names = DmaError::ALL.map(DmaError::name);
        assert_eq!(
            names,
            [
                "BAD_CMD",
                "BAD_COUNT",
                "LIST_WRAP",
                "LIST_FAULT",
                "BAD_SEGMENT",
                "TOO_LONG",
                "WRITE_FAULT",
                "NO_MASTER",
                "ABORTED"
            ]
        );
    }

    #[test]
    fn dma_status_layout() {
        assert_eq!(DmaStatus::IDLE.value(), 0);
        let s = |state, rejected, segs_done| DmaStatus {
            state,
            rejected,
            segs_done,
        };
        assert_eq!(s(DmaState::Busy, false, 0).value(), 0x1);
        assert_eq!(s(DmaState::Done, false, 512).value(), 0x0200_0002);
        assert_eq!(s(DmaState::Busy, true, 3).value(), 0x0003_0005);
        assert_eq!(
            s(DmaState::Error(DmaError::WriteFault), false, 2).value(),
            0x0002_0703
        );
        assert_eq!(
            s(DmaState::Error(DmaError::Aborted), true, 0xffff).value(),
            0xffff_0907
        );
        // Round trip over every state, REJECTED and a spread of SEGS_DONE.
        let states = [DmaState::Idle, DmaState::Busy, DmaState::Done]
            .into_iter()
            .chain(DmaError::ALL.map(DmaState::Error));
        for state in states {
            for rejected in [false, true] {
                for segs in [0, 1, 511, 512, 0xffff] {
                    let st = s(state, rejected, segs);
                    assert_eq!(DmaStatus::from_value(st.value()), Some(st), "{st:?}");
                }
            }
        }
        // Values no device shows.
        for v in [
            0x8, 0x10, 0x80, 0x0100, 0x0101, 0x0902, 0x0003, 0x0a03, 0xff03,
        ] {
            assert_eq!(DmaStatus::from_value(v), None, "{v:#x}");
        }
    }
}
