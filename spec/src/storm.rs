//! The qtest storm's DMA commands and their verdicts, from the spec's DMA model.
//!
//! The QEMU qtest `/my-rng/dma/storm` interleaves a million random register accesses with DMA
//! commands pointing anywhere. What each command must do is not predicted in C: it is here,
//! computed by [`crate::dma`] on a model of the qtest machine's memory map ([`machine_map`])
//! and written into `tests/qtest/my-rng-storm-cases.h` by `cargo xtask vectors`
//! ([`render_c_header`]). A bug in the device's validation then cannot hide behind the same
//! bug in a second C copy.
//!
//! A [`Case`] is one command: the DMA_CMD value, bus mastering at START, where the segment
//! list is and DMA_COUNT, the list's entries ([`Run`]s), and for some FILLs the algorithm and
//! seed to run them with. Addresses are relative to named [`Place`]s of the machine (RAM, the
//! device's own BAR, the other device's BAR, holes, ROM, the top of the address space, ...),
//! which the qtest resolves to the machine's addresses at run time. Its [`Verdict`]: the
//! error at START, or the end the command reaches when nothing stops it (DONE or
//! WRITE_FAULT, DMA_BYTES, SEGS_DONE), and for the checked FILLs a digest of the bytes the
//! complete segments hold afterwards and the next RNG64 output.
//!
//! The storm's RAM layout ([`areas`], [`edges`], [`MAILBOX`]) is here too: the generator only
//! lets DMA write inside the areas, and the qtest checks that every other byte of RAM keeps
//! the value it laid out.

mod gen;
mod render;

pub use gen::{generate, CASES, SEED};
pub use render::{render_c_header, C_HEADER_PATH};

use crate::dma::{self, GuestMemory, Segment};
use crate::memmap::{Kind, MemoryMap, Region};
use crate::regs::{DmaError, DmaState, DMA_MAX_SEGS_VALUE, DMA_SEG_SIZE};
use crate::{Algorithm, Generator};
use sha2::{Digest, Sha256};
use std::boxed::Box;
use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::vec::Vec;

/// Guest RAM of the qtest machine (`-m 128M`).
pub const RAM_MB: u64 = 128;
/// End of guest RAM (all of it below 4 GiB).
pub const RAM_END: u64 = RAM_MB << 20;
/// End of low RAM: without VGA, RAM reaches the option ROM area (pc.rom at 0xc0000).
pub const LOW_RAM_END: u64 = 0xc_0000;
/// Start of RAM above the BIOS area.
pub const HIGH_RAM: u64 = 0x10_0000;
/// Where libqos puts the PCI BARs of the pc machine: `[start, end)`, above RAM and below
/// the IOAPIC. The verdicts hold wherever in it the two BARs are (see the tests).
pub const PCI_WINDOW: (u64, u64) = (0xe000_0000, 0xfec0_0000);
/// BAR0's size.
pub const BAR_SIZE: u64 = 0x1000;

/// Where the two devices' BAR0 are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bars {
    /// The device under the storm.
    pub a: u64,
    /// The second my_rng device, which nothing may touch.
    pub b: u64,
}

/// Where the model puts the BARs: where libqos maps them (A first), inside [`PCI_WINDOW`].
pub const NOMINAL_BARS: Bars = Bars {
    a: PCI_WINDOW.0,
    b: PCI_WINDOW.0 + BAR_SIZE,
};

const IOAPIC: u64 = 0xfec0_0000;
const HPET: u64 = 0xfed0_0000;
const MSI: u64 = 0xfee0_0000;
const BIOS: u64 = 0xfffc_0000;

const fn region(name: &'static str, base: u64, size: u64, kind: Kind) -> Region {
    Region {
        name,
        base,
        size,
        kind,
    }
}

/// The qtest machine's memory map as the device's DMA sees it (`pc`, `-nodefaults -m 128M`,
/// two my_rng devices, the BARs at `bars`): RAM below the option ROM area and from 1 MiB to
/// the end of RAM; everything else is ROM, MMIO or unmapped. Sorted by address.
pub fn machine_map(bars: Bars) -> Vec<Region> {
    let mut map = Vec::from([
        region("low RAM", 0, LOW_RAM_END, Kind::Ram),
        region(
            "option ROM and BIOS shadow",
            LOW_RAM_END,
            HIGH_RAM - LOW_RAM_END,
            Kind::Rom,
        ),
        region("RAM", HIGH_RAM, RAM_END - HIGH_RAM, Kind::Ram),
        region("BAR0 of device A", bars.a, BAR_SIZE, Kind::Mmio),
        region("BAR0 of device B", bars.b, BAR_SIZE, Kind::Mmio),
        region("IOAPIC", IOAPIC, 0x1000, Kind::Mmio),
        region("HPET", HPET, 0x400, Kind::Mmio),
        region("LAPIC and MSI window", MSI, 0x10_0000, Kind::Mmio),
        region("BIOS", BIOS, 0x4_0000, Kind::Rom),
    ]);
    map.sort_by_key(|r| r.base);
    map
}

/// A named place of the machine; a case's address is a place's base plus an offset (modulo
/// 2^64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// Guest RAM, base 0: the only place whose lists the test writes, always inside an area.
    Ram,
    /// The option ROM and BIOS shadow at 0xc0000 (negative offsets: low RAM's last bytes).
    RomLow,
    /// The end of RAM: the hole above it (negative offsets: RAM's last bytes).
    BeyondRam,
    /// BAR0 of the device under the storm (found at run time).
    BarA,
    /// BAR0 of the second device (found at run time).
    BarB,
    /// The IOAPIC's registers.
    Ioapic,
    /// The HPET's registers.
    Hpet,
    /// The LAPIC and MSI window.
    Msi,
    /// The BIOS ROM below 4 GiB.
    Bios,
    /// 4 GiB: nothing above it.
    High,
    /// 2^64 (base 0, negative offsets): ranges ending at or wrapping past the top.
    Top,
    /// Base 0 for any other address.
    Addr,
}

impl Place {
    /// Every place, in the order of the C enum.
    pub const ALL: [Place; 12] = [
        Place::Ram,
        Place::RomLow,
        Place::BeyondRam,
        Place::BarA,
        Place::BarB,
        Place::Ioapic,
        Place::Hpet,
        Place::Msi,
        Place::Bios,
        Place::High,
        Place::Top,
        Place::Addr,
    ];

    /// The C enum's name after its prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Place::Ram => "RAM",
            Place::RomLow => "ROM_LOW",
            Place::BeyondRam => "BEYOND_RAM",
            Place::BarA => "BAR_A",
            Place::BarB => "BAR_B",
            Place::Ioapic => "IOAPIC",
            Place::Hpet => "HPET",
            Place::Msi => "MSI",
            Place::Bios => "BIOS",
            Place::High => "HIGH",
            Place::Top => "TOP",
            Place::Addr => "ADDR",
        }
    }

    /// The place's base address with the BARs at `bars`.
    pub const fn base(self, bars: Bars) -> u64 {
        match self {
            Place::Ram | Place::Top | Place::Addr => 0,
            Place::RomLow => LOW_RAM_END,
            Place::BeyondRam => RAM_END,
            Place::BarA => bars.a,
            Place::BarB => bars.b,
            Place::Ioapic => IOAPIC,
            Place::Hpet => HPET,
            Place::Msi => MSI,
            Place::Bios => BIOS,
            Place::High => 1 << 32,
        }
    }
}

/// Guard bytes around every area, which no DMA may touch.
pub const GUARD: u64 = 256;
/// Guarded RAM at each edge of RAM: only ever inside ranges that straddle the edge (which
/// fault as a whole).
pub const EDGE: u64 = 0x1000;
/// Where device A's MSI messages land (4 bytes, guarded; not an area).
pub const MAILBOX: u64 = 0x0500_0000;
/// A list slot holds the longest list at any of 16 offsets.
pub const SLOT_LEN: u32 = DMA_MAX_SEGS_VALUE * DMA_SEG_SIZE as u32 + 16;
/// Areas by kind, in order: one in low RAM, 2 big, 16 medium, 64 small, 8 list slots.
pub const AREA_COUNTS: [usize; 5] = [1, 2, 16, 64, 8];

/// A buffer in RAM that DMA may write; lists go into the slots (areas too: a segment may
/// overwrite a list, which the device copied at START).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// First byte.
    pub addr: u64,
    /// Length.
    pub len: u32,
}

impl Area {
    /// Whether `[addr, addr + len)` lies inside the area.
    pub fn holds(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr
            && addr - self.addr <= u64::from(self.len)
            && len <= u64::from(self.len) - (addr - self.addr)
    }
}

/// The storm's areas, with odd lengths and addresses so that segments end anywhere in a word.
pub fn areas() -> Vec<Area> {
    let mut v = Vec::from([Area {
        addr: 0x1_0000,
        len: 0x1_0000,
    }]);
    v.extend((0..2).map(|i| Area {
        addr: 0x0100_0000 + i * 0x20_0000,
        len: 0x10_0000,
    }));
    v.extend((0..16).map(|i| Area {
        addr: 0x0200_0000 + i * 0x2_0000 + i * 3,
        len: 0x1_0000 - i as u32 * 5,
    }));
    v.extend((0..64).map(|i| Area {
        addr: 0x0300_0000 + i * 0x2000 + (i * 37) % 256,
        len: 0x1000 + i as u32,
    }));
    v.extend((0..8).map(|i| Area {
        addr: 0x0400_0000 + i * 0x4000,
        len: SLOT_LEN,
    }));
    v
}

/// Index of the first list slot in [`areas`].
pub const FIRST_SLOT: usize = 1 + 2 + 16 + 64;

/// The guarded edges of RAM, `EDGE` bytes each: low RAM's end, high RAM's start, RAM's end.
pub fn edges() -> [u64; 3] {
    [LOW_RAM_END - EDGE, HIGH_RAM, RAM_END - EDGE]
}

/// List entries: one entry, or `repeat` entries each `stride` bytes after the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Where the first entry's address is.
    pub at: Place,
    /// Its offset from the place's base.
    pub off: u64,
    /// Every entry's len.
    pub len: u32,
    /// Every entry's flags.
    pub flags: u32,
    /// Number of entries (at least 1).
    pub repeat: u16,
    /// Address step between entries.
    pub stride: u32,
}

impl Run {
    /// One entry.
    pub const fn one(at: Place, off: u64, len: u32) -> Run {
        Run {
            at,
            off,
            len,
            flags: 0,
            repeat: 1,
            stride: 0,
        }
    }

    /// The entries, with the BARs at `bars`.
    pub fn entries(&self, bars: Bars) -> impl Iterator<Item = Segment> + '_ {
        let addr = self.at.base(bars).wrapping_add(self.off);
        (0..u64::from(self.repeat)).map(move |i| Segment {
            addr: addr.wrapping_add(i * u64::from(self.stride)),
            len: self.len,
            flags: self.flags,
        })
    }
}

/// A FILL whose bytes the qtest checks: it writes ALGO and SEED before START and runs the
/// command to its end with no other access in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The algorithm (deterministic).
    pub alg: Algorithm,
    /// The seed.
    pub seed: u32,
}

/// One DMA command of the storm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The DMA_CMD value (never ABORT: a case is a START).
    pub cmd: u32,
    /// Bus mastering at START.
    pub bme: bool,
    /// Where the list is.
    pub list_at: Place,
    /// Its offset from the place's base.
    pub list_off: u64,
    /// DMA_COUNT.
    pub count: u32,
    /// The entries the test writes at the list, in order; only a list at [`Place::Ram`] is
    /// written (the device reads nothing else the test did not write).
    pub runs: Vec<Run>,
    /// For a checked FILL, the generator to run it with.
    pub fill: Option<Fill>,
}

/// What a command does when nothing stops it (no ABORT, no bus mastering change, no reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ends at START with this error: DMA_BYTES and SEGS_DONE 0.
    Refused(DmaError),
    /// It runs (BUSY) and ends DONE (`None`) or with the error, with DMA_BYTES and SEGS_DONE.
    Runs {
        /// The error it ends with; `None` for DONE.
        error: Option<DmaError>,
        /// DMA_BYTES at the end.
        bytes: u32,
        /// SEGS_DONE at the end.
        segs: u16,
    },
}

/// The expected bytes of a checked FILL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// SHA-256 of the complete segments' contents after the end, in list order.
    pub sha256: [u8; 32],
    /// The next RNG64 read after the end.
    pub next64: u64,
}

/// The spec model's verdict on a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What the command does.
    pub outcome: Outcome,
    /// For a checked FILL: its bytes.
    pub check: Option<Check>,
}

impl Case {
    /// The list's bus address with the BARs at `bars`.
    pub fn list_addr(&self, bars: Bars) -> u64 {
        self.list_at.base(bars).wrapping_add(self.list_off)
    }

    /// The entries the test writes (all runs expanded).
    pub fn entries(&self, bars: Bars) -> Vec<Segment> {
        self.runs.iter().flat_map(|r| r.entries(bars)).collect()
    }

    /// Runs the case through the spec's DMA model on the machine with the BARs at `bars`:
    /// the test's list written, then the checks at START, then the whole command. An error
    /// names what makes the case unfit for the qtest: a verdict that depends on memory the
    /// test did not write, or DMA into RAM outside the areas.
    pub fn verdict(&self, bars: Bars) -> Result<Verdict, String> {
        let map = machine_map(bars);
        let areas = areas();
        let mut mem = ModelMemory::new(MemoryMap::new(&map).expect("machine map"), &areas);
        mem.master = self.bme;
        mem.keep = self.fill.is_some();
        let list = self.list_addr(bars);
        let entries = self.entries(bars);
        if self.list_at == Place::Ram {
            mem.put_list(list, &entries)?;
        }
        let t = dma::validate(self.cmd, list, self.count, &mut mem);
        let mut t = match t {
            Err(e) => {
                return mem.fit(Verdict {
                    outcome: Outcome::Refused(e),
                    check: None,
                })
            }
            Ok(t) => t,
        };
        let mut g = self
            .fill
            .map(|f| Generator::new(f.alg, f.seed).expect("deterministic"));
        let state = match &mut g {
            Some(g) => t.run(&mut mem, g),
            // FILL_HOST, or a FILL the qtest does not check: any bytes will do.
            None => t.run(&mut mem, &mut || 0u64),
        };
        let error = match state {
            DmaState::Done => None,
            DmaState::Error(e) => Some(e),
            s => return Err(format!("the command did not end: {s:?}")),
        };
        let check = g.map(|mut g| Check {
            sha256: mem.digest(&entries[..usize::from(t.segs_done())]),
            next64: g.next_u64(),
        });
        let outcome = Outcome::Runs {
            error,
            bytes: t.bytes(),
            segs: t.segs_done(),
        };
        mem.fit(Verdict { outcome, check })
    }
}

/// Guest memory as the model sees it: the machine's map, the bytes the test and the command
/// wrote, and a note of anything that would make the verdict unfit for the qtest.
struct ModelMemory<'a> {
    map: MemoryMap<'a>,
    areas: &'a [Area],
    master: bool,
    /// Whether the command's bytes are kept (a checked FILL).
    keep: bool,
    /// The bytes the test wrote (the list): the only ones the device may read.
    written: Option<(u64, u64)>,
    pages: BTreeMap<u64, Box<[u8; 4096]>>,
    unfit: Option<String>,
}

impl<'a> ModelMemory<'a> {
    fn new(map: MemoryMap<'a>, areas: &'a [Area]) -> ModelMemory<'a> {
        ModelMemory {
            map,
            areas,
            master: true,
            keep: false,
            written: None,
            pages: BTreeMap::new(),
            unfit: None,
        }
    }

    /// The test writes the list: only into one area (a slot).
    fn put_list(&mut self, addr: u64, entries: &[Segment]) -> Result<(), String> {
        let len = (entries.len() * Segment::SIZE) as u64;
        if !self.areas.iter().any(|a| a.holds(addr, len)) {
            return Err(format!("a list at {addr:#x} +{len:#x} outside the areas"));
        }
        for (i, e) in entries.iter().enumerate() {
            self.poke(addr + (i * Segment::SIZE) as u64, &e.to_le_bytes());
        }
        self.written = Some((addr, len));
        Ok(())
    }

    /// Stores `data` at `addr`, page by page (a command writes up to 1 MiB).
    fn poke(&mut self, addr: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let a = addr + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (4096 - off).min(data.len() - done);
            let page = self
                .pages
                .entry(a >> 12)
                .or_insert_with(|| Box::new([0; 4096]));
            page[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }

    fn peek(&self, addr: u64) -> u8 {
        self.pages
            .get(&(addr >> 12))
            .map_or(0, |p| p[(addr & 0xfff) as usize])
    }

    /// SHA-256 of the segments' contents, in order.
    fn digest(&self, segs: &[Segment]) -> [u8; 32] {
        let mut h = Sha256::new();
        for s in segs {
            let mut a = s.addr;
            let end = s.addr + u64::from(s.len);
            while a < end {
                let n = (4096 - (a & 0xfff)).min(end - a);
                match self.pages.get(&(a >> 12)) {
                    Some(p) => h.update(&p[(a & 0xfff) as usize..][..n as usize]),
                    None => h.update(std::vec![0; n as usize]),
                }
                a += n;
            }
        }
        h.finalize().into()
    }

    fn fit(self, v: Verdict) -> Result<Verdict, String> {
        match self.unfit {
            Some(why) => Err(why),
            None => Ok(v),
        }
    }
}

impl GuestMemory for ModelMemory<'_> {
    fn bus_master(&self) -> bool {
        self.master
    }

    fn is_ram(&self, addr: u64, len: u64) -> bool {
        self.map.is_ram(addr, len)
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        let len = buf.len() as u64;
        let known = self
            .written
            .is_some_and(|(w, n)| addr >= w && addr - w <= n && len <= n - (addr - w));
        if !known {
            self.unfit = Some(format!(
                "the device reads {addr:#x} +{len:#x}, not written by the test"
            ));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.peek(addr + i as u64);
        }
        true
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        if !self.areas.iter().any(|a| a.holds(addr, data.len() as u64)) {
            self.unfit = Some(format!(
                "DMA into {addr:#x} +{:#x}, outside the areas",
                data.len()
            ));
        }
        // Only a checked FILL's bytes are looked at again (its digest).
        if self.keep {
            self.poke(addr, data);
        }
        true
    }
}

#[cfg(test)]
mod tests;
