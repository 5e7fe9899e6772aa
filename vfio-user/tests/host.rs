//! Host-side tests: the server binary on a real UNIX socket, driven as QEMU would drive it
//! (the vfio_user crate's Client), checked against the spec crate and `spec/vectors/`.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;
use my_rng_spec::dma::Segment;
use my_rng_spec::regs::{self, Access, DmaError, Register};
use my_rng_spec::vectors::{self, Block, COUNT, SEEDS};
use my_rng_spec::{Algorithm, Generator};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE,
};

const RAM: u64 = 0x4000_0000;
const LIST: u64 = RAM + 0x10_0000;

#[test]
fn pci_identity_regions_and_irqs() {
    let srv = Server::start(&[]);
    let mut d = srv.client();
    let cfg = d.cfg(0, 256);
    assert_eq!(&cfg[0..4], &[0x34, 0x12, 0xfe, 0xca], "1234:cafe");
    assert_eq!(cfg[8], 0x10, "revision");
    assert_eq!(&cfg[9..12], &[0x00, 0xff, 0x00], "class 0x00ff, prog-if 0");
    assert_eq!(cfg[0x3d], 1, "INTA#");
    assert_eq!(cfg[6] & 0x10, 0x10, "capability list");
    let cap = cfg[0x34] as usize;
    assert_eq!(cfg[cap], 0x05, "MSI capability");
    let ctrl = u16::from_le_bytes([cfg[cap + 2], cfg[cap + 3]]);
    assert_eq!(ctrl & 0x80, 0x80, "64-bit MSI");
    assert_eq!(ctrl & 0x0e, 0, "one vector");
    assert_eq!(ctrl & 0x100, 0, "no per-vector masking");
    assert_eq!(cfg[cap + 1], 0, "last capability");
    // BAR0: 4 KiB, 32-bit non-prefetchable memory.
    assert_eq!(d.c.region(0).unwrap().size, 4096);
    assert_eq!(d.c.region(7).unwrap().size, 256);
    for r in [1, 2, 3, 4, 5, 6, 8] {
        assert_eq!(d.c.region(r).unwrap().size, 0, "region {r}");
    }
    d.c.region_write(CONFIG, 0x10, &[0xff; 4]).unwrap();
    assert_eq!(d.cfg(0x10, 4), [0x00, 0xf0, 0xff, 0xff]);
    assert_eq!(d.c.get_irq_info(0).unwrap().count, 1, "INTx");
    assert_eq!(d.c.get_irq_info(1).unwrap().count, 1, "MSI");
    assert_eq!(d.c.get_irq_info(2).unwrap().count, 0, "no MSI-X");
}

#[test]
fn constant_registers() {
    let srv = Server::start(&[]);
    let mut d = srv.client();
    assert_eq!(d.r32(regs::ID), 0x4d52_0201);
    assert_eq!(d.r32(regs::FEATURES), 0x1f);
    assert_eq!(d.r32(regs::ALGOS), 0xf);
    assert_eq!(d.r32(regs::ALGO), 0);
    assert_eq!(d.r32(regs::DMA_MAX_SEGS), 512);
    assert_eq!(d.r32(regs::DMA_MAX_BYTES), 0x10_0000);
    for (reg, v) in [
        (regs::DMA_ADDR_LO, 0x1234_5678),
        (regs::DMA_ADDR_HI, 0x9abc_def0),
        (regs::DMA_COUNT, 77),
    ] {
        d.w32(reg, v);
        assert_eq!(d.r32(reg), v);
    }
    d.w32(regs::IRQ_ENABLE, u32::MAX);
    assert_eq!(d.r32(regs::IRQ_ENABLE), 1);
    assert_eq!(d.r32(regs::IRQ_STATUS), 0);
    assert_eq!(d.r32(regs::DMA_STATUS), 0);
    // Reset (DEVICE_RESET) brings every register back.
    d.c.reset().unwrap();
    for reg in [
        regs::DMA_ADDR_LO,
        regs::DMA_ADDR_HI,
        regs::DMA_COUNT,
        regs::IRQ_ENABLE,
    ] {
        assert_eq!(d.r32(reg), 0);
    }
}

/// The unseeded glibc sequence after power-on (seed 0 behaves as 1).
#[test]
fn power_on_sequence() {
    let srv = Server::start(&[]);
    let mut d = srv.client();
    let want = [1804289383, 846930886, 1681692777, 1714636915, 1957747793];
    for w in want {
        assert_eq!(d.r32(regs::RNG), w);
    }
    // The seed's exercise: 0x42 to SEED, five reads.
    d.w32(regs::SEED, 0x42);
    let want = [286129175, 1594929109, 971802288, 222134722, 1335014133];
    for w in want {
        assert_eq!(d.r32(regs::RNG), w);
    }
}

/// Every (offset, size, direction) the spec's decoder refuses: reads return 0, writes are
/// ignored, nothing is consumed or changed; every accepted one behaves.
#[test]
fn every_access_rule() {
    let srv = Server::start(&["--log", "info"]);
    let mut d = srv.client();
    d.w32(regs::SEED, 0x42);
    let mut g = Generator::new(Algorithm::Glibc, 0x42).unwrap();
    let mut bad = 0;
    for off in (0..regs::BAR_SIZE + 8).step_by(1) {
        for size in [1usize, 2, 4, 8] {
            for dir in [Access::Read, Access::Write] {
                if regs::decode(off, size as u32, dir).is_ok() {
                    continue;
                }
                bad += 1;
                match dir {
                    Access::Read => assert_eq!(d.read(off, size), 0, "{off:#x}/{size}"),
                    Access::Write => d.write(off, size, u64::MAX),
                }
            }
        }
        // Spot-check the state every 256 offsets: the sequence was not touched.
        if off % 256 == 255 {
            assert_eq!(d.r32(regs::RNG), g.next_u32(), "after offset {off:#x}");
        }
    }
    assert!(bad > 30_000, "{bad} bad accesses");
    assert_eq!(d.r32(regs::ALGO), 0);
    assert_eq!(
        d.r32(regs::DMA_STATUS),
        0,
        "no DMA command came from a bad write"
    );
    assert_eq!(d.r32(regs::IRQ_ENABLE), 0);
    for reg in [regs::DMA_ADDR_LO, regs::DMA_ADDR_HI, regs::DMA_COUNT] {
        assert_eq!(d.r32(reg), 0);
    }
    // Invalid ALGO values are ignored (state kept).
    for v in [4, 5, 31, 32, u32::MAX] {
        d.w32(regs::ALGO, v);
        assert_eq!(d.r32(regs::ALGO), 0);
    }
    assert_eq!(d.r32(regs::RNG), g.next_u32());
    // ENTROPY does not disturb the sequence.
    for _ in 0..4 {
        d.r32(regs::ENTROPY);
    }
    assert_eq!(d.r32(regs::RNG), g.next_u32());
    // RNG and RNG64 interleave on one sequence.
    assert_eq!(d.r64(regs::RNG64), g.next_u64());
    assert_eq!(d.r32(regs::RNG), g.next_u32());
    let log = srv.log_text();
    assert!(
        log.contains("guest_error") && log.contains("reserved offset"),
        "guest errors are logged"
    );
    // Each register: its own size only.
    for reg in Register::ALL {
        assert_eq!(
            regs::decode(reg.offset(), reg.size(), Access::Read).is_ok(),
            reg.readable()
        );
    }
}

/// ALGO selects and reseeds from the latch; SEED under host only latches.
#[test]
fn algo_and_seed_latch() {
    let srv = Server::start(&[]);
    let mut d = srv.client();
    d.w32(regs::SEED, 7);
    d.w32(regs::ALGO, 3);
    assert_eq!(d.r32(regs::ALGO), 3);
    d.w32(regs::SEED, 0xdead_beef);
    let a = d.r64(regs::RNG64);
    let b = d.r64(regs::RNG64);
    assert_ne!(a, b, "host entropy");
    d.w32(regs::ALGO, 2);
    let mut g = Generator::new(Algorithm::ChaCha20, 0xdead_beef).unwrap();
    assert_eq!(
        d.r32(regs::RNG),
        g.next_u32(),
        "ALGO reseeds with the latch"
    );
    // Writing the current algorithm again reseeds too.
    d.w32(regs::ALGO, 2);
    let mut g = Generator::new(Algorithm::ChaCha20, 0xdead_beef).unwrap();
    assert_eq!(d.r64(regs::RNG64), g.next_u64());
}

/// Every algorithm and seed of spec/vectors through RNG and RNG64.
#[test]
fn vectors_through_registers() {
    let srv = Server::start(&["--log", "warn"]);
    let mut d = srv.client();
    let mut n = 0;
    for alg in Algorithm::DETERMINISTIC {
        d.w32(regs::ALGO, alg.id());
        for seed in SEEDS {
            for bits in [32, 64] {
                let block = vectors::lookup(alg, seed, bits).expect("vector block");
                assert_eq!(block.values.len(), COUNT);
                d.w32(regs::SEED, seed);
                for (i, &want) in block.values.iter().enumerate() {
                    let got = if bits == 32 {
                        u64::from(d.r32(regs::RNG))
                    } else {
                        d.r64(regs::RNG64)
                    };
                    assert_eq!(got, want, "{alg} seed {seed:#x} {bits}-bit value {i}");
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 3 * 7 * 2 * COUNT);
}

fn seg(addr: u64, len: u32) -> Segment {
    Segment {
        addr,
        len,
        flags: 0,
    }
}

/// DMA FILL of 8000 bytes over odd segments equals the 64-bit vector blocks' bytes, for
/// every algorithm and seed; the generator continues after them.
#[test]
fn vectors_through_dma() {
    let srv = Server::start(&["--log", "warn"]);
    let mut d = srv.client();
    let ram = Ram::new(RAM, 4 << 20);
    ram.map(&mut d);
    d.bus_master(true);
    let lens = [1u32, 7, 4093, 8, 3891];
    let segs: Vec<_> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| seg(RAM + 0x2_0000 * i as u64 + 3, l))
        .collect();
    ram.put_list(LIST, &segs);
    for alg in Algorithm::DETERMINISTIC {
        d.w32(regs::ALGO, alg.id());
        for seed in SEEDS {
            d.w32(regs::SEED, seed);
            d.program(LIST, segs.len() as u32);
            d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
            let st = d.wait_dma();
            assert_eq!(st, 2 | (5 << 16), "{alg} {seed:#x}: DONE, 5 segments");
            assert_eq!(d.r32(regs::DMA_BYTES), 8000);
            let mut got = Vec::new();
            for s in &segs {
                got.extend_from_slice(&ram.read(s.addr, s.len as usize));
            }
            let block = Block::compute(alg, seed, 64, COUNT).unwrap();
            assert!(got == block.le_bytes(), "{alg} {seed:#x}");
            // 1000 outputs consumed: the next RNG64 is output 1000.
            let mut g = Generator::new(alg, seed).unwrap();
            for _ in 0..COUNT {
                g.next_u64();
            }
            assert_eq!(d.r64(regs::RNG64), g.next_u64());
        }
    }
    // FILL_HOST leaves the algorithm alone.
    d.w32(regs::ALGO, 0);
    d.w32(regs::SEED, 0x42);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL_HOST);
    assert_eq!(d.wait_dma() & 3, 2);
    let mut g = Generator::new(Algorithm::Glibc, 0x42).unwrap();
    assert_eq!(d.r64(regs::RNG64), g.next_u64());
    // A partial last output: 13 bytes consume 2 outputs.
    ram.put_list(LIST, &[seg(RAM, 13)]);
    d.w32(regs::SEED, 1);
    d.program(LIST, 1);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.wait_dma() & 3, 2);
    let mut g = Generator::new(Algorithm::Glibc, 1).unwrap();
    let want: Vec<u8> = [g.next_u64(), g.next_u64()]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .take(13)
        .collect();
    assert_eq!(ram.read(RAM, 13), want);
    assert_eq!(d.r64(regs::RNG64), g.next_u64());
}

/// A command of one chunk (64 KiB) ends inside the DMA_CMD write that starts it, its MSI
/// signalled before the write is answered: the gate runs the first chunk itself instead of
/// waking the DMA thread, so the next register access already sees DONE. (With the chunk
/// left to the DMA thread, the read after the write finds it BUSY whenever the thread has
/// not been scheduled yet.)
#[test]
fn one_chunk_command_ends_within_its_start() {
    let srv = Server::start(&["--log", "info"]);
    let mut d = srv.client();
    let ram = Ram::new(RAM, 4 << 20);
    ram.map(&mut d);
    d.bus_master(true);
    let msi = eventfd();
    let trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    d.c.set_irqs(1, trigger, 0, 1, &[msi.as_raw_fd()]).unwrap();
    d.w32(regs::IRQ_ENABLE, 1);
    ram.put_list(LIST, &[seg(RAM, 0x1_0000)]);
    let mut g = Generator::new(Algorithm::Glibc, 0).unwrap();
    for i in 0..50 {
        d.program(LIST, 1);
        d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
        assert_eq!(
            d.r32(regs::DMA_STATUS),
            2 | (1 << 16),
            "command {i}: DONE at once"
        );
        assert_eq!(
            eventfd_wait(&msi, Duration::ZERO),
            Some(1),
            "command {i}: MSI sent"
        );
        d.w32(regs::IRQ_STATUS, 1);
        let want: Vec<u8> = (0..0x1_0000 / 8)
            .flat_map(|_| g.next_u64().to_le_bytes())
            .collect();
        assert!(
            ram.read(RAM, 0x1_0000) == want,
            "command {i}: the FILL stream"
        );
    }
}

fn error_status(e: DmaError, segs: u32) -> u32 {
    3 | (u32::from(e.code()) << 8) | (segs << 16)
}

/// Every DMA error code a START or a run can end with; nothing written outside segments.
#[test]
fn dma_errors() {
    let srv = Server::start(&["--log", "info"]);
    let mut d = srv.client();
    let ram = Ram::new(RAM, 4 << 20);
    ram.map(&mut d);
    let unmapped = RAM + (64 << 20);
    // NO_MASTER first: bus mastering is off after power-on.
    ram.put_list(LIST, &[seg(RAM, 8)]);
    d.program(LIST, 1);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.r32(regs::DMA_STATUS), error_status(DmaError::NoMaster, 0));
    d.bus_master(true);
    let cases: [(DmaError, u32, u64, &[Segment], u32); 7] = [
        (DmaError::BadCmd, 0x8, LIST, &[seg(RAM, 8)], 1),
        (
            DmaError::BadCount,
            regs::DMA_CMD_FILL,
            LIST,
            &[seg(RAM, 8)],
            0,
        ),
        (
            DmaError::BadCount,
            regs::DMA_CMD_FILL,
            LIST,
            &[seg(RAM, 8)],
            513,
        ),
        (DmaError::ListWrap, regs::DMA_CMD_FILL, u64::MAX - 8, &[], 1),
        (DmaError::ListFault, regs::DMA_CMD_FILL, unmapped, &[], 1),
        (
            DmaError::BadSegment,
            regs::DMA_CMD_FILL_HOST,
            LIST,
            &[seg(RAM, 8), seg(RAM, 0)],
            2,
        ),
        (
            DmaError::TooLong,
            regs::DMA_CMD_FILL,
            LIST,
            &[seg(RAM, 0x10_0000), seg(RAM, 1)],
            2,
        ),
    ];
    for (e, cmd, list, segs, count) in cases {
        ram.fill(RAM, 64, 0xa5);
        if !segs.is_empty() {
            ram.put_list(LIST, segs);
        }
        d.program(list, count);
        d.w32(regs::DMA_CMD, cmd);
        assert_eq!(d.r32(regs::DMA_STATUS), error_status(e, 0), "{e}");
        assert_eq!(d.r32(regs::DMA_BYTES), 0);
        assert_eq!(d.r32(regs::IRQ_STATUS), 1, "{e}: DMA_DONE");
        d.w32(regs::IRQ_STATUS, 1);
        assert!(
            ram.read(RAM, 64).iter().all(|&b| b == 0xa5),
            "{e}: no write"
        );
    }
    // WRITE_FAULT: the second segment is outside every map; the first is complete.
    ram.put_list(LIST, &[seg(RAM, 9), seg(unmapped, 1)]);
    d.program(LIST, 2);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.wait_dma(), error_status(DmaError::WriteFault, 1));
    assert_eq!(d.r32(regs::DMA_BYTES), 9);
    // A segment crossing the end of the map faults before any byte of it.
    ram.fill(RAM + (4 << 20) - 8, 8, 0xa5);
    ram.put_list(LIST, &[seg(RAM + (4 << 20) - 8, 16)]);
    d.program(LIST, 1);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.wait_dma(), error_status(DmaError::WriteFault, 0));
    assert!(ram.read(RAM + (4 << 20) - 8, 8).iter().all(|&b| b == 0xa5));
    let log = srv.log_text();
    for e in [
        "BAD_CMD",
        "NO_MASTER",
        "BAD_COUNT",
        "LIST_WRAP",
        "LIST_FAULT",
        "WRITE_FAULT",
    ] {
        assert!(log.contains(e), "{e} logged");
    }
}

/// With a slowed DMA thread: BUSY is visible, REJECTED, ABORT, and an unmap of the target
/// while the command runs ends it with WRITE_FAULT.
#[test]
fn dma_busy_abort_and_unmap_in_use() {
    let srv = Server::start(&["--dma-delay-ms", "200"]);
    let mut d = srv.client();
    let ram = Ram::new(RAM, 4 << 20);
    ram.map(&mut d);
    let target = Ram::new(0x8000_0000, 1 << 20);
    target.map(&mut d);
    d.bus_master(true);
    ram.put_list(LIST, &[seg(0x8000_0000, 1 << 20)]);
    d.program(LIST, 1);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    let st = d.r32(regs::DMA_STATUS);
    assert_eq!(st & 3, 1, "BUSY");
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.r32(regs::DMA_STATUS) & 7, 5, "BUSY + REJECTED");
    d.w32(regs::DMA_CMD, regs::DMA_CMD_ABORT);
    let st = d.r32(regs::DMA_STATUS);
    assert_eq!(
        st & 0xff03,
        error_status(DmaError::Aborted, 0) & 0xff03,
        "{st:#x}"
    );
    let bytes = d.r32(regs::DMA_BYTES);
    assert!(bytes < 1 << 20, "aborted early: {bytes}");
    assert_eq!(bytes % 0x1_0000, 0, "whole chunks");
    // ABORT when idle: nothing changes.
    d.w32(regs::DMA_CMD, regs::DMA_CMD_ABORT);
    assert_eq!(d.r32(regs::DMA_STATUS), st);
    // Unmap while in use.
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.r32(regs::DMA_STATUS) & 3, 1);
    d.c.dma_unmap(0x8000_0000, 1 << 20).unwrap();
    let st = d.wait_dma();
    assert_eq!(st & 0xff03, error_status(DmaError::WriteFault, 0) & 0xff03);
    assert!(d.r32(regs::DMA_BYTES) < 1 << 20);
    // DEVICE_RESET while BUSY: the command is dropped without an interrupt; the registers
    // read 0.
    target.map(&mut d);
    let msi = eventfd();
    d.c.set_irqs(
        1,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        &[msi.as_raw_fd()],
    )
    .unwrap();
    d.w32(regs::IRQ_STATUS, 1);
    d.w32(regs::IRQ_ENABLE, 1);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    assert_eq!(d.r32(regs::DMA_STATUS) & 3, 1);
    d.c.reset().unwrap();
    for reg in [
        regs::DMA_STATUS,
        regs::DMA_BYTES,
        regs::IRQ_STATUS,
        regs::IRQ_ENABLE,
        regs::DMA_COUNT,
    ] {
        assert_eq!(d.r32(reg), 0, "{reg:#x} after reset");
    }
    assert_eq!(eventfd_wait(&msi, Duration::from_millis(500)), None);
    // The dropped command writes nothing more.
    let snapshot = target.read(0x8000_0000, 1 << 20);
    std::thread::sleep(Duration::from_millis(300));
    assert!(target.read(0x8000_0000, 1 << 20) == snapshot);
}

/// MSI: one eventfd signal per end when IRQ_ENABLE is set, none otherwise.
/// INTx: automasked level, re-triggered at unmask while still pending.
#[test]
fn interrupts() {
    let srv = Server::start(&[]);
    let mut d = srv.client();
    let ram = Ram::new(RAM, 4 << 20);
    ram.map(&mut d);
    d.bus_master(true);
    ram.put_list(LIST, &[seg(RAM, 64)]);
    d.program(LIST, 1);
    let short = Duration::from_millis(300);

    let intx = eventfd();
    d.c.set_irqs(
        0,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        &[intx.as_raw_fd()],
    )
    .unwrap();
    // Not enabled: no interrupt.
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    d.wait_dma();
    assert_eq!(eventfd_wait(&intx, short), None);
    // Enabling with the status pending asserts INTx.
    d.w32(regs::IRQ_ENABLE, 1);
    assert_eq!(eventfd_wait(&intx, Duration::from_secs(5)), Some(1));
    // Automasked: unmask while still pending triggers again.
    let unmask = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
    d.c.set_irqs(0, unmask, 0, 1, &[]).unwrap();
    assert_eq!(eventfd_wait(&intx, Duration::from_secs(5)), Some(1));
    // Cleared (RW1C) then unmasked: quiet.
    d.w32(regs::IRQ_STATUS, 1);
    d.c.set_irqs(0, unmask, 0, 1, &[]).unwrap();
    assert_eq!(eventfd_wait(&intx, short), None);
    // The next end asserts it.
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    d.wait_dma();
    assert_eq!(eventfd_wait(&intx, Duration::from_secs(5)), Some(1));
    // Interrupt Disable masks INTx.
    d.w32(regs::IRQ_STATUS, 1);
    d.cfg_w16(4, 0x0406);
    d.c.set_irqs(0, unmask, 0, 1, &[]).unwrap();
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    d.wait_dma();
    assert_eq!(eventfd_wait(&intx, short), None);
    assert_eq!(d.cfg(6, 1)[0] & 0x08, 0x08, "Status.Interrupt");
    d.w32(regs::IRQ_STATUS, 1);
    d.cfg_w16(4, 0x0006);

    // MSI: INTx goes quiet, one message per end.
    let msi = eventfd();
    d.c.set_irqs(
        0,
        VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        0,
        &[],
    )
    .unwrap();
    d.c.set_irqs(
        1,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        &[msi.as_raw_fd()],
    )
    .unwrap();
    for _ in 0..3 {
        d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
        d.wait_dma();
        assert_eq!(eventfd_wait(&msi, Duration::from_secs(5)), Some(1));
    }
    // A BAD_CMD end is an end too.
    d.w32(regs::DMA_CMD, 0x10);
    assert_eq!(eventfd_wait(&msi, Duration::from_secs(5)), Some(1));
    // Disabled: no message; enabling while pending sends nothing.
    d.w32(regs::IRQ_ENABLE, 0);
    d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
    d.wait_dma();
    d.w32(regs::IRQ_ENABLE, 1);
    assert_eq!(eventfd_wait(&msi, short), None);
    assert_eq!(eventfd_wait(&intx, short), None);
}

/// QEMU restarts: the next connection finds a power-on device; a DMA map of the old
/// connection is gone.
#[test]
fn reconnect_after_disconnect() {
    let srv = Server::start(&[]);
    {
        let mut d = srv.client();
        let ram = Ram::new(RAM, 1 << 20);
        ram.map(&mut d);
        d.w32(regs::ALGO, 1);
        d.w32(regs::SEED, 5);
        d.w32(regs::IRQ_ENABLE, 1);
        d.c.shutdown().unwrap();
    }
    for _ in 0..3 {
        let mut d = srv.client();
        assert_eq!(d.r32(regs::ALGO), 0);
        assert_eq!(d.r32(regs::IRQ_ENABLE), 0);
        assert_eq!(d.r32(regs::RNG), 1804289383);
        d.bus_master(true);
        let ram = Ram::new(RAM + (8 << 20), 1 << 20);
        ram.map(&mut d);
        ram.put_list(RAM + (8 << 20), &[seg(RAM, 8)]);
        d.program(RAM + (8 << 20), 1);
        d.w32(regs::DMA_CMD, regs::DMA_CMD_FILL);
        assert_eq!(
            d.wait_dma(),
            error_status(DmaError::WriteFault, 0),
            "the old map is gone"
        );
    }
    let (clean, removed, log) = srv.stop();
    assert!(clean, "exit 0 on SIGTERM");
    assert!(removed, "socket removed");
    assert!(log.contains("waiting for the next connection"));
}

/// `--once`: the server exits by itself when QEMU disconnects.
#[test]
fn once_exits_at_disconnect() {
    let mut srv = Server::start(&["--once"]);
    let d = srv.client();
    drop(d);
    let t = std::time::Instant::now();
    while srv.alive() {
        assert!(t.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(srv.child.wait().unwrap().success());
}

#[test]
fn stale_and_live_socket_files() {
    let dir = TempDir::new("stale");
    let path = dir.0.join("s.sock");
    // A stale socket: bound, nobody listening any more.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let bin = env!("CARGO_BIN_EXE_my-rng-vfio-user");
    let mut child = std::process::Command::new(bin)
        .arg("--socket")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // It serves: a client connects and reads ID.
    let t = std::time::Instant::now();
    let mut d = loop {
        if let Ok(c) = vfio_user::Client::new(&path) {
            break Dev { c };
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(d.r32(regs::ID), 0x4d52_0201);
    // A second server on the live socket refuses to start.
    let out = std::process::Command::new(bin)
        .arg("--socket")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listening"));
    // Not a socket: refused, left alone.
    let file = dir.0.join("file");
    std::fs::write(&file, b"x").unwrap();
    let out = std::process::Command::new(bin)
        .arg("--socket")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    drop(d);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn seccomp_refuses_forbidden_calls() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_my-rng-vfio-user"))
        .arg("--seccomp-selftest")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for call in ["socket", "openat", "execve"] {
        assert!(
            text.contains(&format!("{call}: refused (EPERM)")),
            "{call}: {text}"
        );
    }
}
