//! Two devices at once, and unbinding a device while a file is open.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::COUNT;

use super::{glibc_starts, open, want, Ctx};
use crate::util::*;

pub(super) fn two_devices_present(c: &Ctx) -> TestResult {
    let mut rdevs = Vec::new();
    let mut addrs = Vec::new();
    for p in [&c.dev0, &c.dev1] {
        let md = fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if !md.file_type().is_char_device() {
            return Err(format!("{} is not a character device", p.display()));
        }
        rdevs.push(md.rdev());
        let pci = c
            .sys
            .pci_device(&c.sys.misc_dir_for_node(p))
            .map_err(|e| format!("PCI device of {}: {e}", p.display()))?;
        addrs.push(pci.address);
        open(p)?;
    }
    if rdevs[0] == rdevs[1] {
        return Err("both nodes have the same device number".into());
    }
    if addrs[0] == addrs[1] {
        return Err(format!("both nodes belong to PCI device {}", addrs[0]));
    }
    Ok(())
}

pub(super) fn two_devices_independent(c: &Ctx) -> TestResult {
    let a = open(&c.dev0)?;
    let b = open(&c.dev1)?;
    let _ra = RestoreGlibc(&a);
    let _rb = RestoreGlibc(&b);

    // Same algorithm, different seeds, reads interleaved one by one.
    start(&a, Algorithm::Glibc, 0)?;
    start(&b, Algorithm::Glibc, 0x42)?;
    let wa = want(Algorithm::Glibc, 0, 32, COUNT)?;
    let wb = want(Algorithm::Glibc, 0x42, 32, COUNT)?;
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for i in 0..COUNT {
        ga.push(u64::from(ctx("RAND dev0", a.next_u32())?));
        gb.push(u64::from(ctx("RAND dev1", b.next_u32())?));
        // Reseeding one device mid-way must not affect the other.
        if i == COUNT / 2 {
            ctx("SEED dev0", a.seed(0))?;
        }
    }
    let mut wa2 = wa[..=COUNT / 2].to_vec();
    wa2.extend_from_slice(&wa[..COUNT - COUNT / 2 - 1]);
    check_seq("dev0 (glibc seed 0, reseeded half-way)", &ga, &wa2)?;
    check_seq("dev1 (glibc seed 0x42)", &gb, &wb)?;

    // Different algorithms at once.
    start(&a, Algorithm::Xoshiro256pp, 1)?;
    start(&b, Algorithm::ChaCha20, 0xdead_beef)?;
    let wa = want(Algorithm::Xoshiro256pp, 1, 64, COUNT)?;
    let wb = want(Algorithm::ChaCha20, 0xdead_beef, 64, COUNT)?;
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for _ in 0..COUNT {
        gb.push(ctx("RAND64 dev1", b.next_u64())?);
        ga.push(ctx("RAND64 dev0", a.next_u64())?);
    }
    check_seq("dev0 (xoshiro256pp seed 1)", &ga, &wa)?;
    check_seq("dev1 (chacha20 seed 0xdeadbeef)", &gb, &wb)
}

// ---------------------------------------------------------------- unbind while open

/// One call of an unbind test's reader.
type Call = Box<dyn FnMut(&Device) -> my_rng::Result<()> + Send>;

/// What the reader of an unbind test does, one call at a time.
pub(super) struct ReaderOp {
    /// For messages: "RAND", "1 MiB read()".
    pub name: &'static str,
    /// Calls to see before unbinding (within 5 s).
    pub min_calls: u64,
    pub op: Call,
}

/// A thread doing `ReaderOp::op` until a call fails (sending its errno) or it is told to
/// stop (sending `None`).
struct Reader {
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<Option<i32>>,
}

impl Reader {
    fn spawn(dev: Arc<Device>, mut op: Call) -> Reader {
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel::<Option<i32>>();
        let (c, s) = (count.clone(), stop.clone());
        thread::spawn(move || loop {
            if s.load(Ordering::Relaxed) {
                let _ = tx.send(None);
                return;
            }
            match op(&dev) {
                Ok(()) => {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let _ = tx.send(Some(e.errno().unwrap_or(-1)));
                    return;
                }
            }
        });
        Reader { count, stop, done }
    }

    fn calls(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Write `addr` to a driver's `bind`/`unbind` file, bounded by 30 s.
fn write_bounded(what: &str, file: &Path, addr: &str) -> Result<std::io::Result<()>, String> {
    let (f, a) = (file.to_path_buf(), addr.to_string());
    with_timeout(what, Duration::from_secs(30), move || fs::write(&f, &a))
}

pub(super) fn unbind_while_open(c: &Ctx) -> TestResult {
    let rand = ReaderOp {
        name: "RAND",
        min_calls: 100,
        op: Box::new(|d| d.next_u32().map(drop)),
    };
    unbind_while(c, rand, |_| Ok(()))
}

/// Unbind the second device while a reader runs `op` on it; `rebound` checks the node that
/// comes back after the bind (beyond the glibc sequence).
pub(super) fn unbind_while(
    c: &Ctx,
    op: ReaderOp,
    rebound: impl FnOnce(&Device) -> TestResult,
) -> TestResult {
    let misc = c.sys.misc_dir_for_node(&c.dev1);
    let pci = c
        .sys
        .pci_device(&misc)
        .map_err(|e| format!("PCI device of {}: {e}", c.dev1.display()))?;
    let driver = pci
        .driver
        .clone()
        .ok_or_else(|| format!("{} is bound to no driver", pci.address))?;
    let unbind = c.sys.pci_driver_file(&driver, "unbind");
    let bind = c.sys.pci_driver_file(&driver, "bind");
    let addr = pci.address.clone();

    let dev = Arc::new(open(&c.dev1)?);
    glibc_starts("before unbind", &dev, 0)?;

    let reader = Reader::spawn(dev.clone(), op.op);
    if !wait_for(Duration::from_secs(5), || reader.calls() >= op.min_calls) {
        reader.stop();
        return Err(format!(
            "reader made only {} {} calls in 5 s before unbind",
            reader.calls(),
            op.name
        ));
    }
    match write_bounded("unbind", &unbind, &addr) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            reader.stop();
            return Err(format!("writing {addr} to {}: {e}", unbind.display()));
        }
        Err(e) => {
            reader.stop();
            return Err(format!(
                "{e} (driver remove blocks while the file is open?)"
            ));
        }
    }
    let mut errs = enodev_after_unbind(&dev, &reader, op.name);
    drop(dev); // close (the reader has exited or been told to stop)

    match write_bounded("bind", &bind, &addr) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            errs.push(format!("writing {addr} to {}: {e}", bind.display()));
            return Err(errs.join("; "));
        }
        Err(e) => {
            errs.push(e);
            return Err(errs.join("; "));
        }
    }
    if let Err(e) = rebound_node_works(c, &addr, rebound) {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// After the unbind: the reader ended with ENODEV, and the stale file keeps answering ENODEV
/// without touching the (gone) device.
fn enodev_after_unbind(dev: &Device, reader: &Reader, name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    match reader.done.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(e)) if e == libc::ENODEV => {}
        Ok(Some(e)) => errs.push(format!("reader got {} instead of ENODEV", errno_name(e))),
        Ok(None) => errs.push("reader stopped without an error".into()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            reader.stop();
            errs.push(format!(
                "reader still running 10 s after unbind: {name} never failed with ENODEV (or hung)"
            ));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => errs.push("reader thread panicked".into()),
    }
    let e = dev.next_u32().err().and_then(|e| e.errno());
    if e != Some(libc::ENODEV) {
        errs.push(format!(
            "RAND on the open file after unbind: {e:?}, expected ENODEV"
        ));
    }
    let mut buf = [0u8; 16];
    let e = dev.read(&mut buf).err().and_then(|e| e.errno());
    if e != Some(libc::ENODEV) {
        errs.push(format!(
            "read() on the open file after unbind: {e:?}, expected ENODEV"
        ));
    }
    errs
}

/// After the bind: the node comes back (possibly under another name if minors were
/// reshuffled), starts the glibc sequence and passes `check`.
fn rebound_node_works(
    c: &Ctx,
    addr: &str,
    check: impl FnOnce(&Device) -> TestResult,
) -> TestResult {
    let mut node = None;
    let found = wait_for(Duration::from_secs(10), || {
        node = c
            .sys
            .misc_names_for_pci(addr)
            .unwrap_or_default()
            .into_iter()
            .map(|n| Path::new("/dev").join(n))
            .find(|p| p.exists());
        node.is_some()
    });
    let node = match (found, node) {
        (true, Some(n)) => n,
        _ => return Err(format!("no my_rng device node for {addr} 10 s after bind")),
    };
    let dev = open(&node)?;
    let _restore = RestoreGlibc(&dev);
    glibc_starts(&format!("{} after rebind", node.display()), &dev, 0x42)?;
    check(&dev).map_err(|e| format!("{} after rebind: {e}", node.display()))
}
