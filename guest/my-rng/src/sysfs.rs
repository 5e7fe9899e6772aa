//! Finding a device node's PCI function in sysfs, and parsing the sysfs files involved.
//!
//! Every function takes the sysfs mount point through [`Sysfs`] so that tests can run against
//! a fake tree in a temporary directory.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One line of a PCI `resource` file: `start end flags`, all hexadecimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
    /// `IORESOURCE_*` flags.
    pub flags: u64,
}

/// `IORESOURCE_IO` from linux/ioport.h.
const IORESOURCE_IO: u64 = 0x100;
/// `IORESOURCE_MEM` from linux/ioport.h.
const IORESOURCE_MEM: u64 = 0x200;
/// `IORESOURCE_PREFETCH` from linux/ioport.h.
const IORESOURCE_PREFETCH: u64 = 0x2000;
/// `IORESOURCE_MEM_64` from linux/ioport.h.
const IORESOURCE_MEM_64: u64 = 0x0010_0000;

impl Resource {
    /// Size in bytes; 0 for an unused BAR (the kernel prints all zeroes).
    pub fn size(&self) -> u64 {
        if self.start == 0 && self.end == 0 {
            0
        } else {
            self.end.wrapping_sub(self.start).wrapping_add(1)
        }
    }

    /// Short description of the flags, e.g. "mem 32-bit non-prefetchable".
    pub fn kind(&self) -> String {
        if self.flags & IORESOURCE_MEM != 0 {
            format!(
                "mem {} {}",
                if self.flags & IORESOURCE_MEM_64 != 0 {
                    "64-bit"
                } else {
                    "32-bit"
                },
                if self.flags & IORESOURCE_PREFETCH != 0 {
                    "prefetchable"
                } else {
                    "non-prefetchable"
                }
            )
        } else if self.flags & IORESOURCE_IO != 0 {
            "io".to_string()
        } else {
            "unused".to_string()
        }
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// Parse a PCI `resource` file: one `start end flags` line per BAR (then ROM and bridge
/// windows). Returns the entries in order, so index 0 is BAR0.
pub fn parse_resource(text: &str) -> io::Result<Vec<Resource>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [s, e, fl] => match (parse_hex(s), parse_hex(e), parse_hex(fl)) {
                    (Some(start), Some(end), Some(flags)) => Ok(Resource { start, end, flags }),
                    _ => Err(bad_data(format!(
                        "resource line {}: not hex: {line:?}",
                        i + 1
                    ))),
                },
                _ => Err(bad_data(format!(
                    "resource line {}: expected 3 fields: {line:?}",
                    i + 1
                ))),
            }
        })
        .collect()
}

/// Value of `key` in a `uevent` file (`KEY=value` lines), e.g. `PCI_SLOT_NAME`.
pub fn uevent_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| with_path(path, e))
}

/// Final component of a symlink's target (`driver` -> `.../drivers/my_rng` gives "my_rng").
fn link_basename(path: &Path) -> io::Result<String> {
    let target = fs::read_link(path).map_err(|e| with_path(path, e))?;
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| bad_data(format!("{}: odd link target", path.display())))
}

/// The PCI function behind a misc device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    /// `/sys/class/misc/<name>` (or the `/sys/dev/char/M:m` equivalent).
    pub misc_dir: PathBuf,
    /// `<misc_dir>/device`: the PCI function's sysfs directory (a symlink).
    pub pci_dir: PathBuf,
    /// PCI address, e.g. `0000:00:04.0`.
    pub address: String,
    /// Bound driver's name (basename of the `driver` link), if bound.
    pub driver: Option<String>,
    /// BAR0, if the `resource` file could be read.
    pub bar0: Option<Resource>,
}

/// A sysfs mount point (normally `/sys`).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::at("/sys")
    }
}

impl Sysfs {
    /// Sysfs mounted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `/sys/class/misc/<name>`.
    pub fn misc_dir(&self, name: &str) -> PathBuf {
        self.root.join("class/misc").join(name)
    }

    /// The class directory of the character device node at `node`: found through its
    /// major:minor (`/sys/dev/char/M:m`, which works whatever the node is called), falling
    /// back to `/sys/class/misc/<basename of node>`.
    pub fn misc_dir_for_node(&self, node: &Path) -> PathBuf {
        if let Ok(md) = fs::metadata(node) {
            if md.file_type().is_char_device() {
                let rdev = md.rdev();
                let dir = self.root.join(format!(
                    "dev/char/{}:{}",
                    libc::major(rdev),
                    libc::minor(rdev)
                ));
                if dir.exists() {
                    return dir;
                }
            }
        }
        let name = node
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.misc_dir(&name)
    }

    /// Describe the PCI function behind the misc class directory `misc_dir`.
    pub fn pci_device(&self, misc_dir: &Path) -> io::Result<PciDevice> {
        let pci_dir = misc_dir.join("device");
        // PCI_SLOT_NAME is authoritative; the link basename is the same thing when the
        // uevent file is unreadable.
        let address = match read(&pci_dir.join("uevent")) {
            Ok(text) => uevent_value(&text, "PCI_SLOT_NAME"),
            Err(_) => None,
        };
        let address = match address {
            Some(a) => a,
            None => link_basename(&pci_dir)?,
        };
        let driver = link_basename(&pci_dir.join("driver")).ok();
        let bar0 = read(&pci_dir.join("resource"))
            .and_then(|t| parse_resource(&t))
            .ok()
            .and_then(|r| r.first().copied());
        Ok(PciDevice {
            misc_dir: misc_dir.to_path_buf(),
            pci_dir,
            address,
            driver,
            bar0,
        })
    }

    /// Names of the misc devices whose PCI function has address `address`.
    pub fn misc_names_for_pci(&self, address: &str) -> io::Result<Vec<String>> {
        let dir = self.root.join("class/misc");
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| with_path(&dir, e))? {
            let entry = entry?;
            if link_basename(&entry.path().join("device")).ok().as_deref() == Some(address) {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// `/sys/bus/pci/drivers/<driver>/<file>` (file = "bind" or "unbind").
    pub fn pci_driver_file(&self, driver: &str, file: &str) -> PathBuf {
        self.root.join("bus/pci/drivers").join(driver).join(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake sysfs tree in a temporary directory (removed when dropped).
    struct FakeSys(tempfile::TempDir);

    impl FakeSys {
        fn new() -> Self {
            FakeSys(tempfile::tempdir().unwrap())
        }

        fn root(&self) -> &Path {
            self.0.path()
        }

        fn add_device(&self, misc: &str, addr: &str, resource: Option<&str>, uevent: bool) {
            let pci = self.root().join("devices/pci0000:00").join(addr);
            fs::create_dir_all(&pci).unwrap();
            if uevent {
                fs::write(
                    pci.join("uevent"),
                    format!("DRIVER=my_rng\nPCI_CLASS=FF00\nPCI_ID=1234:CAFE\nPCI_SLOT_NAME={addr}\nMODALIAS=pci:v00001234d0000CAFE\n"),
                )
                .unwrap();
            }
            if let Some(r) = resource {
                fs::write(pci.join("resource"), r).unwrap();
            }
            let drivers = self.root().join("bus/pci/drivers/my_rng");
            fs::create_dir_all(&drivers).unwrap();
            symlink("../../../../bus/pci/drivers/my_rng", pci.join("driver")).unwrap();
            let class = self.root().join("class/misc").join(misc);
            fs::create_dir_all(&class).unwrap();
            symlink(
                format!("../../../devices/pci0000:00/{addr}"),
                class.join("device"),
            )
            .unwrap();
        }
    }

    const RESOURCE: &str = "\
0x00000000febf1000 0x00000000febf1fff 0x0000000000040200
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
";

    #[test]
    fn resource_file_parses() {
        let r = parse_resource(RESOURCE).unwrap();
        assert_eq!(r.len(), 7);
        assert_eq!(
            r[0],
            Resource {
                start: 0xfebf_1000,
                end: 0xfebf_1fff,
                flags: 0x40200
            }
        );
        assert_eq!(r[0].size(), 4096);
        assert_eq!(r[0].kind(), "mem 32-bit non-prefetchable");
        assert_eq!(r[1].size(), 0);
        assert_eq!(r[1].kind(), "unused");
    }

    #[test]
    fn resource_file_rejects_garbage() {
        assert!(parse_resource("0x1 0x2\n").is_err());
        assert!(parse_resource("0x1 0x2 zz\n").is_err());
        assert!(parse_resource("1000 1fff 200\n").is_err());
        assert_eq!(parse_resource("").unwrap(), vec![]);
    }

    #[test]
    fn uevent_slot_name() {
        let text = "DRIVER=my_rng\nPCI_SLOT_NAME=0000:00:04.0\nMODALIAS=pci:x\n";
        assert_eq!(
            uevent_value(text, "PCI_SLOT_NAME").as_deref(),
            Some("0000:00:04.0")
        );
        assert_eq!(uevent_value(text, "DRIVER").as_deref(), Some("my_rng"));
        assert_eq!(uevent_value(text, "PCI_ID"), None);
        assert_eq!(uevent_value("", "PCI_SLOT_NAME"), None);
    }

    #[test]
    fn pci_device_from_fake_tree() {
        let fake = FakeSys::new();
        fake.add_device("my_rng_driver", "0000:00:04.0", Some(RESOURCE), true);
        fake.add_device("my_rng_driver1", "0000:00:05.0", None, false);
        let sys = Sysfs::at(fake.root());

        let d = sys.pci_device(&sys.misc_dir("my_rng_driver")).unwrap();
        assert_eq!(d.address, "0000:00:04.0");
        assert_eq!(d.driver.as_deref(), Some("my_rng"));
        assert_eq!(d.bar0.unwrap().start, 0xfebf_1000);
        assert_eq!(d.bar0.unwrap().size(), 4096);

        // No uevent: address from the link; no resource: BAR0 unknown.
        let d1 = sys.pci_device(&sys.misc_dir("my_rng_driver1")).unwrap();
        assert_eq!(d1.address, "0000:00:05.0");
        assert_eq!(d1.bar0, None);

        assert_eq!(
            sys.misc_names_for_pci("0000:00:05.0").unwrap(),
            ["my_rng_driver1"]
        );
        assert!(sys.misc_names_for_pci("0000:00:09.0").unwrap().is_empty());
        assert!(sys.pci_device(&sys.misc_dir("absent")).is_err());
        assert_eq!(
            sys.pci_driver_file("my_rng", "unbind"),
            fake.root().join("bus/pci/drivers/my_rng/unbind")
        );
    }

    #[test]
    fn node_lookup_falls_back_to_the_basename() {
        let sys = Sysfs::at("/nonexistent-sys");
        assert_eq!(
            sys.misc_dir_for_node(Path::new("/dev/my_rng_driver1")),
            Path::new("/nonexistent-sys/class/misc/my_rng_driver1")
        );
    }
}
