//! Error type of the library.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a my_rng device.
///
/// The variants separate the cases a user can act on differently: driver/device missing,
/// permissions, the device disappearing under an open file, and a rejected argument.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `open` failed with ENOENT: no such node.
    #[error(
        "device node {} not found: is the my_rng driver loaded and a my_rng PCI device present?",
        path.display()
    )]
    NotFound {
        /// The node that was opened.
        path: PathBuf,
    },

    /// `open` failed with EACCES/EPERM.
    #[error("permission denied opening {}: run as root or adjust the node's permissions", path.display())]
    PermissionDenied {
        /// The node that was opened.
        path: PathBuf,
    },

    /// ENODEV/ENXIO: the PCI device behind the node was removed or unbound from the driver
    /// (while the file was open, or before it was opened).
    #[error("{op} on {}: device removed (ENODEV): the my_rng PCI device was unbound or unplugged", path.display())]
    NoDevice {
        /// Operation that failed.
        op: &'static str,
        /// The node.
        path: PathBuf,
    },

    /// ENOTTY: the node does not understand the ioctl (not a my_rng node, or an ABI 1 driver).
    #[error("{op} on {}: ioctl not supported (ENOTTY): not a my_rng device, or the driver is too old", path.display())]
    NotSupported {
        /// Operation that failed.
        op: &'static str,
        /// The node.
        path: PathBuf,
    },

    /// SET_ALGO rejected the id with EINVAL (not in ALGOS, or an ABI 1 device).
    #[error("algorithm {id} is not supported by the device (EINVAL)")]
    UnsupportedAlgorithm {
        /// The rejected algorithm id.
        id: u32,
    },

    /// GET_ALGO/INFO reported an id this library does not know (a newer device).
    #[error("device reports unknown algorithm id {id}")]
    UnknownAlgorithm {
        /// The unknown id.
        id: u32,
    },

    /// Any other EINVAL, or an argument rejected before reaching the driver.
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument {
        /// Operation that failed.
        op: &'static str,
        /// Why.
        reason: String,
    },

    /// Any other I/O error.
    #[error("{op} on {}: {source}", path.display())]
    Io {
        /// Operation that failed.
        op: &'static str,
        /// The node.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Classify an error from `open(2)`.
    pub(crate) fn from_open(path: &Path, err: io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { path },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied { path },
            Some(libc::ENODEV) | Some(libc::ENXIO) => Error::NoDevice { op: "open", path },
            _ => Error::Io {
                op: "open",
                path,
                source: err,
            },
        }
    }

    /// Classify an error from an ioctl or read on an open device.
    pub(crate) fn from_op(op: &'static str, path: &Path, err: io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => Error::NoDevice { op, path },
            Some(libc::ENOTTY) => Error::NotSupported { op, path },
            Some(libc::EINVAL) => Error::InvalidArgument {
                op,
                reason: "rejected by the driver (EINVAL)".into(),
            },
            _ => Error::Io {
                op,
                path,
                source: err,
            },
        }
    }

    /// The errno behind this error, where there is one (tests and tools match on it).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::NotFound { .. } => Some(libc::ENOENT),
            Error::PermissionDenied { .. } => Some(libc::EACCES),
            Error::NoDevice { .. } => Some(libc::ENODEV),
            Error::NotSupported { .. } => Some(libc::ENOTTY),
            Error::UnsupportedAlgorithm { .. } | Error::InvalidArgument { .. } => {
                Some(libc::EINVAL)
            }
            Error::UnknownAlgorithm { .. } => None,
            Error::Io { source, .. } => source.raw_os_error(),
        }
    }

    /// True when the device or its driver is missing or gone (ENOENT/ENODEV).
    pub fn is_device_missing(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::NoDevice { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_are_classified() {
        let p = Path::new("/dev/my_rng_driver");
        let e = Error::from_open(p, io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(
            e.to_string(),
            "device node /dev/my_rng_driver not found: is the my_rng driver loaded and a my_rng PCI device present?"
        );
        assert!(e.is_device_missing());
        let e = Error::from_open(p, io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, Error::PermissionDenied { .. }));
        let e = Error::from_open(p, io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(e, Error::NoDevice { .. }));
        let e = Error::from_open(p, io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(e.errno(), Some(libc::EIO));
    }

    #[test]
    fn op_errors_are_classified() {
        let p = Path::new("/dev/my_rng_driver1");
        let e = Error::from_op("RAND", p, io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(e, Error::NoDevice { op: "RAND", .. }));
        assert_eq!(e.errno(), Some(libc::ENODEV));
        let e = Error::from_op("INFO", p, io::Error::from_raw_os_error(libc::ENOTTY));
        assert!(matches!(e, Error::NotSupported { .. }));
        let e = Error::from_op("SEED_READ", p, io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!(e.errno(), Some(libc::EINVAL));
        let e = Error::from_op("RAND", p, io::Error::from_raw_os_error(libc::EFAULT));
        assert_eq!(e.errno(), Some(libc::EFAULT));
    }
}
