//! `fuzz`: random ioctl command numbers, argument pointers and read() sizes on both devices.
//! What must hold whatever the input: a command the driver does not know fails with ENOTTY, a
//! known one succeeds or fails with EFAULT or EINVAL only, read() returns at most what was
//! asked for or EFAULT, and nothing hangs (the time limit) or crashes (the kernel log, which
//! the host checks).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use my_rng::uapi::{self, Opcode, RawSeedRead};
use my_rng::Device;
use my_rng_e2e::util::{errno_name, raw_ioctl, KERNEL_ADDR};

use crate::mem::{raw_read, Guarded};
use crate::Prng;

/// The driver's commands (uapi/misc/my_rng.h).
const KNOWN: [Opcode; 7] = [
    uapi::RAND,
    uapi::SEED,
    uapi::RAND64,
    uapi::SET_ALGO,
    uapi::GET_ALGO,
    uapi::INFO,
    uapi::SEED_READ,
];
/// Where the driver may write through a fuzzed SEED_READ: its own region, never this
/// program's other memory (a random `buf` could otherwise overwrite our stack legitimately).
const SCRATCH: usize = 4 * 4096;
/// Failures printed (all are counted).
const SHOWN: usize = 10;

pub fn run(calls: u64, limit: Duration, seed: u64) -> bool {
    println!(
        "fuzz: {calls} calls on both devices, seed {seed}, limit {} s",
        limit.as_secs()
    );
    let devs = match [0, 1].map(Device::open_index) {
        [Ok(a), Ok(b)] => [a, b],
        _ => {
            println!("@@RESULT fuzz calls=0 failures=1 error=\"cannot open both devices\"");
            return false;
        }
    };
    let (Ok(scratch), Ok(arg)) = (Guarded::new(SCRATCH), Guarded::new(4096)) else {
        println!("@@RESULT fuzz calls=0 failures=1 error=\"mmap\"");
        return false;
    };
    let mut r = Prng::new(seed);
    let (mut done, mut known, mut unknown, mut reads, mut failures) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut shown = Vec::new();
    let mut fail = |msg: String, failures: &mut u64| {
        *failures += 1;
        if shown.len() < SHOWN {
            println!("FAIL {msg}");
            shown.push(());
        }
    };
    let deadline = Instant::now() + limit;
    while done < calls {
        if Instant::now() > deadline {
            fail(
                format!("time limit reached after {done} calls"),
                &mut failures,
            );
            break;
        }
        done += 1;
        let dev = &devs[r.below(2) as usize];
        if r.percent(20) {
            reads += 1;
            let size = r.log_size(4 << 20);
            let (p, ok_max) = pointer(&mut r, &scratch, &arg);
            match raw_read(dev.file().as_raw_fd(), p as *mut u8, size) {
                Ok(n) if n <= size && n <= ok_max => {}
                Ok(n) => fail(
                    format!("read({size}) into {p:#x}: {n} bytes"),
                    &mut failures,
                ),
                Err(libc::EFAULT | libc::EINVAL) => {}
                Err(e) => fail(
                    format!("read({size}) into {p:#x}: {}", errno_name(e)),
                    &mut failures,
                ),
            }
            continue;
        }
        let cmd = command(&mut r);
        let is_known = KNOWN.contains(&cmd);
        let (mut p, _) = pointer(&mut r, &scratch, &arg);
        let in_scratch =
            (scratch.start() as usize..scratch.start() as usize + SCRATCH).contains(&p);
        if cmd == uapi::SEED_READ && in_scratch {
            // Its `buf` would be whatever the scratch holds: use a controlled argument.
            p = arg.start() as usize;
        }
        if cmd == uapi::SEED_READ && p == arg.start() as usize {
            // A SEED_READ argument whose destination is the scratch region or a bad address.
            let buf = match r.below(3) {
                0 => scratch.start() as u64 + r.below(SCRATCH as u64),
                1 => KERNEL_ADDR as u64,
                _ => r.next_u64(),
            };
            let s = RawSeedRead {
                seed: r.next_u64() as u32,
                count: r.below(u64::from(uapi::SEED_READ_MAX) + 2) as u32,
                buf: if buf >= scratch.start() as u64
                    && buf < scratch.start() as u64 + SCRATCH as u64
                {
                    buf
                } else if r.percent(50) {
                    0
                } else {
                    buf | 0xffff_0000_0000_0000
                },
            };
            // SAFETY: `arg` has 4096 writable bytes.
            unsafe { arg.start().cast::<RawSeedRead>().write_unaligned(s) };
        }
        if cmd == uapi::SET_ALGO && p == arg.start() as usize {
            // Mostly valid algorithms (0..3), else anything.
            let a = if r.percent(70) {
                r.below(4) as u32
            } else {
                r.next_u64() as u32
            };
            // SAFETY: as above.
            unsafe { arg.start().cast::<u32>().write_unaligned(a) };
        }
        let res = raw_ioctl(dev, cmd, p as *mut _);
        if is_known {
            known += 1;
            match res {
                Ok(_) | Err(libc::EFAULT | libc::EINVAL) => {}
                Err(e) => fail(
                    format!("ioctl {cmd:#x} arg {p:#x}: {}", errno_name(e)),
                    &mut failures,
                ),
            }
        } else {
            unknown += 1;
            if res != Err(libc::ENOTTY) {
                fail(
                    format!("unknown ioctl {cmd:#x}: {res:?}, expected ENOTTY"),
                    &mut failures,
                );
            }
        }
    }
    // Leave the devices as the next user expects: the classic algorithm.
    for d in &devs {
        let _ = d.set_algorithm(my_rng::Algorithm::Glibc);
    }
    println!(
        "@@RESULT fuzz calls={done} want_calls={calls} known_ioctls={known} unknown_ioctls={unknown} \
         reads={reads} failures={failures}"
    );
    failures == 0 && done == calls
}

/// A command number: fully random, or of the driver's group with a random number, size and
/// direction, or one of the driver's own.
fn command(r: &mut Prng) -> Opcode {
    match r.below(10) {
        0..=3 => r.next_u64() as Opcode,
        4..=6 => {
            let dir = r.below(4) as Opcode;
            let size = r.below(1 << 14) as Opcode;
            let nr = r.below(16) as Opcode;
            dir << 30 | size << 16 | Opcode::from(uapi::IOCTL_GROUP) << 8 | nr
        }
        _ => KNOWN[r.below(KNOWN.len() as u64) as usize],
    }
}

/// An argument pointer and how many bytes a read() into it may return: NULL, small integers,
/// kernel and unmapped addresses, random bits, the argument page, or the last bytes before
/// the scratch region's guard page.
fn pointer(r: &mut Prng, scratch: &Guarded, arg: &Guarded) -> (usize, usize) {
    match r.below(8) {
        0 => (0, 0),
        1 => (1 + r.below(4096) as usize, 0),
        2 => (KERNEL_ADDR + r.below(1 << 20) as usize, 0),
        3 => (r.next_u64() as usize, usize::MAX),
        4 => (0xffff_0000_0000_0000 | r.next_u64() as usize, 0),
        5 => {
            let off = r.below(SCRATCH as u64) as usize;
            (scratch.start() as usize + off, SCRATCH - off)
        }
        _ => (arg.start() as usize, 4096),
    }
}
