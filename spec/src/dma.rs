//! The DMA engine of ABI 2.1 (FEATURES.DMA), as a pure model: what a command does to guest
//! memory, DMA_STATUS, DMA_BYTES, the generator and IRQ_STATUS.
//!
//! It is the reference the C device is tested against and the engine of a Rust device model:
//! nothing here knows about threads, timers or a bus. A device owns a [`Dma`], forwards the
//! DMA/IRQ register accesses to it, and calls [`Dma::step`] from its background context
//! (QEMU: a timer) until the command ends, with its guest memory as a [`GuestMemory`] and its
//! current generator (or host entropy) as a [`Rng64`].
//!
//! The pieces can also be used alone: [`Segment`] (one list entry), [`validate`] (the checks
//! at START, in the spec's order), [`ByteStream`] (the FILL byte stream) and [`Transfer`] (one
//! command after START, run step by step).

use core::fmt;

use crate::regs::{
    self, DmaError, DmaState, DmaStatus, Register, DMA_CMD_ABORT, DMA_CMD_FILL, DMA_CMD_FILL_HOST,
    DMA_MAX_BYTES_VALUE, DMA_MAX_SEGS_VALUE, DMA_SEG_ADDR, DMA_SEG_FLAGS, DMA_SEG_LEN,
    DMA_SEG_SIZE, IRQ_DMA_DONE, IRQ_MASK,
};
use crate::Generator;

/// The most segments one command takes (DMA_MAX_SEGS).
pub const MAX_SEGS: usize = DMA_MAX_SEGS_VALUE as usize;
/// The most bytes one segment or one command writes (DMA_MAX_BYTES).
pub const MAX_BYTES: u32 = DMA_MAX_BYTES_VALUE;

/// The device models' step (not ABI): the C device and the Rust one run a command in steps of
/// at most this many bytes, between which register accesses get in (a long command is seen
/// BUSY, can be aborted and migrated in flight).
pub const MODEL_STEP_BYTES: u32 = 0x1_0000;

/// Bytes generated and written per guest-memory write inside a step (a stack buffer: the
/// model allocates nothing).
const PIECE: usize = 512;

/// Whether `[addr, addr + len)` wraps past 2^64, i.e. its last byte is beyond `u64::MAX`. A
/// range ending exactly at 2^64 does not wrap; an empty range never does.
pub const fn wraps(addr: u64, len: u64) -> bool {
    len != 0 && addr.checked_add(len - 1).is_none()
}

/// One segment-list entry: 16 bytes in guest memory, little-endian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Segment {
    /// +0: bus address of the segment.
    pub addr: u64,
    /// +8: length in bytes, 1..=[`MAX_BYTES`].
    pub len: u32,
    /// +12: reserved, must be 0.
    pub flags: u32,
}

impl Segment {
    /// Size of an entry in the list.
    pub const SIZE: usize = DMA_SEG_SIZE as usize;

    /// Parse an entry from its bytes in guest memory.
    pub fn from_le_bytes(b: [u8; Self::SIZE]) -> Segment {
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, f2, f3] = b;
        Segment {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u32::from_le_bytes([f0, f1, f2, f3]),
        }
    }

    /// The entry's bytes in guest memory.
    pub fn to_le_bytes(self) -> [u8; Self::SIZE] {
        let (a, l, f) = (
            DMA_SEG_ADDR as usize,
            DMA_SEG_LEN as usize,
            DMA_SEG_FLAGS as usize,
        );
        let mut b = [0; Self::SIZE];
        b[a..a + 8].copy_from_slice(&self.addr.to_le_bytes());
        b[l..l + 4].copy_from_slice(&self.len.to_le_bytes());
        b[f..f + 4].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// The per-segment check at START: [`DmaError::BadSegment`] for len 0, len >
    /// [`MAX_BYTES`], flags != 0, or `[addr, addr + len)` wrapping past 2^64.
    pub const fn check(self) -> Result<(), DmaError> {
        if self.len == 0 || self.len > MAX_BYTES || self.flags != 0 {
            return Err(DmaError::BadSegment);
        }
        if wraps(self.addr, self.len as u64) {
            return Err(DmaError::BadSegment);
        }
        Ok(())
    }
}

/// Where a FILL's bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// FILL: successive RNG64 outputs of the current algorithm.
    Algorithm,
    /// FILL_HOST: host entropy; the algorithm state is neither read nor changed.
    Host,
}

/// A DMA_CMD value that is a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// 0x1 FILL.
    Fill,
    /// 0x3 FILL_HOST.
    FillHost,
    /// 0x4 ABORT.
    Abort,
}

impl Command {
    /// The command written as `value`; `None` for any other value (BAD_CMD when idle).
    pub const fn from_value(value: u32) -> Option<Command> {
        match value {
            DMA_CMD_FILL => Some(Command::Fill),
            DMA_CMD_FILL_HOST => Some(Command::FillHost),
            DMA_CMD_ABORT => Some(Command::Abort),
            _ => None,
        }
    }

    /// The DMA_CMD value.
    pub const fn value(self) -> u32 {
        match self {
            Command::Fill => DMA_CMD_FILL,
            Command::FillHost => DMA_CMD_FILL_HOST,
            Command::Abort => DMA_CMD_ABORT,
        }
    }

    /// The source of a START command; `None` for ABORT.
    pub const fn source(self) -> Option<Source> {
        match self {
            Command::Fill => Some(Source::Algorithm),
            Command::FillHost => Some(Source::Host),
            Command::Abort => None,
        }
    }
}

/// The device's view of guest memory through its PCI function.
///
/// Ranges are `[addr, addr + len)` with `len >= 1` and never wrap past 2^64 (they may end
/// exactly at 2^64).
pub trait GuestMemory {
    /// Whether bus mastering (PCI COMMAND bit 2) is on: the device may access memory at all.
    fn bus_master(&self) -> bool;
    /// Whether the whole range is guest RAM the device may write: not unmapped, not ROM, not
    /// MMIO of any device (the device's own BAR included).
    fn is_ram(&self, addr: u64, len: u64) -> bool;
    /// Read `buf.len()` bytes at `addr`; `false` if the read failed.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    /// Write `data` at `addr`; `false` if the write failed. Called only on ranges that
    /// [`GuestMemory::is_ram`] accepted earlier in the same step.
    fn write(&mut self, addr: u64, data: &[u8]) -> bool;
}

/// A source of 64-bit outputs: the current generator (FILL of a deterministic algorithm) or
/// host entropy (FILL under algorithm 3, FILL_HOST). Closures `FnMut() -> u64` are sources.
pub trait Rng64 {
    /// The next output: for a generator, exactly what the next RNG64 read would return.
    fn next_u64(&mut self) -> u64;
}

impl Rng64 for Generator {
    fn next_u64(&mut self) -> u64 {
        Generator::next_u64(self)
    }
}

impl<F: FnMut() -> u64> Rng64 for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// The byte stream of one command: the little-endian bytes of successive outputs, continuous
/// across segments and steps. An output is drawn when its first byte is needed, so a stream
/// that has produced `n` bytes has drawn `ceil(n / 8)` outputs; at the end of a command the
/// unused high bytes of the last output are dropped with the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ByteStream {
    buf: [u8; 8],
    /// Bytes of `buf` already produced; 8 when no output is pending.
    pos: u8,
}

impl Default for ByteStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteStream {
    /// A stream at the start of a command (no output pending).
    pub const fn new() -> ByteStream {
        ByteStream {
            buf: [0; 8],
            pos: 8,
        }
    }

    /// A stream whose current output still has `pending` (at most 7) unused bytes, as
    /// returned by [`ByteStream::pending`]; `None` if `pending` is longer.
    pub fn with_pending(pending: &[u8]) -> Option<ByteStream> {
        if pending.len() >= 8 {
            return None;
        }
        let mut s = ByteStream::new();
        s.pos = (8 - pending.len()) as u8;
        s.buf[usize::from(s.pos)..].copy_from_slice(pending);
        Some(s)
    }

    /// The unused bytes of the current output (0 to 7 of them), in stream order.
    pub fn pending(&self) -> &[u8] {
        &self.buf[usize::from(self.pos)..]
    }

    /// Fill `out` with the next bytes of the stream.
    pub fn fill<R: Rng64 + ?Sized>(&mut self, rng: &mut R, out: &mut [u8]) {
        let mut out = out;
        let take = self.pending().len().min(out.len());
        let (head, rest) = out.split_at_mut(take);
        head.copy_from_slice(&self.buf[usize::from(self.pos)..][..take]);
        self.pos += take as u8;
        out = rest;
        let mut words = out.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.buf = rng.next_u64().to_le_bytes();
            tail.copy_from_slice(&self.buf[..tail.len()]);
            self.pos = tail.len() as u8;
        }
    }
}

/// The segment list as latched at START (the device copies the whole list then).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SegmentList {
    segs: [Segment; MAX_SEGS],
    len: u16,
}

impl fmt::Debug for SegmentList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl SegmentList {
    const EMPTY: SegmentList = SegmentList {
        segs: [Segment {
            addr: 0,
            len: 0,
            flags: 0,
        }; MAX_SEGS],
        len: 0,
    };

    /// A list of `segs` (not checked); `None` if longer than [`MAX_SEGS`].
    pub fn from_segments(segs: &[Segment]) -> Option<SegmentList> {
        if segs.len() > MAX_SEGS {
            return None;
        }
        let mut list = SegmentList::EMPTY;
        list.segs[..segs.len()].copy_from_slice(segs);
        list.len = segs.len() as u16;
        Some(list)
    }

    /// The entries.
    pub fn as_slice(&self) -> &[Segment] {
        &self.segs[..usize::from(self.len)]
    }

    /// The per-segment checks in list order, then the total length: [`DmaError::BadSegment`]
    /// or [`DmaError::TooLong`].
    pub fn check(&self) -> Result<(), DmaError> {
        for s in self.as_slice() {
            s.check()?;
        }
        if self.total_len() > u64::from(MAX_BYTES) {
            return Err(DmaError::TooLong);
        }
        Ok(())
    }

    /// Sum of the segment lengths.
    pub fn total_len(&self) -> u64 {
        self.as_slice().iter().map(|s| u64::from(s.len)).sum()
    }
}

/// The checks of a START, in the spec's order, and the latching of the list.
///
/// `cmd` is the DMA_CMD value written while the engine is not BUSY. Order: BAD_CMD (anything
/// but FILL and FILL_HOST; ABORT is not a START and is handled before, see [`Dma::write`]),
/// NO_MASTER, BAD_COUNT (0 or more than [`MAX_SEGS`]), LIST_WRAP, LIST_FAULT (the list is not
/// all RAM, or a read failed), BAD_SEGMENT (each entry in list order), TOO_LONG. On error
/// nothing was written and no output drawn.
pub fn validate<M: GuestMemory + ?Sized>(
    cmd: u32,
    list_addr: u64,
    count: u32,
    mem: &mut M,
) -> Result<Transfer, DmaError> {
    let source = match Command::from_value(cmd).and_then(Command::source) {
        Some(s) => s,
        None => return Err(DmaError::BadCmd),
    };
    if !mem.bus_master() {
        return Err(DmaError::NoMaster);
    }
    if count == 0 || count > DMA_MAX_SEGS_VALUE {
        return Err(DmaError::BadCount);
    }
    let list_len = DMA_SEG_SIZE * u64::from(count);
    if wraps(list_addr, list_len) {
        return Err(DmaError::ListWrap);
    }
    if !mem.is_ram(list_addr, list_len) {
        return Err(DmaError::ListFault);
    }
    let mut list = SegmentList::EMPTY;
    for i in 0..count as usize {
        let mut b = [0; Segment::SIZE];
        if !mem.read(list_addr + (i * Segment::SIZE) as u64, &mut b) {
            return Err(DmaError::ListFault);
        }
        list.segs[i] = Segment::from_le_bytes(b);
    }
    list.len = count as u16;
    list.check()?;
    Ok(Transfer::new(source, list))
}

/// Progress of a running [`Transfer`]: what migrates besides the latched list and source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    /// Index of the current segment = SEGS_DONE.
    pub seg: u16,
    /// Bytes of the current segment already written.
    pub offset: u32,
    /// Bytes written by the command = DMA_BYTES.
    pub bytes: u32,
    /// The unused bytes of the current output ([`ByteStream::pending`]).
    pub stream: ByteStream,
}

/// One command after a successful START: runs step by step until it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    source: Source,
    list: SegmentList,
    progress: Progress,
    end: Option<Result<(), DmaError>>,
}

impl Transfer {
    fn new(source: Source, list: SegmentList) -> Transfer {
        Transfer {
            source,
            list,
            progress: Progress {
                seg: 0,
                offset: 0,
                bytes: 0,
                stream: ByteStream::new(),
            },
            end: None,
        }
    }

    /// A running transfer rebuilt from migrated state; `None` unless the state is one a
    /// running transfer can be in: a valid list, `seg` inside it, `offset` inside that
    /// segment, `bytes` equal to the lengths before it plus `offset`, and `ceil(bytes / 8) * 8
    /// - bytes` pending stream bytes.
    pub fn resume(source: Source, list: &[Segment], progress: Progress) -> Option<Transfer> {
        let list = SegmentList::from_segments(list)?;
        if list.len == 0 || list.check().is_err() {
            return None;
        }
        let seg = *list.as_slice().get(usize::from(progress.seg))?;
        if progress.offset >= seg.len {
            return None;
        }
        let before: u64 = list.as_slice()[..usize::from(progress.seg)]
            .iter()
            .map(|s| u64::from(s.len))
            .sum();
        if u64::from(progress.bytes) != before + u64::from(progress.offset) {
            return None;
        }
        if progress.stream.pending().len() != (8 - progress.bytes as usize % 8) % 8 {
            return None;
        }
        Some(Transfer {
            source,
            list,
            progress,
            end: None,
        })
    }

    /// FILL or FILL_HOST.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The latched list.
    pub fn segments(&self) -> &[Segment] {
        self.list.as_slice()
    }

    /// Current progress (for migration; after the end the stream is empty).
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// BUSY while running, then DONE or ERROR.
    pub fn state(&self) -> DmaState {
        match self.end {
            None => DmaState::Busy,
            Some(Ok(())) => DmaState::Done,
            Some(Err(e)) => DmaState::Error(e),
        }
    }

    /// DMA_BYTES: bytes written so far.
    pub fn bytes(&self) -> u32 {
        self.progress.bytes
    }

    /// SEGS_DONE: leading segments written completely.
    pub fn segs_done(&self) -> u16 {
        self.progress.seg
    }

    /// Whether the command is still running.
    pub fn is_busy(&self) -> bool {
        self.end.is_none()
    }

    fn finish(&mut self, end: Result<(), DmaError>) -> DmaState {
        self.end = Some(end);
        // The unused bytes of the last output are discarded.
        self.progress.stream = ByteStream::new();
        self.state()
    }

    /// End a running command with ABORTED (progress kept); `false` if it had ended already.
    pub fn abort(&mut self) -> bool {
        if !self.is_busy() {
            return false;
        }
        self.finish(Err(DmaError::Aborted));
        true
    }

    /// Run one chunk of at most `max_bytes` bytes (0: nothing happens); returns the state
    /// after it. `rng` is drawn from only for the bytes written.
    ///
    /// A chunk first checks bus mastering (NO_MASTER). Before the first byte of a segment
    /// the whole segment must be RAM, before the rest of a segment begun in an earlier chunk
    /// the part this chunk writes (WRITE_FAULT, nothing of that part written). A failed write
    /// ends with WRITE_FAULT too, its bytes not counted. Segments complete in list order.
    pub fn step<M, R>(&mut self, mem: &mut M, rng: &mut R, max_bytes: u32) -> DmaState
    where
        M: GuestMemory + ?Sized,
        R: Rng64 + ?Sized,
    {
        if !self.is_busy() || max_bytes == 0 {
            return self.state();
        }
        if !mem.bus_master() {
            return self.finish(Err(DmaError::NoMaster));
        }
        let mut budget = max_bytes;
        let mut buf = [0u8; PIECE];
        while budget > 0 {
            let p = &mut self.progress;
            let seg = self.list.segs[usize::from(p.seg)];
            let n = budget.min(seg.len - p.offset);
            // Validated at START: neither addition wraps.
            let start = seg.addr + u64::from(p.offset);
            let ram = if p.offset == 0 {
                mem.is_ram(seg.addr, u64::from(seg.len))
            } else {
                mem.is_ram(start, u64::from(n))
            };
            if !ram {
                return self.finish(Err(DmaError::WriteFault));
            }
            let mut done = 0;
            while done < n {
                let k = (n - done).min(PIECE as u32);
                let piece = &mut buf[..k as usize];
                p.stream.fill(rng, piece);
                if !mem.write(start + u64::from(done), piece) {
                    return self.finish(Err(DmaError::WriteFault));
                }
                done += k;
                p.offset += k;
                p.bytes += k;
            }
            budget -= n;
            if p.offset == seg.len {
                p.seg += 1;
                p.offset = 0;
                if p.seg == self.list.len {
                    return self.finish(Ok(()));
                }
            }
        }
        DmaState::Busy
    }

    /// Run the whole command at once (no chunking).
    pub fn run<M, R>(&mut self, mem: &mut M, rng: &mut R) -> DmaState
    where
        M: GuestMemory + ?Sized,
        R: Rng64 + ?Sized,
    {
        // A command writes at most MAX_BYTES, so one step of MAX_BYTES ends it.
        self.step(mem, rng, MAX_BYTES)
    }
}

/// What the device has to do after a register write or a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Nothing beyond the register update.
    None,
    /// A command started (BUSY): call [`Dma::step`] in the background until it ends.
    Started,
    /// A command ended (DONE or ERROR): IRQ_STATUS.DMA_DONE is set; if IRQ_ENABLE.DMA_DONE,
    /// send one MSI when MSI is enabled, else update INTA# from [`Dma::irq_level`]. An ERROR
    /// other than ABORTED is also a guest error to log.
    Ended(DmaState),
    /// A DMA_CMD write other than ABORT while BUSY was refused: REJECTED is set and the
    /// running command is unaffected; log a guest error.
    Rejected,
}

/// The DMA and IRQ registers and the running command: the device-side engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dma {
    addr: u64,
    count: u32,
    status: DmaStatus,
    bytes: u32,
    irq_status: u32,
    irq_enable: u32,
    transfer: Option<Transfer>,
}

impl Default for Dma {
    fn default() -> Self {
        Self::new()
    }
}

impl Dma {
    /// The state after reset.
    pub const fn new() -> Dma {
        Dma {
            addr: 0,
            count: 0,
            status: DmaStatus::IDLE,
            bytes: 0,
            irq_status: 0,
            irq_enable: 0,
            transfer: None,
        }
    }

    /// Device reset: a running command is dropped without interrupt; every register 0. The
    /// caller deasserts INTA# (it is [`Dma::irq_level`], now false).
    pub fn reset(&mut self) {
        *self = Dma::new();
    }

    /// The value of a read of `reg`; `None` if `reg` is not a readable DMA or IRQ register.
    pub fn read(&self, reg: Register) -> Option<u32> {
        Some(match reg {
            Register::DmaAddrLo => self.addr as u32,
            Register::DmaAddrHi => (self.addr >> 32) as u32,
            Register::DmaCount => self.count,
            Register::DmaStatus => self.status.value(),
            Register::DmaBytes => self.bytes,
            Register::DmaMaxSegs => DMA_MAX_SEGS_VALUE,
            Register::DmaMaxBytes => DMA_MAX_BYTES_VALUE,
            Register::IrqStatus => self.irq_status,
            Register::IrqEnable => self.irq_enable,
            _ => return None,
        })
    }

    /// A write of `value` to `reg`; `None` if `reg` is not a writable DMA or IRQ register.
    /// `mem` is used by a START (the checks and the copy of the list). With MSI off, the
    /// device sets INTA# from [`Dma::irq_level`] after every write (IRQ_STATUS and
    /// IRQ_ENABLE writes change it too).
    pub fn write<M: GuestMemory + ?Sized>(
        &mut self,
        reg: Register,
        value: u32,
        mem: &mut M,
    ) -> Option<Event> {
        match reg {
            Register::DmaAddrLo => self.addr = (self.addr & !0xffff_ffff) | u64::from(value),
            Register::DmaAddrHi => self.addr = (self.addr & 0xffff_ffff) | (u64::from(value) << 32),
            Register::DmaCount => self.count = value,
            Register::DmaCmd => return Some(self.command(value, mem)),
            Register::IrqStatus => self.irq_status &= !value,
            Register::IrqEnable => self.irq_enable = value & IRQ_MASK,
            _ => return None,
        }
        Some(Event::None)
    }

    fn command<M: GuestMemory + ?Sized>(&mut self, value: u32, mem: &mut M) -> Event {
        if let Some(t) = &mut self.transfer {
            if value == DMA_CMD_ABORT {
                t.abort();
                return self.sync();
            }
            self.status.rejected = true;
            return Event::Rejected;
        }
        if value == DMA_CMD_ABORT {
            return Event::None;
        }
        // A new command: STATUS (REJECTED included), DMA_BYTES and SEGS_DONE start afresh.
        self.bytes = 0;
        self.status = DmaStatus {
            state: DmaState::Busy,
            rejected: false,
            segs_done: 0,
        };
        match validate(value, self.addr, self.count, mem) {
            Ok(t) => {
                self.transfer = Some(t);
                Event::Started
            }
            Err(e) => self.end(DmaState::Error(e)),
        }
    }

    fn end(&mut self, state: DmaState) -> Event {
        self.status.state = state;
        self.transfer = None;
        self.irq_status |= IRQ_DMA_DONE;
        Event::Ended(state)
    }

    /// Copy the transfer's progress into the registers; end if it ended.
    fn sync(&mut self) -> Event {
        let Some(t) = &self.transfer else {
            return Event::None;
        };
        self.bytes = t.bytes();
        self.status.segs_done = t.segs_done();
        match t.state() {
            DmaState::Busy => Event::None,
            s => self.end(s),
        }
    }

    /// Run one chunk of the running command (see [`Transfer::step`]); [`Event::Ended`] when
    /// it ended, else [`Event::None`] (also when idle).
    pub fn step<M, R>(&mut self, mem: &mut M, rng: &mut R, max_bytes: u32) -> Event
    where
        M: GuestMemory + ?Sized,
        R: Rng64 + ?Sized,
    {
        match &mut self.transfer {
            Some(t) => {
                t.step(mem, rng, max_bytes);
                self.sync()
            }
            None => Event::None,
        }
    }

    /// Whether a command is running.
    pub fn is_busy(&self) -> bool {
        self.transfer.is_some()
    }

    /// The running command's source, to choose the [`Rng64`] for [`Dma::step`]: FILL takes
    /// outputs of the current algorithm, FILL_HOST host entropy.
    pub fn source(&self) -> Option<Source> {
        self.transfer.as_ref().map(Transfer::source)
    }

    /// The running command (for migration).
    pub fn transfer(&self) -> Option<&Transfer> {
        self.transfer.as_ref()
    }

    /// Decoded DMA_STATUS.
    pub fn status(&self) -> DmaStatus {
        self.status
    }

    /// The INTA# level when MSI is off: `(IRQ_STATUS & IRQ_ENABLE) != 0`.
    pub fn irq_level(&self) -> bool {
        self.irq_status & self.irq_enable != 0
    }

    /// Whether an end is signalled (IRQ_ENABLE.DMA_DONE): with MSI on, one message per
    /// [`Event::Ended`].
    pub fn irq_enabled(&self) -> bool {
        self.irq_enable & IRQ_DMA_DONE != 0
    }

    /// Migrated state: the registers and the running command.
    pub fn save(&self) -> DmaSaved {
        DmaSaved {
            addr: self.addr,
            count: self.count,
            status: self.status.value(),
            bytes: self.bytes,
            irq_status: self.irq_status,
            irq_enable: self.irq_enable,
        }
    }

    /// Rebuild from migrated state and, when STATE is BUSY, the running transfer (from
    /// [`Transfer::resume`]); `None` if they do not fit together (a corrupt stream).
    pub fn restore(saved: DmaSaved, transfer: Option<Transfer>) -> Option<Dma> {
        let status = DmaStatus::from_value(saved.status)?;
        if saved.irq_status & !IRQ_MASK != 0 || saved.irq_enable & !IRQ_MASK != 0 {
            return None;
        }
        let fits = match (&status.state, &transfer) {
            (DmaState::Busy, Some(t)) => {
                t.is_busy() && t.bytes() == saved.bytes && t.segs_done() == status.segs_done
            }
            (DmaState::Busy, None) => false,
            (_, t) => t.is_none(),
        };
        if !fits {
            return None;
        }
        Some(Dma {
            addr: saved.addr,
            count: saved.count,
            status,
            bytes: saved.bytes,
            irq_status: saved.irq_status,
            irq_enable: saved.irq_enable,
            transfer,
        })
    }
}

/// The register part of [`Dma`]'s migrated state (the running command migrates as its
/// [`Transfer::source`], [`Transfer::segments`] and [`Transfer::progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DmaSaved {
    /// DMA_ADDR_HI:DMA_ADDR_LO.
    pub addr: u64,
    /// DMA_COUNT.
    pub count: u32,
    /// DMA_STATUS.
    pub status: u32,
    /// DMA_BYTES.
    pub bytes: u32,
    /// IRQ_STATUS.
    pub irq_status: u32,
    /// IRQ_ENABLE.
    pub irq_enable: u32,
}

// The reference crate's register constants and these types must agree.
const _: () = assert!(regs::DMA_SEG_SIZE as usize == Segment::SIZE);

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::Algorithm;
    use std::vec;
    use std::vec::Vec;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        Ram,
        Rom,
        Mmio,
    }

    #[derive(Clone, Debug)]
    struct Region {
        base: u64,
        data: Vec<u8>,
        kind: Kind,
    }

    impl Region {
        fn last(&self) -> u64 {
            self.base + (self.data.len() as u64 - 1)
        }
    }

    /// Guest memory of a few regions, initialised with a sentinel, that logs every write and
    /// panics on a write the model should never issue (outside RAM).
    #[derive(Clone, Debug)]
    struct Fake {
        regions: Vec<Region>,
        master: bool,
        writes: Vec<(u64, usize)>,
        fail_write_at: Option<u64>,
        fail_reads: bool,
    }

    const SENTINEL: u8 = 0xa5;

    impl Fake {
        fn new() -> Fake {
            Fake {
                regions: Vec::new(),
                master: true,
                writes: Vec::new(),
                fail_write_at: None,
                fail_reads: false,
            }
        }

        fn with(mut self, kind: Kind, base: u64, len: usize) -> Fake {
            self.regions.push(Region {
                base,
                data: vec![SENTINEL; len],
                kind,
            });
            self
        }

        /// The region holding `addr` and the index of `addr` in it.
        fn find(&self, addr: u64) -> Option<(usize, usize)> {
            self.regions
                .iter()
                .position(|r| r.base <= addr && addr <= r.last())
                .map(|i| (i, (addr - self.regions[i].base) as usize))
        }

        fn poke(&mut self, addr: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                let (r, o) = self.find(addr + i as u64).expect("poke outside memory");
                self.regions[r].data[o] = *b;
            }
        }

        fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
            (0..len)
                .map(|i| {
                    let (r, o) = self.find(addr + i as u64).expect("peek outside memory");
                    self.regions[r].data[o]
                })
                .collect()
        }

        fn put_list(&mut self, addr: u64, segs: &[Segment]) {
            for (i, s) in segs.iter().enumerate() {
                self.poke(addr + 16 * i as u64, &s.to_le_bytes());
            }
        }

        /// Every byte of memory outside `segs` still holds the sentinel, except `list`.
        fn untouched_outside(&self, segs: &[Segment], list: (u64, usize)) -> bool {
            let inside = |a: u64| {
                segs.iter()
                    .any(|s| a >= s.addr && a - s.addr < u64::from(s.len))
                    || (a >= list.0 && a - list.0 < list.1 as u64)
            };
            self.regions.iter().all(|r| {
                r.data
                    .iter()
                    .enumerate()
                    .all(|(i, b)| inside(r.base + i as u64) || *b == SENTINEL)
            })
        }

        /// Every logged write lies inside one segment.
        fn writes_inside(&self, segs: &[Segment]) -> bool {
            self.writes.iter().all(|&(a, n)| {
                segs.iter()
                    .any(|s| a >= s.addr && (a - s.addr) + n as u64 <= u64::from(s.len))
            })
        }
    }

    impl GuestMemory for Fake {
        fn bus_master(&self) -> bool {
            self.master
        }

        fn is_ram(&self, addr: u64, len: u64) -> bool {
            assert!(len > 0 && !wraps(addr, len), "bad range {addr:#x}+{len:#x}");
            let (mut pos, mut left) = (addr, len);
            while left > 0 {
                let Some((r, _)) = self.find(pos) else {
                    return false;
                };
                let r = &self.regions[r];
                if r.kind != Kind::Ram {
                    return false;
                }
                let take = left.min(r.last() - pos + 1);
                left -= take;
                pos = pos.wrapping_add(take);
            }
            true
        }

        fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            if self.fail_reads {
                return false;
            }
            for (i, b) in buf.iter_mut().enumerate() {
                match self.find(addr + i as u64) {
                    Some((r, o)) if self.regions[r].kind != Kind::Mmio => {
                        *b = self.regions[r].data[o]
                    }
                    _ => return false,
                }
            }
            true
        }

        fn write(&mut self, addr: u64, data: &[u8]) -> bool {
            assert!(
                self.is_ram(addr, data.len() as u64),
                "write outside RAM at {addr:#x}"
            );
            if let Some(f) = self.fail_write_at {
                if f >= addr && f - addr < data.len() as u64 {
                    return false;
                }
            }
            self.writes.push((addr, data.len()));
            self.poke(addr, data);
            true
        }
    }

    fn seg(addr: u64, len: u32) -> Segment {
        Segment {
            addr,
            len,
            flags: 0,
        }
    }

    /// The first `n` bytes of the FILL stream of `alg` seeded with `seed`.
    fn stream(alg: Algorithm, seed: u32, n: usize) -> Vec<u8> {
        let mut g = Generator::new(alg, seed).unwrap();
        let mut v = Vec::new();
        while v.len() < n {
            v.extend_from_slice(&g.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// Output number `k` (from 0) of the generator's RNG64 sequence.
    fn output(alg: Algorithm, seed: u32, k: usize) -> u64 {
        let mut g = Generator::new(alg, seed).unwrap();
        (0..k).for_each(|_| {
            g.next_u64();
        });
        g.next_u64()
    }

    /// Concatenation of the segments' contents, in list order.
    fn contents(m: &Fake, segs: &[Segment]) -> Vec<u8> {
        segs.iter()
            .flat_map(|s| m.peek(s.addr, s.len as usize))
            .collect()
    }

    const LIST: u64 = 0x1000;
    /// Size of the RAM region that holds the lists: room for 512 entries.
    const LIST_SIZE: u64 = 0x2000;
    const RAM: u64 = 0x10_0000;

    /// 8 KiB of RAM for lists at LIST, 2 MiB of RAM at RAM, 4 KiB ROM and MMIO above.
    fn memory() -> Fake {
        Fake::new()
            .with(Kind::Ram, LIST, LIST_SIZE as usize)
            .with(Kind::Ram, RAM, 0x20_0000)
            .with(Kind::Rom, 0x40_0000, 0x1000)
            .with(Kind::Mmio, 0x50_0000, 0x1000)
    }

    fn start(m: &mut Fake, segs: &[Segment]) -> Result<Transfer, DmaError> {
        m.put_list(LIST, segs);
        validate(DMA_CMD_FILL, LIST, segs.len() as u32, m)
    }

    #[test]
    fn segment_bytes() {
        let b = [
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x80,
        ];
        let s = Segment::from_le_bytes(b);
        assert_eq!(s.addr, 0x0102_0304_0506_0708);
        assert_eq!(s.len, 16);
        assert_eq!(s.flags, 0x8000_0000);
        assert_eq!(s.to_le_bytes(), b);
    }

    #[test]
    fn segment_check() {
        assert_eq!(seg(0, 1).check(), Ok(()));
        assert_eq!(seg(0, MAX_BYTES).check(), Ok(()));
        assert_eq!(seg(0, 0).check(), Err(DmaError::BadSegment));
        assert_eq!(seg(0, MAX_BYTES + 1).check(), Err(DmaError::BadSegment));
        assert_eq!(seg(0, u32::MAX).check(), Err(DmaError::BadSegment));
        for flags in [1, 0x8000_0000, u32::MAX] {
            let s = Segment { flags, ..seg(0, 1) };
            assert_eq!(s.check(), Err(DmaError::BadSegment));
        }
        // Ending exactly at 2^64 is not a wrap; one byte more is.
        assert_eq!(seg(u64::MAX, 1).check(), Ok(()));
        assert_eq!(seg(u64::MAX - 15, 16).check(), Ok(()));
        assert_eq!(seg(u64::MAX, 2).check(), Err(DmaError::BadSegment));
        assert_eq!(seg(u64::MAX - 15, 17).check(), Err(DmaError::BadSegment));
        assert_eq!(
            seg(u64::MAX - u64::from(MAX_BYTES) + 2, MAX_BYTES).check(),
            Err(DmaError::BadSegment)
        );
        assert!(!wraps(u64::MAX, 0) && !wraps(0, u64::MAX) && !wraps(1, u64::MAX));
        assert!(wraps(2, u64::MAX) && wraps(u64::MAX, 2));
    }

    #[test]
    fn command_values() {
        let cmds: Vec<_> = (0..=16)
            .chain([0x11, 0x8000_0001, u32::MAX])
            .filter_map(|v| Command::from_value(v).map(|c| (v, c)))
            .collect();
        assert_eq!(
            cmds,
            [
                (1, Command::Fill),
                (3, Command::FillHost),
                (4, Command::Abort)
            ]
        );
        for c in [Command::Fill, Command::FillHost, Command::Abort] {
            assert_eq!(Command::from_value(c.value()), Some(c));
        }
        assert_eq!(Command::Fill.source(), Some(Source::Algorithm));
        assert_eq!(Command::FillHost.source(), Some(Source::Host));
        assert_eq!(Command::Abort.source(), None);
    }

    /// Every START error, each with the checks before it passing, and the order between them;
    /// none writes anything.
    #[test]
    fn start_errors_in_order() {
        use DmaError::*;
        let good = [seg(RAM, 100)];
        let check = |m: &mut Fake, cmd: u32, addr: u64, count: u32| {
            let r = validate(cmd, addr, count, m).map(|t| t.segments().len());
            assert!(m.writes.is_empty());
            r
        };
        let mut m = memory();
        m.put_list(LIST, &good);
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 1), Ok(1));
        assert_eq!(check(&mut m, DMA_CMD_FILL_HOST, LIST, 1), Ok(1));
        // BAD_CMD first, whatever else is wrong; ABORT is no START.
        m.master = false;
        for cmd in [0, 2, 4, 5, 6, 7, 8, 0x11, 0x101, u32::MAX] {
            assert_eq!(check(&mut m, cmd, u64::MAX, 0), Err(BadCmd), "{cmd:#x}");
        }
        // NO_MASTER before the count and the list.
        assert_eq!(check(&mut m, DMA_CMD_FILL, u64::MAX, 0), Err(NoMaster));
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 1), Err(NoMaster));
        m.master = true;
        // BAD_COUNT before the list's address.
        for count in [0, DMA_MAX_SEGS_VALUE + 1, u32::MAX] {
            assert_eq!(check(&mut m, DMA_CMD_FILL, u64::MAX, count), Err(BadCount));
        }
        // LIST_WRAP: [addr, addr + 16 * count) past 2^64, before LIST_FAULT.
        assert_eq!(check(&mut m, DMA_CMD_FILL, u64::MAX - 14, 1), Err(ListWrap));
        assert_eq!(
            check(&mut m, DMA_CMD_FILL, u64::MAX - 16 * 512 + 2, 512),
            Err(ListWrap)
        );
        assert_eq!(
            check(&mut m, DMA_CMD_FILL, u64::MAX - 15, 1),
            Err(ListFault)
        );
        // LIST_FAULT: unmapped, ROM, MMIO, partly RAM, a failed read.
        for addr in [
            0,
            0x40_0000,
            0x50_0000,
            LIST + LIST_SIZE - 8,
            LIST + LIST_SIZE,
        ] {
            assert_eq!(
                check(&mut m, DMA_CMD_FILL, addr, 1),
                Err(ListFault),
                "{addr:#x}"
            );
        }
        assert_eq!(
            check(&mut m, DMA_CMD_FILL, LIST + 0x1000, 257),
            Err(ListFault)
        );
        m.fail_reads = true;
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 1), Err(ListFault));
        m.fail_reads = false;
        // BAD_SEGMENT, in list order, each kind; before TOO_LONG even when a later entry is
        // the bad one.
        let bad = [
            seg(RAM, 0),
            seg(RAM, MAX_BYTES + 1),
            Segment {
                flags: 1,
                ..seg(RAM, 1)
            },
            seg(u64::MAX, 2),
        ];
        for b in bad {
            m.put_list(LIST, &[seg(RAM, MAX_BYTES), seg(RAM, 1), b]);
            assert_eq!(
                check(&mut m, DMA_CMD_FILL, LIST, 3),
                Err(BadSegment),
                "{b:?}"
            );
        }
        // TOO_LONG: the sum, not a single segment.
        m.put_list(
            LIST,
            &[seg(RAM, MAX_BYTES / 2 + 1), seg(RAM, MAX_BYTES / 2)],
        );
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 2), Err(TooLong));
        m.put_list(LIST, &[seg(RAM, MAX_BYTES / 2), seg(RAM, MAX_BYTES / 2)]);
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 2), Ok(2));
        let many = [seg(RAM, MAX_BYTES / 512); 512];
        m.put_list(LIST, &many);
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 512), Ok(512));
        // A segment outside RAM is no START error: it faults when written.
        m.put_list(LIST, &[seg(0x50_0000, 4)]);
        assert_eq!(check(&mut m, DMA_CMD_FILL, LIST, 1), Ok(1));
        assert!(m.untouched_outside(&[], (LIST, LIST_SIZE as usize)));
    }

    #[test]
    fn fill_one_segment_each_algorithm() {
        for alg in Algorithm::DETERMINISTIC {
            for n in [1, 7, 8, 9, 4096, 4097] {
                let mut m = memory();
                let segs = [seg(RAM + 3, n)];
                let mut g = Generator::new(alg, 0x42).unwrap();
                let mut t = start(&mut m, &segs).unwrap();
                assert_eq!(t.run(&mut m, &mut g), DmaState::Done);
                assert_eq!((t.bytes(), t.segs_done()), (n, 1));
                assert_eq!(contents(&m, &segs), stream(alg, 0x42, n as usize));
                assert_eq!(g.next_u64(), output(alg, 0x42, n.div_ceil(8) as usize));
                assert!(m.untouched_outside(&segs, (LIST, 16)));
                assert!(m.writes_inside(&segs));
            }
        }
    }

    /// Odd lengths, scattered and out of address order, over two RAM regions: one continuous
    /// stream equal to successive RNG64 outputs, nothing written elsewhere.
    #[test]
    fn multi_segment_odd_lengths() {
        let lens = [1, 3, 5, 7, 8, 9, 13, 16, 17, 1000, 2, 1];
        let addrs = [
            RAM + 0x1_0000,
            RAM + 1,
            RAM + 0x1_0000 + 1, // adjacent to the first
            LIST + 0x801,       // in the list's region, another RAM region
            RAM + 0x3000 - 7,
            RAM + 0x8000 + 5,
            RAM + 0x10,
            RAM + 0x20_0000 - 16, // ends at the end of RAM
            RAM + 0x100,
            RAM + 0x4001,
            LIST + LIST_SIZE - 2,
            RAM + 0x7fff,
        ];
        let segs: Vec<_> = addrs.iter().zip(lens).map(|(&a, l)| seg(a, l)).collect();
        let total: u32 = lens.iter().sum();
        for alg in Algorithm::DETERMINISTIC {
            let mut m = memory();
            let mut g = Generator::new(alg, 7).unwrap();
            let mut t = start(&mut m, &segs).unwrap();
            assert_eq!(t.run(&mut m, &mut g), DmaState::Done);
            assert_eq!((t.bytes(), usize::from(t.segs_done())), (total, segs.len()));
            assert_eq!(contents(&m, &segs), stream(alg, 7, total as usize));
            assert_eq!(g.next_u64(), output(alg, 7, total.div_ceil(8) as usize));
            assert!(m.untouched_outside(&segs, (LIST, 16 * segs.len())));
            assert!(m.writes_inside(&segs));
        }
    }

    /// After a FILL of N bytes the next RNG64 output is number ceil(N/8), over every N up to
    /// 64 and split over one or two segments.
    #[test]
    fn generator_advance_rule() {
        for n in 1..=64u32 {
            for split in [0, 1, n / 2, n - 1] {
                let segs: Vec<_> = [split, n - split]
                    .into_iter()
                    .filter(|&l| l > 0)
                    .enumerate()
                    .map(|(i, l)| seg(RAM + 0x1000 * i as u64, l))
                    .collect();
                let mut m = memory();
                let mut g = Generator::new(Algorithm::Glibc, 0).unwrap();
                let mut t = start(&mut m, &segs).unwrap();
                assert_eq!(t.run(&mut m, &mut g), DmaState::Done);
                assert_eq!(contents(&m, &segs), stream(Algorithm::Glibc, 0, n as usize));
                let k = n.div_ceil(8) as usize;
                assert_eq!(g.next_u64(), output(Algorithm::Glibc, 0, k), "n {n}");
            }
        }
    }

    #[test]
    fn byte_stream_splits_and_pending() {
        let whole = stream(Algorithm::ChaCha20, 1, 100);
        for cut in [1, 3, 7, 8, 9, 15, 16, 17] {
            let mut g = Generator::new(Algorithm::ChaCha20, 1).unwrap();
            let mut s = ByteStream::new();
            let mut got = vec![0; 100];
            for chunk in got.chunks_mut(cut) {
                s.fill(&mut g, chunk);
                // Resuming from the pending bytes alone continues the same stream.
                s = ByteStream::with_pending(s.pending()).unwrap();
            }
            assert_eq!(got, whole, "cut {cut}");
            assert_eq!(s.pending().len(), 4); // 100 = 12 * 8 + 4
        }
        assert_eq!(ByteStream::new().pending(), &[] as &[u8]);
        assert!(ByteStream::with_pending(&[0; 8]).is_none());
        let s = ByteStream::with_pending(&[1, 2, 3]).unwrap();
        assert_eq!(s.pending(), [1, 2, 3]);
        let mut out = [0; 2];
        let mut s2 = s;
        s2.fill(&mut || -> u64 { panic!("no output needed") }, &mut out);
        assert_eq!((out, s2.pending()), ([1, 2], &[3u8][..]));
    }

    /// At 2^64: a segment of the last byte, one ending exactly at 2^64, a list there too.
    #[test]
    fn top_of_address_space() {
        let top = u64::MAX - 0xfff;
        let mut m = Fake::new().with(Kind::Ram, top, 0x1000);
        let segs = [seg(u64::MAX - 99, 100), seg(top, 15)];
        let list = u64::MAX - 16 * 2 + 1;
        m.put_list(list, &segs);
        let mut g = Generator::new(Algorithm::Xoshiro256pp, 3).unwrap();
        let mut t = validate(DMA_CMD_FILL, list, 2, &mut m).unwrap();
        // Overwriting the list itself is allowed (it was copied at START).
        assert_eq!(t.run(&mut m, &mut g), DmaState::Done);
        assert_eq!(t.bytes(), 115);
        let want = stream(Algorithm::Xoshiro256pp, 3, 115);
        assert_eq!(contents(&m, &segs), want);
        assert!(m.writes_inside(&segs));
        // The very last byte alone.
        let last = [seg(u64::MAX, 1)];
        m.put_list(top + 0x100, &last);
        let mut t = validate(DMA_CMD_FILL, top + 0x100, 1, &mut m).unwrap();
        assert_eq!(t.run(&mut m, &mut g), DmaState::Done);
        assert_eq!(
            m.peek(u64::MAX, 1),
            [output(Algorithm::Xoshiro256pp, 3, 15) as u8]
        );
        // One entry more than fits below 2^64 wraps.
        assert_eq!(
            validate(DMA_CMD_FILL, list + 1, 2, &mut m).map(|_| ()),
            Err(DmaError::ListWrap)
        );
    }

    fn run_chunked(max: u32, segs: &[Segment]) -> (Fake, Transfer, Generator, usize) {
        let mut m = memory();
        let mut g = Generator::new(Algorithm::Glibc, 0x42).unwrap();
        let mut t = start(&mut m, segs).unwrap();
        let mut steps = 0;
        while t.step(&mut m, &mut g, max) == DmaState::Busy {
            steps += 1;
        }
        (m, t, g, steps + 1)
    }

    #[test]
    fn chunked_equals_one_shot() {
        let segs = [
            seg(RAM, 1000),
            seg(RAM + 0x3001, 3),
            seg(RAM + 0x2000, 4097),
        ];
        let total: u32 = 5100;
        let (m1, t1, mut g1, steps) = run_chunked(MAX_BYTES, &segs);
        assert_eq!(steps, 1);
        assert_eq!(t1.state(), DmaState::Done);
        for max in [1, 2, 3, 5, 7, 8, 13, 511, 512, 513, 1000, 4096, 5099, 5100] {
            let (m, t, mut g, steps) = run_chunked(max, &segs);
            assert_eq!(steps, total.div_ceil(max) as usize, "max {max}");
            assert_eq!(t.state(), DmaState::Done);
            assert_eq!((t.bytes(), t.segs_done()), (total, 3));
            assert_eq!(contents(&m, &segs), contents(&m1, &segs), "max {max}");
            assert!(m.untouched_outside(&segs, (LIST, 48)));
            assert_eq!(g.next_u64(), g1.clone().next_u64());
        }
        assert_eq!(g1.next_u64(), output(Algorithm::Glibc, 0x42, 638));
        // A step of 0 does nothing; steps after the end do nothing.
        let mut m = memory();
        let mut g = Generator::new(Algorithm::Glibc, 0x42).unwrap();
        let mut t = start(&mut m, &segs).unwrap();
        assert_eq!(t.step(&mut m, &mut g, 0), DmaState::Busy);
        assert_eq!(t.bytes(), 0);
        m.master = false;
        assert_eq!(t.step(&mut m, &mut g, 0), DmaState::Busy);
        m.master = true;
        t.run(&mut m, &mut g);
        let before = (m.writes.len(), g.clone());
        assert_eq!(t.step(&mut m, &mut g, 100), DmaState::Done);
        assert_eq!((m.writes.len(), g), before);
    }

    #[test]
    fn abort_midway() {
        let segs = [seg(RAM, 10), seg(RAM + 0x100, 30), seg(RAM + 0x200, 8)];
        for at in [1, 9, 10, 11, 23, 39, 40, 47] {
            let mut m = memory();
            let mut g = Generator::new(Algorithm::ChaCha20, 9).unwrap();
            let mut t = start(&mut m, &segs).unwrap();
            assert_eq!(t.step(&mut m, &mut g, at), DmaState::Busy);
            assert!(t.abort());
            assert_eq!(t.state(), DmaState::Error(DmaError::Aborted));
            assert_eq!(t.bytes(), at);
            let done = match at {
                0..10 => 0,
                10..40 => 1,
                _ => 2,
            };
            assert_eq!(t.segs_done(), done, "at {at}");
            assert!(t.progress().stream.pending().is_empty());
            let written: Vec<_> = contents(&m, &segs)[..at as usize].to_vec();
            assert_eq!(written, stream(Algorithm::ChaCha20, 9, at as usize));
            // Nothing past the abort point.
            assert!(contents(&m, &segs)[at as usize..]
                .iter()
                .all(|&b| b == SENTINEL));
            assert_eq!(
                g.next_u64(),
                output(Algorithm::ChaCha20, 9, at.div_ceil(8) as usize)
            );
            assert!(!t.abort());
            assert_eq!(
                t.step(&mut m, &mut g, 100),
                DmaState::Error(DmaError::Aborted)
            );
        }
    }

    #[test]
    fn write_fault_cases() {
        let fault = DmaState::Error(DmaError::WriteFault);
        // Second segment in MMIO, in ROM, unmapped, straddling the end of RAM: the first is
        // complete, nothing of the second written.
        for bad in [
            seg(0x50_0000, 4),
            seg(0x40_0000, 4),
            seg(0x60_0000, 4),
            seg(RAM + 0x20_0000 - 3, 4),
            seg(LIST + LIST_SIZE - 1, 2),
        ] {
            let segs = [seg(RAM, 13), bad, seg(RAM + 0x100, 8)];
            let mut m = memory();
            let mut g = Generator::new(Algorithm::Glibc, 5).unwrap();
            let mut t = start(&mut m, &segs).unwrap();
            assert_eq!(t.run(&mut m, &mut g), fault, "{bad:?}");
            assert_eq!((t.bytes(), t.segs_done()), (13, 1));
            assert_eq!(m.peek(RAM, 13), stream(Algorithm::Glibc, 5, 13));
            assert!(m.untouched_outside(&segs[..1], (LIST, 48)));
            assert!(m.writes_inside(&segs[..1]));
            assert_eq!(g.next_u64(), output(Algorithm::Glibc, 5, 2));
        }
        // The memory map changes between chunks: the prefix written so far stays.
        let segs = [seg(RAM + 0x10_0000 - 20, 40)];
        let mut m = memory()
            .with(Kind::Ram, 0x80_0000, 0x10)
            .with(Kind::Ram, 0x90_0000, 0x10);
        let mut g = Generator::new(Algorithm::Glibc, 5).unwrap();
        let mut t = start(&mut m, &segs).unwrap();
        assert_eq!(t.step(&mut m, &mut g, 11), DmaState::Busy);
        m.regions[1].kind = Kind::Mmio;
        assert_eq!(t.step(&mut m, &mut g, 11), fault);
        assert_eq!((t.bytes(), t.segs_done()), (11, 0));
        assert_eq!(g.next_u64(), output(Algorithm::Glibc, 5, 2));
        // A failed write: its bytes are not counted.
        let segs = [seg(RAM, 2000)];
        let mut m = memory();
        m.fail_write_at = Some(RAM + 1500);
        let mut g = Generator::new(Algorithm::Glibc, 5).unwrap();
        let mut t = start(&mut m, &segs).unwrap();
        assert_eq!(t.run(&mut m, &mut g), fault);
        assert_eq!(t.bytes(), 1024); // two whole pieces of 512 bytes
        assert_eq!(m.peek(RAM, 1024), stream(Algorithm::Glibc, 5, 1024));
        assert!(m.peek(RAM + 1024, 976).iter().all(|&b| b == SENTINEL));
    }

    #[test]
    fn no_master_midway() {
        let segs = [seg(RAM, 20), seg(RAM + 0x100, 20)];
        let mut m = memory();
        let mut g = Generator::new(Algorithm::Xoshiro256pp, 0).unwrap();
        let mut t = start(&mut m, &segs).unwrap();
        assert_eq!(t.step(&mut m, &mut g, 25), DmaState::Busy);
        m.master = false;
        assert_eq!(
            t.step(&mut m, &mut g, 25),
            DmaState::Error(DmaError::NoMaster)
        );
        assert_eq!((t.bytes(), t.segs_done()), (25, 1));
        assert_eq!(g.next_u64(), output(Algorithm::Xoshiro256pp, 0, 4));
        assert!(m.peek(RAM + 0x105, 15).iter().all(|&b| b == SENTINEL));
    }

    #[test]
    fn resume_continues_the_same_stream() {
        let segs = [seg(RAM, 21), seg(RAM + 0x100, 30)];
        for at in [1, 5, 20, 21, 22, 50] {
            let mut m = memory();
            let mut g = Generator::new(Algorithm::ChaCha20, 2).unwrap();
            let mut t = start(&mut m, &segs).unwrap();
            t.step(&mut m, &mut g, at);
            // "Migrate": the source, the list and the progress; the generator state too.
            let p = t.progress();
            let mut t2 = Transfer::resume(t.source(), t.segments(), p).unwrap();
            assert_eq!(t2, t);
            let mut g2 = g.clone();
            assert_eq!(t2.run(&mut m, &mut g2), DmaState::Done);
            assert_eq!(contents(&m, &segs), stream(Algorithm::ChaCha20, 2, 51));
            assert_eq!(g2.next_u64(), output(Algorithm::ChaCha20, 2, 7));
            // Inconsistent progress is refused.
            let bad = [
                Progress { seg: 2, ..p },
                Progress { offset: 40, ..p },
                Progress {
                    bytes: p.bytes + 1,
                    ..p
                },
                Progress {
                    stream: ByteStream::with_pending(&[0; 8][..(p.stream.pending().len() + 1) % 8])
                        .unwrap(),
                    ..p
                },
            ];
            for b in bad {
                if b != p {
                    assert_eq!(Transfer::resume(t.source(), t.segments(), b), None, "{b:?}");
                }
            }
        }
        let p = Progress {
            seg: 0,
            offset: 0,
            bytes: 0,
            stream: ByteStream::new(),
        };
        assert!(Transfer::resume(Source::Algorithm, &[seg(RAM, 1)], p).is_some());
        assert!(Transfer::resume(Source::Algorithm, &[], p).is_none());
        assert!(Transfer::resume(Source::Algorithm, &[seg(RAM, 0)], p).is_none());
        let too_many = [seg(RAM, 1); MAX_SEGS + 1];
        assert!(Transfer::resume(Source::Algorithm, &too_many, p).is_none());
        let too_long = [seg(RAM, MAX_BYTES), seg(RAM, 1)];
        assert!(Transfer::resume(Source::Algorithm, &too_long, p).is_none());
    }

    /// The committed 64-bit vector blocks are what a FILL writes: 8000 bytes over segments of
    /// odd lengths, in odd chunks, equal the block's little-endian bytes.
    #[cfg(feature = "std")]
    #[test]
    fn fill_writes_the_64_bit_vectors() {
        use crate::vectors::{Block, COUNT, SEEDS};
        let lens = [1, 7, 4093, 8, 3891];
        assert_eq!(lens.iter().sum::<u32>() as usize, 8 * COUNT);
        let segs: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| seg(RAM + 0x2_0000 * i as u64 + 3, l))
            .collect();
        for alg in Algorithm::DETERMINISTIC {
            for seed in SEEDS {
                let mut m = memory();
                let mut g = Generator::new(alg, seed).unwrap();
                let mut t = start(&mut m, &segs).unwrap();
                while t.step(&mut m, &mut g, 999) == DmaState::Busy {}
                assert_eq!(t.state(), DmaState::Done);
                let block = Block::compute(alg, seed, 64, COUNT).unwrap();
                assert!(contents(&m, &segs) == block.le_bytes(), "{alg} {seed:#x}");
            }
        }
    }

    // The register-level engine.

    fn wr(d: &mut Dma, m: &mut Fake, reg: Register, v: u32) -> Event {
        d.write(reg, v, m).unwrap()
    }

    fn rd(d: &Dma, reg: Register) -> u32 {
        d.read(reg).unwrap()
    }

    fn program(d: &mut Dma, m: &mut Fake, addr: u64, count: u32) {
        wr(d, m, Register::DmaAddrLo, addr as u32);
        wr(d, m, Register::DmaAddrHi, (addr >> 32) as u32);
        wr(d, m, Register::DmaCount, count);
    }

    fn error_status(e: DmaError, segs: u32) -> u32 {
        3 | (u32::from(e.code()) << 8) | (segs << 16)
    }

    #[test]
    fn engine_registers() {
        let mut m = memory();
        let mut d = Dma::new();
        for reg in Register::ALL {
            let readable = reg.readable() && reg.feature() & (regs::FEAT_DMA | regs::FEAT_IRQ) != 0;
            assert_eq!(d.read(reg).is_some(), readable, "{reg}");
            let writable = reg.writable() && reg.feature() & (regs::FEAT_DMA | regs::FEAT_IRQ) != 0;
            assert_eq!(d.write(reg, 0, &mut m).is_some(), writable, "{reg}");
        }
        // The loop's 0 to DMA_CMD was a BAD_CMD.
        d.reset();
        program(&mut d, &mut m, 0x1234_5678_9abc_def0, 7);
        assert_eq!(rd(&d, Register::DmaAddrLo), 0x9abc_def0);
        assert_eq!(rd(&d, Register::DmaAddrHi), 0x1234_5678);
        assert_eq!(rd(&d, Register::DmaCount), 7);
        assert_eq!(rd(&d, Register::DmaMaxSegs), 512);
        assert_eq!(rd(&d, Register::DmaMaxBytes), 0x10_0000);
        assert_eq!(rd(&d, Register::DmaStatus), 0);
        wr(&mut d, &mut m, Register::IrqEnable, u32::MAX);
        assert_eq!(rd(&d, Register::IrqEnable), 1);
        assert!(d.irq_enabled() && !d.irq_level());
        d.reset();
        assert_eq!(d, Dma::new());
    }

    /// Every error code through the engine: STATUS, DMA_BYTES, IRQ_STATUS, the event.
    #[test]
    fn engine_every_error_code() {
        use DmaError::*;
        let mut g = Generator::new(Algorithm::Glibc, 0).unwrap();
        let fresh = g.clone();
        let cases: [(DmaError, u32, &[Segment], u32); 8] = [
            (BadCmd, 0, &[seg(RAM, 8)], 1),
            (NoMaster, DMA_CMD_FILL, &[seg(RAM, 8)], 1),
            (BadCount, DMA_CMD_FILL, &[seg(RAM, 8)], 0),
            (ListWrap, DMA_CMD_FILL, &[seg(RAM, 8)], 1),
            (ListFault, DMA_CMD_FILL, &[seg(RAM, 8)], 1),
            (BadSegment, DMA_CMD_FILL, &[seg(RAM, 8), seg(RAM, 0)], 2),
            (
                TooLong,
                DMA_CMD_FILL_HOST,
                &[seg(RAM, MAX_BYTES), seg(RAM, 1)],
                2,
            ),
            (
                WriteFault,
                DMA_CMD_FILL,
                &[seg(RAM, 9), seg(0x50_0000, 1)],
                2,
            ),
        ];
        for (e, cmd, segs, count) in cases {
            let mut m = memory();
            m.put_list(LIST, segs);
            m.master = e != NoMaster;
            let addr = match e {
                ListWrap => u64::MAX - 8,
                ListFault => 0x40_0000,
                _ => LIST,
            };
            let mut d = Dma::new();
            program(&mut d, &mut m, addr, count);
            let mut ev = wr(&mut d, &mut m, Register::DmaCmd, cmd);
            if e == WriteFault {
                assert_eq!(ev, Event::Started);
                assert_eq!(rd(&d, Register::DmaStatus), 1);
                ev = d.step(&mut m, &mut g, MAX_BYTES);
            }
            assert_eq!(ev, Event::Ended(DmaState::Error(e)), "{e}");
            let segs_done = u32::from(e == WriteFault);
            assert_eq!(
                rd(&d, Register::DmaStatus),
                error_status(e, segs_done),
                "{e}"
            );
            assert_eq!(
                rd(&d, Register::DmaBytes),
                if e == WriteFault { 9 } else { 0 }
            );
            assert_eq!(rd(&d, Register::IrqStatus), IRQ_DMA_DONE);
            assert!(!d.is_busy());
            if e.before_any_write() || e == NoMaster {
                assert!(m.writes.is_empty(), "{e}");
            }
        }
        // Only the WRITE_FAULT case drew outputs: two, for 9 bytes.
        let mut f = fresh;
        f.next_u64();
        f.next_u64();
        assert_eq!(g, f);
        // ABORTED.
        let mut m = memory();
        m.put_list(LIST, &[seg(RAM, 100)]);
        let mut d = Dma::new();
        program(&mut d, &mut m, LIST, 1);
        assert_eq!(
            wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL),
            Event::Started
        );
        assert_eq!(d.step(&mut m, &mut g, 30), Event::None);
        assert_eq!(rd(&d, Register::DmaBytes), 30);
        let ev = wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_ABORT);
        assert_eq!(ev, Event::Ended(DmaState::Error(Aborted)));
        assert_eq!(rd(&d, Register::DmaStatus), error_status(Aborted, 0));
        assert_eq!(rd(&d, Register::DmaBytes), 30);
    }

    #[test]
    fn engine_busy_rules() {
        let segs = [seg(RAM, 64), seg(RAM + 0x100, 64)];
        let mut m = memory();
        m.put_list(LIST, &segs);
        m.put_list(LIST + 0x100, &[seg(RAM + 0x1000, 8)]);
        let mut g = Generator::new(Algorithm::Glibc, 0).unwrap();
        let mut d = Dma::new();
        // ABORT while idle: nothing at all.
        assert_eq!(
            wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_ABORT),
            Event::None
        );
        assert_eq!(
            (rd(&d, Register::DmaStatus), rd(&d, Register::IrqStatus)),
            (0, 0)
        );
        program(&mut d, &mut m, LIST, 2);
        assert_eq!(
            wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL),
            Event::Started
        );
        assert_eq!(d.source(), Some(Source::Algorithm));
        assert_eq!(d.step(&mut m, &mut g, 70), Event::None);
        assert_eq!(rd(&d, Register::DmaStatus), 0x0001_0001);
        assert_eq!(rd(&d, Register::DmaBytes), 70);
        // New list registers do not affect the running command.
        program(&mut d, &mut m, LIST + 0x100, 1);
        m.put_list(LIST, &[seg(RAM + 0x2000, 8); 2]);
        // Any command but ABORT is refused while BUSY.
        for v in [DMA_CMD_FILL, DMA_CMD_FILL_HOST, 0, 2, 5, u32::MAX] {
            assert_eq!(wr(&mut d, &mut m, Register::DmaCmd, v), Event::Rejected);
            assert_eq!(rd(&d, Register::DmaStatus), 0x0001_0005);
        }
        assert_eq!(rd(&d, Register::IrqStatus), 0);
        let ev = d.step(&mut m, &mut g, 1000);
        assert_eq!(ev, Event::Ended(DmaState::Done));
        // REJECTED stays until the next command.
        assert_eq!(rd(&d, Register::DmaStatus), 0x0002_0006);
        assert_eq!(rd(&d, Register::DmaBytes), 128);
        assert_eq!(contents(&m, &segs), stream(Algorithm::Glibc, 0, 128));
        assert!(m.peek(RAM + 0x2000, 8).iter().all(|&b| b == SENTINEL));
        // ABORT after the end: no-op.
        assert_eq!(
            wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_ABORT),
            Event::None
        );
        assert_eq!(rd(&d, Register::DmaStatus), 0x0002_0006);
        // The next command clears REJECTED and the counters; it uses the new list.
        assert_eq!(
            wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL_HOST),
            Event::Started
        );
        assert_eq!(d.source(), Some(Source::Host));
        assert_eq!(
            (rd(&d, Register::DmaStatus), rd(&d, Register::DmaBytes)),
            (1, 0)
        );
        let mut host = || 0x0807_0605_0403_0201u64;
        assert_eq!(d.step(&mut m, &mut host, 8), Event::Ended(DmaState::Done));
        assert_eq!(m.peek(RAM + 0x1000, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
        // So does an invalid command ending at once.
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        assert_eq!(rd(&d, Register::DmaStatus) & regs::DMA_STATUS_REJECTED, 4);
        d.step(&mut m, &mut host, 8);
        wr(&mut d, &mut m, Register::DmaCmd, 9);
        assert_eq!(
            rd(&d, Register::DmaStatus),
            error_status(DmaError::BadCmd, 0)
        );
    }

    #[test]
    fn engine_interrupts_and_reset() {
        let mut m = memory();
        m.put_list(LIST, &[seg(RAM, 16)]);
        let mut g = Generator::new(Algorithm::Glibc, 0).unwrap();
        let mut d = Dma::new();
        program(&mut d, &mut m, LIST, 1);
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        d.step(&mut m, &mut g, 16);
        // Pending but not enabled: no level.
        assert_eq!(rd(&d, Register::IrqStatus), 1);
        assert!(!d.irq_level() && !d.irq_enabled());
        // Enabling with the bit pending raises the level; RW1C: writing 0 or other bits
        // keeps it, writing 1 clears it.
        wr(&mut d, &mut m, Register::IrqEnable, 1);
        assert!(d.irq_level());
        wr(&mut d, &mut m, Register::IrqStatus, 0xffff_fffe);
        assert!(d.irq_level());
        wr(&mut d, &mut m, Register::IrqStatus, 1);
        assert!(!d.irq_level());
        assert_eq!(rd(&d, Register::IrqStatus), 0);
        // Disabling lowers the level, the status stays.
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        d.step(&mut m, &mut g, 16);
        assert!(d.irq_level());
        wr(&mut d, &mut m, Register::IrqEnable, 0);
        assert!(!d.irq_level());
        assert_eq!(rd(&d, Register::IrqStatus), 1);
        // Reset while busy drops the command: no event, everything 0.
        wr(&mut d, &mut m, Register::IrqEnable, 1);
        m.put_list(LIST, &[seg(RAM, 1000)]);
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        d.step(&mut m, &mut g, 10);
        d.reset();
        assert!(!d.is_busy() && !d.irq_level());
        assert_eq!(d.step(&mut m, &mut g, 1000), Event::None);
        for reg in Register::ALL {
            if let Some(v) = d.read(reg) {
                let want = match reg {
                    Register::DmaMaxSegs => 512,
                    Register::DmaMaxBytes => MAX_BYTES,
                    _ => 0,
                };
                assert_eq!(v, want, "{reg}");
            }
        }
        assert!(m.peek(RAM + 16, 984).iter().all(|&b| b == SENTINEL));
    }

    #[test]
    fn engine_save_restore() {
        let segs = [seg(RAM, 33), seg(RAM + 0x100, 33)];
        let mut m = memory();
        m.put_list(LIST, &segs);
        let mut g = Generator::new(Algorithm::Xoshiro256pp, 1).unwrap();
        let mut d = Dma::new();
        program(&mut d, &mut m, LIST, 2);
        wr(&mut d, &mut m, Register::IrqEnable, 1);
        wr(&mut d, &mut m, Register::DmaCmd, DMA_CMD_FILL);
        d.step(&mut m, &mut g, 37);
        let saved = d.save();
        let t = d.transfer().unwrap();
        let t2 = Transfer::resume(t.source(), t.segments(), t.progress()).unwrap();
        let mut d2 = Dma::restore(saved, Some(t2.clone())).unwrap();
        assert_eq!(d2, d);
        let mut g2 = g.clone();
        assert_eq!(d2.step(&mut m, &mut g2, 100), Event::Ended(DmaState::Done));
        assert_eq!(contents(&m, &segs), stream(Algorithm::Xoshiro256pp, 1, 66));
        assert_eq!(g2.next_u64(), output(Algorithm::Xoshiro256pp, 1, 9));
        // Inconsistent combinations are refused.
        assert!(Dma::restore(saved, None).is_none());
        assert!(Dma::restore(DmaSaved { bytes: 36, ..saved }, Some(t2.clone())).is_none());
        assert!(Dma::restore(DmaSaved { status: 8, ..saved }, Some(t2.clone())).is_none());
        assert!(Dma::restore(
            DmaSaved {
                irq_enable: 2,
                ..saved
            },
            Some(t2.clone())
        )
        .is_none());
        let idle = d2.save();
        assert!(Dma::restore(idle, Some(t2)).is_none());
        assert_eq!(Dma::restore(idle, None), Some(d2));
    }
}
