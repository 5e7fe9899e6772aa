//! The guest kernel: Debian's linux-source (Rust enabled), the driver built in, the same driver
//! as an out-of-tree module, compile checks on Debian's older kernel headers, checkpatch.

// The Rust driver's part of the kernel build (component/rust_driver.rs).
pub mod rust_driver;

use crate::cli::Variant;
use crate::integrate::{files_below, Component};
use crate::util::{
    cache_dir, jobs, key_of, note, read, repo_root, run, run_logged, run_logged_progress, step,
    write_if_changed, Progress,
};
use crate::{apt, manifest};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel series the guest runs (one constant: bump it when Debian moves on).
pub const SERIES: &str = "7.3";
pub const SOURCE_VERSION: &str = "7.3.4-1~bpo13+1";
/// Debian's rust-src, the kernel's RUST_LIB_SRC: the kernel compiles `core` and `alloc` from
/// it with the host's rustc, which accepts only its own version's library source.
pub const RUST_SRC_VERSION: &str = "1.95.0+dfsg1-2~bpo13+1";
/// The rustc the kernel build needs: exactly the version of RUST_SRC_VERSION. Stated and
/// checked (check_rustc) rather than pinned in a rust-toolchain.toml, which would make rustup
/// try to download that toolchain on machines that have only `stable`, and would pin the whole
/// workspace, not just the kernel build.
pub const RUSTC_VERSION: &str = "1.95.0";
pub const BINDGEN_VERSION: &str = "0.72.1";
pub const LLVM: &str = "LLVM=-19";
/// Bookworm's kernel sources the patch must also apply to, besides the 7.3 tree: 6.1, below
/// the 6.6.4 target, and 6.12, the reachable tree closest above it (only the parts the patch
/// touches are extracted, see [`partial_tree`]).
pub const CHECK_SOURCES: &[&str] = &["linux-source-6.1", "linux-source-6.12"];

impl Variant {
    /// Suffix of its output folders and logs ("" for the guest kernel).
    fn suffix(self) -> &'static str {
        match self {
            Variant::Guest => "",
            Variant::Debug => "-debug",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Guest => "guest",
            Variant::Debug => "debug",
        }
    }

    /// kbuild action lines ("  CC ...") of a build from scratch, for the progress display of
    /// a first build; later builds of the same folder use the count they recorded.
    fn actions_estimate(self) -> u64 {
        match self {
            Variant::Guest => GUEST_ACTIONS,
            Variant::Debug => DEBUG_ACTIONS,
        }
    }
}

/// kbuild action lines of a first build of the guest kernel: counted in logs/kernel-build.log
/// of a CI run from an empty cache (2026-12-03, linux-source 7.3.4, this repo's config).
const GUEST_ACTIONS: u64 = 1467;
/// The same for the debug kernel, in logs/kernel-build-debug.log of that run.
const DEBUG_ACTIONS: u64 = 1806;

pub struct Tree {
    pub variant: Variant,
    /// The source tree: pristine + the driver.
    pub work: PathBuf,
    /// `make O=` output.
    pub build: PathBuf,
    /// Where linux/c is built as the out-of-tree module.
    pub module_dir: PathBuf,
}

impl Tree {
    /// The tree for the guest kernel series, in the cache (built or not).
    fn new(variant: Variant) -> Tree {
        let root = cache_dir().join(format!("linux-{SERIES}"));
        let sfx = variant.suffix();
        Tree {
            variant,
            work: root.join("src"),
            build: root.join(format!("build{sfx}")),
            module_dir: root.join(format!("module{sfx}")),
        }
    }

    /// A folder beside the module folder, of this variant: `name` + the variant's suffix.
    pub fn sibling(&self, name: &str) -> PathBuf {
        self.module_dir
            .with_file_name(format!("{name}{}", self.variant.suffix()))
    }

    /// A log file of this variant: logs/<name>[-debug].log.
    pub fn log(&self, name: &str) -> PathBuf {
        cache_dir().join(format!("logs/{name}{}.log", self.variant.suffix()))
    }

    /// The guest kernel image (driver built in).
    pub fn bzimage(&self) -> PathBuf {
        self.build.join("arch/x86/boot/bzImage")
    }

    /// The driver as the out-of-tree module.
    pub fn module(&self) -> PathBuf {
        self.module_dir.join("my_rng.ko")
    }
}

/// The linux/ component: integration.txt edits plus the driver, its uapi header and its
/// documentation under linux/c.
pub fn component() -> Result<Component> {
    let dir = repo_root().join("linux");
    let c = dir.join("c");
    let mut new_files = Vec::new();
    for sub in ["drivers", "include", "Documentation"] {
        if c.join(sub).exists() {
            new_files.extend(files_below(&c, sub)?);
        }
    }
    Ok(Component { dir, new_files })
}

fn extract_deb_tarball(deb: &Path, tarball: &str, dest: &Path, members: &[&str]) -> Result<()> {
    let parent = dest.parent().context("extraction target has no parent")?;
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        "{}.deb-x",
        dest.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp))?;
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(parent)
        .arg("-xf")
        .arg(tmp.join(tarball))
        .arg("--wildcards")
        .args(members);
    run(&mut tar)?;
    fs::remove_dir_all(&tmp)?;
    Ok(())
}

/// Pristine 7.3 source (downloaded and extracted once).
pub fn pristine() -> Result<PathBuf> {
    let dir = cache_dir()
        .join("src")
        .join(format!("linux-source-{SERIES}"));
    if dir.join(".extracted").exists() {
        return Ok(dir);
    }
    let deb = apt::download(
        &format!("linux-source-{SERIES}"),
        SOURCE_VERSION,
        &cache_dir().join("dl/linux"),
    )?;
    step(&format!("Extracting linux-source-{SERIES}"));
    let _ = fs::remove_dir_all(&dir);
    extract_deb_tarball(
        &deb,
        &format!("usr/src/linux-source-{SERIES}.tar.xz"),
        &dir,
        &[],
    )?;
    fs::write(dir.join(".extracted"), "")?;
    Ok(dir)
}

/// The parts of a bookworm `linux-source-*` package (`pkg`) that the deliverable's checks read:
/// the folders the patch touches, the top-level files it edits, the Makefile and checkpatch.
/// Extracted again whenever that list changes.
pub fn partial_tree(pkg: &str) -> Result<PathBuf> {
    let members = partial_members(pkg)?;
    let dir = cache_dir().join("src").join(pkg);
    let marker = dir.join(".extracted");
    if fs::read_to_string(&marker).ok().as_deref() == Some(members.join("\n").as_str()) {
        return Ok(dir);
    }
    let version = apt::bookworm_newest(pkg)?.version;
    let deb = apt::download(pkg, &version, &cache_dir().join("dl/linux"))?;
    step(&format!(
        "Extracting the parts of {pkg} {version} the patch touches"
    ));
    let _ = fs::remove_dir_all(&dir);
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    extract_deb_tarball(&deb, &format!("usr/src/{pkg}.tar.xz"), &dir, &refs)?;
    fs::write(&marker, members.join("\n"))?;
    Ok(dir)
}

/// The tar members of [`partial_tree`]: `pkg/<folder>/*` for every folder with a touched file,
/// `pkg/<file>` for a touched top-level file.
fn partial_members(pkg: &str) -> Result<Vec<String>> {
    let mut m: Vec<String> = ["Makefile", "scripts/checkpatch.pl", "scripts/spelling.txt"]
        .iter()
        .map(|f| format!("{pkg}/{f}"))
        .collect();
    m.push(format!("{pkg}/scripts/const_structs.checkpatch"));
    for c in component()?.changes(&pristine()?)? {
        m.push(match c.path.rsplit_once('/') {
            Some((folder, _)) => format!("{pkg}/{folder}/*"),
            None => format!("{pkg}/{}", c.path),
        });
    }
    m.sort();
    m.dedup();
    Ok(m)
}

/// Fails at once, before any download or build, if the host's rustc is not RUSTC_VERSION.
pub fn check_rustc() -> Result<()> {
    let rustc = crate::util::output(Command::new("rustc").arg("--version"))?;
    let version = rustc.split_whitespace().nth(1).unwrap_or_default();
    if version != RUSTC_VERSION {
        bail!(
            "the guest kernel's Rust needs rustc {RUSTC_VERSION} exactly (it compiles Debian's \
             rust-src {RUST_SRC_VERSION}); found `{}`: install it with \
             `rustup toolchain install {RUSTC_VERSION}` and select it (`rustup default \
             {RUSTC_VERSION}` or RUSTUP_TOOLCHAIN={RUSTC_VERSION})",
            rustc.trim()
        );
    }
    Ok(())
}

/// rust-src for RUST_LIB_SRC and bindgen: the Rust-for-Linux toolchain that builds 7.3 here.
fn rust_toolchain() -> Result<(PathBuf, PathBuf)> {
    let src = cache_dir().join(format!("rust-src-{RUSTC_VERSION}"));
    let lib = src.join(format!("usr/src/rustc-{RUSTC_VERSION}/library"));
    if !lib.join("core").exists() {
        let deb = apt::download("rust-src", RUST_SRC_VERSION, &cache_dir().join("dl/rust"))?;
        let _ = fs::remove_dir_all(&src);
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&src))?;
    }
    let tools = cache_dir().join("tools");
    let bindgen = tools.join("bin/bindgen");
    let ok = bindgen.exists()
        && crate::util::output(Command::new(&bindgen).arg("--version"))
            .map(|v| v.contains(BINDGEN_VERSION))
            .unwrap_or(false);
    if !ok {
        step(&format!(
            "Installing bindgen-cli {BINDGEN_VERSION} (about 2.5 minutes on 2 cores, once)"
        ));
        run_logged(
            Command::new("cargo")
                .args([
                    "install",
                    "--locked",
                    "bindgen-cli",
                    "--version",
                    BINDGEN_VERSION,
                    "--root",
                ])
                .arg(&tools),
            &cache_dir().join("logs/bindgen-install.log"),
        )?;
    }
    Ok((lib, tools.join("bin")))
}

/// The kernel's make command for `t` (O=, LLVM=, the Rust toolchain), for other modules' builds.
pub(crate) fn make_for(t: &Tree) -> Result<Command> {
    let (lib, bin) = rust_toolchain()?;
    Ok(make(t, &lib, &bin))
}

pub(crate) fn make(t: &Tree, lib: &Path, bin: &Path) -> Command {
    let mut c = Command::new("make");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.current_dir(&t.work)
        .env("PATH", path)
        .env("RUST_LIB_SRC", lib)
        .arg(format!("O={}", t.build.display()))
        .arg(LLVM)
        .arg(format!("-j{}", jobs()));
    c
}

/// The config fragments of `variant`: linux/config/*.config, then for the debug kernel
/// linux/config/debug/*.config.
fn fragments(variant: Variant) -> Result<Vec<PathBuf>> {
    let list = |dir: PathBuf| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "config"))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut v = list(repo_root().join("linux/config"))?;
    if variant == Variant::Debug {
        v.extend(list(repo_root().join("linux/config/debug"))?);
    }
    Ok(v)
}

/// Builds the guest kernel: bzImage (driver built in) and the out-of-tree my_rng.ko; records
/// them in the manifest.
pub fn build() -> Result<Tree> {
    build_variant(Variant::Guest)
}

/// The source tree both variants build from (each into its own output folder): a hard-linked
/// copy of `pristine` with the drivers applied; nothing is written when it is current.
fn work_tree(pristine: &Path, t: &Tree) -> Result<()> {
    if !t.work.join(".copied").exists() {
        step("Creating the kernel work tree (hard-linked copy)");
        let _ = fs::remove_dir_all(&t.work);
        fs::create_dir_all(t.work.parent().context("work tree at /")?)?;
        run(Command::new("cp").arg("-al").arg(pristine).arg(&t.work))?;
        fs::write(t.work.join(".copied"), "")?;
    }
    let n = rust_driver::apply(pristine, &t.work)?;
    if n > 0 {
        note(&format!("{n} driver file(s) updated in the kernel tree"));
    }
    Ok(())
}

/// Builds `variant`'s bzImage and out-of-tree modules (the manifest records the guest kernel
/// under "kernel", the debug one under "kernel-debug").
pub fn build_variant(variant: Variant) -> Result<Tree> {
    check_rustc()?;
    let pristine = pristine()?;
    let (lib, bin) = rust_toolchain()?;
    let t = Tree::new(variant);
    work_tree(&pristine, &t)?;
    configure(&t, &lib, &bin)?;
    // Measured from an empty cache on 2 cores (2026-12-03): make took 720 s and 806 s.
    let first = match variant {
        Variant::Guest => "first time about 12 minutes on 2 cores",
        Variant::Debug => "first time about 14 minutes on 2 cores",
    };
    step(&format!(
        "Building the Linux {SERIES} {} kernel ({first}, then incremental)",
        variant.name()
    ));
    // No vmlinux yet: every object is built, so the full count is expected.
    let scratch = !t.build.join("vmlinux").exists();
    run_logged_progress(
        // `modules` also writes Module.symvers, which the out-of-tree module build needs.
        make(&t, &lib, &bin).args(["bzImage", "modules"]),
        &t.log("kernel-build"),
        Progress::kbuild(
            &format!("kernel (Linux {SERIES}, {})", variant.name()),
            &t.build.join(".my-rng-objects"),
            scratch,
            variant.actions_estimate(),
        ),
    )?;
    build_module(&t, &lib, &bin)?;
    rust_driver::build_module(&t, make(&t, &lib, &bin))?;
    let release = read(&t.build.join("include/config/kernel.release"))?
        .trim()
        .to_string();
    let key = match variant {
        Variant::Guest => "kernel",
        Variant::Debug => "kernel-debug",
    };
    manifest::update(key, |m| {
        m["series"] = SERIES.into();
        m["release"] = release.into();
        m["source_package"] = format!("linux-source-{SERIES} {SOURCE_VERSION}").into();
        m["bzimage"] = t.bzimage().display().to_string().into();
        m["build_dir"] = t.build.display().to_string().into();
        m["module"] = t.module().display().to_string().into();
        m["rust_module"] = rust_driver::module(&t).display().to_string().into();
    })?;
    Ok(t)
}

fn configure(t: &Tree, lib: &Path, bin: &Path) -> Result<()> {
    let frags = fragments(t.variant)?;
    let mut parts: Vec<Vec<u8>> = vec![SOURCE_VERSION.as_bytes().to_vec()];
    for f in &frags {
        parts.push(fs::read(f)?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let key = key_of(&refs);
    let stamp = t.build.join(".my-rng-config");
    if t.build.join(".config").exists() && fs::read_to_string(&stamp).ok() == Some(key.clone()) {
        return Ok(());
    }
    step(&format!(
        "Configuring the {} kernel: tinyconfig + {}",
        t.variant.name(),
        match t.variant {
            Variant::Guest => "linux/config/*.config",
            Variant::Debug => "linux/config/*.config + linux/config/debug/*.config",
        }
    ));
    fs::create_dir_all(&t.build)?;
    let log = t.log("kernel-config");
    run_logged(make(t, lib, bin).arg("tinyconfig"), &log)?;
    run_logged(
        Command::new(t.work.join("scripts/kconfig/merge_config.sh"))
            .current_dir(&t.work)
            .arg("-m")
            .arg("-O")
            .arg(&t.build)
            .arg(t.build.join(".config"))
            .args(&frags),
        &log,
    )?;
    run_logged(make(t, lib, bin).arg("olddefconfig"), &log)?;
    // merge_config only warns when Kconfig drops a request (e.g. Rust unavailable): fail instead.
    let config = read(&t.build.join(".config"))?;
    for f in &frags {
        for line in read(f)?.lines() {
            let line = line.trim();
            if line.starts_with("CONFIG_") && !config.lines().any(|l| l == line) {
                let hint = if line.starts_with("CONFIG_RUST=") {
                    " (run `make LLVM=-19 rustavailable` in the tree for the reason)"
                } else {
                    ""
                };
                bail!("kernel config lost `{line}` from {}{hint}", f.display());
            }
        }
    }
    fs::write(stamp, key)?;
    Ok(())
}

/// Builds linux/c as the out-of-tree module my_rng.ko against the guest kernel.
fn build_module(t: &Tree, lib: &Path, bin: &Path) -> Result<()> {
    sync_dir(&repo_root().join("linux/c"), &t.module_dir)?;
    step("Building the out-of-tree module my_rng.ko");
    run_logged(
        make(t, lib, bin)
            .arg(format!("M={}", t.module_dir.display()))
            .arg("modules"),
        &t.log("module-build"),
    )
}

/// Copies a source folder into a build folder, rewriting only changed files.
pub(crate) fn sync_dir(src: &Path, dst: &Path) -> Result<()> {
    for (rel, abs) in files_below(src, ".")? {
        let rel = rel.trim_start_matches("./");
        write_if_changed(&dst.join(rel), &fs::read(abs)?)?;
    }
    Ok(())
}

/// Debian kernel series whose headers the driver must also compile against: bookworm's own
/// kernel and the one bookworm-backports carries.
const HEADER_SERIES: &[&str] = &["6.1.", "6.12."];

/// Downloads and unpacks (once) the newest bookworm(-backports) headers of `series` into the
/// cache, without installing anything: the headers package of a backports kernel would pull
/// the kernel image onto the host. Returns the tree to run `make -C` in.
fn header_tree(series: &str) -> Result<PathBuf> {
    let base = cache_dir().join("headers");
    let done = |n: &str| n.starts_with(&format!("linux-headers-{series}")) && n.ends_with("-amd64");
    if let Ok(rd) = fs::read_dir(&base) {
        let mut found: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| done(&p.file_name().unwrap().to_string_lossy()))
            .filter(|p| p.join(".extracted").exists())
            .collect();
        found.sort();
        if let Some(root) = found.pop() {
            let name = root.file_name().unwrap().to_string_lossy().into_owned();
            return Ok(root.join("usr/src").join(name));
        }
    }
    let meta = apt::bookworm_records("linux-headers-amd64")?
        .into_iter()
        .find(|r| r.version.starts_with(series))
        .with_context(|| format!("bookworm has no linux-headers-amd64 {series}*"))?;
    let (name, ver) = apt::depends_named(&meta.depends, &["linux-headers-"], &meta.version)
        .into_iter()
        .next()
        .context("linux-headers-amd64 names no headers package")?;
    let rec = apt::bookworm_newest(&format!("{name}={ver}"))?;
    let mut pkgs = vec![(name.clone(), ver)];
    pkgs.extend(apt::depends_named(
        &rec.depends,
        &["linux-headers-", "linux-kbuild-"],
        &rec.version,
    ));
    let root = base.join(&name);
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    for (p, v) in &pkgs {
        let deb = apt::download(p, v, &cache_dir().join("dl/headers"))?;
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
    }
    // The arch Makefile includes the common one by its absolute /usr/src path.
    let tree = root.join("usr/src").join(&name);
    let mk = tree.join("Makefile");
    let text = read(&mk)?.replace("/usr/src/", &format!("{}/", root.join("usr/src").display()));
    fs::write(&mk, text)?;
    fs::write(root.join(".extracted"), "")?;
    Ok(tree)
}

/// Compiles the driver as a module against each header tree with warnings as errors.
pub fn compat_check() -> Result<Vec<String>> {
    let mut checked = Vec::new();
    for series in HEADER_SERIES {
        let h = header_tree(series)?;
        let name = h.file_name().unwrap().to_string_lossy().into_owned();
        let dir = cache_dir().join("compat").join(&name);
        sync_dir(&repo_root().join("linux/c"), &dir)?;
        step(&format!("Compiling the driver against {name}"));
        run_logged(
            Command::new("make")
                .arg("-C")
                .arg(&h)
                .arg(format!("M={}", dir.display()))
                .arg("KCFLAGS=-Werror")
                .args(["-B", "modules"]),
            &cache_dir().join(format!("logs/compat-{name}.log")),
        )?;
        checked.push(name);
    }
    Ok(checked)
}

/// What `tree`'s checkpatch.pl --strict finds in `files` (source files, not patches): its
/// ERROR, WARNING and CHECK lines.
pub fn checkpatch_issues(
    tree: &Path,
    files: &[impl AsRef<std::ffi::OsStr>],
) -> Result<Vec<String>> {
    let out = Command::new("perl")
        .arg(tree.join("scripts/checkpatch.pl"))
        .args(["--strict", "--no-tree", "--terse", "--show-types", "-f"])
        .args(files)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARNING") || l.contains("CHECK"))
        .map(str::to_owned)
        .collect())
}

/// The kernel's checkpatch.pl --strict on the driver and uapi header.
pub fn checkpatch() -> Result<()> {
    let tree = pristine()?;
    let files: Vec<PathBuf> = component()?.new_files.into_iter().map(|(_, p)| p).collect();
    step("Kernel checkpatch.pl --strict on the driver");
    let issues = checkpatch_issues(&tree, &files)?;
    for l in &issues {
        note(l);
    }
    if !issues.is_empty() {
        bail!("checkpatch --strict: {} issue(s)", issues.len());
    }
    Ok(())
}
