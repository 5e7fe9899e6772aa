//! Drawing the storm's cases: the shapes the qtest's random walk used to draw in C (segments
//! in the test's buffers, anywhere else, malformed; lists in the slots or anywhere; bad
//! commands and counts; register values left by random writes), now drawn here, seeded, and
//! judged by the model.

use super::{
    areas, Area, Case, Fill, Place, Run, Verdict, EDGE, FIRST_SLOT, HIGH_RAM, LOW_RAM_END,
    NOMINAL_BARS, PCI_WINDOW, RAM_END,
};
use crate::regs::{
    DMA_CMD_ABORT, DMA_CMD_FILL, DMA_CMD_FILL_HOST, DMA_MAX_BYTES_VALUE, DMA_MAX_SEGS_VALUE,
};
use crate::xoshiro::splitmix64;
use crate::Algorithm;
use std::vec::Vec;

/// The generator's seed ("my-rng!c").
pub const SEED: u64 = 0x6d79_2d72_6e67_2163;
/// How many cases the header holds.
pub const CASES: usize = 2048;
/// Most runs in one case: short lists are runs of one entry, long ones a few long runs.
pub const MAX_RUNS: usize = 8;
/// A checked FILL writes at most this much: the qtest reads it back over its socket, and the
/// storm's time goes into round trips and bytes through that socket.
const CHECK_MAX_BYTES: u32 = 0x1_0000;

/// SplitMix64: small, and its sequence is the same everywhere.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// `n` cases from `seed`, each with the model's verdict (BARs where libqos maps them), and
/// how many drawn cases were drawn again because the qtest could not use them (the verdict
/// would depend on memory the test does not write, or the command would write RAM outside
/// the areas).
pub fn generate(seed: u64, n: usize) -> (Vec<(Case, Verdict)>, usize) {
    let mut d = Draw(seed);
    let areas = areas();
    let mut out = Vec::with_capacity(n);
    let mut redrawn = 0;
    while out.len() < n {
        let case = draw_case(&mut d, &areas);
        match case.verdict(NOMINAL_BARS) {
            Ok(v) => out.push(finish(case, v)),
            Err(_) => redrawn += 1,
        }
        // Most draws fit: this many unfit ones is a generator bug, not bad luck.
        assert!(
            redrawn <= 10 * n + 100,
            "storm cases: {redrawn} unfit draws"
        );
    }
    (out, redrawn)
}

/// A FILL is checked only when it runs and writes a little: otherwise it is left to run
/// beside the storm's other accesses, unchecked.
fn finish(mut case: Case, v: Verdict) -> (Case, Verdict) {
    let checked = matches!(v.outcome, super::Outcome::Runs { bytes, .. } if bytes > 0 && bytes <= CHECK_MAX_BYTES);
    if case.fill.is_some() && !checked {
        case.fill = None;
        return (case, Verdict { check: None, ..v });
    }
    (case, v)
}

/// Values the old random register writes liked: limits, bit patterns, small numbers.
const SPECIAL: [u64; 16] = [
    0,
    1,
    2,
    3,
    5,
    7,
    8,
    0xff,
    0xffff,
    0x8000_0000,
    0xffff_ffff,
    DMA_MAX_SEGS_VALUE as u64,
    DMA_MAX_SEGS_VALUE as u64 + 1,
    DMA_MAX_BYTES_VALUE as u64,
    u64::MAX,
    u64::MAX - 15,
];

fn value(d: &mut Draw) -> u64 {
    match d.below(4) {
        0 => d.pick(&SPECIAL),
        1 => d.below(16),
        _ => d.next(),
    }
}

fn draw_case(d: &mut Draw, areas: &[Area]) -> Case {
    if d.chance(8) {
        return register_case(d);
    }
    let clean = d.chance(40);
    let bme = d.chance(92);
    let in_slot = clean || d.chance(85);
    let mut count = if d.chance(88) {
        short_len(d)
    } else {
        9 + d.below(504) as u32
    };
    let mut entries = count;
    if !clean && d.chance(10) {
        count = if d.chance(50) {
            d.below(2 * u64::from(DMA_MAX_SEGS_VALUE)) as u32
        } else {
            d.next() as u32
        };
        // A list the device reads is exactly what the test wrote.
        if (1..=DMA_MAX_SEGS_VALUE).contains(&count) {
            entries = count;
        }
    }
    let (list_at, list_off) = if in_slot {
        let slot = areas[FIRST_SLOT + d.below(8) as usize];
        (Place::Ram, slot.addr + d.below(16))
    } else {
        wild_list(d, count)
    };
    let runs = if list_at != Place::Ram {
        Vec::new()
    } else if entries <= 8 {
        (0..entries).map(|_| segment(d, areas, clean).0).collect()
    } else {
        long_runs(d, areas, clean, entries)
    };
    let cmd = command(d, clean);
    let fill = (cmd == DMA_CMD_FILL && d.chance(60)).then(|| Fill {
        alg: d.pick(&Algorithm::DETERMINISTIC),
        seed: d.next() as u32,
    });
    Case {
        cmd,
        bme,
        list_at,
        list_off,
        count,
        runs,
        fill,
    }
}

/// Short lists: mostly one or two entries, up to eight.
fn short_len(d: &mut Draw) -> u32 {
    match d.below(20) {
        0..=9 => 1,
        10..=14 => 2,
        _ => 3 + d.below(6) as u32,
    }
}

/// A START with what random register writes leave behind: any command value but ABORT, any
/// count, any address (those that would make the device read RAM the test did not write are
/// drawn again by [`generate`]); no list written.
fn register_case(d: &mut Draw) -> Case {
    let mut cmd = value(d) as u32;
    if cmd == DMA_CMD_ABORT {
        cmd = DMA_CMD_FILL;
    }
    Case {
        cmd,
        bme: d.chance(90),
        list_at: Place::Addr,
        list_off: value(d),
        count: value(d) as u32,
        runs: Vec::new(),
        fill: None,
    }
}

fn command(d: &mut Draw, clean: bool) -> u32 {
    const BAD: [u32; 8] = [0, 2, 5, 6, 7, 8, 0x42, u32::MAX];
    if clean || d.chance(85) {
        if d.chance(70) {
            DMA_CMD_FILL
        } else {
            DMA_CMD_FILL_HOST
        }
    } else if d.chance(70) {
        d.pick(&BAD)
    } else {
        // Any value but ABORT, which starts nothing.
        (d.next() as u32) | 0x10
    }
}

/// A list anywhere but in the slots; near the top of the address space often enough that
/// its `16 * count` bytes wrap.
fn wild_list(d: &mut Draw, count: u32) -> (Place, u64) {
    if d.chance(25) {
        let len = 16 * u64::from(count.clamp(1, DMA_MAX_SEGS_VALUE));
        return (Place::Top, 0u64.wrapping_sub(1 + d.below(len)));
    }
    let (at, off, _) = wild(d);
    (at, off)
}

/// A segment inside one of the storm's buffers: its run, and the area it is in.
fn good(d: &mut Draw, areas: &[Area]) -> (Run, Area) {
    let k = d.below(100);
    let i = match k {
        0..10 => 0,
        10..20 => 1 + d.below(2),
        20..45 => 3 + d.below(16),
        45..85 => 19 + d.below(64),
        _ => FIRST_SLOT as u64 + d.below(8),
    };
    let t = areas[i as usize];
    let k = d.below(100);
    let max = if k < 60 {
        64
    } else if k < 90 {
        4096
    } else {
        t.len
    };
    let len = 1 + d.below(u64::from(max.min(t.len))) as u32;
    let addr = t.addr + d.below(u64::from(t.len - len) + 1);
    (Run::one(Place::Ram, addr, len), t)
}

/// An address anywhere but in the storm's buffers, and a length that suits it: registers
/// (the device's own, the other device's, IOAPIC, HPET, the MSI window), holes, ROM, across
/// the edges of RAM (its RAM part in the guarded edge), the top of the address space.
fn wild(d: &mut Draw) -> (Place, u64, u32) {
    let max = if d.chance(80) { 64 } else { 0x2000 };
    let mut len = 1 + d.below(max) as u32;
    let (at, off) = match d.below(12) {
        0 => (Place::BarA, d.below(0x1000)),
        1 => (Place::BarB, d.below(0x1000)),
        2 => (Place::Ioapic, d.below(0x1000)),
        3 => (Place::Hpet, d.below(0x400)),
        4 => (Place::Msi, d.below(0x1000)),
        5 => (Place::BeyondRam, d.below(PCI_WINDOW.0 - RAM_END - 0x2000)),
        6 => (Place::RomLow, d.below(HIGH_RAM - LOW_RAM_END - 0x2000)),
        7 => (Place::Bios, d.below(0x4_0000)),
        8 => (Place::High, d.below(1 << 40)),
        9 => return across_edge(d),
        10 => {
            // The top: ending exactly at 2^64, or wrapping past it.
            let back = 1 + d.below(0x1000);
            if d.chance(50) {
                len = back as u32;
            }
            (Place::Top, 0u64.wrapping_sub(back))
        }
        _ => (Place::Addr, d.next()),
    };
    (at, off, len)
}

/// A range across an edge of RAM whose RAM part lies in the guarded edge.
fn across_edge(d: &mut Draw) -> (Place, u64, u32) {
    let a = 1 + d.below(EDGE);
    match d.below(3) {
        // From low RAM's last a bytes into the option ROM.
        0 => (
            Place::RomLow,
            0u64.wrapping_sub(a),
            (a + 1 + d.below(0x2000)) as u32,
        ),
        // From the BIOS shadow into high RAM's first bytes (fewer than EDGE of them).
        1 => {
            let off = HIGH_RAM - LOW_RAM_END - a;
            (Place::RomLow, off, (a + 1 + d.below(EDGE - 1)) as u32)
        }
        // From RAM's last a bytes into the hole above it.
        _ => (
            Place::BeyondRam,
            0u64.wrapping_sub(a),
            (a + 1 + d.below(0x2000)) as u32,
        ),
    }
}

/// A list entry: mostly good, sometimes anywhere, sometimes malformed (len 0, too long,
/// any len, a flag set). The area is the good entry's.
fn segment(d: &mut Draw, areas: &[Area], clean: bool) -> (Run, Option<Area>) {
    let (mut run, area) = if clean || d.chance(80) {
        let (r, a) = good(d, areas);
        (r, Some(a))
    } else {
        let (at, off, len) = wild(d);
        (Run::one(at, off, len), None)
    };
    if !clean {
        match d.below(50) {
            0 => run.len = 0,
            1 => run.len = DMA_MAX_BYTES_VALUE + 1 + d.below(1000) as u32,
            2 => run.len = d.next() as u32,
            3 => run.flags = 1 << d.below(32),
            _ => {}
        }
    }
    (run, area)
}

/// `n` entries (9 to 512) as one to four runs, each an entry repeated in place or stepping
/// through its buffer.
fn long_runs(d: &mut Draw, areas: &[Area], clean: bool, n: u32) -> Vec<Run> {
    let k = (1 + d.below(4) as u32).min(n);
    let mut left = n;
    let mut runs = Vec::new();
    for i in 0..k {
        let this = if i + 1 == k {
            left
        } else {
            1 + d.below(u64::from(left - (k - 1 - i))) as u32
        };
        left -= this;
        let (mut run, mut area) = segment(d, areas, clean);
        if d.chance(25) {
            // Big entries: the list adds up to more than DMA_MAX_BYTES after a few dozen.
            let t = areas[1 + d.below(2) as usize];
            run = Run {
                len: 0x1000 + d.below(0xf000) as u32,
                ..run
            };
            run.at = Place::Ram;
            run.off = t.addr + d.below(u64::from(t.len - run.len));
            area = Some(t);
        }
        run.repeat = this as u16;
        // Every entry stays inside the buffer (a malformed len may not fit it at all).
        let room = area
            .and_then(|t| (t.addr + u64::from(t.len)).checked_sub(run.off + u64::from(run.len)));
        if let (Some(room), true, true) = (room, this > 1, d.chance(50)) {
            run.stride = d.below(room / u64::from(this - 1) + 1) as u32;
        }
        runs.push(run);
    }
    runs
}
