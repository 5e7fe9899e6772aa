//! `hotplug`: users of the hot-plugged device while the host unplugs and plugs it `cycles`
//! times over QMP. A monitor prints `@@HP up N` each time the device is bound with its node
//! present and `@@HP down N` when it is gone, which the host waits for; reader and ioctl
//! threads keep the node open, must see ENODEV (or the node vanish) when it goes, and reopen
//! it when it is back. The device at 00:03.0 is never unplugged: a thread checks that its
//! seeded sequence stays right throughout.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Device};
use my_rng_e2e::util::{errno_name, expected};

use crate::mem::raw_read;
use my_rng_protocol::{marker, record, Record};

#[derive(Default)]
struct Counts {
    ops: AtomicU64,
    enodev: AtomicU64,
    reopened: AtomicU64,
    other_errors: AtomicU64,
    stable_checks: AtomicU64,
    stable_failures: AtomicU64,
}

/// The node of the device at `address`, if it is bound and its node exists (the misc
/// device's `device` link names the PCI function, for either driver).
fn node_of(address: &str) -> Option<PathBuf> {
    fs::read_link(
        Path::new("/sys/bus/pci/devices")
            .join(address)
            .join("driver"),
    )
    .ok()?;
    let names = Sysfs::default().misc_names_for_pci(address).ok()?;
    names
        .into_iter()
        .map(|n| Path::new("/dev").join(n))
        .find(|p| p.exists())
}

pub fn run(cycles: u32, limit: Duration, address: &str) -> bool {
    println!(
        "hotplug: users of {address} for {cycles} unplug/plug cycles, limit {} s",
        limit.as_secs()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let node: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let threads = start_threads(&stop, &counts, &node);
    let seen = monitor(cycles, limit, address, &node);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    report(cycles, &seen, &counts)
}

/// Starts the users of the hot-plugged device (kinds 0 to 3) and the stable device's checker.
fn start_threads(
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
    node: &Arc<Mutex<Option<PathBuf>>>,
) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    for kind in 0..4 {
        let (stop, counts, node) = (stop.clone(), counts.clone(), node.clone());
        threads.push(thread::spawn(move || user(kind, &stop, &counts, &node)));
    }
    let (stop, counts) = (stop.clone(), counts.clone());
    threads.push(thread::spawn(move || stable(&stop, &counts)));
    threads
}

/// What the monitor saw: plugs, unplugs, and whether the time ran out first.
struct Seen {
    ups: u32,
    downs: u32,
    timed_out: bool,
}

/// The monitor: prints the device's up/down transitions for the host and publishes the node
/// to the users, until the last plug (`cycles` + 1) or the time limit.
fn monitor(cycles: u32, limit: Duration, address: &str, node: &Mutex<Option<PathBuf>>) -> Seen {
    let deadline = Instant::now() + limit;
    let (mut ups, mut downs) = (0u32, 0u32);
    let mut was_up = false;
    let mut timed_out = false;
    while ups < cycles + 1 || was_up {
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        let now = node_of(address);
        match (&now, was_up) {
            (Some(p), false) => {
                ups += 1;
                println!("{}", marker::hp_up(ups, &p.display().to_string()));
                *node.lock().unwrap() = now.clone();
                was_up = true;
                if ups == cycles + 1 {
                    // The last plug: let the users work on it a moment, then end.
                    thread::sleep(Duration::from_millis(500));
                    break;
                }
            }
            (None, true) => {
                downs += 1;
                println!("{}", marker::hp_down(downs));
                *node.lock().unwrap() = None;
                was_up = false;
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(20));
    }
    Seen {
        ups,
        downs,
        timed_out,
    }
}

/// Prints the result line; whether every cycle was seen without a fault.
fn report(cycles: u32, seen: &Seen, c: &Counts) -> bool {
    let Seen {
        ups,
        downs,
        timed_out,
    } = *seen;
    let (enodev, other) = (
        c.enodev.load(Ordering::Relaxed),
        c.other_errors.load(Ordering::Relaxed),
    );
    let ok = !timed_out
        && downs == cycles
        && other == 0
        && c.stable_failures.load(Ordering::Relaxed) == 0
        && c.reopened.load(Ordering::Relaxed) >= u64::from(cycles);
    let r = Record::new(record::HOTPLUG)
        .field("cycles", downs)
        .field("want_cycles", cycles)
        .field("plugged", ups)
        .field("ops", c.ops.load(Ordering::Relaxed))
        .field("enodev", enodev)
        .field("reopened", c.reopened.load(Ordering::Relaxed))
        .field("other_errors", other)
        .field("stable_checks", c.stable_checks.load(Ordering::Relaxed))
        .field("stable_failures", c.stable_failures.load(Ordering::Relaxed))
        .field("timed_out", u8::from(timed_out));
    println!("{r}");
    ok
}

/// A user of the hot-plugged device: opens the node whenever it exists and uses it until it
/// fails. Kinds 0 and 1 read() (DMA and MMIO sizes), 2 and 3 use ioctls.
fn user(kind: u32, stop: &AtomicBool, c: &Counts, node: &Mutex<Option<PathBuf>>) {
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let Some(path) = node.lock().unwrap().clone() else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let dev = match Device::open(&path) {
            Ok(d) => d,
            // Gone between the monitor's look and the open: fine.
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        c.reopened.fetch_add(1, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            let r = match kind {
                0 => raw_read(dev.file().as_raw_fd(), buf.as_mut_ptr(), buf.len()).map(drop),
                1 => raw_read(dev.file().as_raw_fd(), buf.as_mut_ptr(), 512).map(drop),
                2 => dev
                    .next_u64()
                    .map(drop)
                    .map_err(|e| e.errno().unwrap_or(-1)),
                _ => {
                    let mut out = [0u32; 64];
                    dev.seed_read(7, &mut out)
                        .map_err(|e| e.errno().unwrap_or(-1))
                }
            };
            match r {
                Ok(()) => {
                    c.ops.fetch_add(1, Ordering::Relaxed);
                }
                Err(libc::ENODEV) => {
                    c.enodev.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    c.other_errors.fetch_add(1, Ordering::Relaxed);
                    println!("user {kind}: {}: {}", path.display(), errno_name(e));
                    break;
                }
            }
        }
    }
}

/// The device that stays: SEED_READ of seed 0x42 under glibc must give the vector, always.
fn stable(stop: &AtomicBool, c: &Counts) {
    let (Ok(dev), Ok(want)) = (Device::open_index(0), expected(Algorithm::Glibc, 0x42, 32)) else {
        c.stable_failures.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = dev.set_algorithm(Algorithm::Glibc);
    let mut out = vec![0u32; want.len()];
    while !stop.load(Ordering::Relaxed) {
        // What went wrong, printed: the failure must be diagnosable from the serial log.
        let bad = match dev.seed_read(0x42, &mut out) {
            Err(e) => Some(format!("SEED_READ failed: {e}")),
            Ok(()) => {
                mismatches(&out, &want).map(|m| format!("{m}; {}", recheck(&dev, &out, &want)))
            }
        };
        c.stable_checks.fetch_add(1, Ordering::Relaxed);
        if let Some(what) = bad {
            let n = c.stable_failures.fetch_add(1, Ordering::Relaxed) + 1;
            println!("{} {n}: {what}", marker::HP_STABLE_FAILURE);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The wrong words of `got`: how many, and the first few (index, value, expected, in hex).
fn mismatches(got: &[u32], want: &[u64]) -> Option<String> {
    let wrong: Vec<usize> = (0..got.len())
        .filter(|&k| u64::from(got[k]) != want[k])
        .collect();
    let first = wrong.first()?;
    let shown: Vec<String> = wrong
        .iter()
        .take(4)
        .map(|&k| format!("#{k} {:#x} (want {:#x})", got[k], want[k]))
        .collect();
    Some(format!(
        "value #{first} is {}, expected {}; {} of {} words wrong: {}",
        got[*first],
        want[*first],
        wrong.len(),
        got.len(),
        shown.join(", ")
    ))
}

/// After a wrong answer, tells where the fault lies: whether the buffer changes after the
/// ioctl returned (something wrote user memory behind our back), where it lies physically,
/// and whether an immediate second SEED_READ is right (a device or driver fault would
/// likely repeat).
fn recheck(dev: &Device, out: &[u32], want: &[u64]) -> String {
    let snapshot = out.to_vec();
    thread::sleep(Duration::from_millis(50));
    let changed = out.iter().zip(&snapshot).filter(|(a, b)| a != b).count();
    let mut again = vec![0u32; want.len()];
    let second = match dev.seed_read(0x42, &mut again) {
        Err(e) => format!("second SEED_READ failed: {e}"),
        Ok(()) => mismatches(&again, want).unwrap_or_else(|| "second SEED_READ right".into()),
    };
    format!(
        "{changed} words changed 50 ms later; buffer at {:p}, physical {}; {second}",
        out.as_ptr(),
        physical(out.as_ptr().cast()).map_or_else(|| "unknown".into(), |a| format!("{a:#x}"))
    )
}

/// The physical address of `p` from /proc/self/pagemap (the guest runs as root).
fn physical(p: *const u8) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let page = 4096u64;
    let va = p as u64;
    let mut e = [0u8; 8];
    fs::File::open("/proc/self/pagemap")
        .ok()?
        .read_exact_at(&mut e, va / page * 8)
        .ok()?;
    let e = u64::from_le_bytes(e);
    // Bit 63: present; bits 0-54: the page frame number.
    (e >> 63 == 1).then(|| (e & ((1 << 55) - 1)) * page + va % page)
}
