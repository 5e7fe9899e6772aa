//! Guest user space: static Rust binaries, the seed's C app, and the initramfs that carries them.

use crate::util::{cache_dir, out_dir, repo_root, run, step};
use crate::{apt, manifest};
use anyhow::{bail, Context, Result};
use my_rng_protocol::shell as protocol_sh;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";
const BUSYBOX: &str = "/bin/busybox";

pub struct Binaries {
    pub my_rng: PathBuf,
    pub e2e: PathBuf,
    pub stress: PathBuf,
    pub my_app: PathBuf,
}

/// Builds the guest programs as static executables (the initramfs has no libc).
pub fn build() -> Result<Binaries> {
    step("Building static guest binaries (my-rng, my-rng-e2e, my-rng-stress, the seed's my-app)");
    run(Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(["build", "--quiet", "--release", "--target", TARGET])
        .args(["-p", "my-rng", "-p", "my-rng-e2e"]))?;
    let rel = repo_root().join("target").join(TARGET).join("release");
    let dir = out_dir().join("guest");
    fs::create_dir_all(&dir)?;
    let my_app = dir.join("my-app");
    // The seed's app, unchanged, compiled against the seed's ioctl numbers.
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&my_app)
        .arg(repo_root().join("guest/c/my-app.c")))?;
    let b = Binaries {
        my_rng: rel.join("my-rng"),
        e2e: rel.join("my-rng-e2e"),
        stress: rel.join("my-rng-stress"),
        my_app,
    };
    manifest::update("guest", |m| {
        m["my_rng"] = b.my_rng.display().to_string().into();
        m["e2e"] = b.e2e.display().to_string().into();
        m["stress"] = b.stress.display().to_string().into();
        m["my_app"] = b.my_app.display().to_string().into();
    })?;
    Ok(b)
}

/// The initramfs under construction: a newc cpio archive in memory (written by the `cpio`
/// crate), which creates each directory once and numbers the inodes.
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, entry: cpio::NewcBuilder, data: &[u8]) -> Result<()> {
        self.ino += 1;
        let size = u32::try_from(data.len()).context("initramfs member over 4 GiB")?;
        let mut w = entry.ino(self.ino).write(&mut self.buf, size);
        w.write_all(data)?;
        w.finish()?;
        Ok(())
    }

    pub fn dir(&mut self, name: &str) -> Result<()> {
        if self.dirs.insert(name.to_string()) {
            self.entry(cpio::NewcBuilder::new(name).mode(0o040755), &[])?;
        }
        Ok(())
    }

    /// Creates the missing parent directories of `path`.
    pub fn parents(&mut self, path: &str) -> Result<()> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            self.dir(&path[..at + i])?;
            at += i + 1;
        }
        Ok(())
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.entry(cpio::NewcBuilder::new(name).mode(0o100000 | mode), data)
    }

    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) -> Result<()> {
        let e = cpio::NewcBuilder::new(name)
            .mode(0o020600)
            .rdev_major(major)
            .rdev_minor(minor);
        self.entry(e, &[])
    }

    /// The archive with its trailer, padded to whole 512-byte blocks as cpio(1) writes it.
    pub fn finish(self) -> Result<Vec<u8>> {
        let mut buf = cpio::newc::trailer(self.buf)?;
        buf.resize(buf.len().next_multiple_of(512), 0);
        Ok(buf)
    }
}

/// The names /init sources, as committed; refused if the protocol crate has changed since
/// `cargo xtask vectors` wrote them, so that the guest and the host use the same names.
fn protocol_sh() -> Result<String> {
    let path = repo_root().join(protocol_sh::PATH);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if text != protocol_sh::render() {
        bail!("{} is stale: run `cargo xtask vectors`", path.display());
    }
    Ok(text)
}

fn read_exec(p: &Path) -> Result<Vec<u8>> {
    let data = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    if data.get(..4) != Some(b"\x7fELF".as_slice()) && data.get(..2) != Some(b"#!".as_slice()) {
        bail!("{} is neither an ELF executable nor a script", p.display());
    }
    Ok(data)
}

/// Debian's rngtest (FIPS 140-2 tests, package rng-tools5), unpacked into the cache rather than
/// installed: the package also carries the rngd service.
fn rngtest() -> Result<PathBuf> {
    let dir = cache_dir().join("tools/rng-tools5");
    let bin = dir.join("usr/bin/rngtest");
    if !bin.exists() {
        let version = apt::bookworm_newest("rng-tools5")?.version;
        let deb = apt::download("rng-tools5", &version, &cache_dir().join("dl/tools"))?;
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir))?;
    }
    Ok(bin)
}

/// The shared libraries (and the ELF interpreter) a dynamic host program needs, as `ldd`
/// lists them: the guest has no libc of its own.
fn shared_libs(program: &Path) -> Result<Vec<PathBuf>> {
    let out = crate::util::output(Command::new("ldd").arg(program))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split_once("=>").map_or(l, |(_, p)| p).trim();
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// Debian's dieharder as the host has it installed (package dieharder, `cargo xtask stats`
/// installs it): packed with its libraries into the stats boot's initramfs only, so that the
/// other boots do not carry its 3 MB of libraries (GSL).
pub const DIEHARDER: &str = "/usr/bin/dieharder";

/// Packs busybox, /init, the guest binaries, the module and the user's extra programs.
/// The initramfs, written to target/my-rng/`name` (each kernel variant's has its modules).
pub fn initramfs_named(
    name: &str,
    b: &Binaries,
    module: Option<&Path>,
    extra: &[PathBuf],
) -> Result<PathBuf> {
    pack(name, b, module, extra, &[])
}

/// The initramfs of the stats boot (`cargo xtask stats`): the usual one plus dieharder and its
/// shared libraries, in target/my-rng/initramfs-stats.cpio.
pub fn initramfs_with_dieharder(b: &Binaries, module: Option<&Path>) -> Result<PathBuf> {
    let dieharder = Path::new(DIEHARDER);
    if !dieharder.exists() {
        bail!("{DIEHARDER} is missing (package dieharder: `cargo xtask setup`)");
    }
    pack("initramfs-stats.cpio", b, module, &[], &[dieharder])
}

/// The initramfs's folders, console and /init.
fn skeleton(c: &mut Cpio) -> Result<()> {
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "root",
        "usr",
        "usr/bin",
        "usr/bin/user",
        "lib",
        "lib/modules",
    ] {
        c.dir(d)?;
    }
    // The kernel opens /dev/console before devtmpfs is mounted.
    c.char_dev("dev/console", 5, 1)?;
    c.file(
        "init",
        0o755,
        &fs::read(repo_root().join("guest/initramfs/init"))?,
    )?;
    c.file(protocol_sh::GUEST_PATH, 0o644, protocol_sh()?.as_bytes())?;
    Ok(())
}

/// The static guest programs, and the modules (the Rust driver's beside the C one's).
fn programs(c: &mut Cpio, b: &Binaries, module: Option<&Path>) -> Result<()> {
    c.file("bin/busybox", 0o755, &read_exec(Path::new(BUSYBOX))?)?;
    c.file("bin/my-rng", 0o755, &read_exec(&b.my_rng)?)?;
    c.file("bin/my-rng-e2e", 0o755, &read_exec(&b.e2e)?)?;
    c.file("bin/my-rng-stress", 0o755, &read_exec(&b.stress)?)?;
    c.file("bin/my-app", 0o755, &read_exec(&b.my_app)?)?;
    if let Some(m) = module {
        c.file("lib/modules/my_rng.ko", 0o644, &fs::read(m)?)?;
        if let Some(r) = crate::kernel::rust_driver::module_beside(m) {
            c.file("lib/modules/my_rng_rust.ko", 0o644, &fs::read(r)?)?;
        }
    }
    Ok(())
}

/// rngtest and the `dynamic` programs, with their shared libraries.
fn dynamic_programs(c: &mut Cpio, dynamic: &[&Path]) -> Result<()> {
    let rngtest = rngtest()?;
    // Each library once, though several programs need it (libc).
    let mut libs = std::collections::BTreeSet::new();
    for prog in std::iter::once(rngtest.as_path()).chain(dynamic.iter().copied()) {
        let file = prog.file_name().context("program without a file name")?;
        c.file(
            &format!("bin/{}", file.to_string_lossy()),
            0o755,
            &read_exec(prog)?,
        )?;
        libs.extend(shared_libs(prog)?);
    }
    for lib in libs {
        let name = lib.to_string_lossy().trim_start_matches('/').to_string();
        c.parents(&name)?;
        // ldd names symlinks (libc.so.6): store the file they point to under that name.
        c.file(&name, 0o755, &fs::read(&lib)?)?;
    }
    Ok(())
}

/// Writes target/my-rng/`name`: busybox, /init, the guest binaries, the module, rngtest and
/// the `dynamic` host programs (in /bin) with their shared libraries, the user's `extra`
/// programs.
fn pack(
    name: &str,
    b: &Binaries,
    module: Option<&Path>,
    extra: &[PathBuf],
    dynamic: &[&Path],
) -> Result<PathBuf> {
    let mut c = Cpio::default();
    skeleton(&mut c)?;
    programs(&mut c, b, module)?;
    dynamic_programs(&mut c, dynamic)?;
    for e in extra {
        let name = e
            .file_name()
            .context("extra program without a file name")?
            .to_string_lossy();
        c.file(&format!("usr/bin/user/{name}"), 0o755, &read_exec(e)?)?;
    }
    let path = out_dir().join(name);
    fs::File::create(&path)?.write_all(&c.finish()?)?;
    let key = name.trim_end_matches(".cpio").replace('-', "_");
    manifest::update("guest", |m| {
        m[key.as_str()] = path.display().to_string().into();
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Name, mode, (rdev major, minor) and data of one entry.
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// Every entry before the trailer, read back with the crate's reader.
    fn entries(archive: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut rest = archive;
        loop {
            let mut r = cpio::NewcReader::new(rest).unwrap();
            let e = r.entry().clone();
            if e.is_trailer() {
                break;
            }
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push((
                e.name().to_string(),
                e.mode(),
                (e.rdev_major(), e.rdev_minor()),
                data,
            ));
            rest = r.finish().unwrap();
        }
        out
    }

    #[test]
    fn cpio_layout() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"abc").unwrap();
        let out = c.finish().unwrap();
        // What the kernel's initramfs unpacker reads: the newc magic, the mode as the second
        // field (regular file 0755), the name right after the 110-byte header, the data
        // 4-byte aligned after it.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[14..22], b"000081ed");
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..119], b"abc");
        assert_eq!(out.len() % 512, 0);
        assert!(String::from_utf8_lossy(&out).contains("TRAILER!!!"));
    }

    #[test]
    fn cpio_entries_read_back() {
        let mut c = Cpio::default();
        c.dir("dev").unwrap();
        c.char_dev("dev/console", 5, 1).unwrap();
        c.file("bin/x", 0o755, b"12345").unwrap();
        c.file("lib/m.ko", 0o644, b"").unwrap();
        let out = c.finish().unwrap();
        let e = entries(&out);
        let want =
            |n: &str, m: u32, rdev: (u32, u32), d: &[u8]| (n.to_string(), m, rdev, d.to_vec());
        assert_eq!(
            e,
            vec![
                want("dev", 0o040755, (0, 0), b""),
                want("dev/console", 0o020600, (5, 1), b""),
                want("bin/x", 0o100755, (0, 0), b"12345"),
                want("lib/m.ko", 0o100644, (0, 0), b""),
            ]
        );
    }

    #[test]
    fn cpio_inodes_unique() {
        let mut c = Cpio::default();
        c.file("a", 0o644, b"1").unwrap();
        c.file("b", 0o644, b"2").unwrap();
        let out = c.finish().unwrap();
        let first = cpio::NewcReader::new(&out[..]).unwrap();
        let ino_a = first.entry().ino();
        let second = cpio::NewcReader::new(first.finish().unwrap()).unwrap();
        // The kernel links entries with equal inode numbers and nlink > 1 as hard links: each
        // entry gets its own number.
        assert_ne!(ino_a, second.entry().ino());
    }

    #[test]
    fn cpio_parents_once() {
        let mut c = Cpio::default();
        c.dir("lib").unwrap();
        c.parents("lib/x86_64-linux-gnu/libc.so.6").unwrap();
        c.parents("lib/x86_64-linux-gnu/libm.so.6").unwrap();
        let names: Vec<String> = entries(&c.finish().unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["lib", "lib/x86_64-linux-gnu"]);
    }
}
