//! read() through the DMA engine (ABI 2.1): each read path forced through the device's
//! `read_path` attribute, odd sizes and offsets, large and bounded reads, partly bad user
//! buffers, and SEED_READ atomicity while DMA readers run. Expected bytes come from the spec
//! crate's reference generator, its prefix checked against the committed vectors.

use std::ffi::c_void;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::{COUNT, SEEDS};

use super::devices::{unbind_while, ReaderOp};
use super::{open, Ctx};
use crate::util::*;

/// The paths `read_path` accepts; `auto` is the default.
pub(super) const PATHS: [&str; 4] = ["auto", "mmio", "bounce", "zerocopy"];
/// Per-call bound of read() on the DMA paths (DMA_MAX_BYTES).
const DMA_BOUND: usize = 1 << 20;
/// Per-call bound of read() on the MMIO path (unchanged from ABI 2.0).
const MMIO_BOUND: usize = 64 * 1024;
const PAGE: usize = 4096;
/// What guard bytes and not-to-be-written memory hold.
const FILL: u8 = 0xa5;

/// The largest number of bytes one read() may return on `path`.
fn bound(path: &str) -> usize {
    if path == "mmio" {
        MMIO_BOUND
    } else {
        DMA_BOUND
    }
}

/// One of the device's path attributes (`read_path`, `ioctl_path`); puts `auto` back when
/// dropped, pass or fail.
pub(super) struct PathAttr {
    file: PathBuf,
}

impl PathAttr {
    /// `read_path` of the first device.
    pub(super) fn read_path(c: &Ctx) -> PathAttr {
        PathAttr::named(c, "read_path")
    }

    /// `ioctl_path` of the first device.
    pub(super) fn ioctl_path(c: &Ctx) -> PathAttr {
        PathAttr::named(c, "ioctl_path")
    }

    /// The attribute `name` of the first device.
    pub(super) fn named(c: &Ctx, name: &str) -> PathAttr {
        PathAttr {
            file: c.sys.misc_dir_for_node(&c.dev0).join(name),
        }
    }

    /// The attribute's file.
    pub(super) fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Write `value`; `Err(errno)` as the driver answered.
    pub(super) fn write(&self, value: &str) -> Result<(), i32> {
        fs::write(&self.file, value).map_err(|e| e.raw_os_error().unwrap_or(-1))
    }

    /// Select `path`, which must be accepted.
    pub(super) fn set(&self, path: &str) -> TestResult {
        self.write(path).map_err(|e| {
            format!(
                "writing {path:?} to {}: {}",
                self.file.display(),
                errno_name(e)
            )
        })
    }

    /// The current path (a `[selected]` marker among several names is understood too).
    pub(super) fn get(&self) -> Result<String, String> {
        let text =
            fs::read_to_string(&self.file).map_err(|e| format!("{}: {e}", self.file.display()))?;
        let t = text.trim();
        Ok(match (t.find('['), t.find(']')) {
            (Some(a), Some(b)) if a < b => t[a + 1..b].to_string(),
            _ => t.to_string(),
        })
    }
}

impl Drop for PathAttr {
    fn drop(&mut self) {
        let _ = fs::write(&self.file, "auto");
    }
}

/// Where `got` and `want` first differ, as a message.
fn compare(what: &str, got: &[u8], want: &[u8]) -> TestResult {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} bytes, expected {}",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i} (value #{}) is {:#04x}, expected {:#04x}",
            i / 8,
            got[i],
            want[i]
        )),
    }
}

/// `bytes` all hold [`FILL`] (memory read() must not have written).
fn untouched(what: &str, bytes: &[u8]) -> TestResult {
    match bytes.iter().position(|&b| b != FILL) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i} of {} was written ({:#04x})",
            bytes.len(),
            bytes[i]
        )),
    }
}

/// One raw read(2) into `len` bytes at `p`: the count or the errno.
fn raw_read(dev: &Device, p: *mut u8, len: usize) -> Result<usize, i32> {
    // SAFETY: `p..p+len` is memory of the caller's (possibly partly inaccessible on purpose:
    // the kernel must then stop or fail with EFAULT); nothing else refers to it meanwhile.
    let r = unsafe { libc::read(dev.as_raw_fd(), p.cast::<c_void>(), len) };
    usize::try_from(r).map_err(|_| errno())
}

// ---------------------------------------------------------------- the attribute

pub(super) fn read_path_attribute(c: &Ctx) -> TestResult {
    let rp = PathAttr::read_path(c);
    let first = rp.get()?;
    if first != "auto" {
        return Err(format!(
            "read_path is {first:?} before any test, not \"auto\""
        ));
    }
    for path in PATHS.iter().rev() {
        rp.set(path)?;
        let now = rp.get()?;
        if now != *path {
            return Err(format!("read_path reads {now:?} after writing {path:?}"));
        }
    }
    rp.set("bounce")?;
    for junk in ["junk", "x", "bounce2", "mmio bounce", "dma", "0"] {
        expect_errno(
            &format!("writing {junk:?} to read_path"),
            rp.write(junk),
            libc::EINVAL,
        )?;
        let now = rp.get()?;
        if now != "bounce" {
            return Err(format!(
                "rejected {junk:?} changed read_path from \"bounce\" to {now:?}"
            ));
        }
    }
    // A newline, as `echo` writes it, is accepted.
    rp.set("zerocopy\n")?;
    match rp.get()?.as_str() {
        "zerocopy" => Ok(()),
        other => Err(format!(
            "read_path is {other:?} after writing \"zerocopy\\n\""
        )),
    }
}

// ---------------------------------------------------------------- vectors per path

/// Every algorithm's vectors through read() on `path`; RAND64 continues after an odd-sized
/// read at value ceil(n/8) (the unused bytes of the last value are dropped).
pub(super) fn read_vectors_on(c: &Ctx, path: &str) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    rp.set(path)?;
    for alg in Algorithm::DETERMINISTIC {
        for seed in SEEDS {
            start(&dev, alg, seed)?;
            let mut buf = vec![0u8; 8 * COUNT];
            ctx("read", dev.fill_bytes(&mut buf))?;
            compare(
                &format!("{path}: {alg} seed {seed:#x}"),
                &buf,
                &stream(alg, seed, 8 * COUNT)?,
            )?;
        }
        start(&dev, alg, 0x42)?;
        let mut buf = [0u8; 13];
        ctx("read(13)", dev.fill_bytes(&mut buf))?;
        compare(
            &format!("{path}: {alg} 13-byte read"),
            &buf,
            &stream(alg, 0x42, 13)?,
        )?;
        let w = want_values(alg, 0x42, 3)?;
        let next = ctx("RAND64", dev.next_u64())?;
        if next != w[2] {
            return Err(format!(
                "{path}: {alg}: RAND64 after a 13-byte read is {next:#x}, expected value #2 {:#x}",
                w[2]
            ));
        }
    }
    // Host entropy goes through the same path.
    start(&dev, Algorithm::Host, 0)?;
    let mut buf = vec![0u8; 4096];
    ctx("read (host)", dev.fill_bytes(&mut buf))?;
    if buf.iter().all(|&b| b == 0) {
        return Err(format!("{path}: 4096 bytes of host entropy are all zero"));
    }
    Ok(())
}

fn want_values(alg: Algorithm, seed: u32, n: usize) -> Result<Vec<u64>, String> {
    let v = expected(alg, seed, 64)?;
    Ok(v[..n.min(v.len())].to_vec())
}

// ---------------------------------------------------------------- sizes and offsets

/// A page-aligned heap buffer of `FILL` bytes (alignment makes "odd offset" mean odd
/// within a page, and lets reads start or end exactly on page boundaries).
struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Pages {
    fn new(len: usize) -> Result<Pages, String> {
        let len = len.div_ceil(PAGE) * PAGE;
        // SAFETY: a fresh private anonymous mapping; owned by the returned value.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap {len} bytes: {}", errno_name(errno())));
        }
        let pages = Pages { ptr: p.cast(), len };
        // SAFETY: the mapping is `len` bytes of read-write memory.
        unsafe { std::ptr::write_bytes(pages.ptr, FILL, len) };
        Ok(pages)
    }

    /// The bytes, all of which must be accessible again.
    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping lives as long as `self`; callers restore protections first.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Change the protection of pages `from..from+count`.
    fn protect(&self, from: usize, count: usize, prot: libc::c_int) -> TestResult {
        // SAFETY: the range is inside this mapping.
        let r = unsafe { libc::mprotect(self.ptr.add(from * PAGE).cast(), count * PAGE, prot) };
        if r != 0 {
            return Err(format!("mprotect: {}", errno_name(errno())));
        }
        Ok(())
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping (pages unmapped already are no error).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by the value.
unsafe impl Send for Pages {}

/// Reads `(offset, len)` in turn from one seeded stream into fresh page buffers on `path`.
/// Each result must be the next bytes of the stream (the position advancing by whole
/// values) with every byte outside it untouched.
fn reads_at(dev: &Device, path: &str, cases: &[(usize, usize)]) -> TestResult {
    let (alg, seed) = (Algorithm::Xoshiro256pp, 0xdead_beef);
    let total: usize = cases.iter().map(|(_, n)| n.div_ceil(8) * 8).sum();
    let want = stream(alg, seed, total)?;
    start(dev, alg, seed)?;
    let mut pos = 0;
    for &(off, len) in cases {
        let pages = Pages::new(off + len + 1)?;
        // SAFETY: `off + len` is inside the mapping.
        let r = raw_read(dev, unsafe { pages.ptr.add(off) }, len);
        let what = format!("{path}: read of {len} bytes at page offset {off}");
        let n = r.map_err(|e| format!("{what}: {}", errno_name(e)))?;
        if n == 0 || n > len.min(bound(path)) {
            return Err(format!("{what} returned {n}"));
        }
        let b = pages.bytes();
        compare(&what, &b[off..off + n], &want[pos..pos + n])?;
        untouched(&format!("{what}: before the buffer"), &b[..off])?;
        untouched(&format!("{what}: after the {n} bytes read"), &b[off + n..])?;
        pos += n.div_ceil(8) * 8;
    }
    Ok(())
}

pub(super) fn read_odd_sizes_offsets(c: &Ctx) -> TestResult {
    const CASES: [(usize, usize); 10] = [
        (1, 1),
        (3, 7),
        (5, 9),
        (7, 4095),
        (1, 4097),
        (4095, 2),
        (4093, 8193),
        (13, 65_537),
        (2049, 100_003),
        (0, 16_385),
    ];
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    for path in PATHS {
        rp.set(path)?;
        reads_at(&dev, path, &CASES)?;
    }
    Ok(())
}

/// 1 MiB into buffers spanning hundreds of pages, at odd offsets, per DMA path.
pub(super) fn read_many_pages(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    for path in ["bounce", "zerocopy", "auto"] {
        rp.set(path)?;
        reads_at(&dev, path, &[(3, DMA_BOUND), (PAGE - 1, DMA_BOUND - 5)])?;
    }
    Ok(())
}

/// A request above the per-call bound returns at most the bound (1 MiB on the DMA paths,
/// 64 KiB on MMIO), and the bytes after it stay untouched.
pub(super) fn read_bound(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    for path in PATHS {
        rp.set(path)?;
        reads_at(
            &dev,
            path,
            &[(0, 2 * DMA_BOUND + 5), (5, DMA_BOUND + 1), (0, DMA_BOUND)],
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- bad buffers

/// Whole bad buffers fail with EFAULT on every path.
pub(super) fn read_efault_paths(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let rp = PathAttr::read_path(c);
    for path in PATHS {
        rp.set(path)?;
        for (what, p) in bad_pointers()? {
            for len in [64, 64 * 1024, DMA_BOUND] {
                expect_errno(
                    &format!("{path}: read() of {len} bytes into {what} buffer"),
                    raw_read(&dev, p.cast(), len),
                    libc::EFAULT,
                )?;
            }
        }
    }
    Ok(())
}

/// The answer to a read into a buffer whose tail is inaccessible: EFAULT, or a count within
/// the good part whose bytes are the stream. Accessible bytes after the count may hold more
/// of the stream (a chunk copy_to_user() wrote partly, which the count leaves out, as
/// /dev/mem does too) but nothing else.
fn check_partial(what: &str, r: Result<usize, i32>, good: &[u8], want: &[u8]) -> TestResult {
    match r {
        Err(e) if e == libc::EFAULT => Ok(()),
        Err(e) => Err(format!(
            "{what}: {}, expected a short count or EFAULT",
            errno_name(e)
        )),
        Ok(0) => Err(format!("{what}: returned 0 (end of file)")),
        Ok(n) if n > good.len() => Err(format!(
            "{what}: returned {n}, more than the {} accessible bytes",
            good.len()
        )),
        Ok(n) => {
            compare(what, &good[..n], &want[..n])?;
            match (n..good.len()).find(|&i| good[i] != FILL && good[i] != want[i]) {
                None => Ok(()),
                Some(i) => Err(format!(
                    "{what}: returned {n}, and byte {i} after it holds {:#04x}, neither \
                     untouched nor the stream's {:#04x}",
                    good[i], want[i]
                )),
            }
        }
    }
}

/// Buffers whose tail is PROT_NONE or unmapped, on every path: the good prefix or EFAULT,
/// and nothing written anywhere else (the PROT_NONE pages are checked once readable again).
pub(super) fn read_partly_bad_buffers(c: &Ctx) -> TestResult {
    let dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&dev);
    let rp = PathAttr::read_path(c);
    // (good pages, bad pages, offset of the buffer in the first page)
    const LAYOUTS: [(usize, usize, usize); 4] = [(1, 1, 100), (2, 2, 7), (16, 8, 1), (255, 2, 0)];
    let (alg, seed) = (Algorithm::ChaCha20, 1);
    for path in PATHS {
        rp.set(path)?;
        for (good_pages, bad_pages, off) in LAYOUTS {
            let len = (good_pages + bad_pages) * PAGE - off;
            let want = stream(alg, seed, len)?;
            for unmap in [false, true] {
                let what = format!(
                    "{path}: read of {len} bytes at offset {off}, last {bad_pages} of {} pages {}",
                    good_pages + bad_pages,
                    if unmap { "unmapped" } else { "PROT_NONE" }
                );
                let pages = Pages::new((good_pages + bad_pages + 1) * PAGE)?;
                // SAFETY: the range is inside the mapping; unmapping part of our own mapping.
                let tail = unsafe { pages.ptr.add(good_pages * PAGE) };
                if unmap {
                    if unsafe { libc::munmap(tail.cast(), bad_pages * PAGE) } != 0 {
                        return Err(format!("munmap: {}", errno_name(errno())));
                    }
                } else {
                    pages.protect(good_pages, bad_pages, libc::PROT_NONE)?;
                }
                start(&dev, alg, seed)?;
                // SAFETY: `off` is inside the first page.
                let r = raw_read(&dev, unsafe { pages.ptr.add(off) }, len);
                let good_end = good_pages * PAGE;
                // SAFETY: pages before `tail` are mapped read-write.
                let good = unsafe { std::slice::from_raw_parts(pages.ptr, good_end) };
                untouched(&format!("{what}: before the buffer"), &good[..off])?;
                check_partial(&what, r, &good[off..], &want)?;
                if !unmap {
                    pages.protect(good_pages, bad_pages, libc::PROT_READ | libc::PROT_WRITE)?;
                    untouched(
                        &format!("{what}: the PROT_NONE pages"),
                        &pages.bytes()[good_end..],
                    )?;
                }
                // The page after the bad ones was never part of the buffer.
                // SAFETY: the last page of the mapping is still mapped read-write.
                let last = unsafe {
                    std::slice::from_raw_parts(pages.ptr.add((good_pages + bad_pages) * PAGE), PAGE)
                };
                untouched(&format!("{what}: the guard page"), last)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- unbind

/// Unbind the second device while 1 MiB reads run on it through each DMA path: the reader
/// ends with ENODEV (no hang, and kmsg-clean sees no oops), and the rebound device reads the
/// vectors again by DMA.
pub(super) fn unbind_while_dma_reading(c: &Ctx) -> TestResult {
    for path in ["bounce", "zerocopy"] {
        let attr = c.sys.misc_dir_for_node(&c.dev1).join("read_path");
        fs::write(&attr, path)
            .map_err(|e| format!("writing {path:?} to {}: {e}", attr.display()))?;
        let mut buf = vec![0u8; DMA_BOUND];
        let reader = ReaderOp {
            name: "1 MiB read()",
            min_calls: 3,
            op: Box::new(move |d| d.read(&mut buf).map(drop)),
        };
        unbind_while(c, reader, |dev| {
            // A new device instance: read_path is back to auto, and DMA works.
            start(dev, Algorithm::Xoshiro256pp, 1)?;
            let mut got = vec![0u8; 8 * COUNT];
            ctx("read", dev.fill_bytes(&mut got))?;
            compare(
                "read()",
                &got,
                &stream(Algorithm::Xoshiro256pp, 1, 8 * COUNT)?,
            )
        })
        .map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- concurrency

/// SEED_READ stays atomic (exact vectors) while other files read 1 MiB at a time through
/// DMA and a third user reseeds and draws through the classic ioctls, on each DMA path.
pub(super) fn seed_read_vs_dma_readers(c: &Ctx) -> TestResult {
    let _restore_dev = open(&c.dev0)?;
    let _restore = RestoreGlibc(&_restore_dev);
    ctx(
        "SET_ALGO glibc",
        _restore_dev.set_algorithm(Algorithm::Glibc),
    )?;
    let rp = PathAttr::read_path(c);
    for path in ["bounce", "zerocopy"] {
        rp.set(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        // Whatever happens below, no thread outlives this iteration.
        let _stop_all = StopOnDrop(stop.clone());
        let read_bytes = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        for i in 0..2 {
            let seed = SEEDS[(i + 2) % SEEDS.len()];
            spawn_seed_reader(open(&c.dev0)?, i, seed, read_bytes.clone(), tx.clone())?;
        }
        for i in 0..2 {
            let (stop, read_bytes) = (stop.clone(), read_bytes.clone());
            spawn_dma_reader(open(&c.dev0)?, i, stop, read_bytes, tx.clone());
        }
        let (disturber_done, disturber_end) = mpsc::channel();
        spawn_disturber(open(&c.dev0)?, stop.clone(), Signal(disturber_done));
        drop(tx);
        let mut errs = collect(&rx, 4, 2, &stop, Duration::from_secs(60));
        // None of its calls may land in the next test.
        if disturber_end.recv_timeout(Duration::from_secs(10))
            == Err(mpsc::RecvTimeoutError::Timeout)
        {
            errs.push("the disturbing thread did not stop within 10 s".into());
        }
        if !errs.is_empty() {
            return Err(format!("{path}: {}", errs.join("; ")));
        }
        if read_bytes.load(Ordering::Relaxed) == 0 {
            return Err(format!("{path}: the DMA readers read nothing"));
        }
    }
    Ok(())
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A thread doing 20 SEED_READs of `seed`, each checked against the vector; sends its
/// verdict.
/// A thread doing checked SEED_READs: at least `ITERS`, and on until the DMA readers have read
/// something (at most 30 s more), so that the two overlap however slowly the DMA readers start
/// (a 1 MiB bounce read over INTx on a loaded host takes a while).
fn spawn_seed_reader(
    dev: Device,
    i: usize,
    seed: u32,
    dma_bytes: Arc<AtomicU64>,
    tx: mpsc::Sender<Result<(), String>>,
) -> TestResult {
    const ITERS: u32 = 20;
    const MORE: Duration = Duration::from_secs(30);
    let w = expected(Algorithm::Glibc, seed, 32)?;
    thread::spawn(move || {
        let mut out = vec![0u32; w.len()];
        let start = Instant::now();
        for it in 0.. {
            if it >= ITERS && (dma_bytes.load(Ordering::Relaxed) > 0 || start.elapsed() > MORE) {
                break;
            }
            let r = dev.seed_read(seed, &mut out).map_err(|e| e.to_string());
            let r = r.and_then(|()| {
                let got: Vec<u64> = out.iter().map(|&v| u64::from(v)).collect();
                check_seq(
                    &format!("SEED_READ seed {seed:#x} iteration {it}"),
                    &got,
                    &w,
                )
            });
            if let Err(e) = r {
                let _ = tx.send(Err(format!("thread {i}: {e}: not atomic")));
                return;
            }
        }
        let _ = tx.send(Ok(()));
    });
    Ok(())
}

/// A thread reading 1 MiB at a time until `stop`, counting the bytes; sends its verdict.
fn spawn_dma_reader(
    dev: Device,
    i: usize,
    stop: Arc<AtomicBool>,
    read_bytes: Arc<AtomicU64>,
    tx: mpsc::Sender<Result<(), String>>,
) {
    thread::spawn(move || {
        let mut buf = vec![0u8; DMA_BOUND];
        while !stop.load(Ordering::Relaxed) {
            match dev.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Err(format!("DMA reader {i}: end of file")));
                    return;
                }
                Ok(n) => {
                    read_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("DMA reader {i}: {e}")));
                    return;
                }
            }
        }
        let _ = tx.send(Ok(()));
    });
}

/// A thread reseeding and drawing through the classic ioctls until `stop`; `done` reports
/// its end.
fn spawn_disturber(dev: Device, stop: Arc<AtomicBool>, done: Signal) {
    thread::spawn(move || {
        let _done = done;
        let mut s = 0u32;
        while !stop.load(Ordering::Relaxed) {
            s = s.wrapping_add(0x9e37_79b9);
            if dev.seed(s).is_err() || dev.next_u32().is_err() || dev.next_u64().is_err() {
                break;
            }
        }
    });
}

/// Wait for `waits` results; once the first `first` (the SEED_READ threads, which end on
/// their own) are in, tell the rest to stop. Returns the errors.
fn collect(
    rx: &mpsc::Receiver<Result<(), String>>,
    waits: u32,
    first: u32,
    stop: &AtomicBool,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let (mut done, mut errs) = (0, Vec::new());
    while done < waits {
        if done >= first {
            stop.store(true, Ordering::Relaxed);
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => {
                done += 1;
                if let Err(e) = r {
                    errs.push(e);
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Err(_) => {
                errs.push(format!(
                    "{} of {waits} threads did not finish within {} s (deadlock?)",
                    waits - done,
                    limit.as_secs()
                ));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_the_vector_bytes() {
        let s = stream(Algorithm::Glibc, 0x42, 8 * COUNT + 3).unwrap();
        let v = expected(Algorithm::Glibc, 0x42, 64).unwrap();
        assert_eq!(s.len(), 8 * COUNT + 3);
        assert_eq!(s[..8], v[0].to_le_bytes());
        assert_eq!(s[8 * (COUNT - 1)..8 * COUNT], v[COUNT - 1].to_le_bytes());
        assert!(stream(Algorithm::Host, 0, 8).is_err());
    }

    #[test]
    fn comparisons_name_the_place() {
        assert!(compare("x", &[1, 2], &[1, 2]).is_ok());
        assert!(compare("x", &[1, 3], &[1, 2])
            .unwrap_err()
            .contains("byte 1"));
        assert!(compare("x", &[1], &[1, 2]).is_err());
        assert!(untouched("x", &[FILL; 3]).is_ok());
        assert!(untouched("x", &[FILL, 0, FILL])
            .unwrap_err()
            .contains("byte 1 of 3"));
    }

    #[test]
    fn partial_reads_are_judged() {
        let want = [1u8, 2, 3, 4];
        assert!(check_partial("x", Err(libc::EFAULT), &[FILL; 4], &want).is_ok());
        assert!(check_partial("x", Err(libc::EIO), &[FILL; 4], &want).is_err());
        assert!(check_partial("x", Ok(0), &[FILL; 4], &want).is_err());
        assert!(check_partial("x", Ok(2), &[1, 2, FILL, FILL], &want).is_ok());
        assert!(check_partial("x", Ok(2), &[1, 2, 3, FILL], &want).is_ok());
        assert!(check_partial("x", Ok(2), &[1, 2, 9, FILL], &want).is_err());
        assert!(check_partial("x", Ok(2), &[1, 9, FILL, FILL], &want).is_err());
        assert!(check_partial("x", Ok(5), &[1, 2, 3, 4], &want).is_err());
    }

    #[test]
    fn pages_are_filled_and_guarded() {
        let p = Pages::new(PAGE + 1).unwrap();
        assert_eq!(p.len, 2 * PAGE);
        assert!(untouched("x", p.bytes()).is_ok());
        p.protect(1, 1, libc::PROT_NONE).unwrap();
        p.protect(1, 1, libc::PROT_READ | libc::PROT_WRITE).unwrap();
        // A read into a buffer whose tail is PROT_NONE: the host's /dev/zero shows what a
        // kernel does with it (a short count or EFAULT), which check_partial accepts.
        p.protect(1, 1, libc::PROT_NONE).unwrap();
        let f = fs::File::open("/dev/zero").unwrap();
        // SAFETY: as in raw_read.
        let r = unsafe { libc::read(f.as_raw_fd(), p.ptr.add(10).cast(), PAGE) };
        assert!(
            r == (PAGE - 10) as isize || (r < 0 && errno() == libc::EFAULT),
            "{r}"
        );
    }
}
