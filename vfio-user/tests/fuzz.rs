//! Bounded fuzzing that runs in `cargo test` (cargo-fuzz needs a nightly toolchain; this
//! project builds with stable).
//!
//! - `protocol`: random and mutated vfio-user messages (random commands, sizes, flags,
//!   fields, file descriptors) against the server binary; after each one a probe checks
//!   the server still answers (reconnecting where it closed the connection).
//! - `registers_and_dma`: random register accesses, configuration writes, map changes and
//!   DMA steps on the device model in-process, with the engine's invariants checked.
//!
//! Time per target: `MY_RNG_FUZZ_SECS` (default 3); seed: `MY_RNG_FUZZ_SEED` (default 1).
//! Run with `--nocapture` to see the figures.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use my_rng_spec::dma::Segment;
use my_rng_spec::regs::{self, DmaStatus, Register};
use my_rng_spec::{Algorithm, Generator};
use my_rng_vfio_user::device::{Defaults, Device};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

fn budget() -> Duration {
    let s = std::env::var("MY_RNG_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

fn rng() -> Generator {
    let seed = std::env::var("MY_RNG_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // The spec's own xoshiro256++ as the fuzzer's random source.
    Generator::new(Algorithm::Xoshiro256pp, seed).unwrap()
}

struct R(Generator);

impl R {
    fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.u64() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u64() as u8).collect()
    }
    /// An "interesting" number: small, a boundary, or random.
    fn num(&mut self) -> u64 {
        match self.below(6) {
            0 => self.below(16),
            1 => [
                0,
                1,
                4,
                8,
                0xff,
                0x100,
                0xfff,
                0x1000,
                u32::MAX as u64,
                u64::MAX,
            ][self.below(10) as usize],
            2 => self.below(0x1000),
            3 => 1 << self.below(64),
            _ => self.u64(),
        }
    }
}

/// One fuzz message: header + body, and how many descriptors to attach.
fn message(r: &mut R, id: u16) -> (Vec<u8>, usize) {
    let command = match r.below(10) {
        0 => r.u64() as u16,
        _ => r.below(15) as u16,
    };
    // The body: the right size for the command with random fields, or random.
    let proper = match command {
        1 => 4 + 40,
        2 => 32,
        3 => 24,
        4 | 7 => 16,
        5 => 32,
        8 => 20,
        9 => 16,
        10 => 16 + 8,
        _ => 0,
    };
    let len = if r.chance(70) {
        proper
    } else {
        r.below(80) as usize
    };
    let mut body = r.bytes(len);
    // Make fields plausible often enough to reach the device.
    if len >= 16 && matches!(command, 9 | 10) && r.chance(80) {
        let region: u32 = if r.chance(70) { 0 } else { r.below(10) as u32 };
        let count: u32 = if command == 10 {
            (len - 16) as u32
        } else {
            [1, 2, 4, 8, 16, r.num() as u32][r.below(6) as usize]
        };
        let off = if r.chance(80) {
            r.below(0x70) & !3
        } else {
            r.num()
        };
        body[..8].copy_from_slice(&off.to_le_bytes());
        body[8..12].copy_from_slice(&region.to_le_bytes());
        body[12..16].copy_from_slice(&count.to_le_bytes());
    }
    if command == 1 && r.chance(50) && len >= 5 {
        let caps = b"{\"capabilities\":{}}";
        let n = caps.len().min(len - 5);
        body[4..4 + n].copy_from_slice(&caps[..n]);
        body[len - 1] = 0;
    }
    let size = if r.chance(95) {
        16 + body.len()
    } else {
        r.num() as usize
    };
    let flags = match r.below(8) {
        0 => r.u64() as u32,
        1 => NO_REPLY,
        2 => REPLY,
        _ => 0,
    };
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&command.to_le_bytes());
    m.extend_from_slice(&(size as u32).to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&(r.u64() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    let nfds = if r.chance(10) { r.below(3) as usize } else { 0 };
    (m, nfds)
}

/// Read replies until the one with `id`; false if the connection closed or went silent.
fn sync(s: &mut UnixStream, id: u16) -> Option<u32> {
    loop {
        let mut h = [0u8; 16];
        s.read_exact(&mut h).ok()?;
        let size = u32::from_le_bytes(h[4..8].try_into().unwrap()) as usize;
        if !(16..=1 << 20).contains(&size) {
            panic!("server sent a reply of size {size}");
        }
        let mut body = vec![0u8; size - 16];
        s.read_exact(&mut body).ok()?;
        if u16::from_le_bytes([h[0], h[1]]) == id {
            let flags = u32::from_le_bytes(h[8..12].try_into().unwrap());
            assert_eq!(flags & ERROR, 0, "probe refused");
            return Some(u32::from_le_bytes(body[16..20].try_into().unwrap()));
        }
    }
}

#[test]
fn protocol() {
    let mut srv = Server::start(&["--io-timeout-ms", "100", "--log", "warn"]);
    let mut r = R(rng());
    let ram = Ram::new(0, 1 << 20);
    let ev = eventfd();
    let fds = [ram.file.as_raw_fd(), ev.as_raw_fd()];
    let (mut execs, mut reconnects, mut stalls) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    let mut raw = srv.raw();
    raw.s
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    raw.version();
    while t.elapsed() < budget() {
        let id = raw.id.wrapping_add(1);
        raw.id = id;
        let (m, nfds) = message(&mut r, id);
        let sent = if nfds > 0 {
            raw.s.send_with_fds(&[&m[..]], &fds[..nfds]).is_ok()
        } else {
            raw.s.write_all(&m).is_ok()
        };
        execs += 1;
        // Probe: a REGION_READ of ID with a fresh id.
        let probe = raw.id.wrapping_add(1);
        raw.id = probe;
        let mut p = Vec::new();
        p.extend_from_slice(&probe.to_le_bytes());
        p.extend_from_slice(&9u16.to_le_bytes());
        p.extend_from_slice(&32u32.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&regs::ID.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&4u32.to_le_bytes());
        let ok = sent
            && raw.s.write_all(&p).is_ok()
            && match sync(&mut raw.s, probe) {
                Some(v) => {
                    assert_eq!(v, regs::ID_VALUE);
                    true
                }
                None => false,
            };
        if !ok {
            // The message swallowed the probe (a size larger than sent) and the server
            // dropped the connection after its time limit, or closed it at once.
            let mut b = [0u8; 1];
            match raw.s.read(&mut b) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => stalls += 1,
                _ => {}
            }
            assert!(srv.alive(), "server died after message {m:02x?}");
            reconnects += 1;
            raw = srv.raw();
            raw.s
                .set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let v = raw.try_version();
            if v.as_ref().is_none_or(|v| v.flags & ERROR != 0) {
                let log = srv.log_text();
                let tail: Vec<_> = log.lines().rev().take(20).collect();
                panic!(
                    "no VERSION reply after message {m:02x?} (reply {:?}); log tail:\n{}",
                    v.map(|v| (v.flags, v.error)),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
    }
    assert!(srv.alive());
    let (clean, _, _) = srv.stop();
    assert!(clean, "clean stop after fuzzing");
    println!(
        "protocol fuzz: {execs} messages in {:.1} s, {reconnects} connections closed by the server \
         ({stalls} waited for), 0 crashes",
        t.elapsed().as_secs_f64()
    );
    assert!(execs > 100, "too few executions: {execs}");
}

#[test]
fn registers_and_dma() {
    const RAM: u64 = 0x1_0000;
    const RAM_SIZE: u64 = 0x4_0000;
    let dev = Device::new("fuzz".into(), Defaults::default()).unwrap();
    let ram = Ram::new(RAM, RAM_SIZE);
    let mut r = R(rng());
    let t = Instant::now();
    let (mut execs, mut ends) = (0u64, 0u64);
    let mut st = dev.lock();
    while t.elapsed() < budget() {
        execs += 1;
        match r.below(20) {
            0 => {
                // Map the RAM (or fail: overlap), or unmap it, or map without fd.
                let f = ram.file.try_clone().unwrap();
                match r.below(3) {
                    0 => drop(st.maps.map(RAM, RAM_SIZE, true, true, Some((f, 0)))),
                    1 => drop(st.maps.unmap(RAM, RAM_SIZE)),
                    _ => drop(
                        st.maps
                            .map(r.num(), r.num(), r.chance(50), r.chance(50), None),
                    ),
                }
            }
            1 => {
                let cmd = r.below(0x800) as u16;
                st.config.write(4, &cmd.to_le_bytes());
            }
            2 => {
                // A list in RAM: segments mostly inside it.
                let n = 1 + r.below(4);
                let list = RAM + r.below(RAM_SIZE - 64);
                for i in 0..n {
                    let s = Segment {
                        addr: if r.chance(90) {
                            RAM + r.below(RAM_SIZE)
                        } else {
                            r.num()
                        },
                        len: if r.chance(90) {
                            1 + r.below(0x4000) as u32
                        } else {
                            r.num() as u32
                        },
                        flags: if r.chance(95) { 0 } else { r.num() as u32 },
                    };
                    ram.write(list + 16 * i, &s.to_le_bytes());
                }
                st.bar_write(regs::DMA_ADDR_LO, &(list as u32).to_le_bytes());
                st.bar_write(regs::DMA_ADDR_HI, &((list >> 32) as u32).to_le_bytes());
                st.bar_write(regs::DMA_COUNT, &(n as u32).to_le_bytes());
            }
            3..=5 => {
                if st.dma_step() {
                    continue;
                }
                ends += 1;
            }
            6 => st.reset(),
            _ => {
                // A register access, mostly at a register, any size.
                let reg = Register::ALL[r.below(18) as usize];
                let off = if r.chance(85) { reg.offset() } else { r.num() };
                let size = [1usize, 2, 4, 8, 4, 4, 8][r.below(7) as usize];
                if r.chance(50) {
                    let mut b = [0u8; 8];
                    st.bar_read(off, &mut b[..size]);
                } else {
                    let v = match reg {
                        Register::DmaCmd if r.chance(80) => [1u64, 3, 4][r.below(3) as usize],
                        Register::Algo if r.chance(80) => r.below(5),
                        _ => r.num(),
                    };
                    st.bar_write(off, &v.to_le_bytes()[..size]);
                }
            }
        }
        // Invariants: STATUS is a value a device shows; BYTES within the limit; BYTES
        // only grows while BUSY.
        let mut b = [0u8; 4];
        st.bar_read(regs::DMA_STATUS, &mut b);
        let status = DmaStatus::from_value(u32::from_le_bytes(b));
        assert!(status.is_some(), "DMA_STATUS {:#x}", u32::from_le_bytes(b));
        st.bar_read(regs::DMA_BYTES, &mut b);
        assert!(u32::from_le_bytes(b) <= regs::DMA_MAX_BYTES_VALUE);
    }
    drop(st);
    println!(
        "register/DMA fuzz: {execs} operations in {:.1} s, {ends} DMA steps that left the \
         engine idle, 0 crashes",
        t.elapsed().as_secs_f64()
    );
    assert!(execs > 1000);
}
