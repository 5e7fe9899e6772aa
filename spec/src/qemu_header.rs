//! The QEMU device's and qtests' header `include/hw/misc/my-rng.h` ([`PATH`]), generated from
//! [`crate::regs`]: `cargo xtask vectors` writes it and `--check` fails when it is stale.
//! QEMU style (spaces, `(1u << n)`, lines within 80 columns).

use crate::dma::MODEL_STEP_BYTES;
use crate::regs::{self, DmaError, Register};
use crate::Algorithm;
use std::fmt::Write as _;
use std::format;
use std::string::{String, ToString};

/// Where the header lives, relative to the repository root.
pub const PATH: &str = "qemu/include/hw/misc/my-rng.h";

/// QEMU's model only, not ABI: a DMA step runs on a `QEMU_CLOCK_VIRTUAL` timer, one every
/// this many nanoseconds.
pub const DMA_TICK_NS: u32 = 10_000;

const HEAD: &str = "\
/*
 * my-rng PCI random number generator: the guest-visible interface
 *
 * Shared by the device (hw/misc/my-rng.c) and its qtests, so that both use
 * one definition of the register ABI.  The ABI is specified in
 * spec/my-rng.rst of the my-rng project; this file is generated from its
 * my-rng-spec crate by cargo xtask vectors: do not edit.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_MY_RNG_H
#define HW_MISC_MY_RNG_H

#define TYPE_MY_RNG             \"my_rng\"
";

/// A block of `#define MY_RNG_NAME VALUE`, the values aligned: at column 33, or one space
/// after the block's longest name.
struct Block(std::vec::Vec<(String, String)>);

impl Block {
    fn new() -> Block {
        Block(std::vec::Vec::new())
    }

    fn def(&mut self, name: &str, value: impl Into<String>) {
        self.0
            .push((format!("#define MY_RNG_{name}"), value.into()));
    }

    fn write(self, out: &mut String) {
        let w = self
            .0
            .iter()
            .map(|(h, _)| h.len())
            .max()
            .unwrap_or(0)
            .max(31);
        for (head, value) in self.0 {
            let _ = writeln!(out, "{head:<w$} {value}");
        }
    }
}

fn hex(v: impl Into<u64>) -> String {
    format!("{:#x}", v.into())
}

fn bit(v: u32) -> String {
    format!("(1u << {})", v.trailing_zeros())
}

fn identity(out: &mut String) {
    out.push_str("\n/* PCI identity: PCI_VENDOR_ID_QEMU, PCI_CLASS_OTHERS */\n");
    let mut b = Block::new();
    b.def("VENDOR_ID", format!("{:#06x}", regs::PCI_VENDOR_ID));
    b.def("DEVICE_ID", format!("{:#06x}", regs::PCI_DEVICE_ID));
    b.def("REVISION", format!("{:#04x}", regs::PCI_REVISION));
    b.def("CLASS", format!("{:#06x}", regs::PCI_CLASS));
    b.def("BAR_SIZE", hex(regs::BAR_SIZE));
    b.write(out);
    out.push_str("\n/* Register offsets in BAR0 */\n");
    let mut b = Block::new();
    for r in Register::ALL {
        b.def(&format!("REG_{}", r.name()), format!("{:#05x}", r.offset()));
    }
    b.write(out);
}

/// The register map as an X-macro, its line continuations aligned.
fn register_map(out: &mut String) {
    out.push_str(
        "\n/*\n * The register map, X(name, offset, size, readable, writable): an access\n \
         * is valid only at a register's own offset, of its size and in one of its\n \
         * directions; anything else is a guest error without effect.\n */\n",
    );
    let _ = writeln!(out, "{:<67}\\", "#define MY_RNG_REGS(X)");
    for (i, r) in Register::ALL.iter().enumerate() {
        let name = format!("{},", r.name());
        let reg = format!("MY_RNG_REG_{},", r.name());
        let (rd, wr) = (r.readable(), r.writable());
        let x = format!(
            "    X({name:<15}{reg:<26}{}, {:<7}{wr})",
            r.size(),
            format!("{rd},")
        );
        let end = if i + 1 < Register::ALL.len() {
            " \\"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}{end}",
            if end.is_empty() {
                x
            } else {
                format!("{x:<66}")
            }
        );
    }
}

fn ident(out: &mut String) {
    out.push_str("\n/* ID: \"MR\" magic, ABI major and minor */\n");
    let mut b = Block::new();
    b.def("ID_VALUE", format!("{:#x}u", regs::ID_VALUE));
    b.write(out);
    out.push('\n');
    let mut b = Block::new();
    for (name, v) in regs::FEATURE_BITS {
        b.def(&format!("FEAT_{name}"), bit(v));
    }
    b.def("FEATURES_VALUE", format!("{:#x}u", regs::FEATURES_VALUE));
    b.write(out);
    out.push_str("\n/* ALGO values */\n");
    let mut b = Block::new();
    for alg in Algorithm::ALL {
        let name = format!("ALGO_{}", alg.name().to_uppercase());
        b.def(&name, alg.id().to_string());
    }
    b.def("NUM_ALGOS", Algorithm::ALL.len().to_string());
    b.def("ALGOS_VALUE", format!("{:#x}u", regs::ALGOS_VALUE));
    b.write(out);
}

fn dma_layout(out: &mut String) {
    out.push_str("\n/* DMA engine limits (DMA_MAX_SEGS, DMA_MAX_BYTES) */\n");
    let mut b = Block::new();
    b.def("DMA_MAX_SEGS", regs::DMA_MAX_SEGS_VALUE.to_string());
    b.def("DMA_MAX_BYTES", hex(regs::DMA_MAX_BYTES_VALUE));
    b.write(out);
    out.push_str(
        "\n/*\n * Segment list entry in guest memory, little-endian: u64 bus address,\n \
         * u32 length (1..MY_RNG_DMA_MAX_BYTES), u32 flags (must be 0).\n */\n",
    );
    let mut b = Block::new();
    b.def("DMA_SEG_SIZE", regs::DMA_SEG_SIZE.to_string());
    b.def("DMA_SEG_ADDR", regs::DMA_SEG_ADDR.to_string());
    b.def("DMA_SEG_LEN", regs::DMA_SEG_LEN.to_string());
    b.def("DMA_SEG_FLAGS", regs::DMA_SEG_FLAGS.to_string());
    b.write(out);
    out.push_str("\n/* DMA_CMD: bit 0 START, bit 1 SRC_HOST, bit 2 ABORT; only these values */\n");
    let mut b = Block::new();
    b.def("DMA_CMD_START", bit(regs::DMA_CMD_START));
    b.def("DMA_CMD_SRC_HOST", bit(regs::DMA_CMD_SRC_HOST));
    b.def("DMA_CMD_ABORT", bit(regs::DMA_CMD_ABORT));
    b.def("DMA_CMD_FILL", format!("{:#x}u", regs::DMA_CMD_FILL));
    b.def(
        "DMA_CMD_FILL_HOST",
        format!("{:#x}u", regs::DMA_CMD_FILL_HOST),
    );
    b.write(out);
}

fn dma_status(out: &mut String) {
    out.push_str("\n/* DMA_STATUS */\n");
    let mut b = Block::new();
    b.def("DMA_STATE_MASK", hex(regs::DMA_STATUS_STATE_MASK));
    b.def("DMA_STATE_IDLE", regs::DMA_STATE_IDLE.to_string());
    b.def("DMA_STATE_BUSY", regs::DMA_STATE_BUSY.to_string());
    b.def("DMA_STATE_DONE", regs::DMA_STATE_DONE.to_string());
    b.def("DMA_STATE_ERROR", regs::DMA_STATE_ERROR.to_string());
    b.def("DMA_STATUS_REJECTED", bit(regs::DMA_STATUS_REJECTED));
    let shift = regs::DMA_STATUS_ERROR_SHIFT;
    b.def("DMA_STATUS_ERROR_SHIFT", shift.to_string());
    let mask = regs::DMA_STATUS_ERROR_MASK >> shift;
    b.def("DMA_STATUS_ERROR_MASK", format!("({mask:#x}u << {shift})"));
    b.def(
        "DMA_STATUS_SEGS_SHIFT",
        regs::DMA_STATUS_SEGS_SHIFT.to_string(),
    );
    b.write(out);
    out.push_str("\n/* DMA_STATUS.ERROR codes */\n");
    let mut b = Block::new();
    for e in DmaError::ALL {
        b.def(&format!("DMA_ERR_{}", e.name()), e.code().to_string());
    }
    b.write(out);
    out.push_str("\n/* IRQ_STATUS / IRQ_ENABLE */\n");
    let mut b = Block::new();
    b.def("IRQ_DMA_DONE", bit(regs::IRQ_DMA_DONE));
    b.write(out);
}

/// The exact content of [`PATH`]: clean for QEMU's checkpatch.pl.
pub fn render() -> String {
    let mut out = String::from(HEAD);
    identity(&mut out);
    register_map(&mut out);
    ident(&mut out);
    dma_layout(&mut out);
    dma_status(&mut out);
    out.push_str(
        "\n/*\n * Not ABI, the model's pace: a command runs on a QEMU_CLOCK_VIRTUAL\n \
         * timer, at most MY_RNG_DMA_CHUNK bytes every MY_RNG_DMA_TICK_NS.\n */\n",
    );
    let mut b = Block::new();
    b.def("DMA_CHUNK", hex(MODEL_STEP_BYTES));
    b.def("DMA_TICK_NS", DMA_TICK_NS.to_string());
    b.write(&mut out);
    out.push_str("\n#endif\n");
    out
}
