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
use my_rng_protocol::record::{self, Record};

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
    let mut f = match Fuzzer::new(seed) {
        Ok(f) => f,
        Err(what) => {
            let r = Record::new(record::FUZZ).field("calls", 0);
            println!("{}", r.field("failures", 1).quoted("error", what));
            return false;
        }
    };
    let deadline = Instant::now() + limit;
    while f.done < calls {
        if Instant::now() > deadline {
            f.fail(format!("time limit reached after {} calls", f.done));
            break;
        }
        f.done += 1;
        f.one_call();
    }
    // Leave the devices as the next user expects: the classic algorithm.
    for d in &f.devs {
        let _ = d.set_algorithm(my_rng::Algorithm::Glibc);
    }
    let Fuzzer {
        done,
        known,
        unknown,
        reads,
        failures,
        ..
    } = f;
    let r = Record::new(record::FUZZ)
        .field("calls", done)
        .field("want_calls", calls)
        .field("known_ioctls", known)
        .field("unknown_ioctls", unknown)
        .field("reads", reads)
        .field("failures", failures);
    println!("{r}");
    failures == 0 && done == calls
}

/// The fuzzer: both devices, its two memory regions, its random choices and its counts.
struct Fuzzer {
    devs: [Device; 2],
    /// Where a fuzzed SEED_READ may write (`SCRATCH` bytes before a guard page).
    scratch: Guarded,
    /// The page holding generated SEED_READ and SET_ALGO arguments.
    arg: Guarded,
    r: Prng,
    done: u64,
    known: u64,
    unknown: u64,
    reads: u64,
    failures: u64,
    shown: usize,
}

impl Fuzzer {
    /// Opens both devices and maps the regions; `Err` says what failed, for the result line.
    fn new(seed: u64) -> Result<Fuzzer, &'static str> {
        let devs = match [0, 1].map(Device::open_index) {
            [Ok(a), Ok(b)] => [a, b],
            _ => return Err("cannot open both devices"),
        };
        let (Ok(scratch), Ok(arg)) = (Guarded::new(SCRATCH), Guarded::new(4096)) else {
            return Err("mmap");
        };
        Ok(Fuzzer {
            devs,
            scratch,
            arg,
            r: Prng::new(seed),
            done: 0,
            known: 0,
            unknown: 0,
            reads: 0,
            failures: 0,
            shown: 0,
        })
    }

    /// Counts a failure; prints the first `SHOWN`.
    fn fail(&mut self, msg: String) {
        self.failures += 1;
        if self.shown < SHOWN {
            println!("FAIL {msg}");
            self.shown += 1;
        }
    }

    /// One call on a random device: a read() one time in five, else an ioctl.
    fn one_call(&mut self) {
        let d = self.r.below(2) as usize;
        if self.r.percent(20) {
            self.read(d);
        } else {
            self.ioctl(d);
        }
    }

    /// read() of a random size into a random pointer: no more than asked for or than the
    /// memory there holds, or EFAULT/EINVAL.
    fn read(&mut self, d: usize) {
        self.reads += 1;
        let size = self.r.log_size(4 << 20);
        let (p, ok_max) = pointer(&mut self.r, &self.scratch, &self.arg);
        match raw_read(self.devs[d].file().as_raw_fd(), p as *mut u8, size) {
            Ok(n) if n <= size && n <= ok_max => {}
            Ok(n) => self.fail(format!("read({size}) into {p:#x}: {n} bytes")),
            Err(libc::EFAULT | libc::EINVAL) => {}
            Err(e) => self.fail(format!("read({size}) into {p:#x}: {}", errno_name(e))),
        }
    }

    /// An ioctl with a random command and argument: a known command succeeds or fails with
    /// EFAULT/EINVAL, an unknown one fails with ENOTTY.
    fn ioctl(&mut self, d: usize) {
        let cmd = command(&mut self.r);
        let p = self.argument(cmd);
        let res = raw_ioctl(&self.devs[d], cmd, p as *mut _);
        if KNOWN.contains(&cmd) {
            self.known += 1;
            match res {
                Ok(_) | Err(libc::EFAULT | libc::EINVAL) => {}
                Err(e) => self.fail(format!("ioctl {cmd:#x} arg {p:#x}: {}", errno_name(e))),
            }
        } else {
            self.unknown += 1;
            if res != Err(libc::ENOTTY) {
                self.fail(format!("unknown ioctl {cmd:#x}: {res:?}, expected ENOTTY"));
            }
        }
    }

    /// The argument pointer for `cmd`; SEED_READ and SET_ALGO given the argument page find a
    /// generated argument there.
    fn argument(&mut self, cmd: Opcode) -> usize {
        let (mut p, _) = pointer(&mut self.r, &self.scratch, &self.arg);
        let scratch = self.scratch.start() as usize;
        let arg = self.arg.start() as usize;
        if cmd == uapi::SEED_READ && (scratch..scratch + SCRATCH).contains(&p) {
            // Its `buf` would be whatever the scratch holds: use a controlled argument.
            p = arg;
        }
        if cmd == uapi::SEED_READ && p == arg {
            self.seed_read_arg();
        }
        if cmd == uapi::SET_ALGO && p == arg {
            self.set_algo_arg();
        }
        p
    }

    /// A SEED_READ argument whose destination is the scratch region or a bad address.
    fn seed_read_arg(&mut self) {
        let r = &mut self.r;
        let scratch = self.scratch.start() as u64;
        let buf = match r.below(3) {
            0 => scratch + r.below(SCRATCH as u64),
            1 => KERNEL_ADDR as u64,
            _ => r.next_u64(),
        };
        let s = RawSeedRead {
            seed: r.next_u64() as u32,
            count: r.below(u64::from(uapi::SEED_READ_MAX) + 2) as u32,
            buf: if buf >= scratch && buf < scratch + SCRATCH as u64 {
                buf
            } else if r.percent(50) {
                0
            } else {
                buf | 0xffff_0000_0000_0000
            },
        };
        // SAFETY: `arg` has 4096 writable bytes.
        unsafe { self.arg.start().cast::<RawSeedRead>().write_unaligned(s) };
    }

    /// A SET_ALGO argument: mostly valid algorithms (0..3), else anything.
    fn set_algo_arg(&mut self) {
        let a = if self.r.percent(70) {
            self.r.below(4) as u32
        } else {
            self.r.next_u64() as u32
        };
        // SAFETY: `arg` has 4096 writable bytes.
        unsafe { self.arg.start().cast::<u32>().write_unaligned(a) };
    }
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
