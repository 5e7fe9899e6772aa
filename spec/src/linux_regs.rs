//! The register definitions of the Linux drivers, generated from [`crate::regs`]: a C header
//! for the C driver ([`C_HEADER_PATH`]) and a Rust module for the Rust driver
//! ([`RUST_PATH`]). `cargo xtask vectors` writes them and `--check` fails when they are stale,
//! so neither driver writes a register constant by hand.
//!
//! The C header leaves out what the uapi header `<uapi/misc/my_rng.h>` already gives user
//! space (the ID magic, the FEATURES bits, the algorithm ids): the driver takes those from
//! there, and the spec crate's tests check the uapi header against this crate.

use crate::regs::{self, DmaError, Register};
use crate::{uapi as abi, Algorithm};
use std::fmt::Write as _;
use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Where the C driver's header lives, relative to the repository root.
pub const C_HEADER_PATH: &str = "linux/c/drivers/misc/my-rng-regs.h";
/// Where the Rust driver's module lives, relative to the repository root.
pub const RUST_PATH: &str = "linux/rust/drivers/misc/my_rng_rust/regs.rs";
/// Where the drivers' user-space header lives, relative to the repository root.
pub const UAPI_PATH: &str = "linux/c/include/uapi/misc/my_rng.h";

/// How a definition's value is written, and its Rust type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// A BAR0 offset or size (`usize` in Rust), hex with at least 3 digits.
    Offset,
    /// A size in bytes (`usize` in Rust), decimal.
    Size,
    /// A `u32` number, decimal.
    Dec,
    /// A `u32` value, hex.
    Hex,
    /// A `u32` bit or contiguous field mask: `BIT(n)` / `GENMASK(h, l)` in C.
    Bits,
}

/// One generated constant: its name without the `MY_RNG_` prefix of C (the Rust name).
#[derive(Clone, Debug)]
struct Def {
    name: String,
    value: u64,
    form: Form,
    /// Given to the C driver by the uapi header: left out of the C header.
    uapi: bool,
    /// A short comment, or empty.
    doc: String,
}

fn def(name: &str, value: impl Into<u64>, form: Form, doc: &str) -> Def {
    Def {
        name: name.to_string(),
        value: value.into(),
        form,
        uapi: false,
        doc: doc.to_string(),
    }
}

fn uapi(mut d: Def) -> Def {
    d.uapi = true;
    d
}

/// A titled group of definitions.
struct Group {
    title: &'static str,
    /// The C name gets `REG_` after `MY_RNG_` (the Rust driver writes `regs::RNG`).
    registers: bool,
    defs: Vec<Def>,
}

/// Access letters as in the spec's register table: R, W or RW.
fn access(r: Register) -> &'static str {
    match (r.readable(), r.writable()) {
        (true, true) => "RW",
        (false, true) => "W",
        _ => "R",
    }
}

/// End (exclusive) of the registers no FEATURES bit beyond the ABI 2.0 ones announces: RNG to
/// RNG64, the part of BAR0 an ABI 2.0 driver uses.
fn base_end() -> u64 {
    Register::ALL
        .iter()
        .filter(|r| r.feature() != regs::FEAT_DMA && r.feature() != regs::FEAT_IRQ)
        .map(|r| r.offset() + u64::from(r.size()))
        .max()
        .unwrap_or(0)
}

fn register_groups() -> Vec<Group> {
    let registers = Register::ALL
        .iter()
        .map(|&r| {
            let doc = format!("{}, {} bytes", access(r), r.size());
            def(r.name(), r.offset(), Form::Offset, &doc)
        })
        .collect();
    let blocks = vec![
        def("BAR_SIZE", regs::BAR_SIZE, Form::Offset, "BAR0 size"),
        def("BASE_END", base_end(), Form::Offset, "end of RNG..RNG64"),
        def("DMA_BASE", regs::DMA_BASE, Form::Offset, "DMA registers"),
        def("DMA_END", regs::DMA_END, Form::Offset, ""),
        def(
            "IRQ_BASE",
            regs::IRQ_BASE,
            Form::Offset,
            "interrupt registers",
        ),
        def("IRQ_END", regs::IRQ_END, Form::Offset, ""),
    ];
    vec![
        Group {
            title: "Registers (offsets into BAR0): access, width",
            registers: true,
            defs: registers,
        },
        Group {
            title: "Blocks of BAR0: [base, end)",
            registers: false,
            defs: blocks,
        },
    ]
}

fn pci_group() -> Group {
    Group {
        title: "PCI identity (QEMU's vendor id is not in pci_ids.h)",
        registers: false,
        defs: vec![
            def("PCI_VENDOR_ID", regs::PCI_VENDOR_ID, Form::Hex, ""),
            def("PCI_DEVICE_ID", regs::PCI_DEVICE_ID, Form::Hex, ""),
        ],
    }
}

fn ident_group() -> Group {
    let mut defs = vec![
        uapi(def("ID_MAGIC", regs::ID_MAGIC, Form::Hex, "ID bits 31..16")),
        def("ID_MAGIC_SHIFT", regs::ID_MAGIC_SHIFT, Form::Dec, ""),
        def("ID_MAJOR_SHIFT", regs::ID_MAJOR_SHIFT, Form::Dec, ""),
        def("ID_VERSION_MASK", regs::ID_VERSION_MASK, Form::Hex, ""),
        def("ABI_MAJOR", regs::ABI_MAJOR, Form::Dec, "ID bits 15..8"),
        def("ABI_MINOR", regs::ABI_MINOR, Form::Dec, "ID bits 7..0"),
        def("ID_VALUE", regs::ID_VALUE, Form::Hex, ""),
    ];
    for (name, bit) in regs::FEATURE_BITS {
        defs.push(uapi(def(&format!("FEAT_{name}"), bit, Form::Bits, "")));
    }
    defs.push(def("FEATURES_VALUE", regs::FEATURES_VALUE, Form::Hex, ""));
    for alg in Algorithm::ALL {
        let name = format!("ALGO_{}", alg.name().to_uppercase());
        defs.push(uapi(def(&name, alg.id(), Form::Dec, "")));
    }
    defs.push(def("ALGOS_VALUE", regs::ALGOS_VALUE, Form::Hex, ""));
    Group {
        title: "ID, FEATURES and ALGOS",
        registers: false,
        defs,
    }
}

/// The ioctls: user ABI only, so the C driver has them from the uapi header.
fn ioctl_group() -> Group {
    let mut defs: Vec<Def> = abi::IOCTLS
        .iter()
        .map(|i| uapi(def(&format!("IOCTL_{}", i.name), i.number(), Form::Hex, "")))
        .collect();
    defs.push(uapi(def(
        "SEED_READ_MAX",
        abi::SEED_READ_MAX,
        Form::Dec,
        "",
    )));
    Group {
        title: "ioctl numbers (generic _IOC layout) and limits",
        registers: false,
        defs,
    }
}

/// Undocumented `u32` definitions, from (name, value, form).
fn plain(list: &[(&str, u32, Form)]) -> Vec<Def> {
    list.iter().map(|&(n, v, f)| def(n, v, f, "")).collect()
}

fn dma_cmd_group() -> Group {
    let mut defs = plain(&[
        ("DMA_MAX_SEGS_VALUE", regs::DMA_MAX_SEGS_VALUE, Form::Dec),
        ("DMA_MAX_BYTES_VALUE", regs::DMA_MAX_BYTES_VALUE, Form::Hex),
    ]);
    defs.push(def(
        "DMA_SEG_SIZE",
        regs::DMA_SEG_SIZE,
        Form::Size,
        "list entry",
    ));
    defs.extend(plain(&[
        ("DMA_CMD_START", regs::DMA_CMD_START, Form::Bits),
        ("DMA_CMD_SRC_HOST", regs::DMA_CMD_SRC_HOST, Form::Bits),
        ("DMA_CMD_ABORT", regs::DMA_CMD_ABORT, Form::Bits),
        ("DMA_CMD_FILL", regs::DMA_CMD_FILL, Form::Hex),
        ("DMA_CMD_FILL_HOST", regs::DMA_CMD_FILL_HOST, Form::Hex),
    ]));
    Group {
        title: "DMA engine: limits, DMA_CMD values",
        registers: false,
        defs,
    }
}

fn dma_status_group() -> Group {
    let mut defs = plain(&[
        (
            "DMA_STATUS_STATE_MASK",
            regs::DMA_STATUS_STATE_MASK,
            Form::Bits,
        ),
        ("DMA_STATE_IDLE", regs::DMA_STATE_IDLE, Form::Dec),
        ("DMA_STATE_BUSY", regs::DMA_STATE_BUSY, Form::Dec),
        ("DMA_STATE_DONE", regs::DMA_STATE_DONE, Form::Dec),
        ("DMA_STATE_ERROR", regs::DMA_STATE_ERROR, Form::Dec),
        ("DMA_STATUS_REJECTED", regs::DMA_STATUS_REJECTED, Form::Bits),
        (
            "DMA_STATUS_ERROR_SHIFT",
            regs::DMA_STATUS_ERROR_SHIFT,
            Form::Dec,
        ),
        (
            "DMA_STATUS_ERROR_MASK",
            regs::DMA_STATUS_ERROR_MASK,
            Form::Bits,
        ),
        (
            "DMA_STATUS_SEGS_SHIFT",
            regs::DMA_STATUS_SEGS_SHIFT,
            Form::Dec,
        ),
        (
            "DMA_STATUS_SEGS_MASK",
            regs::DMA_STATUS_SEGS_MASK,
            Form::Bits,
        ),
    ]);
    for e in DmaError::ALL {
        let name = format!("DMA_ERR_{}", e.name());
        defs.push(def(&name, e.code(), Form::Dec, ""));
    }
    Group {
        title: "DMA_STATUS: STATE, REJECTED, error code, SEGS_DONE",
        registers: false,
        defs,
    }
}

fn irq_group() -> Group {
    Group {
        title: "IRQ_STATUS and IRQ_ENABLE bits",
        registers: false,
        defs: vec![
            def("IRQ_DMA_DONE", regs::IRQ_DMA_DONE, Form::Bits, ""),
            def("IRQ_MASK", regs::IRQ_MASK, Form::Bits, "implemented bits"),
        ],
    }
}

/// Every generated definition, in file order.
fn groups() -> Vec<Group> {
    let mut g = register_groups();
    g.extend([
        pci_group(),
        ident_group(),
        dma_cmd_group(),
        dma_status_group(),
        irq_group(),
        ioctl_group(),
    ]);
    g
}

/// `(high, low)` bit of a contiguous non-zero mask.
fn mask_bits(v: u64) -> (u32, u32) {
    let low = v.trailing_zeros();
    let high = 63 - v.leading_zeros();
    // A generated GENMASK must mean the value: the mask is one run of ones.
    assert!(
        v != 0 && (v >> low).count_ones() == high - low + 1,
        "{v:#x}"
    );
    (high, low)
}

fn c_value(d: &Def) -> String {
    match d.form {
        Form::Offset => format!("0x{:03x}", d.value),
        Form::Size | Form::Dec => d.value.to_string(),
        Form::Hex => format!("0x{:x}", d.value),
        Form::Bits => match mask_bits(d.value) {
            (h, l) if h == l => format!("BIT({l})"),
            (h, l) => format!("GENMASK({h}, {l})"),
        },
    }
}

/// `#define NAME` padded with tabs to `col`, as kernel headers align their values.
pub(crate) fn c_define(out: &mut String, name: &str, value: &str, doc: &str, col: usize) {
    let head = format!("#define {name}");
    // Each tab goes to the next multiple of 8; `col` is one and lies past `head`.
    let tabs = col / 8 - head.len() / 8;
    let _ = write!(out, "{head}{}{value}", "\t".repeat(tabs));
    if !doc.is_empty() {
        let _ = write!(out, "\t/* {doc} */");
    }
    out.push('\n');
}

const C_PREAMBLE: &str = "\
/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Register map of the my-rng device, ABI 2.1 (spec/my-rng.rst): generated
 * by cargo xtask vectors from the my-rng-spec crate; do not edit.
 *
 * The ID magic, the FEATURES bits, the algorithm ids and the ioctls are part
 * of the user ABI: <uapi/misc/my_rng.h> has them.
 */
#ifndef _MY_RNG_REGS_H
#define _MY_RNG_REGS_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <uapi/misc/my_rng.h>
";

/// Compile-time checks that the uapi header's structures and ioctl macros give the numbers
/// the spec computes (the numbers hold for the generic `_IOC` layout, checked on x86).
fn c_uapi_asserts(out: &mut String) {
    out.push_str(
        "\n/*\n * <uapi/misc/my_rng.h> as the spec computes it (ioctl numbers: the\n \
         * generic _IOC layout, checked on x86).\n */\n",
    );
    for arg in [abi::Arg::Info, abi::Arg::SeedRead] {
        let _ = writeln!(
            out,
            "static_assert(sizeof({}) == {});",
            arg.c_type(),
            arg.size()
        );
    }
    out.push_str("#ifdef CONFIG_X86\n");
    for i in abi::IOCTLS {
        let _ = writeln!(
            out,
            "static_assert(MY_RNG_IOCTL_{} == {:#x});",
            i.name,
            i.number()
        );
    }
    out.push_str("#endif\n");
}

/// The C name of `d` in `g`.
fn c_name(g: &Group, d: &Def) -> String {
    let reg = if g.registers { "REG_" } else { "" };
    format!("MY_RNG_{reg}{}", d.name)
}

/// The exact content of [`C_HEADER_PATH`]: kernel style, checkpatch --strict clean.
pub fn render_linux_c_header() -> String {
    let groups = groups();
    let width = groups
        .iter()
        .flat_map(|g| g.defs.iter().map(move |d| c_name(g, d).len()))
        .max()
        .unwrap_or(0);
    // The first tab stop after the longest `#define NAME `.
    let col = ("#define ".len() + width + 1).div_ceil(8) * 8;
    let mut out = String::from(C_PREAMBLE);
    for g in &groups {
        let defs: Vec<&Def> = g.defs.iter().filter(|d| !d.uapi).collect();
        if defs.is_empty() {
            continue;
        }
        let _ = write!(out, "\n/* {}. */\n", g.title);
        for d in defs {
            c_define(&mut out, &c_name(g, d), &c_value(d), &d.doc, col);
        }
    }
    c_uapi_asserts(&mut out);
    out.push_str("\n#endif /* _MY_RNG_REGS_H */\n");
    out
}

fn rust_type_value(d: &Def) -> (&'static str, String) {
    match d.form {
        Form::Offset => ("usize", format!("0x{:03x}", d.value)),
        Form::Size => ("usize", d.value.to_string()),
        Form::Dec => ("u32", d.value.to_string()),
        Form::Hex => ("u32", format!("0x{:x}", d.value)),
        Form::Bits => match mask_bits(d.value) {
            (h, l) if h == l => ("u32", format!("1 << {l}")),
            _ => ("u32", format!("0x{:x}", d.value)),
        },
    }
}

const RUST_PREAMBLE: &str = "\
// SPDX-License-Identifier: GPL-2.0

//! Register map of the my-rng device, ABI 2.1 (spec/my-rng.rst): generated by
//! `cargo xtask vectors` from the my-rng-spec crate; do not edit.

// The whole map is generated; the driver uses part of it.
#![allow(dead_code)]
";

/// The exact content of [`RUST_PATH`]: rustfmt-clean with the kernel's `.rustfmt.toml`.
pub fn render_rust_regs() -> String {
    let mut out = String::from(RUST_PREAMBLE);
    for g in groups() {
        let _ = write!(out, "\n// {}.\n", g.title);
        for d in &g.defs {
            let (ty, value) = rust_type_value(d);
            if !d.doc.is_empty() {
                let _ = writeln!(out, "/// {}: {}.", d.name, d.doc);
            }
            let _ = writeln!(out, "pub(crate) const {}: {ty} = {value};", d.name);
        }
    }
    out
}
