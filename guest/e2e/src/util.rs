//! Helpers shared by the tests: expected values, raw syscalls with bad arguments, timeouts.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use my_rng::uapi::{opcode, Opcode};
use my_rng::{Algorithm, Device};
use my_rng_spec::vectors::{self, Block, COUNT};

/// A test's outcome: `Err` carries the one-line reason.
pub type TestResult = Result<(), String>;

/// Expected values for (`alg`, `seed`, `bits`) from the committed vector files (never from
/// the device). Cached: `lookup` parses the embedded file on every call.
pub fn expected(alg: Algorithm, seed: u32, bits: u32) -> Result<Arc<Vec<u64>>, String> {
    type Cache = Mutex<HashMap<(u32, u32, u32), Arc<Vec<u64>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (alg.id(), seed, bits);
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    let block = vectors::lookup(alg, seed, bits)
        .ok_or_else(|| format!("no committed vector for {alg} seed {seed:#x} {bits}-bit"))?;
    let v = Arc::new(block.values);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, v.clone());
    Ok(v)
}

/// The first `n` bytes read() returns after SEED `seed` under `alg`: little-endian RNG64
/// values of the reference generator, whose first [`COUNT`] values must equal the committed
/// vector (so the expectation never comes from the device, nor from an unchecked generator).
pub fn stream(alg: Algorithm, seed: u32, n: usize) -> Result<Vec<u8>, String> {
    let block = Block::compute(alg, seed, 64, n.div_ceil(8).max(COUNT))
        .ok_or_else(|| format!("{alg} has no reference generator"))?;
    let committed = expected(alg, seed, 64)?;
    check_seq(
        &format!("reference {alg} seed {seed:#x} against the committed vector"),
        &block.values[..COUNT],
        &committed,
    )?;
    let mut bytes = block.le_bytes();
    bytes.truncate(n);
    Ok(bytes)
}

/// Compare `got` with the start of `want`, naming the first difference.
pub fn check_seq(what: &str, got: &[u64], want: &[u64]) -> TestResult {
    if got.len() > want.len() {
        return Err(format!(
            "{what}: {} values read but only {} expected",
            got.len(),
            want.len()
        ));
    }
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: value #{i} is {} ({:#x}), expected {} ({:#x})",
            got[i], got[i], want[i], want[i]
        )),
    }
}

/// Wrap a library error with context.
pub fn ctx<T>(what: &str, r: my_rng::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Read `n` values with RAND (32) or RAND64 (64) ioctls.
pub fn read_values(dev: &Device, bits: u32, n: usize) -> Result<Vec<u64>, String> {
    (0..n)
        .map(|_| {
            if bits == 64 {
                ctx("RAND64", dev.next_u64())
            } else {
                ctx("RAND", dev.next_u32().map(u64::from))
            }
        })
        .collect()
}

/// Select `alg` and seed it, so the next reads start the vector sequence.
pub fn start(dev: &Device, alg: Algorithm, seed: u32) -> TestResult {
    ctx(&format!("SET_ALGO {alg}"), dev.set_algorithm(alg))?;
    ctx(&format!("SEED {seed:#x}"), dev.seed(seed))
}

/// Puts the device back on the default algorithm when a test ends, pass or fail, so that
/// later users (the seed app run by the host) see the glibc sequence.
pub struct RestoreGlibc<'a>(pub &'a Device);

impl Drop for RestoreGlibc<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_algorithm(Algorithm::Glibc);
    }
}

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Symbolic name for the errnos the tests care about.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        0 => "success",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENODEV => "ENODEV",
        libc::ENXIO => "ENXIO",
        libc::EIO => "EIO",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOENT => "ENOENT",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Raw ioctl: `Ok(return value)` or `Err(errno)`. Deliberately unchecked so that tests can
/// pass bad pointers and unknown requests.
// Safe to call with any pointer: only the kernel dereferences it, and it checks it (which is
// what the callers test).
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn raw_ioctl(dev: &impl AsRawFd, req: Opcode, arg: *mut c_void) -> Result<i32, i32> {
    // SAFETY: the kernel validates every user pointer (that is what is being tested); the
    // pointers passed are either NULL, unmapped, kernel addresses or valid local objects.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), req as libc::Ioctl, arg) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Check that `r` failed with `want`.
pub fn expect_errno<T: std::fmt::Debug>(what: &str, r: Result<T, i32>, want: i32) -> TestResult {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!(
            "{what}: got {}, expected {}",
            errno_name(e),
            errno_name(want)
        )),
        Ok(v) => Err(format!(
            "{what}: succeeded ({v:?}), expected {}",
            errno_name(want)
        )),
    }
}

/// An address in the kernel's text mapping: never accessible from user space.
pub const KERNEL_ADDR: usize = 0xffff_ffff_8100_0000;

/// The address of a page that was mapped and then unmapped: no longer accessible.
pub fn unmapped_addr() -> Result<*mut c_void, String> {
    // SAFETY: plain anonymous mapping, unmapped again right away; only the address is kept.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", errno_name(errno())));
        }
        if libc::munmap(p, 4096) != 0 {
            return Err(format!("munmap: {}", errno_name(errno())));
        }
        Ok(p)
    }
}

/// The three kinds of bad user pointer every pointer-taking call must reject with EFAULT.
pub fn bad_pointers() -> Result<Vec<(&'static str, *mut c_void)>, String> {
    Ok(vec![
        ("NULL", std::ptr::null_mut()),
        ("unmapped", unmapped_addr()?),
        ("kernel", KERNEL_ADDR as *mut c_void),
    ])
}

/// `_IOR(group, nr, T)` etc., re-exported for tests that invent unknown requests.
pub use opcode::{none as io, read as ior};

/// Run `f` on its own thread and wait at most `limit`: a hung syscall becomes a failure
/// instead of a hung test program (the stuck thread is abandoned).
pub fn with_timeout<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(what.chars().take(15).collect())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| format!("{what}: cannot spawn thread: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(v) => Ok(v),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("{what}: no answer within {}s", limit.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("{what}: thread panicked")),
    }
}

/// Sends on its channel when dropped: a thread holding one reports its end however it ends
/// (so a test can wait until none of its calls can land in the next test).
pub struct Signal(pub mpsc::Sender<()>);

impl Drop for Signal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Poll `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A small seeded generator (SplitMix64) for the tests' own random choices: which call comes
/// next, sizes, seeds. Deliberately not one of the device's algorithms, so that the order of a
/// test's calls never correlates with the values under test.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator whose sequence is a function of `seed` (print it with a failure).
    pub fn new(seed: u64) -> TestRng {
        TestRng(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0; the bias is far below what the tests could notice).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rng_is_seeded_and_bounded() {
        let (mut a, mut b) = (TestRng::new(7), TestRng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(a.next_u64(), TestRng::new(8).next_u64());
        // SplitMix64's published first output for seed 0.
        assert_eq!(TestRng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        for _ in 0..1000 {
            assert!(a.below(3) < 3);
            let r = a.range(5, 9);
            assert!((5..=9).contains(&r));
        }
    }

    #[test]
    fn seq_comparison_names_the_first_difference() {
        assert!(check_seq("x", &[1, 2], &[1, 2, 3]).is_ok());
        let e = check_seq("x", &[1, 5], &[1, 2, 3]).unwrap_err();
        assert!(e.contains("#1 is 5"), "{e}");
        assert!(check_seq("x", &[1, 2, 3, 4], &[1, 2, 3]).is_err());
    }

    #[test]
    fn vectors_are_available() {
        let v = expected(Algorithm::Glibc, 0, 32).unwrap();
        assert_eq!(v.len(), vectors::COUNT);
        assert!(expected(Algorithm::Host, 0, 32).is_err());
    }

    #[test]
    fn timeouts_fire() {
        let r = with_timeout("sleeper", Duration::from_millis(50), || {
            thread::sleep(Duration::from_secs(5))
        });
        assert!(r.unwrap_err().contains("no answer"));
        assert_eq!(
            with_timeout("quick", Duration::from_secs(5), || 7).unwrap(),
            7
        );
    }

    #[test]
    fn raw_ioctl_reports_errno() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let r = raw_ioctl(&f, ior::<u32>(b'q', 99), std::ptr::null_mut());
        assert_eq!(r, Err(libc::ENOTTY));
        assert!(expect_errno("x", r, libc::ENOTTY).is_ok());
        assert!(expect_errno("x", Ok::<i32, i32>(0), libc::ENOTTY).is_err());
        assert_eq!(io(b'x', 1), 0x7801);
    }
}
