//! Guest user space: static Rust binaries, the seed's C app, and the initramfs that carries them.

use crate::util::{cache_dir, out_dir, repo_root, run, step};
use crate::{apt, manifest};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";
const BUSYBOX: &str = "/bin/busybox";

pub struct Binaries {
    pub my_rng: PathBuf,
    pub e2e: PathBuf,
    pub my_app: PathBuf,
}

/// Builds the guest programs as static executables (the initramfs has no libc).
pub fn build() -> Result<Binaries> {
    step("Building static guest binaries (my-rng, my-rng-e2e, the seed's my-app)");
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
        my_app,
    };
    manifest::update("guest", |m| {
        m["my_rng"] = b.my_rng.display().to_string().into();
        m["e2e"] = b.e2e.display().to_string().into();
        m["my_app"] = b.my_app.display().to_string().into();
    })?;
    Ok(b)
}

/// A newc-format cpio archive written in memory (the kernel unpacks it as the initramfs).
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: std::collections::BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let name_z = format!("{name}\0");
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name_z.len(),
            0
        );
        self.buf.extend_from_slice(hdr.as_bytes());
        self.buf.extend_from_slice(name_z.as_bytes());
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_string()) {
            self.entry(name, 0o040755, &[], (0, 0));
        }
    }

    /// Creates the missing parent directories of `path`.
    pub fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            self.dir(&path[..at + i]);
            at += i + 1;
        }
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data, (0, 0));
    }

    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
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

/// Packs busybox, /init, the guest binaries, the module and the user's extra programs.
pub fn initramfs(b: &Binaries, module: Option<&Path>, extra: &[PathBuf]) -> Result<PathBuf> {
    let mut c = Cpio::default();
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
        c.dir(d);
    }
    // The kernel opens /dev/console before devtmpfs is mounted.
    c.char_dev("dev/console", 5, 1);
    c.file(
        "init",
        0o755,
        &fs::read(repo_root().join("guest/initramfs/init"))?,
    );
    c.file("bin/busybox", 0o755, &read_exec(Path::new(BUSYBOX))?);
    c.file("bin/my-rng", 0o755, &read_exec(&b.my_rng)?);
    c.file("bin/my-rng-e2e", 0o755, &read_exec(&b.e2e)?);
    c.file("bin/my-app", 0o755, &read_exec(&b.my_app)?);
    if let Some(m) = module {
        c.file("lib/modules/my_rng.ko", 0o644, &fs::read(m)?);
    }
    let rngtest = rngtest()?;
    c.file("bin/rngtest", 0o755, &read_exec(&rngtest)?);
    for lib in shared_libs(&rngtest)? {
        let name = lib.to_string_lossy().trim_start_matches('/').to_string();
        c.parents(&name);
        // ldd names symlinks (libc.so.6): store the file they point to under that name.
        c.file(&name, 0o755, &fs::read(&lib)?);
    }
    for e in extra {
        let name = e
            .file_name()
            .context("extra program without a file name")?
            .to_string_lossy();
        c.file(&format!("usr/bin/user/{name}"), 0o755, &read_exec(e)?);
    }
    let path = out_dir().join("initramfs.cpio");
    fs::File::create(&path)?.write_all(&c.finish())?;
    manifest::update("guest", |m| {
        m["initramfs"] = path.display().to_string().into();
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_layout() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"abc");
        let out = c.finish();
        assert_eq!(&out[..6], b"070701");
        // mode field (second field) of the first entry: regular file 0755.
        assert_eq!(&out[14..22], b"000081ed");
        // name "init\0" starts right after the 110-byte header; data is 4-byte aligned.
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..119], b"abc");
        assert_eq!(out.len() % 512, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn cpio_parents_once() {
        let mut c = Cpio::default();
        c.dir("lib");
        c.parents("lib/x86_64-linux-gnu/libc.so.6");
        c.parents("lib/x86_64-linux-gnu/libm.so.6");
        let text = String::from_utf8_lossy(&c.finish()).into_owned();
        assert_eq!(text.matches("lib\0").count(), 1);
        assert_eq!(text.matches("lib/x86_64-linux-gnu\0").count(), 1);
    }
}
