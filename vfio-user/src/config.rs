//! PCI configuration space of the my_rng function (spec/my-rng.rst, "PCI specs").
//!
//! QEMU's vfio-pci reads the whole space at realize and forwards the guest's writes; it
//! emulates the BARs and the MSI capability itself, but the device must still describe them
//! and keep what is written, so that reads of non-emulated bits are consistent.

use my_rng_spec::regs::{self, BAR_SIZE};

/// Size of a conventional PCI configuration space.
pub const CONFIG_SIZE: usize = 256;

/// PCI IDs and class from the spec crate.
pub const VENDOR_ID: u16 = regs::PCI_VENDOR_ID;
/// Device id.
pub const DEVICE_ID: u16 = regs::PCI_DEVICE_ID;
/// Revision.
pub const REVISION: u8 = regs::PCI_REVISION;
/// Class code: "Unclassified device", prog-if 0.
pub const CLASS: u16 = regs::PCI_CLASS;
/// QEMU's default subsystem IDs (what the in-QEMU device shows).
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1af4;
/// QEMU's default subsystem id.
pub const SUBSYSTEM_ID: u16 = 0x1100;

/// Offset of the MSI capability (the first free capability offset, as QEMU's `msi_init`
/// with offset 0 picks for the C device).
pub const MSI_CAP: usize = 0x40;

const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const BAR0: usize = 0x10;
const CAP_PTR: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;

/// PCI Command bits the device implements (memory space, bus master, parity, SERR#,
/// interrupt disable); no I/O BAR, so I/O space stays 0.
const COMMAND_MASK: u16 = 0x0002 | 0x0004 | 0x0040 | 0x0100 | 0x0400;
/// Command: Bus Master Enable.
pub const COMMAND_MASTER: u16 = 0x0004;
/// Command: Interrupt Disable (masks INTx).
pub const COMMAND_INTX_DISABLE: u16 = 0x0400;
/// Status: capability list present.
const STATUS_CAP_LIST: u16 = 0x0010;
/// Status: Interrupt Status (the INTx level before Interrupt Disable).
const STATUS_INTERRUPT: u16 = 0x0008;

/// MSI capability: id 5, control with 64-bit address and one vector, then address lo/hi and
/// data (no per-vector masking).
const MSI_ID: u8 = 0x05;
const MSI_FLAGS_64BIT: u16 = 0x0080;
const MSI_FLAGS_ENABLE: u16 = 0x0001;

/// The configuration space and the mask of its writable bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSpace {
    /// The space after power-on.
    pub fn new() -> ConfigSpace {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
        };
        c.put16(0x00, VENDOR_ID);
        c.put16(0x02, DEVICE_ID);
        c.put16(STATUS, STATUS_CAP_LIST);
        c.bytes[0x08] = REVISION;
        c.put16(0x0a, CLASS);
        c.put16(0x2c, SUBSYSTEM_VENDOR_ID);
        c.put16(0x2e, SUBSYSTEM_ID);
        c.bytes[CAP_PTR] = MSI_CAP as u8;
        c.bytes[INTERRUPT_PIN] = 1;
        c.bytes[MSI_CAP] = MSI_ID;
        c.bytes[MSI_CAP + 1] = 0;
        c.put16(MSI_CAP + 2, MSI_FLAGS_64BIT);

        c.mask16(COMMAND, COMMAND_MASK);
        // Cache line size and latency timer are plain storage.
        c.writable[0x0c] = 0xff;
        c.writable[0x0d] = 0xff;
        // BAR0: 32-bit non-prefetchable memory; the low bits encode the size.
        c.mask32(BAR0, !(BAR_SIZE as u32 - 1));
        c.writable[INTERRUPT_LINE] = 0xff;
        // MSI: enable (one vector: Multiple Message Enable stays 0), address, data.
        c.mask16(MSI_CAP + 2, MSI_FLAGS_ENABLE);
        c.mask32(MSI_CAP + 4, 0xffff_fffc);
        c.mask32(MSI_CAP + 8, 0xffff_ffff);
        c.mask16(MSI_CAP + 12, 0xffff);
        c
    }

    fn put16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn mask16(&mut self, off: usize, m: u16) {
        self.writable[off..off + 2].copy_from_slice(&m.to_le_bytes());
    }

    fn mask32(&mut self, off: usize, m: u32) {
        self.writable[off..off + 4].copy_from_slice(&m.to_le_bytes());
    }

    fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }

    /// Whether `[offset, offset + len)` lies inside the space.
    pub fn contains(offset: u64, len: usize) -> bool {
        offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= CONFIG_SIZE as u64)
    }

    /// Read `out.len()` bytes at `offset`; `false` (nothing read) if outside the space.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> bool {
        if !Self::contains(offset, out.len()) {
            return false;
        }
        let off = offset as usize;
        out.copy_from_slice(&self.bytes[off..off + out.len()]);
        true
    }

    /// Write `data` at `offset` through the writable mask; `false` if outside the space.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        if !Self::contains(offset, data.len()) {
            return false;
        }
        let off = offset as usize;
        for (i, &b) in data.iter().enumerate() {
            let m = self.writable[off + i];
            self.bytes[off + i] = (self.bytes[off + i] & !m) | (b & m);
        }
        true
    }

    /// PCI Command register.
    pub fn command(&self) -> u16 {
        self.get16(COMMAND)
    }

    /// Bus Master Enable: the device may DMA.
    pub fn bus_master(&self) -> bool {
        self.command() & COMMAND_MASTER != 0
    }

    /// Interrupt Disable: INTx must not be asserted.
    pub fn intx_disabled(&self) -> bool {
        self.command() & COMMAND_INTX_DISABLE != 0
    }

    /// Reflect the INTx level in Status.Interrupt Status.
    pub fn set_interrupt_status(&mut self, level: bool) {
        let mut s = self.get16(STATUS) & !STATUS_INTERRUPT;
        if level {
            s |= STATUS_INTERRUPT;
        }
        self.put16(STATUS, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_capability() {
        let c = ConfigSpace::new();
        let mut b = [0u8; CONFIG_SIZE];
        assert!(c.read(0, &mut b));
        assert_eq!(&b[0..4], &[0x34, 0x12, 0xfe, 0xca]);
        assert_eq!(b[8], 0x10);
        assert_eq!(&b[0x0a..0x0c], &[0xff, 0x00]);
        assert_eq!(b[0x3d], 1);
        assert_eq!(b[0x34], 0x40);
        assert_eq!(b[0x06] & 0x10, 0x10);
        assert_eq!(&b[0x40..0x44], &[0x05, 0x00, 0x80, 0x00]);
    }

    #[test]
    fn bar_sizing_and_masks() {
        let mut c = ConfigSpace::new();
        assert!(c.write(0x10, &[0xff; 4]));
        let mut b = [0u8; 4];
        c.read(0x10, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0xffff_f000);
        // Read-only IDs ignore writes.
        c.write(0, &[0; 4]);
        c.read(0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0xcafe_1234);
        c.write(0x04, &[0xff, 0xff]);
        assert_eq!(c.command(), COMMAND_MASK);
        assert!(c.bus_master() && c.intx_disabled());
        assert!(!c.write(255, &[0, 0]));
        assert!(!c.read(u64::MAX, &mut b));
    }
}
