use super::gen::MAX_RUNS;
use super::*;
use crate::regs::{DMA_CMD_FILL, DMA_CMD_FILL_HOST, DMA_MAX_BYTES_VALUE};
use std::collections::BTreeMap;
use std::vec;

/// The header's cases and the header, made once for all the tests (each takes a second in a
/// debug build).
fn cases() -> &'static [(Case, Verdict)] {
    static CASES_ONCE: std::sync::OnceLock<Vec<(Case, Verdict)>> = std::sync::OnceLock::new();
    CASES_ONCE.get_or_init(|| generate(SEED, CASES).0)
}

fn header() -> &'static str {
    static HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEADER.get_or_init(render_c_header)
}

fn case(list: u64, runs: Vec<Run>) -> Case {
    Case {
        cmd: DMA_CMD_FILL,
        bme: true,
        list_at: Place::Ram,
        list_off: list,
        count: runs.iter().map(|r| u32::from(r.repeat)).sum(),
        runs,
        fill: None,
    }
}

fn slot(i: usize) -> u64 {
    areas()[FIRST_SLOT + i].addr
}

fn ran(error: Option<DmaError>, bytes: u32, segs: u16) -> Outcome {
    Outcome::Runs { error, bytes, segs }
}

#[test]
fn machine_map_is_valid() {
    for bars in [NOMINAL_BARS].into_iter().chain(other_bars()) {
        let regions = machine_map(bars);
        let map = MemoryMap::new(&regions).expect("sorted and disjoint");
        assert!(map.is_ram(0, LOW_RAM_END));
        assert!(map.is_ram(HIGH_RAM, RAM_END - HIGH_RAM));
        assert!(!map.is_ram(LOW_RAM_END - 1, 2));
        assert!(!map.is_ram(HIGH_RAM - 1, 2));
        assert!(!map.is_ram(RAM_END - 1, 2));
        for p in [Place::BarA, Place::BarB] {
            let base = p.base(bars);
            assert_eq!(map.kind_at(base), Some(Kind::Mmio));
            assert!(base >= PCI_WINDOW.0 && base + BAR_SIZE <= PCI_WINDOW.1);
        }
    }
}

/// The layout: areas inside RAM, disjoint with their guards, clear of the edges and the
/// mailbox; slots big enough for the longest list.
#[test]
fn layout_is_consistent() {
    let a = areas();
    assert_eq!(a.len(), AREA_COUNTS.iter().sum::<usize>());
    assert_eq!(FIRST_SLOT + AREA_COUNTS[4], a.len());
    let map_regions = machine_map(NOMINAL_BARS);
    let map = MemoryMap::new(&map_regions).unwrap();
    let mut spans: Vec<(u64, u64)> = a
        .iter()
        .map(|t| (t.addr - GUARD, t.addr + u64::from(t.len) + GUARD))
        .collect();
    spans.extend(edges().iter().map(|&e| (e, e + EDGE)));
    spans.push((MAILBOX - GUARD, MAILBOX + 4 + GUARD));
    for &(lo, hi) in &spans {
        assert!(map.is_ram(lo, hi - lo), "{lo:#x}");
    }
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "{:#x?} overlaps {:#x?}", w[0], w[1]);
    }
    for s in &a[FIRST_SLOT..] {
        assert_eq!(s.len, SLOT_LEN);
        assert!(s.holds(s.addr + 15, 512 * 16));
    }
}

/// Hand-made cases against what the spec says, one per outcome.
#[test]
fn verdicts_of_known_cases() {
    let big = areas()[1];
    let good = Run::one(Place::Ram, big.addr + 3, 100);
    let bar = Run::one(Place::BarA, 0x4c, 4);
    let edge = Run::one(Place::BeyondRam, 0u64.wrapping_sub(8), 16);
    let flags = Run { flags: 2, ..good };
    let tests: Vec<(Case, Outcome)> = vec![
        (case(slot(0), vec![good]), ran(None, 100, 1)),
        (
            case(slot(1) + 5, vec![good, bar, good]),
            ran(Some(DmaError::WriteFault), 100, 1),
        ),
        (
            case(slot(2), vec![edge]),
            ran(Some(DmaError::WriteFault), 0, 0),
        ),
        (
            Case {
                cmd: 0,
                ..case(slot(0), vec![good])
            },
            Outcome::Refused(DmaError::BadCmd),
        ),
        (
            Case {
                bme: false,
                ..case(slot(0), vec![good])
            },
            Outcome::Refused(DmaError::NoMaster),
        ),
        (
            Case {
                count: 513,
                ..case(slot(0), vec![good])
            },
            Outcome::Refused(DmaError::BadCount),
        ),
        (
            Case {
                list_at: Place::Top,
                list_off: 0u64.wrapping_sub(8),
                count: 1,
                ..case(0, vec![])
            },
            Outcome::Refused(DmaError::ListWrap),
        ),
        (
            Case {
                list_at: Place::BarA,
                list_off: 0,
                count: 1,
                ..case(0, vec![])
            },
            Outcome::Refused(DmaError::ListFault),
        ),
        (
            case(slot(3), vec![good, flags]),
            Outcome::Refused(DmaError::BadSegment),
        ),
        (
            case(
                slot(4),
                vec![Run {
                    len: 0x1000,
                    repeat: 257,
                    ..good
                }],
            ),
            Outcome::Refused(DmaError::TooLong),
        ),
        (
            case(
                slot(5),
                vec![Run {
                    off: big.addr,
                    len: 0x800,
                    repeat: 512,
                    stride: 0x800,
                    ..good
                }],
            ),
            ran(None, 0x10_0000, 512),
        ),
    ];
    for (c, want) in tests {
        let v = c.verdict(NOMINAL_BARS).unwrap();
        assert_eq!(v.outcome, want, "{c:?}");
        assert_eq!(v.check, None);
    }
}

/// A checked FILL: the digest is the stream's bytes (overlaps: the later segment's), the
/// next output follows the stream.
#[test]
fn checked_fill_digest_and_next_output() {
    let t = areas()[3];
    let runs = vec![
        Run::one(Place::Ram, t.addr, 10),
        Run::one(Place::Ram, t.addr + 4, 9),
    ];
    let mut c = case(slot(0), runs);
    c.fill = Some(Fill {
        alg: Algorithm::Xoshiro256pp,
        seed: 7,
    });
    let v = c.verdict(NOMINAL_BARS).unwrap();
    let mut g = Generator::new(Algorithm::Xoshiro256pp, 7).unwrap();
    let stream: Vec<u8> = (0..3).flat_map(|_| g.next_u64().to_le_bytes()).collect();
    // Memory after the command: bytes 0..4 of the stream, then 10..19 over 4..13.
    let mut mem = stream[..10].to_vec();
    mem.splice(4..10, stream[10..19].iter().copied());
    let mut want = Sha256::new();
    want.update(&mem[..10]);
    want.update(&mem[4..13]);
    let want: [u8; 32] = want.finalize().into();
    assert_eq!(v.outcome, ran(None, 19, 2));
    let check = v.check.unwrap();
    assert_eq!(check.sha256, want);
    assert_eq!(check.next64, g.next_u64());
}

/// Cases the qtest could not use are refused: a list outside the slots, a read of RAM the
/// test did not write, DMA into RAM outside the areas.
#[test]
fn unfit_cases_are_refused() {
    let good = Run::one(Place::Ram, areas()[0].addr, 8);
    assert!(case(areas()[0].addr - 16, vec![good])
        .verdict(NOMINAL_BARS)
        .is_err());
    let c = Case {
        count: 2,
        ..case(slot(0), vec![good])
    };
    assert!(c.verdict(NOMINAL_BARS).unwrap_err().contains("not written"));
    let c = case(slot(0), vec![Run::one(Place::Ram, MAILBOX, 4)]);
    assert!(c
        .verdict(NOMINAL_BARS)
        .unwrap_err()
        .contains("outside the areas"));
    let c = Case {
        list_at: Place::Addr,
        list_off: 0x100,
        count: 1,
        ..case(0, vec![])
    };
    assert!(c.verdict(NOMINAL_BARS).is_err());
}

/// Every outcome occurs among the generated cases, often enough.
#[test]
fn generated_cases_cover_every_outcome() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (c, v) in cases() {
        let key = match v.outcome {
            Outcome::Refused(e) => format!("refused {e}"),
            Outcome::Runs { error: None, .. } => String::from("done"),
            Outcome::Runs { error: Some(e), .. } => format!("runs, then {e}"),
        };
        *seen.entry(key).or_default() += 1;
        if v.check.is_some() {
            *seen.entry(String::from("checked")).or_default() += 1;
        }
        if c.cmd == DMA_CMD_FILL_HOST {
            *seen.entry(String::from("fill-host")).or_default() += 1;
        }
    }
    std::println!("{seen:#?}");
    for e in DmaError::ALL {
        if e == DmaError::Aborted || e == DmaError::WriteFault {
            continue;
        }
        assert!(
            seen.get(&format!("refused {e}")).copied().unwrap_or(0) >= 20,
            "{e}: {seen:?}"
        );
    }
    for k in ["done", "runs, then WRITE_FAULT", "checked", "fill-host"] {
        assert!(seen.get(k).copied().unwrap_or(0) >= 100, "{k}: {seen:?}");
    }
}

/// The generated cases fit the header and the qtest: at most MAX_RUNS runs, a list written
/// only at RAM; and the verdicts are the same wherever in the PCI window the BARs are.
#[test]
fn generated_cases_fit_and_do_not_depend_on_the_bars() {
    for (c, v) in cases() {
        assert!(c.runs.len() <= MAX_RUNS);
        assert!(c.runs.iter().all(|r| r.repeat >= 1));
        assert_ne!(c.cmd, crate::regs::DMA_CMD_ABORT);
        assert!(c.list_at == Place::Ram || c.runs.is_empty());
        assert_eq!(c.fill.is_some(), v.check.is_some());
        // Each case with the BARs elsewhere, the three placements in turn.
        let bars = other_bars()[c.list_off as usize % 3];
        assert_eq!(c.verdict(bars), Ok(*v), "{c:?}");
        if let Outcome::Runs { bytes, .. } = v.outcome {
            assert!(bytes <= DMA_MAX_BYTES_VALUE);
        }
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let a = generate(SEED, 50);
    assert_eq!(a, generate(SEED, 50));
    assert_ne!(a.0, generate(SEED + 1, 50).0);
}

#[test]
fn c_header_shape() {
    let h = header();
    assert!(
        h.lines().all(|l| l.len() <= 80),
        "a line over 80 characters"
    );
    let cases = &h[h.find("my_rng_storm_cases[").unwrap()..];
    assert_eq!(cases.matches("\n    { 0x").count(), CASES);
    assert!(h.ends_with("};\n\n#endif\n"));
}

/// The committed header is what the crate renders (`cargo xtask vectors` writes it).
#[test]
fn committed_c_header_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(C_HEADER_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == render_c_header(),
        "{C_HEADER_PATH} is stale: run `cargo xtask vectors`"
    );
}

/// The BARs elsewhere in the PCI window, to show that the verdicts do not depend on where
/// libqos puts them.
fn other_bars() -> [Bars; 3] {
    [
        Bars {
            a: PCI_WINDOW.0 + 0x10_0000,
            b: PCI_WINDOW.0,
        },
        Bars {
            a: PCI_WINDOW.1 - 0x2000,
            b: PCI_WINDOW.1 - 0x1000,
        },
        Bars {
            a: 0xf000_0000,
            b: 0xe800_0000,
        },
    ]
}
