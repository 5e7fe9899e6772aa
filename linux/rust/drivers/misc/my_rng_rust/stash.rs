// SPDX-License-Identifier: GPL-2.0

//! The stash: RAND, RAND64 and SEED_READ served from a part of the seeded sequence that DMA
//! fetched ahead, instead of one register read per call, invisibly through the driver's ABI
//! (the design the C driver implements too).
//!
//! The stash holds the little-endian words of the FILL stream (successive RNG64 outputs) in a
//! 16 KiB coherent buffer; `pos..len` is the unread part. Per algorithm (spec, "64-bit reads"):
//! under glibc, chacha20 and host, RAND takes one word and RAND64 two (low first, also when a
//! refill comes between them); under xoshiro256++ an output is two words (low, high), RAND
//! takes one output and returns its high half, RAND64 takes one output. Any other algorithm has
//! no stash. `read()` drains the stash first ([`MyRng::drain`]) and never refills it.
//!
//! A refill is one FILL command of `next_fill` bytes: 256 after every drop (probe, SEED,
//! SET_ALGO, SEED_READ), doubling after each refill up to 16 KiB, so that a seed followed by a
//! few RANDs costs one small command and a steady stream one command per 16 KiB. A failed
//! refill leaves the stash empty and returns its error (the device has advanced: an error
//! case). Everything here runs with the device mutex held: concurrent users see some serial
//! order. The device is ahead of the driver by what the stash holds: raw register accesses
//! from outside the driver see later values, and a raw SEED or ALGO write is seen only after
//! the driver's next SEED, SET_ALGO or SEED_READ.

use super::{
    dma::{self, Dma},
    glue, regs, DevState, MyRng,
};
use core::sync::atomic::Ordering;
use kernel::{
    io::{io_project, Io},
    prelude::*,
};

/// Size of the first refill after a drop, in bytes.
pub(crate) const STASH_MIN: usize = 256;
/// Size of the stash buffer, the largest refill, in bytes.
pub(crate) const STASH_MAX: usize = 16 * 1024;
const STASH_WORDS: usize = STASH_MAX / 4;

/// Paths of RAND, RAND64 and SEED_READ, as the `ioctl_path` attribute names them (index into
/// the glue's names).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum IoctlPath {
    /// The stash on a device with DMA and a known algorithm, registers otherwise.
    Auto = 0,
    /// Register reads (words already in the stash are still handed out first).
    Mmio = 1,
    /// The stash (refused on a device without DMA).
    Stash = 2,
}

impl IoctlPath {
    pub(crate) fn from_index(i: u32) -> Option<Self> {
        match i {
            0 => Some(Self::Auto),
            1 => Some(Self::Mmio),
            2 => Some(Self::Stash),
            _ => None,
        }
    }
}

/// How the words of the FILL stream make RAND values under an algorithm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// glibc (0), chacha20 (2), host (3): a RAND value is one word.
    Word,
    /// xoshiro256++ (1): an output is two words; RAND is its high one.
    Pair,
}

impl Unit {
    fn of(algo: u32) -> Option<Self> {
        match algo {
            regs::ALGO_GLIBC | regs::ALGO_CHACHA20 | regs::ALGO_HOST => Some(Self::Word),
            regs::ALGO_XOSHIRO256PP => Some(Self::Pair),
            _ => None,
        }
    }

    /// Words one RAND value takes.
    fn words(self) -> usize {
        match self {
            Self::Word => 1,
            Self::Pair => 2,
        }
    }
}

/// The stash's bookkeeping (the words are in [`Dma::stash`]); under the device mutex.
pub(crate) struct Stash {
    /// Next unread word.
    pos: usize,
    /// Words the last refill put in the buffer.
    len: usize,
    /// The unit of the algorithm the words were filled under.
    unit: Unit,
    /// Bytes of the next refill.
    next_fill: usize,
}

impl Stash {
    pub(crate) const fn new() -> Self {
        Stash {
            pos: 0,
            len: 0,
            unit: Unit::Word,
            next_fill: STASH_MIN,
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.len
    }
}

impl MyRng {
    /// The DMA engine, if the ioctl path lets the stash be refilled.
    fn stash_dma(&self) -> Option<&Dma> {
        match IoctlPath::from_index(self.ioctl_path.load(Ordering::Relaxed)) {
            Some(IoctlPath::Mmio) => None,
            _ => self.dma(),
        }
    }

    /// Copies `out.len()` bytes of the stash buffer from word `i` on (little-endian words, as
    /// the device wrote them); the caller holds the mutex and no command runs.
    fn stash_copy(&self, i: usize, out: &mut [u8]) -> Result {
        let d = self.dma.as_ref().ok_or(EIO)?;
        io_project!(&d.stash, [try: 4 * i..4 * i + out.len()]).copy_to_slice(out);
        Ok(())
    }

    /// Clears words `from..to` of the stash buffer: words are handed out once.
    fn stash_clear(&self, from: usize, to: usize) -> Result {
        let d = self.dma.as_ref().ok_or(EIO)?;
        dma::zero(io_project!(&d.stash, [try: 4 * from..4 * to]))
    }

    /// Takes the stash's next word. A word-sized view (`try_cast`) is read and cleared inline:
    /// `copy_to_slice` would call `memcpy` twice for one RAND.
    #[inline]
    fn stash_word(&self, s: &mut Stash) -> Result<u32> {
        let d = self.dma.as_ref().ok_or(EIO)?;
        let w = io_project!(&d.stash, [try: 4 * s.pos..4 * s.pos + 4]).try_cast::<[u8; 4]>()?;
        let v = w.copy_read();
        w.copy_write([0; 4]);
        s.pos += 1;
        Ok(u32::from_le_bytes(v))
    }

    /// Takes the stash's next two words, which it holds, as one little-endian value (one view,
    /// as for a word).
    #[inline]
    fn stash_pair(&self, s: &mut Stash) -> Result<u64> {
        let d = self.dma.as_ref().ok_or(EIO)?;
        let w = io_project!(&d.stash, [try: 4 * s.pos..4 * s.pos + 8]).try_cast::<[u8; 8]>()?;
        let v = w.copy_read();
        w.copy_write([0; 8]);
        s.pos += 2;
        Ok(u64::from_le_bytes(v))
    }

    /// Takes the stash's next RAND value: one word, or under xoshiro256++ the high word of an
    /// output.
    #[inline]
    fn stash_rand(&self, s: &mut Stash) -> Result<u32> {
        if s.unit == Unit::Pair {
            self.stash_word(s)?;
        }
        self.stash_word(s)
    }

    /// Empties the stash (SEED, SET_ALGO, SEED_READ: its words are of an old sequence); the
    /// next refill is small again.
    fn stash_drop(&self, s: &mut Stash) -> Result {
        if !s.is_empty() {
            self.stash_clear(s.pos, s.len)?;
        }
        s.pos = 0;
        s.len = 0;
        s.next_fill = STASH_MIN;
        Ok(())
    }

    /// Fills the stash with `bytes` (a multiple of 8) of the FILL stream under `unit`. The
    /// wait cannot be interrupted: the device draws the words of an interrupted command, and a
    /// restarted call would skip them. On error the stash stays empty (the device may have
    /// advanced: a lost stretch of the sequence, which only a failing device causes).
    fn stash_fill(&self, d: &Dma, s: &mut Stash, unit: Unit, bytes: usize) -> Result {
        let (done, ret) = self.dma_into(d, regs::DMA_CMD_FILL, &d.stash, 0, bytes, false);
        s.pos = 0;
        s.len = 0;
        if let Err(e) = ret {
            self.stash_clear(0, done.div_ceil(4))?;
            return Err(if e == ETIMEDOUT { EIO } else { e });
        }
        s.unit = unit;
        s.len = bytes / 4;
        Ok(())
    }

    /// Makes sure the stash holds a word, refilling it if the ioctl path and the algorithm
    /// allow it. `Ok(false)`: the caller reads the registers instead.
    #[inline]
    fn stash_ready(&self, s: &mut Stash) -> Result<bool> {
        if !s.is_empty() {
            return Ok(true);
        }
        self.stash_refill(s)
    }

    /// Refills the empty stash, under the algorithm ALGO names now (read at each refill, so
    /// that a raw write from outside cannot make the driver misread the words).
    fn stash_refill(&self, s: &mut Stash) -> Result<bool> {
        let Some(d) = self.stash_dma() else {
            return Ok(false);
        };
        let Some(unit) = Unit::of(self.regs(|bar| self.cur_algo(bar))?) else {
            return Ok(false);
        };
        self.stash_fill(d, s, unit, s.next_fill)?;
        s.next_fill = (s.next_fill * 2).min(STASH_MAX);
        Ok(true)
    }

    /// RAND.
    #[inline]
    pub(crate) fn rand(&self) -> Result<u32> {
        let mut st = self.lock_bound()?;
        let s = &mut st.stash;
        if self.stash_ready(s)? {
            self.stash_rand(s)
        } else {
            self.regs(|bar| bar.read32(regs::RNG))
        }
    }

    /// RAND64: two words, low first: one output under xoshiro256++, two outputs (two RNG
    /// reads) otherwise, which may straddle two refills, or the stash's last word and an RNG
    /// read once the ioctl path is mmio.
    #[inline]
    pub(crate) fn rand64(&self) -> Result<u64> {
        let mut st = self.lock_bound()?;
        let s = &mut st.stash;
        if !self.stash_ready(s)? {
            return self.regs(|bar| self.next64(bar))?;
        }
        if s.len - s.pos >= 2 {
            return self.stash_pair(s);
        }
        // The stash's last word: the high half is the next refill's first word, or RNG.
        let lo = self.stash_word(s)?;
        let hi = if self.stash_ready(s)? {
            self.stash_word(s)?
        } else {
            self.regs(|bar| bar.read32(regs::RNG))?
        };
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    /// SEED.
    pub(crate) fn seed(&self, seed: u32) -> Result {
        let mut st = self.lock_bound()?;
        self.regs(|bar| bar.write32(seed, regs::SEED))?;
        self.stash_drop(&mut st.stash)
    }

    /// SET_ALGO: `EINVAL`, and nothing changed, for an algorithm the device does not offer.
    pub(crate) fn set_algo(&self, algo: u32) -> Result {
        let mut st = self.lock_bound()?;
        if !self.algo_valid(algo) {
            return Err(EINVAL);
        }
        self.regs(|bar| bar.write32(algo, regs::ALGO))?;
        self.stash_drop(&mut st.stash)
    }

    /// SEED_READ: seeds, drops the stash, then takes `vals.len()` RAND values without letting
    /// any other user in between.
    pub(crate) fn seed_read(&self, seed: u32, vals: &mut [u32]) -> Result {
        let mut st = self.lock_bound()?;
        let s = &mut st.stash;
        self.regs(|bar| bar.write32(seed, regs::SEED))?;
        self.stash_drop(s)?;
        if let Some(d) = self.stash_dma() {
            if let Some(unit) = Unit::of(self.regs(|bar| self.cur_algo(bar))?) {
                return self.seed_read_dma(d, s, unit, vals);
            }
        }
        self.regs(|bar| glue::read_rep32(bar, regs::RNG, vals))??;
        vals.iter_mut().for_each(|v| *v = u32::from_le(*v));
        Ok(())
    }

    /// SEED_READ's values by DMA through the stash buffer, in as few commands as it allows.
    /// A command fills whole outputs: after an odd count of one-word values the last
    /// output's second word stays in the stash, where the next call finds it, so the sequence
    /// goes on exactly as after register reads.
    fn seed_read_dma(&self, d: &Dma, s: &mut Stash, unit: Unit, vals: &mut [u32]) -> Result {
        for chunk in vals.chunks_mut(STASH_WORDS / unit.words()) {
            let words = chunk.len() * unit.words();
            self.stash_fill(d, s, unit, (words * 4).next_multiple_of(8))?;
            match unit {
                // The words are the values.
                Unit::Word => {
                    self.stash_copy(0, chunk.as_mut_bytes())?;
                    self.stash_clear(0, words)?;
                    s.pos = words;
                    chunk.iter_mut().for_each(|v| *v = u32::from_le(*v));
                }
                Unit::Pair => {
                    for v in chunk.iter_mut() {
                        *v = self.stash_rand(s)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The start of a `read()` from the stash, which it never refills; the caller holds the
    /// mutex. Writes the little-endian bytes of whole RNG64 values, at most `out.len()` bytes
    /// (the unused bytes of a last value are discarded, as the device does); a value whose low
    /// word is the stash's last gets its high word from RNG, as the device's RNG64 would.
    /// Returns the bytes written: all of `out`, or a multiple of 8 when the stash ran out.
    pub(crate) fn drain(&self, st: &mut DevState, out: &mut [u8]) -> Result<usize> {
        let s = &mut st.stash;
        if s.is_empty() || out.is_empty() {
            return Ok(0);
        }
        // The stash's bytes are the stream's: copy those the read wants, in one go.
        let want = out.len().next_multiple_of(8);
        let have = (s.len - s.pos) * 4;
        let n = want.min(have).min(out.len());
        let end = (s.pos + want / 4).min(s.len);
        self.stash_copy(s.pos, &mut out[..n])?;
        self.stash_clear(s.pos, end)?;
        s.pos = end;
        if have >= want || have % 8 == 0 {
            return Ok(n);
        }
        // The stash ran out after a value's low word: its high word is the device's next
        // RNG value, consumed even if the read ends before it.
        let hi = self.regs(|bar| bar.read32(regs::RNG))?.to_le_bytes();
        let k = (out.len() - n).min(4);
        out[n..n + k].copy_from_slice(&hi[..k]);
        Ok(n + k)
    }
}

impl DevState {
    /// The most a `read()` can take from the stash, in bytes: whole 64-bit values, a lone
    /// last low word counting as one.
    pub(crate) fn stash_read_bytes(&self) -> usize {
        self.stash.len.saturating_sub(self.stash.pos).div_ceil(2) * 8
    }
}
