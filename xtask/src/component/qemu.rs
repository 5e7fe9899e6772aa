//! QEMU: fetch Debian's source, apply the device, configure a minimal x86_64 build, build, qtest.

use crate::cli::Flavour;
use crate::integrate::{files_below, Component};
use crate::util::{
    cache_dir, jobs, key_of, note, output, repo_root, run, run_logged, run_logged_progress, step,
    Progress,
};
use crate::{apt, manifest};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Time limit of each of the device's qtest binaries: both together take about 1.5 minutes on
/// 2 busy cores (the storm most of it).
const QTEST_LIMIT: Duration = Duration::from_secs(600);

/// The device's qtest binaries: the cases (vectors from tests/qtest/my-rng-vectors.h) and the
/// storm (its DMA commands and their verdicts from tests/qtest/my-rng-storm-cases.h).
const QTESTS: [&str; 2] = ["my-rng-test", "my-rng-storm-test"];

/// Debian source versions, newest first: the main build uses the first that downloads
/// (it must be >= 10.1 so the vfio-user client is in); the compile check uses the others.
pub const MAIN_VERSIONS: &[&str] = &["1:10.2.2+ds-1"];
pub const COMPAT_VERSIONS: &[&str] = &["1:10.0.13+ds-0+deb13u1"];

/// The device's page in QEMU's manual: spec/my-rng.rst itself, so the two cannot differ.
pub const SPEC_PAGE: &str = "docs/specs/my-rng.rst";

/// Where bookworm's packages put the firmware QEMU needs (the +ds source has no blobs).
pub const FIRMWARE_DIRS: &[&str] = &["/usr/share/seabios", "/usr/share/qemu"];

/// The configure flags every build of ours shares (this one and the fuzzer's, fuzz.rs): a
/// minimal QEMU from the +ds tree, no downloads, Debian's python.
const COMMON_CONFIGURE: &[&str] = &[
    "--disable-docs",
    "--disable-werror",
    "--without-default-features",
    "--enable-kvm",
    "--disable-download",
    "--disable-install-blobs",
    "--python=/usr/bin/python3",
];

/// Configure's arguments: `target` first, then [`COMMON_CONFIGURE`], then `extra`.
pub fn configure_args(target: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec![target];
    v.extend_from_slice(COMMON_CONFIGURE);
    v.extend_from_slice(extra);
    v
}

/// This build's configure arguments.
fn configure_flags() -> Vec<&'static str> {
    configure_args(
        "--target-list=x86_64-softmmu",
        &["--firmwarepath=/usr/share/qemu:/usr/share/seabios"],
    )
}

/// The fixes for QEMU, applied in name order to the work tree before the device files: small
/// changes to QEMU itself that the tests need on the QEMU we build (see qemu/fixes/README.md).
/// They are not part of the deliverable patch ([`component`] takes only hw/, include/,
/// tests/ and docs/).
pub fn fixes() -> Result<Vec<PathBuf>> {
    patches_in("qemu/fixes")
}

/// The `*.patch` files of the repository's folder `rel`, in name order.
fn patches_in(rel: &str) -> Result<Vec<PathBuf>> {
    let dir = repo_root().join(rel);
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    v.sort();
    Ok(v)
}

/// The cache directory's name for `version` and `flavour`. A fixed tree is keyed by the
/// fixes' contents, so stock and fixed trees (and trees of other fix sets) live side by side
/// in the shared cache instead of rebuilding each other; stock keeps the plain name.
fn tree_name(version: &str, flavour: Flavour, fixes: &[PathBuf]) -> Result<String> {
    if flavour == Flavour::Stock {
        return Ok(format!("qemu-{version}"));
    }
    let mut parts = Vec::new();
    for f in fixes {
        parts.push(
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
                .into_bytes(),
        );
        parts.push(fs::read(f).with_context(|| f.display().to_string())?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(format!("qemu-{version}-fixes-{}", &key_of(&refs)[..8]))
}

/// Applies `fixes` to a fresh work tree. Its files are hard links to the pristine tree:
/// each file a fix touches is first replaced by a copy of its own.
fn apply_fixes(work: &Path, fixes: &[PathBuf]) -> Result<()> {
    for f in fixes {
        let text = crate::util::read(f)?;
        for rel in text.lines().filter_map(|l| l.strip_prefix("+++ b/")) {
            let p = work.join(rel.split('\t').next().unwrap_or(rel).trim());
            let bytes =
                fs::read(&p).with_context(|| format!("{}: {}", f.display(), p.display()))?;
            fs::remove_file(&p)?;
            fs::write(&p, bytes)?;
        }
        run(Command::new("patch")
            .args([
                "-p1",
                "--forward",
                "--batch",
                "--no-backup-if-mismatch",
                "-d",
            ])
            .arg(work)
            .arg("-i")
            .arg(f))
        .with_context(|| format!("{} does not apply to {}", f.display(), work.display()))?;
    }
    Ok(())
}

pub struct Tree {
    /// Upstream version, e.g. "10.2.2".
    pub version: String,
    /// Names logs: the version, and the fixes' key for a fixed tree.
    pub label: String,
    /// Pristine extracted source (never modified).
    pub pristine: PathBuf,
    /// Pristine + the device.
    pub work: PathBuf,
    pub build: PathBuf,
}

impl Tree {
    pub fn binary(&self) -> PathBuf {
        self.build.join("qemu-system-x86_64")
    }
}

/// The qemu/ component: integration.txt edits plus the new files under hw/, include/, tests/,
/// docs/, and the register specification as QEMU's page for the device, docs/specs/my-rng.rst.
pub fn component() -> Result<Component> {
    let dir = repo_root().join("qemu");
    let mut new_files = vec![(SPEC_PAGE.to_string(), repo_root().join("spec/my-rng.rst"))];
    for sub in ["hw", "include", "tests", "docs"] {
        if dir.join(sub).exists() {
            for (rel, abs) in files_below(&dir, sub)? {
                if !rel.ends_with(".insert") {
                    new_files.push((rel, abs));
                }
            }
        }
    }
    Ok(Component { dir, new_files })
}

pub fn upstream_version(debian: &str) -> String {
    let v = debian.split(':').next_back().unwrap_or(debian);
    v.split('+').next().unwrap_or(v).to_string()
}

/// Downloads and extracts (once) a pristine tree: the first of `versions` that downloads.
pub fn pristine(versions: &[&str]) -> Result<(String, PathBuf)> {
    for v in versions {
        let dir = cache_dir()
            .join("src")
            .join(format!("qemu-{}", upstream_version(v)));
        if dir.join(".extracted").exists() {
            return Ok((upstream_version(v), dir));
        }
    }
    let dsc = apt::fetch_source("qemu", versions, &cache_dir().join("dl/qemu"))?;
    let name = dsc.file_name().unwrap().to_string_lossy().into_owned();
    let v = versions
        .iter()
        .find(|v| name.contains(v.split(':').next_back().unwrap()))
        .context("downloaded an unexpected version")?;
    let version = upstream_version(v);
    let dir = cache_dir().join("src").join(format!("qemu-{version}"));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    // dpkg-source extracts next to the target: its parent must exist.
    fs::create_dir_all(dir.parent().unwrap())?;
    step(&format!(
        "Extracting QEMU {version} (dpkg-source applies Debian's patches)"
    ));
    run_logged(
        Command::new("dpkg-source")
            .args(["--no-copy", "-x"])
            .arg(&dsc)
            .arg(&dir),
        &cache_dir().join("logs/qemu-extract.log"),
    )?;
    fs::write(dir.join(".extracted"), "")?;
    Ok((version, dir))
}

/// Work tree and build dir for `versions` and `flavour`, with the fixes (for a fixed tree)
/// and the device applied, and configured.
pub fn prepare(versions: &[&str], flavour: Flavour) -> Result<Tree> {
    let (version, pristine) = pristine(versions)?;
    let fixes = match flavour {
        Flavour::Fixed => fixes()?,
        Flavour::Stock => Vec::new(),
        Flavour::Detect => [fixes()?, patches_in("qemu/fixes/detect")?].concat(),
    };
    let label = tree_name(&version, flavour, &fixes)?;
    let root = cache_dir().join(&label);
    let work = root.join("src");
    if !work.join(".copied").exists() {
        step(&format!("Creating the {label} work tree"));
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&root)?;
        // Hard links: fast and small; edits unlink before writing (write_if_changed).
        run(Command::new("cp").arg("-al").arg(&pristine).arg(&work))?;
        if !fixes.is_empty() {
            step(&format!(
                "Applying {} QEMU fix(es) from qemu/fixes/",
                fixes.len()
            ));
            apply_fixes(&work, &fixes)?;
        }
        fs::write(work.join(".copied"), "")?;
    }
    let n = component()?.apply(&pristine, &work)?;
    if n > 0 {
        note(&format!(
            "{n} device file(s) updated in the QEMU {version} tree"
        ));
    }
    let tree = Tree {
        version,
        label,
        pristine,
        work,
        build: root.join("build"),
    };
    configure(&tree)?;
    Ok(tree)
}

fn configure(t: &Tree) -> Result<()> {
    let stamp = t.build.join(".my-rng-configure");
    let key = key_of(&[configure_flags().join(" ").as_bytes()]);
    if t.build.join("build.ninja").exists() && fs::read_to_string(&stamp).ok() == Some(key.clone())
    {
        return Ok(());
    }
    step(&format!(
        "Configuring QEMU {} (minimal x86_64-softmmu, {})",
        t.version, t.label
    ));
    if t.build.exists() {
        fs::remove_dir_all(&t.build)?;
    }
    fs::create_dir_all(&t.build)?;
    run_logged(
        Command::new(t.work.join("configure"))
            .args(configure_flags())
            .current_dir(&t.build),
        &cache_dir().join(format!("logs/{}-configure.log", t.label)),
    )?;
    fs::write(stamp, key)?;
    Ok(())
}

pub fn ninja(t: &Tree, targets: &[&str], what: &str) -> Result<()> {
    step(&format!(
        "Building {what} ({}); incremental after the first time",
        t.label
    ));
    // Logged, with ninja's [n/m] shown as it goes: the first build is minutes of output.
    run_logged_progress(
        Command::new("ninja")
            .arg("-C")
            .arg(&t.build)
            .arg(format!("-j{}", jobs()))
            .args(targets),
        &cache_dir().join(format!("logs/{}-build.log", t.label)),
        Progress::ninja(&format!("{what} ({})", t.label)),
    )
}

/// Builds the project's QEMU (with qemu/fixes/) with the device and the qtest binary; records
/// them in the manifest.
pub fn build() -> Result<Tree> {
    build_flavour(Flavour::Fixed)
}

/// Builds QEMU of `flavour` with the device and the qtest binaries. Only the fixed build goes
/// into the manifest: it is the one every command boots.
pub fn build_flavour(flavour: Flavour) -> Result<Tree> {
    let t = prepare(MAIN_VERSIONS, flavour)?;
    let targets = QTESTS.map(|q| format!("tests/qtest/{q}"));
    let targets: Vec<&str> = ["qemu-system-x86_64"]
        .into_iter()
        .chain(targets.iter().map(String::as_str))
        .collect();
    ninja(&t, &targets, "qemu-system-x86_64 and the device's qtests")?;
    if flavour != Flavour::Fixed {
        return Ok(t);
    }
    let fixes: Vec<String> = fixes()?
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    manifest::update("qemu", |m| {
        m["fixes"] = fixes.clone().into();
        m["version"] = t.version.clone().into();
        m["binary"] = t.binary().display().to_string().into();
        m["source"] = t.work.display().to_string().into();
        m["pristine_source"] = t.pristine.display().to_string().into();
        m["build_dir"] = t.build.display().to_string().into();
        m["firmware_dirs"] = FIRMWARE_DIRS.into();
    })?;
    Ok(t)
}

/// Where bookworm's ipxe-qemu puts the iPXE option ROMs (Debian's own QEMU has this directory
/// in its firmware path). Only QEMU's generic qtests need them: their machines come with
/// default NICs.
pub const IPXE_DIR: &str = "/usr/lib/ipxe/qemu";

/// A wrapper named like the binary that adds the firmware directories: libqtest derives the
/// target from the binary's name, so the options cannot go into QTEST_QEMU_BINARY itself, and
/// QEMU run from its build tree ignores --firmwarepath.
pub fn qtest_wrapper(t: &Tree) -> Result<PathBuf> {
    let wrapper = t.build.join("qtest-fw/qemu-system-x86_64");
    let mut script = format!("#!/bin/sh\nexec {} ", t.binary().display());
    for d in FIRMWARE_DIRS.iter().chain([&IPXE_DIR]) {
        script.push_str(&format!("-L {d} "));
    }
    script.push_str("\"$@\"\n");
    crate::util::write_if_changed(&wrapper, script.as_bytes())?;
    run(Command::new("chmod").arg("+x").arg(&wrapper))?;
    Ok(wrapper)
}

/// The result of a qtest binary run with `--tap`.
pub struct TapRun {
    pub stdout: String,
    pub passed: usize,
    pub secs: u64,
}

/// Runs one qtest binary of the build (`tests/qtest/<name>`) with `--tap` and `args`, against
/// our QEMU, within `limit`; its output goes to `logs/<name>.log`. Fails on a failed or
/// skipped case, a non-zero exit, no case at all, or the time limit.
pub fn run_tap(t: &Tree, name: &str, args: &[&str], limit: Duration) -> Result<TapRun> {
    let qemu = qtest_wrapper(t)?;
    let start = Instant::now();
    // timeout(1) ends the test binary; the QEMUs it started run with exit-with-parent.
    let out = Command::new("timeout")
        .args(["--kill-after=10", &limit.as_secs().to_string()])
        .arg(t.build.join("tests/qtest").join(name))
        .arg("--tap")
        .args(args)
        .env("QTEST_QEMU_BINARY", &qemu)
        .env("QTEST_QEMU_IMG", "/usr/bin/qemu-img")
        .current_dir(&t.build)
        .output()
        .with_context(|| format!("cannot start {name}"))?;
    let secs = start.elapsed().as_secs();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = cache_dir().join(format!("logs/{name}.log"));
    fs::create_dir_all(log.parent().unwrap())?;
    fs::write(
        &log,
        format!(
            "{text}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    // A skipped case is not a pass: every case must run here.
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("not ok") || (l.starts_with("ok ") && l.contains("# SKIP")))
        .collect();
    let passed = text
        .lines()
        .filter(|l| l.starts_with("ok ") && !l.contains("# SKIP"))
        .count();
    for l in &failed {
        eprintln!("    {l}");
    }
    if out.status.code() == Some(124) || out.status.code() == Some(137) {
        bail!(
            "{name}: no result within {} s ({passed} cases passed by then; log: {})",
            limit.as_secs(),
            log.display()
        );
    }
    if !out.status.success() || !failed.is_empty() || passed == 0 {
        bail!(
            "{name}: {passed} passed, {} failed or skipped, exit {} (log: {})",
            failed.len(),
            out.status,
            log.display()
        );
    }
    Ok(TapRun {
        stdout: text,
        passed,
        secs,
    })
}

/// Runs the device's qtests, [`QTESTS`]. Returns the summary: cases passed and the storm's
/// figures.
pub fn qtest(t: &Tree) -> Result<String> {
    let (mut passed, mut secs, mut storm) = (0, 0, Vec::new());
    for name in QTESTS {
        step(&format!("Running the qtest (tests/qtest/{name})"));
        let r = run_tap(t, name, &[], QTEST_LIMIT)?;
        passed += r.passed;
        secs += r.secs;
        // The storm prints its figures (seed, accesses by kind, DMA outcomes, guard checks)
        // and its duration: they belong in the check's line.
        storm.extend(
            r.stdout
                .lines()
                .filter_map(|l| l.strip_prefix("# storm: "))
                .filter(|l| l.contains(" accesses (") || l.ends_with(" s"))
                .map(String::from),
        );
    }
    if storm.is_empty() {
        Ok(format!("{passed} qtest cases passed in {secs} s"))
    } else {
        Ok(format!(
            "{passed} qtest cases passed in {secs} s; storm: {}",
            storm.join("; ")
        ))
    }
}

/// Compiles the device on the other reachable QEMU versions (objects only: quick).
pub fn compat_check() -> Result<Vec<String>> {
    let mut checked = Vec::new();
    for v in COMPAT_VERSIONS {
        // Stock: the fixes are written for the main version's code.
        let t = prepare(&[v], Flavour::Stock)?;
        let objs = device_objects(&t)?;
        let targets: Vec<&str> = objs.iter().map(String::as_str).collect();
        ninja(&t, &targets, "the my_rng device objects")?;
        warning_gate(&t)?;
        checked.push(t.version.clone());
    }
    Ok(checked)
}

/// The ninja targets of the device's C files under hw/ (object names vary across QEMU
/// versions), one per file: a file that is not wired into the build is an error.
fn device_objects(t: &Tree) -> Result<Vec<String>> {
    let targets = output(
        Command::new("ninja")
            .arg("-C")
            .arg(&t.build)
            .args(["-t", "targets", "all"]),
    )?;
    let mut objs = Vec::new();
    for (rel, _) in component()?.new_files {
        if !(rel.starts_with("hw/") && rel.ends_with(".c")) {
            continue;
        }
        // meson names an object after its source path: hw/misc/x.c -> .../hw_misc_x.c.o
        let name = format!("/{}.o", rel.replace('/', "_"));
        let obj = targets
            .lines()
            .filter_map(|l| l.split(':').next())
            .find(|l| l.ends_with(&name))
            .with_context(|| format!("no {name} target: {rel} is not wired into the build"))?;
        objs.push(obj.to_string());
    }
    Ok(objs)
}

/// The build runs with --disable-werror (QEMU's own code warns with some compilers), so each
/// device file is recompiled alone with -Werror: a warning in our files fails the pipeline.
pub fn warning_gate(t: &Tree) -> Result<()> {
    for obj in device_objects(t)? {
        let cmds = output(
            Command::new("ninja")
                .arg("-C")
                .arg(&t.build)
                .args(["-t", "commands", &obj]),
        )?;
        let cmd = cmds.lines().last().context("no compile command")?;
        run(Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} -Werror -fsyntax-only"))
            .current_dir(&t.build))
        .with_context(|| format!("{obj} has warnings on QEMU {}", t.version))?;
    }
    Ok(())
}

/// QEMU's own checkpatch.pl on the device and its qtest. Returns how many files it checked.
pub fn checkpatch() -> Result<usize> {
    let (_, tree) = pristine(MAIN_VERSIONS)?;
    let component = component()?;
    // Paths as in the QEMU tree: checkpatch's rules depend on them (tests/ may use
    // g_assert_cmpint() and friends).
    let files: Vec<String> = component
        .new_files
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|p| p.ends_with(".c") || p.ends_with(".h"))
        .collect();
    let out = Command::new("perl")
        .current_dir(&component.dir)
        .arg(tree.join("scripts/checkpatch.pl"))
        .arg("--no-tree")
        .arg("-f")
        .args(&files)
        .output()
        .context("running QEMU checkpatch")?;
    let mut bad = checkpatch_failed(&out);
    // The fixes are patches to QEMU's own files: checkpatch reads them as patches.
    let fixes = [fixes()?, patches_in("qemu/fixes/detect")?].concat();
    for f in &fixes {
        let out = Command::new("perl")
            .arg(tree.join("scripts/checkpatch.pl"))
            .arg("--no-tree")
            .arg(f)
            .output()
            .context("running QEMU checkpatch")?;
        bad |= checkpatch_failed(&out);
    }
    if bad {
        bail!("QEMU checkpatch.pl reports problems");
    }
    step("QEMU checkpatch clean");
    Ok(files.len() + fixes.len())
}

/// Notes checkpatch's errors and warnings; true if it failed.
fn checkpatch_failed(out: &std::process::Output) -> bool {
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING"))
    {
        note(l);
    }
    !out.status.success()
}

pub fn version_of(qemu: &Path) -> String {
    output(Command::new(qemu).arg("--version"))
        .ok()
        .and_then(|v| {
            v.lines()
                .next()
                .and_then(|l| l.split("version ").nth(1))
                .map(|v| v.split_whitespace().next().unwrap_or(v).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_keyed_by_their_fixes() {
        let dir = std::env::temp_dir().join(format!("xtask-fixes-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("0001-x.patch");
        fs::write(&p, "+++ b/a.c\n+one\n").unwrap();
        let fixes = vec![p.clone()];
        assert_eq!(
            tree_name("10.2.2", Flavour::Stock, &fixes).unwrap(),
            "qemu-10.2.2"
        );
        let a = tree_name("10.2.2", Flavour::Fixed, &fixes).unwrap();
        assert!(a.starts_with("qemu-10.2.2-fixes-") && a.len() == 26, "{a}");
        fs::write(&p, "+++ b/a.c\n+two\n").unwrap();
        assert_ne!(tree_name("10.2.2", Flavour::Fixed, &fixes).unwrap(), a);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_fixes_stay_out_of_the_deliverable() {
        let fixes = fixes().unwrap();
        assert!(!fixes.is_empty());
        let c = component().unwrap();
        assert!(c.new_files.iter().all(|(rel, _)| !rel.starts_with("fixes")));
    }
}
