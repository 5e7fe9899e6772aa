//! `race`: the guest side of `cargo xtask repro unplug-race`, the reproducer of QEMU 10.1+'s
//! TCG race on memory map changes (qemu/fixes/README.md).
//!
//! One vCPU moves the second device's BAR below the stable device's and toggles its memory
//! decoding: every toggle is a map change that shifts the stable device's section index by
//! one. The other vCPU accesses the stable device's BAR itself (its resource0 mapped, the
//! driver unbound): SEED, then RNG reads, one access at a time with a random gap of busy work
//! between them. A stale index only goes astray when the access's lookup falls after the new
//! map is published but before the vCPU's queued TLB flush; a vCPU in a tight MMIO loop is
//! instead waiting for the lock the map change holds, hence the gaps. Every word is checked
//! against the vectors: a read that went elsewhere returns another device's value and leaves
//! the generator one word behind; a SEED write that went elsewhere leaves the generator where
//! the previous batch ended.

use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use my_rng::Algorithm;
use my_rng_e2e::util::expected;
use my_rng_spec::regs;

use crate::Prng;
use my_rng_protocol::record::{self, Record};

/// RNG reads per batch (after one SEED write).
const READS: usize = 8;
/// The seed of every batch: its vector is committed.
const SEED: u32 = 0x42;
/// PCI configuration space: COMMAND and its memory-decoding bit, BAR0.
const COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const BAR0: u64 = 0x10;

pub struct Options {
    pub toggles: u64,
    pub limit: Duration,
    /// The device whose BAR is accessed (it stays).
    pub stable: String,
    /// The device whose decoding is toggled.
    pub toggled: String,
    /// Where the toggled device's BAR0 goes (below the stable device's).
    pub bar: u32,
    /// Largest gap between two accesses, in spin-loop iterations (log-uniform from 0).
    pub gap: u64,
}

#[derive(Default)]
struct Counts {
    batches: AtomicU64,
    misdirected: AtomicU64,
    missed_reads: AtomicU64,
    missed_writes: AtomicU64,
    other: AtomicU64,
}

fn dev(address: &str) -> PathBuf {
    PathBuf::from("/sys/bus/pci/devices").join(address)
}

/// Unbinds `address` from its driver, if it has one: nothing else may use the device.
fn unbind(address: &str) -> Result<(), String> {
    let d = dev(address);
    if d.join("driver").exists() {
        fs::write(d.join("driver/unbind"), address)
            .map_err(|e| format!("unbinding {address}: {e}"))?;
    }
    Ok(())
}

/// Sets or clears the memory-decoding bit of `address` through its sysfs config file.
fn set_decoding(cfg: &fs::File, on: bool) -> std::io::Result<()> {
    let mut w = [0u8; 2];
    cfg.read_exact_at(&mut w, COMMAND)?;
    let mut cmd = u16::from_le_bytes(w);
    if on {
        cmd |= COMMAND_MEMORY;
    } else {
        cmd &= !COMMAND_MEMORY;
    }
    cfg.write_all_at(&cmd.to_le_bytes(), COMMAND)
}

/// The stable device's BAR0 mapped into this process (4 KiB, never unmapped: the process
/// ends with the run).
fn map_bar(address: &str) -> Result<*mut u32, String> {
    let path = dev(address).join("resource0");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: a shared mapping of the device's 4 KiB BAR; the pointer is only used for
    // volatile 32-bit accesses at register offsets inside it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mmap {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(p.cast())
}

/// Both devices unbound, the stable one decoding and mapped, the toggled one's BAR moved to
/// `o.bar` (decoding off while it moves). Returns the mapping and the toggled device's config.
fn setup(o: &Options) -> Result<(*mut u32, fs::File), String> {
    unbind(&o.stable)?;
    unbind(&o.toggled)?;
    let open = |a: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(dev(a).join("config"))
            .map_err(|e| format!("{a} config: {e}"))
    };
    set_decoding(&open(&o.stable)?, true).map_err(|e| format!("{}: {e}", o.stable))?;
    let cfg = open(&o.toggled)?;
    set_decoding(&cfg, false).map_err(|e| e.to_string())?;
    cfg.write_all_at(&o.bar.to_le_bytes(), BAR0)
        .map_err(|e| format!("moving {}'s BAR0: {e}", o.toggled))?;
    let mut b = [0u8; 4];
    cfg.read_exact_at(&mut b, BAR0).map_err(|e| e.to_string())?;
    if u32::from_le_bytes(b) & !0xf != o.bar {
        return Err(format!(
            "{}'s BAR0 reads {:#x} after writing {:#x}",
            o.toggled,
            u32::from_le_bytes(b),
            o.bar
        ));
    }
    let bar = map_bar(&o.stable)?;
    // SAFETY: ALGO is a register inside the mapped BAR.
    unsafe {
        bar.add(regs::ALGO as usize / 4)
            .write_volatile(Algorithm::Glibc.id())
    };
    Ok((bar, cfg))
}

/// Pins this thread to `cpu` (the two sides must run on different vCPUs: a vCPU's own map
/// changes are flushed before its next instruction); prints where it runs.
fn pin(cpu: usize, who: &str) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread; sched_getcpu has no
    // arguments.
    let (rc, now) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        (rc, libc::sched_getcpu())
    };
    let err = if rc == 0 {
        String::new()
    } else {
        format!(" (pinning failed: {})", std::io::Error::last_os_error())
    };
    println!("race: {who} on vCPU {now}{err}");
}

pub fn run(o: &Options) -> bool {
    println!(
        "race: {} toggles of {}'s decoding at BAR {:#x}, accesses to {} with gaps up to {} \
         spins, limit {} s",
        o.toggles,
        o.toggled,
        o.bar,
        o.stable,
        o.gap,
        o.limit.as_secs()
    );
    let want = match expected(Algorithm::Glibc, SEED, 32) {
        Ok(w) if w.len() >= 2 * READS => w,
        _ => {
            println!("race: no 32-bit glibc vector for seed {SEED:#x}");
            return false;
        }
    };
    // One vCPU cannot race with itself: its own map changes are flushed before it goes on.
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    if !online.trim().contains(['-', ',']) {
        println!("race: needs two online vCPUs, has {:?}", online.trim());
        return false;
    }
    let (bar, cfg) = match setup(o) {
        Ok(s) => s,
        Err(e) => {
            println!("race: setup failed: {e}");
            return false;
        }
    };
    let stop = AtomicBool::new(false);
    let counts = Counts::default();
    let start = Instant::now();
    let bar_addr = bar as usize;
    let (toggles, errors) = thread::scope(|s| {
        let reader = s.spawn(|| accesses(bar_addr as *mut u32, &want, o.gap, &stop, &counts));
        let t = toggle(&cfg, o, &stop);
        stop.store(true, Ordering::Relaxed);
        let _ = reader.join();
        t
    });
    let r = Record::new(record::RACE)
        .field("toggles", toggles)
        .field("toggle_errors", errors);
    println!("{}", counts.fields(r, start.elapsed().as_secs(), o.gap));
    errors == 0
}

impl Counts {
    /// The race record's fields after the toggles'.
    fn fields(&self, r: Record, seconds: u64, gap: u64) -> Record {
        let batches = self.batches.load(Ordering::Relaxed);
        r.field("batches", batches)
            .field("accesses", batches * (READS as u64 + 1))
            .field("misdirected", self.misdirected.load(Ordering::Relaxed))
            .field("missed_reads", self.missed_reads.load(Ordering::Relaxed))
            .field("missed_writes", self.missed_writes.load(Ordering::Relaxed))
            .field("other", self.other.load(Ordering::Relaxed))
            .field("seconds", seconds)
            .field("gap", gap)
    }
}

/// The first vCPU: toggles the decoding until the count or the time limit; returns the
/// toggles done and the config writes that failed.
fn toggle(cfg: &fs::File, o: &Options, stop: &AtomicBool) -> (u64, u64) {
    pin(0, "toggler");
    let end = Instant::now() + o.limit;
    let (mut done, mut errors) = (0u64, 0u64);
    while done < o.toggles && Instant::now() < end && !stop.load(Ordering::Relaxed) {
        match set_decoding(cfg, done % 2 == 0) {
            Ok(()) => done += 1,
            Err(e) => {
                errors += 1;
                println!("race: toggle {done}: {e}");
                if errors > 10 {
                    break;
                }
            }
        }
    }
    (done, errors)
}

/// Busy work for a log-uniform number of spins in `0..=max`: the gap between two accesses.
fn gap(rng: &mut Prng, max: u64) {
    let n = rng.log_size(max as usize);
    for i in 0..n {
        std::hint::black_box(i);
    }
}

/// The second vCPU: batches of one SEED write and `READS` RNG reads with gaps, each checked.
fn accesses(bar: *mut u32, want: &[u64], max_gap: u64, stop: &AtomicBool, c: &Counts) {
    pin(1, "accesses");
    let mut rng = Prng::new(0x7261_6365);
    let mut got = [0u32; READS];
    let mut shown = 0;
    while !stop.load(Ordering::Relaxed) {
        gap(&mut rng, max_gap);
        // SAFETY: SEED and RNG are registers inside the mapped BAR.
        unsafe { bar.add(regs::SEED as usize / 4).write_volatile(SEED) };
        for w in got.iter_mut() {
            gap(&mut rng, max_gap);
            // SAFETY: as above.
            *w = unsafe { bar.add(regs::RNG as usize / 4).read_volatile() };
        }
        let n = c.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(what) = classify(&got, want, c) {
            c.misdirected.fetch_add(1, Ordering::Relaxed);
            if shown < 20 {
                shown += 1;
                println!("race: batch {n}: {what}; got {got:08x?}");
            }
        }
    }
}

/// What went wrong in a batch, counted by kind; None if every word is right.
fn classify(got: &[u32; READS], want: &[u64], c: &Counts) -> Option<String> {
    let w = |k: usize| want[k] as u32;
    let k = (0..READS).find(|&k| got[k] != w(k))?;
    // One read elsewhere: the rest of the batch is the stream one word late.
    if (k + 1..READS).all(|j| got[j] == w(j - 1)) {
        c.missed_reads.fetch_add(1, Ordering::Relaxed);
        return Some(format!(
            "read {k} went elsewhere: {:#x} instead of {:#x}",
            got[k],
            w(k)
        ));
    }
    // The SEED write elsewhere: the generator went on from the previous batch's end.
    if (0..READS).all(|j| got[j] == w(READS + j)) {
        c.missed_writes.fetch_add(1, Ordering::Relaxed);
        return Some("the SEED write went elsewhere".into());
    }
    c.other.fetch_add(1, Ordering::Relaxed);
    Some(format!("word {k} wrong, not one missed access"))
}
