//! A machine's physical memory map as the DMA engine sees it: which bus addresses are guest
//! RAM the device may read and write, and which are ROM, MMIO or nothing.
//!
//! The DMA checks need one question answered: is `[addr, addr + len)` entirely RAM
//! ([`crate::dma::GuestMemory::is_ram`])? A test that predicts DMA outcomes on a real machine
//! describes that machine's map here and asks the same question; [`MemoryMap::is_ram`] is the
//! answer the spec gives (unmapped, ROM and every MMIO region, the device's own BAR included,
//! are not RAM; adjacent RAM regions make one RAM range).

use crate::dma::wraps;

/// What the device finds at a bus address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Guest RAM: DMA reads and writes it.
    Ram,
    /// Read-only memory (firmware, option ROMs): never written by DMA.
    Rom,
    /// A device's registers: never accessed by DMA (side effects).
    Mmio,
}

/// One region of the map: `[base, base + size)`, `size >= 1`, ending at 2^64 at the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// A name for messages and generated tables.
    pub name: &'static str,
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
    /// What it is.
    pub kind: Kind,
}

impl Region {
    /// The last address of the region (no overflow for a region ending at 2^64).
    pub const fn last(&self) -> u64 {
        self.base + (self.size - 1)
    }

    /// Whether `addr` lies in the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr <= self.last()
    }
}

/// Why [`MemoryMap::new`] refused a list of regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// This region is empty or runs past 2^64.
    BadRegion(&'static str),
    /// This region starts before the end of the one before it (regions must be sorted and
    /// disjoint).
    Overlap(&'static str),
}

/// A memory map: sorted, disjoint regions; addresses in none of them are unmapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMap<'a> {
    regions: &'a [Region],
}

impl<'a> MemoryMap<'a> {
    /// The map of `regions`, which must be sorted by base, non-empty, disjoint and not
    /// wrap past 2^64.
    pub fn new(regions: &'a [Region]) -> Result<MemoryMap<'a>, MapError> {
        let mut end: Option<u64> = None; // the last address of the previous region
        for r in regions {
            if r.size == 0 || wraps(r.base, r.size) {
                return Err(MapError::BadRegion(r.name));
            }
            if end.is_some_and(|e| r.base <= e) {
                return Err(MapError::Overlap(r.name));
            }
            end = Some(r.last());
        }
        Ok(MemoryMap { regions })
    }

    /// The regions, in address order.
    pub fn regions(&self) -> &'a [Region] {
        self.regions
    }

    /// The region holding `addr`; `None` where nothing is mapped.
    pub fn region_at(&self, addr: u64) -> Option<&'a Region> {
        // Sorted and disjoint: the candidate is the last region starting at or below addr.
        let i = self.regions.partition_point(|r| r.base <= addr);
        self.regions[..i].last().filter(|r| r.contains(addr))
    }

    /// What is at `addr`; `None` where nothing is mapped.
    pub fn kind_at(&self, addr: u64) -> Option<Kind> {
        self.region_at(addr).map(|r| r.kind)
    }

    /// Whether `[addr, addr + len)` is entirely guest RAM (possibly over several adjacent RAM
    /// regions). An empty or wrapping range is not.
    pub fn is_ram(&self, addr: u64, len: u64) -> bool {
        if len == 0 || wraps(addr, len) {
            return false;
        }
        let last = addr + (len - 1);
        let mut pos = addr;
        loop {
            match self.region_at(pos) {
                Some(r) if r.kind == Kind::Ram => {
                    if r.last() >= last {
                        return true;
                    }
                    pos = r.last() + 1;
                }
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn region(name: &'static str, base: u64, size: u64, kind: Kind) -> Region {
        Region {
            name,
            base,
            size,
            kind,
        }
    }

    const MAP: [Region; 5] = [
        region("low", 0, 0x1000, Kind::Ram),
        region("low2", 0x1000, 0x1000, Kind::Ram), // adjacent: one RAM range
        region("rom", 0x3000, 0x1000, Kind::Rom),
        region("bar", 0x4000, 0x100, Kind::Mmio),
        region("top", u64::MAX - 0xfff, 0x1000, Kind::Ram), // ends at 2^64
    ];

    #[test]
    fn regions_are_checked() {
        assert!(MemoryMap::new(&MAP).is_ok());
        assert!(MemoryMap::new(&[]).is_ok());
        let empty = [region("e", 0, 0, Kind::Ram)];
        assert_eq!(MemoryMap::new(&empty), Err(MapError::BadRegion("e")));
        let wrap = [region("w", u64::MAX, 2, Kind::Ram)];
        assert_eq!(MemoryMap::new(&wrap), Err(MapError::BadRegion("w")));
        let overlap = [
            region("a", 0, 0x10, Kind::Ram),
            region("b", 0xf, 1, Kind::Rom),
        ];
        assert_eq!(MemoryMap::new(&overlap), Err(MapError::Overlap("b")));
        let unsorted = [
            region("a", 0x10, 0x10, Kind::Ram),
            region("b", 0, 1, Kind::Rom),
        ];
        assert_eq!(MemoryMap::new(&unsorted), Err(MapError::Overlap("b")));
    }

    #[test]
    fn kind_at_every_boundary() {
        let m = MemoryMap::new(&MAP).unwrap();
        let cases = [
            (0, Some(Kind::Ram)),
            (0xfff, Some(Kind::Ram)),
            (0x1000, Some(Kind::Ram)),
            (0x1fff, Some(Kind::Ram)),
            (0x2000, None),
            (0x2fff, None),
            (0x3000, Some(Kind::Rom)),
            (0x3fff, Some(Kind::Rom)),
            (0x4000, Some(Kind::Mmio)),
            (0x40ff, Some(Kind::Mmio)),
            (0x4100, None),
            (u64::MAX - 0x1000, None),
            (u64::MAX - 0xfff, Some(Kind::Ram)),
            (u64::MAX, Some(Kind::Ram)),
        ];
        for (addr, kind) in cases {
            assert_eq!(m.kind_at(addr), kind, "{addr:#x}");
        }
        assert_eq!(m.region_at(0x1234).map(|r| r.name), Some("low2"));
    }

    #[test]
    fn is_ram_ranges() {
        let m = MemoryMap::new(&MAP).unwrap();
        // Inside one region, across two adjacent RAM regions, up to 2^64.
        assert!(m.is_ram(0, 1));
        assert!(m.is_ram(0, 0x1000));
        assert!(m.is_ram(0xff0, 0x20));
        assert!(m.is_ram(0, 0x2000));
        assert!(m.is_ram(u64::MAX - 0xfff, 0x1000));
        assert!(m.is_ram(u64::MAX, 1));
        // One byte too many, into unmapped space; ROM; MMIO; empty; wrapping.
        assert!(!m.is_ram(0, 0x2001));
        assert!(!m.is_ram(0x1fff, 2));
        assert!(!m.is_ram(0x3000, 1));
        assert!(!m.is_ram(0x4000, 4));
        assert!(!m.is_ram(0x2fff, 2));
        assert!(!m.is_ram(0, 0));
        assert!(!m.is_ram(u64::MAX, 2));
        assert!(!m.is_ram(u64::MAX - 0x1000, 2));
    }
}
