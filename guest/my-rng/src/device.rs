//! [`Device`]: an open my_rng character device.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use my_rng_spec::{regs, Algorithm};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, Getter, Ioctl, Setter, Updater};

use crate::error::{Error, Result};
use crate::uapi::{self, RawInfo, RawSeedRead};

/// Path of the first device node.
pub const DEFAULT_PATH: &str = "/dev/my_rng_driver";

/// What the INFO ioctl reports about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// ID register (0x4d520200 for ABI 2.0); 0 for an ABI 1 device, which has no ID register.
    pub id: u32,
    /// FEATURES register (`my_rng_spec::regs::FEAT_*` bits).
    pub features: u32,
    /// ALGOS register: bit `n` set when algorithm id `n` is implemented.
    pub algos: u32,
    /// Current algorithm id.
    pub algo: u32,
    /// `(major, minor)` decoded from `id`; `Some((1, 0))` when `id` is 0 (the driver's way of
    /// saying "ABI 1 device"), `None` when `id` carries no valid magic.
    pub abi_version: Option<(u32, u32)>,
}

impl Info {
    fn from_raw(raw: RawInfo) -> Self {
        let abi_version = regs::abi_version(raw.id).or((raw.id == 0).then_some((1, 0)));
        Info {
            id: raw.id,
            features: raw.features,
            algos: raw.algos,
            algo: raw.algo,
            abi_version,
        }
    }

    /// Whether FEATURES has `bit` (one of `my_rng_spec::regs::FEAT_*`) set.
    pub fn has_feature(&self, bit: u32) -> bool {
        self.features & bit != 0
    }

    /// Names of the FEATURES bits that are set, in bit order (unknown bits as `bitN`).
    pub fn feature_names(&self) -> Vec<String> {
        const NAMES: [(u32, &str); 5] = [
            (regs::FEAT_RNG64, "rng64"),
            (regs::FEAT_ALGO, "algo"),
            (regs::FEAT_ENTROPY, "entropy"),
            (regs::FEAT_DMA, "dma"),
            (regs::FEAT_IRQ, "irq"),
        ];
        (0..32)
            .map(|b| 1u32 << b)
            .filter(|bit| self.features & bit != 0)
            .map(|bit| match NAMES.iter().find(|(b, _)| *b == bit) {
                Some((_, name)) => (*name).to_string(),
                None => format!("bit{}", bit.trailing_zeros()),
            })
            .collect()
    }

    /// The current algorithm, if this library knows its id.
    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_id(self.algo)
    }

    /// The known algorithms that ALGOS advertises, in id order.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|a| a.id() < 32 && self.algos & (1 << a.id()) != 0)
            .collect()
    }
}

/// An open my_rng device node (`/dev/my_rng_driver`, `/dev/my_rng_driver1`, ...).
///
/// All operations take `&self`: the driver serialises device access itself, so one handle can
/// be shared between threads. Each ioctl is one driver call; sequences are only reproducible
/// when no other user of the same device interleaves calls (use [`Device::seed_read`] for an
/// atomic seed-and-read).
///
/// # rand_core
///
/// `Device` implements [`rand_core::TryRng`] (rand_core 0.10, the version `rand` 0.10 uses)
/// with [`Error`] as its error type, because every draw is a syscall that can fail (for
/// instance with ENODEV when the device is unbound). For the infallible [`rand_core::Rng`]
/// (which `rand`'s `RngExt` and the deprecated `RngCore` alias build on), wrap it as
/// [`rand_core::UnwrapErr`]`(device)`: that wrapper panics on a device error, which is the
/// only honest infallible behaviour for a hardware source.
///
/// `Device` does not implement `SeedableRng`: that trait constructs a generator from a seed
/// alone, but a `Device` is a handle to a kernel object that must be opened from a path (and
/// whose state is shared with every other opener). Seed an open device with [`Device::seed`].
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
}

impl Device {
    /// Open the node at `path`.
    ///
    /// Opens read-write like the seed exercise's app; if that is denied, retries read-only
    /// (ioctls and read() only need an open file), so a user with read permission works too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                OpenOptions::new()
                    .read(true)
                    .open(path)
                    .map_err(|e| Error::from_open(path, e))?
            }
            Err(e) => return Err(Error::from_open(path, e)),
        };
        Ok(Device {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Open `/dev/my_rng_driver`.
    pub fn open_default() -> Result<Self> {
        Self::open(DEFAULT_PATH)
    }

    /// Open the `n`-th device: `/dev/my_rng_driver` for 0, `/dev/my_rng_driverN` otherwise.
    pub fn open_index(n: u32) -> Result<Self> {
        Self::open(Self::index_path(n))
    }

    /// Node path of the `n`-th device (see [`Device::open_index`]).
    pub fn index_path(n: u32) -> PathBuf {
        if n == 0 {
            PathBuf::from(DEFAULT_PATH)
        } else {
            PathBuf::from(format!("{DEFAULT_PATH}{n}"))
        }
    }

    /// The path this device was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying file (for `metadata()`, raw syscalls in tests, ...).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Run one syscall, retrying on EINTR (a signal is not a device error), and classify
    /// the final error as `op` on this device.
    fn syscall<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        loop {
            match f() {
                Err(Errno::INTR) => continue,
                r => return r.map_err(|e| Error::from_op(op, &self.path, e.into())),
            }
        }
    }

    /// Run one ioctl built by `make` (see [`Device::syscall`]).
    fn call<I: Ioctl>(&self, op: &'static str, mut make: impl FnMut() -> I) -> Result<I::Output> {
        // SAFETY: callers build the request from the uapi opcodes with the argument type the
        // driver expects for that opcode (see uapi.rs); the kernel only touches that argument.
        self.syscall(op, || unsafe { ioctl(&self.file, make()) })
    }

    /// Reseed the current algorithm with `seed` (SEED ioctl; the seed exercise's SEED_IOCTL).
    pub fn seed(&self, seed: u32) -> Result<()> {
        // SAFETY: SEED is _IOW('q', 1, __u32).
        self.call("SEED", || unsafe {
            Setter::<{ uapi::SEED }, u32>::new(seed)
        })
    }

    /// Next 32-bit value (RAND ioctl; the seed exercise's RAND_IOCTL).
    pub fn next_u32(&self) -> Result<u32> {
        // SAFETY: RAND is _IOR('q', 1, __u32).
        self.call("RAND", || unsafe { Getter::<{ uapi::RAND }, u32>::new() })
    }

    /// Next 64-bit value (RAND64 ioctl, one RNG64 register read).
    pub fn next_u64(&self) -> Result<u64> {
        // SAFETY: RAND64 is _IOR('q', 2, __u64).
        self.call("RAND64", || unsafe {
            Getter::<{ uapi::RAND64 }, u64>::new()
        })
    }

    /// Select `alg` (SET_ALGO); the device reseeds it with the last seed written.
    pub fn set_algorithm(&self, alg: Algorithm) -> Result<()> {
        self.set_algorithm_id(alg.id())
    }

    /// Select an algorithm by raw id, including ids this library does not know.
    pub fn set_algorithm_id(&self, id: u32) -> Result<()> {
        // SAFETY: SET_ALGO is _IOW('q', 3, __u32).
        self.call("SET_ALGO", || unsafe {
            Setter::<{ uapi::SET_ALGO }, u32>::new(id)
        })
        .map_err(|e| match e {
            Error::InvalidArgument { .. } => Error::UnsupportedAlgorithm { id },
            e => e,
        })
    }

    /// Raw id of the current algorithm (GET_ALGO).
    pub fn algorithm_id(&self) -> Result<u32> {
        // SAFETY: GET_ALGO is _IOR('q', 3, __u32).
        self.call("GET_ALGO", || unsafe {
            Getter::<{ uapi::GET_ALGO }, u32>::new()
        })
    }

    /// The current algorithm (GET_ALGO); [`Error::UnknownAlgorithm`] for an id this library
    /// does not know.
    pub fn algorithm(&self) -> Result<Algorithm> {
        let id = self.algorithm_id()?;
        Algorithm::from_id(id).ok_or(Error::UnknownAlgorithm { id })
    }

    /// Device identification and state (INFO ioctl).
    pub fn info(&self) -> Result<Info> {
        // SAFETY: INFO is _IOR('q', 4, struct my_rng_info) and RawInfo is its repr(C) twin.
        self.call("INFO", || unsafe {
            Getter::<{ uapi::INFO }, RawInfo>::new()
        })
        .map(Info::from_raw)
    }

    /// Seed with `seed` and fill `out` with the next `out.len()` 32-bit values, atomically
    /// with respect to other users of the device (SEED_READ ioctl).
    ///
    /// `out.len()` must be 1..=4096 ([`uapi::SEED_READ_MAX`]); other lengths are rejected
    /// here with [`Error::InvalidArgument`] before reaching the driver.
    pub fn seed_read(&self, seed: u32, out: &mut [u32]) -> Result<()> {
        let count = match u32::try_from(out.len()) {
            Ok(n) if (1..=uapi::SEED_READ_MAX).contains(&n) => n,
            _ => {
                return Err(Error::InvalidArgument {
                    op: "SEED_READ",
                    reason: format!("count {} not in 1..={}", out.len(), uapi::SEED_READ_MAX),
                })
            }
        };
        let mut arg = RawSeedRead {
            seed,
            count,
            buf: out.as_mut_ptr() as u64,
        };
        // SAFETY: SEED_READ is _IOWR('q', 5, struct my_rng_seed_read); `arg.buf` points to
        // `count` writable u32s borrowed mutably for the duration of the call.
        self.syscall("SEED_READ", || unsafe {
            ioctl(
                &self.file,
                Updater::<{ uapi::SEED_READ }, RawSeedRead>::new(&mut arg),
            )
        })
    }

    /// One read(2): bytes of the current algorithm's output (little-endian RNG64 values).
    /// May return fewer bytes than asked (the driver bounds each call).
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.syscall("read", || rustix::io::read(&self.file, &mut *buf))
    }

    /// Fill `buf` completely through read(2), looping over short reads.
    pub fn fill_bytes(&self, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.read(&mut buf[done..])? {
                0 => {
                    return Err(Error::Io {
                        op: "read",
                        path: self.path.clone(),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "device returned end of file",
                        ),
                    })
                }
                n => done += n,
            }
        }
        Ok(())
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl rand_core::TryRng for Device {
    type Error = Error;

    fn try_next_u32(&mut self) -> Result<u32> {
        Device::next_u32(self)
    }

    fn try_next_u64(&mut self) -> Result<u64> {
        Device::next_u64(self)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<()> {
        Device::fill_bytes(self, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths() {
        assert_eq!(Device::index_path(0), Path::new("/dev/my_rng_driver"));
        assert_eq!(Device::index_path(1), Path::new("/dev/my_rng_driver1"));
        assert_eq!(Device::index_path(12), Path::new("/dev/my_rng_driver12"));
    }

    #[test]
    fn missing_node_gives_the_driver_hint() {
        let err = Device::open("/nonexistent/my_rng_driver").unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("is the my_rng driver loaded"));
    }

    #[test]
    fn non_my_rng_file_reports_enotty() {
        // /dev/null accepts open but no my_rng ioctl.
        let dev = Device::open("/dev/null").unwrap();
        let err = dev.next_u32().unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOTTY), "{err:?}");
        assert!(matches!(err, Error::NotSupported { .. }));
        // read() of /dev/null is EOF: fill_bytes must not loop forever.
        let mut buf = [0u8; 4];
        assert!(dev.fill_bytes(&mut buf).is_err());
        assert!(matches!(
            dev.seed_read(0, &mut []),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            dev.seed_read(0, &mut vec![0; 4097]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn unwrap_err_device_is_an_infallible_rng() {
        fn assert_rng<R: rand_core::Rng>() {}
        fn assert_try_rng<R: rand_core::TryRng<Error = Error>>() {}
        assert_rng::<rand_core::UnwrapErr<Device>>();
        assert_try_rng::<Device>();
    }

    #[test]
    fn info_decoding() {
        let info = Info::from_raw(RawInfo {
            id: 0x4d52_0200,
            features: 0x7,
            algos: 0xf,
            algo: 2,
        });
        assert_eq!(info.abi_version, Some((2, 0)));
        assert_eq!(info.feature_names(), ["rng64", "algo", "entropy"]);
        assert_eq!(info.algorithm(), Some(Algorithm::ChaCha20));
        assert_eq!(info.algorithms(), Algorithm::ALL);
        assert!(info.has_feature(regs::FEAT_ENTROPY) && !info.has_feature(regs::FEAT_DMA));
        let v1 = Info::from_raw(RawInfo {
            id: 0,
            features: 0,
            algos: 1,
            algo: 0,
        });
        assert_eq!(v1.abi_version, Some((1, 0)));
        assert_eq!(v1.algorithms(), [Algorithm::Glibc]);
        let v21 = Info::from_raw(RawInfo {
            id: 0x4d52_0201,
            features: 0x1f,
            algos: 0xf,
            algo: 3,
        });
        assert_eq!(v21.abi_version, Some((2, 1)));
        assert_eq!(
            v21.feature_names(),
            ["rng64", "algo", "entropy", "dma", "irq"]
        );
        assert!(v21.has_feature(regs::FEAT_DMA));
        let odd = Info::from_raw(RawInfo {
            id: 0x1234,
            features: 0x60,
            algos: 0,
            algo: 9,
        });
        assert_eq!(odd.abi_version, None);
        assert_eq!(odd.feature_names(), ["bit5", "bit6"]);
        assert_eq!(odd.algorithm(), None);
    }
}
