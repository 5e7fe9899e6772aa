//! The deliverable patches, generated from the same change sets that the build trees use, in
//! the form a marker or a maintainer takes: `diff -urN` output inside a one-patch mailbox, so that
//! `patch -p1`, `git apply` and `git am` all accept it, and checked with each of them on every
//! tree the pipeline reaches.
//!
//! Timestamps are those `diff -urN` writes, made deterministic: a changed file carries the vanilla
//! release's date on its `---` side and the date of the last commit that touched the inputs on
//! its `+++` side; a created file carries the epoch on its `---` side only (git reads an epoch
//! `---` as "this file does not exist yet", so an epoch on a changed file breaks `git apply`).

use crate::integrate::Component;
use crate::util::{cache_dir, note, output, read, repo_root, run, step};
use crate::{apt, kernel, qemu};
use anyhow::{bail, ensure, Context, Result};
use my_rng_spec::{regs, uapi};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Who signs the patches off: the project's maintainers (its git identity).
const SIGNER: &str = "my-rng maintainers <maintainers@users.noreply.r-seed-8331f784.example>";

pub struct Deliverable {
    /// File name under patches/.
    pub file: &'static str,
    /// Directory name of the vanilla tree the patch targets, e.g. "qemu-8.2.0-rc2".
    pub target: &'static str,
    /// The vanilla release's date (UTC midnight, seconds since the epoch): its files' time.
    pub vanilla_time: i64,
    /// Repository paths of the change: their last commit dates the `+++` side.
    pub inputs: &'static [&'static str],
    /// The mail's subject, after `[PATCH] `.
    pub subject: &'static str,
    /// The commit message body (lines of at most 72 characters).
    pub body: String,
    pub component: Component,
    /// Upstream tree the change set is computed against (the nearest one reachable here).
    pub base: PathBuf,
    pub base_name: String,
}

/// QEMU v8.2.0-rc2 was tagged on 2023-11-28.
const QEMU_8_2_0_RC2_TIME: i64 = 1_701_129_600;
/// Linux v6.6.4 was released on 2023-12-03.
const LINUX_6_6_4_TIME: i64 = 1_701_561_600;

/// The device's identity as the bodies write it: `1234:cafe`.
fn pci_id() -> String {
    format!("{:04x}:{:04x}", regs::PCI_VENDOR_ID, regs::PCI_DEVICE_ID)
}

fn qemu_body() -> String {
    let (rev, class) = (regs::PCI_REVISION, regs::PCI_CLASS);
    format!(
        "my_rng is a PCI device ({}, revision {rev:#04x}, class {class:#06x}) with a\n{QEMU_BODY}",
        pci_id()
    )
}

const QEMU_BODY: &str = "\
4 KiB MMIO BAR: a read of RNG (offset 0) returns the next 32-bit value
of the current generator, a write of SEED (offset 4) reseeds it. The
default generator reproduces glibc's srand()/rand() bit-exactly.

ABI 2 keeps these two registers and adds identification, feature
discovery, 64-bit reads, selectable algorithms (glibc, xoshiro256++,
ChaCha20, host entropy) and a host-entropy register; ABI 2.1 adds a
scatter-gather DMA engine that completes with MSI or INTx. The whole
device state migrates, a transfer in flight included. Bad accesses are
logged as guest errors and have no other effect.

docs/specs/my-rng.rst specifies the registers. tests/qtest/my-rng-test
checks the device against test vectors generated from that
specification: every algorithm through registers and DMA, every access
rule, every DMA error, interrupts, reset and migration. The storm,
tests/qtest/my-rng-storm-test, mixes a million random register accesses
with DMA commands pointing anywhere, whose outcomes are generated from
the specification's model as well.";

fn linux_body() -> String {
    format!(
        "Add a driver for my_rng, the random number generator that QEMU emulates\n\
         as -device my_rng (PCI {}). Each device gets a misc character\n\
         device, /dev/my_rng_driver for the first one, with the RAND and SEED\n\
         ioctls of the original device ({:#x} and {:#x}) and more:\n{LINUX_BODY}",
        pci_id(),
        uapi::RAND.number(),
        uapi::SEED.number()
    )
}

const LINUX_BODY: &str = "\
64-bit reads, algorithm selection, an atomic seed-and-read, and read()
of a byte stream, by DMA (zero-copy into the caller's pages) on a
device that has the DMA engine. An ABI 2 device also feeds hw_random
from its host-entropy register, never from the seeded sequence.

User memory is only accessed through copy_to_user(), copy_from_user()
and pinned pages; a device removed while files are open returns ENODEV.
Documentation/misc-devices/my-rng.rst describes the user interface.";

/// The two deliverables: the device for QEMU 8.2.0-rc2, the driver for Linux 6.6.4.
pub fn deliverables() -> Result<Vec<Deliverable>> {
    let (qv, qemu_base) = qemu::pristine(qemu::MAIN_VERSIONS)?;
    let linux_base = kernel::pristine()?;
    Ok(vec![
        Deliverable {
            file: "qemu-8.2.0-rc2.patch",
            target: "qemu-8.2.0-rc2",
            vanilla_time: QEMU_8_2_0_RC2_TIME,
            inputs: &["qemu", "spec/my-rng.rst"],
            subject: "hw/misc: add my_rng, an emulated PCI random number generator",
            body: qemu_body(),
            component: qemu::component()?,
            base: qemu_base,
            base_name: format!("QEMU {qv} (Debian source)"),
        },
        Deliverable {
            file: "linux-6.6.4.patch",
            target: "linux-6.6.4",
            vanilla_time: LINUX_6_6_4_TIME,
            inputs: &["linux/c", "linux/integration", "linux/integration.txt"],
            subject: "misc: add a driver for the my_rng emulated PCI random number generator",
            body: linux_body(),
            component: kernel::component()?,
            base: linux_base,
            base_name: format!("Linux {} (Debian linux-source)", kernel::SOURCE_VERSION),
        },
    ])
}

/// The committed patch for the QEMU side.
pub fn qemu_patch() -> PathBuf {
    repo_root().join("patches/qemu-8.2.0-rc2.patch")
}

/// The committed patch for the Linux side.
pub fn linux_patch() -> PathBuf {
    repo_root().join("patches/linux-6.6.4.patch")
}

pub fn path_of(d: &Deliverable) -> PathBuf {
    repo_root().join("patches").join(d.file)
}

/// When the change was last made: now while the inputs have uncommitted changes, else the
/// committer time of the last commit that touched them (the vanilla date where git cannot tell,
/// e.g. outside a clone). Only the first is not reproducible, and it is what a commit of the
/// change then keeps: [`generate`] leaves a patch that differs only in its dates as it is.
fn change_time(d: &Deliverable) -> i64 {
    let git = |args: &[&str]| {
        output(
            Command::new("git")
                .current_dir(repo_root())
                .args(args)
                .arg("--")
                .args(d.inputs),
        )
    };
    if git(&["status", "--porcelain"]).is_ok_and(|s| !s.trim().is_empty()) {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(d.vanilla_time, |t| t.as_secs() as i64);
    }
    git(&["log", "-1", "--format=%ct"])
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(d.vanilla_time)
}

/// Renders one patch.
pub fn render(d: &Deliverable) -> Result<String> {
    let changes = d.component.changes(&d.base)?;
    let when = change_time(d);
    let tmp = std::env::temp_dir().join(format!("my-rng-patch-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let old = format!("{}.orig", d.target);
    for c in &changes {
        if let Some(o) = &c.original {
            write(&tmp.join(&old).join(&c.path), o)?;
        }
        write(&tmp.join(d.target).join(&c.path), &c.modified)?;
    }
    fs::create_dir_all(tmp.join(&old))?;
    touch_all(&tmp.join(&old), d.vanilla_time)?;
    touch_all(&tmp.join(d.target), when)?;
    let out = Command::new("diff")
        .args(["-urN", &old, d.target])
        .current_dir(&tmp)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .output()?;
    let _ = fs::remove_dir_all(&tmp);
    if out.status.code() != Some(1) {
        bail!("diff failed ({}) for {}", out.status, d.file);
    }
    let mut diff = String::from_utf8(out.stdout)?;
    for c in &changes {
        if let Some(lead) = c.lead {
            diff = trim_lead(&diff, &format!("{}/{}", d.target, c.path), lead)?;
        }
    }
    Ok(mail_header(d, when)? + &diff)
}

/// Sets the modification time of every file below `dir`.
fn touch_all(dir: &Path, secs: i64) -> Result<()> {
    run(Command::new("find").arg(dir).args([
        "-type",
        "f",
        "-exec",
        "touch",
        "-d",
        &format!("@{secs}"),
        "{}",
        "+",
    ]))
}

/// The mailbox header `git am` reads (checkpatch reads the same commit message), and after
/// `---` the notes for the reader, which every tool ignores.
fn mail_header(d: &Deliverable, when: i64) -> Result<String> {
    let date = output(Command::new("date").env("LC_ALL", "C").args([
        "-u",
        "-R",
        "-d",
        &format!("@{when}"),
    ]))?;
    Ok(format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: {SIGNER}\n\
         Date: {}\n\
         Subject: [PATCH] {}\n\n\
         {}\n\n\
         Signed-off-by: {SIGNER}\n\
         ---\n\
         {}\n\n",
        date.trim(),
        d.subject,
        d.body,
        wrap(
            &format!(
                "For vanilla {}: apply with `patch -p1`, `git apply` or `git am` in the \
                 top directory of the tree. Generated by `cargo xtask patches` from the \
                 my-rng repository (do not edit); its context lines come from {}, and the \
                 pipeline checks that it applies to every tree it reaches.",
                d.target, d.base_name
            ),
            72
        )
    ))
}

/// `text` in lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + word.len() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

fn write(path: &Path, content: &str) -> Result<()> {
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(path, content)?;
    Ok(())
}

/// Keeps at most `lead` context lines above the first change of every hunk of `file` (the
/// `+++` path): the lines above an anchor that differ between the trees the patch must apply
/// to are left out. Hunk headers are adjusted; other files are untouched.
pub fn trim_lead(diff: &str, file: &str, lead: usize) -> Result<String> {
    let mut out = String::with_capacity(diff.len());
    let mut in_file = false;
    let mut lines = diff.split_inclusive('\n').peekable();
    let mut found = false;
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("+++ ") {
            in_file = rest.split('\t').next() == Some(file);
            found |= in_file;
        }
        if !(in_file && line.starts_with("@@ ")) {
            out.push_str(line);
            continue;
        }
        let (mut old, mut new) = hunk_lens(line)?;
        let mut body = Vec::new();
        while old + new > 0 {
            let l = lines.next().context("a hunk ends early")?;
            old -= usize::from(l.starts_with([' ', '-']));
            new -= usize::from(l.starts_with([' ', '+']));
            body.push(l);
        }
        // "\ No newline at end of file" belongs to the hunk.
        while let Some(l) = lines.next_if(|l| l.starts_with('\\')) {
            body.push(l);
        }
        let context = body.iter().take_while(|l| l.starts_with(' ')).count();
        let drop = context.saturating_sub(lead);
        out.push_str(&shift_hunk_header(line, drop)?);
        body[drop..].iter().for_each(|l| out.push_str(l));
    }
    ensure!(found, "no file {file} in the diff");
    Ok(out)
}

/// The (start, length) ranges of `@@ -a,b +c,d @@`.
fn hunk_ranges(header: &str) -> Result<[(usize, usize); 2]> {
    let bad = || format!("malformed hunk header `{}`", header.trim_end());
    let inner = header
        .strip_prefix("@@ ")
        .and_then(|h| h.split_once(" @@"))
        .map(|(r, _)| r)
        .with_context(bad)?;
    let (old, new) = inner.split_once(' ').with_context(bad)?;
    let range = |r: &str, sign: char| -> Result<(usize, usize)> {
        let r = r.strip_prefix(sign).with_context(bad)?;
        let (start, len) = r.split_once(',').unwrap_or((r, "1"));
        Ok((
            start.parse().ok().with_context(bad)?,
            len.parse().ok().with_context(bad)?,
        ))
    };
    Ok([range(old, '-')?, range(new, '+')?])
}

/// The old and new line counts of a hunk.
fn hunk_lens(header: &str) -> Result<(usize, usize)> {
    let [(_, old), (_, new)] = hunk_ranges(header)?;
    Ok((old, new))
}

/// `@@ -a,b +c,d @@` with `drop` leading context lines removed.
fn shift_hunk_header(header: &str, drop: usize) -> Result<String> {
    let ranges = hunk_ranges(header)?;
    let mut parts = Vec::new();
    for ((start, len), sign) in ranges.into_iter().zip(['-', '+']) {
        ensure!(
            len >= drop,
            "cannot drop {drop} lines of `{}`",
            header.trim_end()
        );
        let (s, l) = (start + drop, len - drop);
        parts.push(if l == 1 {
            format!("{sign}{s}")
        } else {
            format!("{sign}{s},{l}")
        });
    }
    let rest = &header[header.find(" @@").unwrap()..];
    Ok(format!("@@ {} {}{rest}", parts[0], parts[1]))
}

/// The time stamp of a `---`/`+++` line, if it has one.
fn stamp(line: &str) -> Option<&str> {
    line.split_once('\t').map(|(_, t)| t.trim_end())
}

fn is_epoch(stamp: &str) -> bool {
    stamp.starts_with("1970-01-01 00:00:00")
}

/// Checks every file header the way `git apply` reads them: a created file (its hunk starts at
/// `-0,0`) has the epoch on its `---` side, every other side a real time.
pub fn check_headers(text: &str) -> Result<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut files = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.starts_with("--- ") || !lines.get(i + 1).is_some_and(|n| n.starts_with("+++ ")) {
            continue;
        }
        let name = l[4..].split('\t').next().unwrap_or_default();
        let (old, new) = (stamp(l), stamp(lines[i + 1]));
        let (Some(old), Some(new)) = (old, new) else {
            bail!("{name}: a file header without a time stamp");
        };
        let created = lines.get(i + 2).is_some_and(|h| h.starts_with("@@ -0,0 "));
        ensure!(!is_epoch(new), "{name}: the new side carries the epoch");
        ensure!(
            is_epoch(old) == created,
            "{name}: {} (git apply would read it as {})",
            if created {
                "a created file without the epoch on its --- side"
            } else {
                "a changed file with the epoch on its --- side"
            },
            if created {
                "a change of an existing file"
            } else {
                "a file created over existing content"
            }
        );
        files += 1;
    }
    ensure!(files > 0, "no file headers");
    Ok(files)
}

/// The patch with its dates replaced: two renderings of the same change compare equal whenever
/// their dates differ only because the inputs were committed after rendering.
fn undated(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>".to_string()
            } else if (l.starts_with("--- ") || l.starts_with("+++ ")) && l.contains('\t') {
                let (name, t) = l.split_once('\t').unwrap();
                format!("{name}\t{}", if is_epoch(t) { "<epoch>" } else { "<time>" })
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the patches; with `check`, fails instead if a committed one differs. A committed
/// patch that differs from the rendering only in its dates is current and is kept as it is.
pub fn generate(ds: &[Deliverable], check: bool) -> Result<()> {
    for d in ds {
        let text = render(d)?;
        let path = path_of(d);
        let committed = fs::read_to_string(&path).unwrap_or_default();
        let current = undated(&committed) == undated(&text);
        if check {
            ensure!(
                current,
                "{} is stale: run `cargo xtask patches` and commit the result",
                path.display()
            );
            check_headers(&committed).with_context(|| format!("{}", path.display()))?;
            note(&format!("{} is up to date", d.file));
        } else if current {
            note(&format!("{} is up to date", d.file));
        } else {
            fs::create_dir_all(path.parent().unwrap())?;
            fs::write(&path, text)?;
            note(&format!("wrote {}", path.display()));
        }
    }
    Ok(())
}

/// The files a patch touches, as `+++` paths without their first component.
fn touched(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| l.strip_prefix("+++ "))
        .filter_map(|l| l.split('\t').next()?.split_once('/').map(|(_, p)| p.into()))
        .collect()
}

/// The gits on this machine (Debian's and the one in /usr/local), one per version.
fn gits() -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for g in ["/usr/local/bin/git", "/usr/bin/git"] {
        let Ok(v) = output(Command::new(g).arg("--version")) else {
            continue;
        };
        let v = v.trim().trim_start_matches("git version ").to_string();
        if !seen.iter().any(|(_, s)| *s == v) {
            seen.push((g.to_string(), v));
        }
    }
    seen
}

/// Runs a tool in `dir`, kept from seeing any git repository above it; its output and status.
fn tool(dir: &Path, prog: &str, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .env("LC_ALL", "C")
        .output()
        .with_context(|| format!("cannot run {prog}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text))
}

/// Every way a reader applies `patch` to `tree`, without changing the tree: `git apply
/// --check` and `git apply --stat` with each git, `patch -p1 --dry-run` (no fuzz, no reject,
/// offsets allowed), and `git am` in a scratch repository holding the touched files.
pub fn apply_checks(patch: &Path, tree: &Path) -> Result<String> {
    step(&format!(
        "Applying {} to {} (git apply, patch, git am)",
        patch.file_name().unwrap().to_string_lossy(),
        tree.display()
    ));
    let p = patch.to_str().context("patch path is not UTF-8")?;
    let text = fs::read_to_string(patch)?;
    let files = touched(&text);
    let mut tools = Vec::new();
    for (git, version) in gits() {
        let (ok, out) = tool(tree, &git, &["apply", "--check", "--verbose", p])?;
        ensure!(
            ok,
            "git {version} apply --check refuses it:\n{}",
            out.trim()
        );
        let (ok, out) = tool(tree, &git, &["apply", "--stat", p])?;
        let listed = files.iter().filter(|f| out.contains(f.as_str())).count();
        ensure!(
            ok && listed == files.len(),
            "git {version} apply --stat lists {listed} of {} files:\n{}",
            files.len(),
            out.trim()
        );
        tools.push(format!("git {version} apply --check/--stat"));
    }
    let (ok, out) = tool(tree, "patch", &["-p1", "--dry-run", "--batch", "-i", p])?;
    for l in out.lines().filter(|l| l.contains("offset")) {
        note(l);
    }
    let bad = [
        "fuzz",
        "FAILED",
        "Reversed",
        "Skipping",
        "malformed",
        "garbage",
    ];
    ensure!(
        ok && !bad.iter().any(|b| out.contains(b)),
        "patch -p1 --dry-run does not apply it cleanly:\n{}",
        out.trim()
    );
    tools.push("patch -p1 --dry-run".into());
    tools.push(git_am(patch, tree, &files)?);
    Ok(tools.join(", "))
}

/// `git am` of the patch on a scratch repository with the tree's copies of the touched files.
fn git_am(patch: &Path, tree: &Path, files: &[String]) -> Result<String> {
    let scratch = std::env::temp_dir().join(format!("my-rng-am-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    for f in files.iter().filter(|f| tree.join(f).exists()) {
        let to = scratch.join(f);
        fs::create_dir_all(to.parent().unwrap())?;
        fs::copy(tree.join(f), &to)?;
    }
    fs::create_dir_all(&scratch)?;
    let id = ["-c", "user.name=check", "-c", "user.email=check@localhost"];
    let steps: [&[&str]; 4] = [
        &["init", "-q"],
        &["add", "-A"],
        &["commit", "-q", "--allow-empty", "-m", "vanilla"],
        &["am", "-q", patch.to_str().unwrap()],
    ];
    let mut result = Ok(());
    for s in steps {
        let args: Vec<&str> = id.iter().chain(s).copied().collect();
        let (ok, out) = tool(&scratch, "git", &args)?;
        if !ok {
            result = Err(anyhow::anyhow!("git {} fails:\n{}", s[0], out.trim()));
            break;
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    result.map(|_| "git am".into())
}

/// The tree's own `scripts/checkpatch.pl` run on the patch file itself (`args`: the tree's
/// usual strictness). Fails on any error, warning or check.
pub fn checkpatch(patch: &Path, tree: &Path, args: &[&str]) -> Result<String> {
    let script = tree.join("scripts/checkpatch.pl");
    let out = Command::new("perl")
        .arg(&script)
        .args(["--no-tree"])
        .args(args)
        .arg(patch)
        .current_dir(tree)
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING") || l.starts_with("CHECK"))
        .collect();
    if !out.status.success() || !problems.is_empty() {
        bail!(
            "{} reports on {}:\n{}",
            script.display(),
            patch.display(),
            text.trim()
        );
    }
    Ok(text
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or("clean")
        .to_string())
}

/// What QEMU's documentation build needs (Debian bookworm's Sphinx 5.3 meets QEMU's
/// `needs_sphinx`); installed by the check that builds the page.
pub const DOCS_PACKAGES: &[&str] = &["python3-sphinx", "python3-sphinx-rtd-theme"];

/// The QEMU patch's docs/specs/my-rng.rst is spec/my-rng.rst, byte for byte.
pub fn spec_page_is_the_spec() -> Result<String> {
    let text = read(&qemu_patch())?;
    let page = added_file(&text, qemu::SPEC_PAGE)
        .with_context(|| format!("the QEMU patch adds no {}", qemu::SPEC_PAGE))?;
    let spec = read(&repo_root().join("spec/my-rng.rst"))?;
    ensure!(
        page == spec,
        "{} in the QEMU patch differs from spec/my-rng.rst",
        qemu::SPEC_PAGE
    );
    Ok(format!(
        "{} = spec/my-rng.rst ({} lines)",
        qemu::SPEC_PAGE,
        spec.lines().count()
    ))
}

/// The content of a file the patch creates (its `+` lines).
fn added_file(patch: &str, path: &str) -> Option<String> {
    let mut lines = patch.lines().skip_while(|l| {
        !(l.starts_with("+++ ") && l.split('\t').next().is_some_and(|n| n.ends_with(path)))
    });
    lines.next()?;
    let header = lines.next()?;
    let (_, new) = hunk_lens(header).ok()?;
    let body: Vec<&str> = lines.take(new).collect();
    Some(body.iter().map(|l| format!("{}\n", &l[1..])).collect())
}

/// Builds QEMU's "specs" manual, the device's page included, with QEMU's own Sphinx
/// configuration from the work tree `t` (pristine + the device); fails on any warning about
/// the device's page or the index entry, or a page that was not written. The rest of the
/// manual is left out (it needs QEMU's build), which makes some other spec pages warn about
/// their links into it: those warnings are not ours and are counted, not failed on.
pub fn qemu_docs(t: &qemu::Tree) -> Result<String> {
    apt::ensure_extra_packages(DOCS_PACKAGES)?;
    let docs = t.work.join("docs");
    let out = cache_dir().join(format!("qemu-{}-docs", t.version));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    let log = out.join("warnings.txt");
    step("Building QEMU's specs manual with the device's page (Sphinx)");
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "sphinx", "-q", "-b", "html", "--keep-going", "-w"])
        .arg(&log)
        .args(["-D", "root_doc=specs/index", "-D"])
        .arg(format!("exclude_patterns={}", docs_outside_specs(&docs)?))
        .arg(&docs)
        .arg(out.join("html"))
        .output()
        .context("cannot run sphinx-build")?;
    let warnings = fs::read_to_string(&log).unwrap_or_default();
    let ours: Vec<&str> = warnings
        .lines()
        .filter(|l| l.contains("specs/my-rng") || l.contains("specs/index.rst"))
        .collect();
    ensure!(
        ours.is_empty(),
        "Sphinx warns about the page:\n{}",
        ours.join("\n")
    );
    let page = out.join("html/specs/my-rng.html");
    ensure!(
        page.exists() && read(&page)?.contains("DMA engine"),
        "Sphinx did not write {} (exit {}):\n{}",
        page.display(),
        status.status,
        String::from_utf8_lossy(&status.stderr)
    );
    let others = warnings.lines().filter(|l| l.contains("WARNING")).count();
    Ok(format!(
        "{} written with no warning about it (QEMU {}, Sphinx, {others} warning(s) of other pages \
         about the parts of the manual left out)",
        qemu::SPEC_PAGE,
        t.version
    ))
}

/// Sphinx's exclude_patterns for everything in docs/ but specs/ (and the configuration).
fn docs_outside_specs(docs: &Path) -> Result<String> {
    let mut pats = Vec::new();
    for e in fs::read_dir(docs)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() && !matches!(name.as_str(), "specs" | "sphinx" | "sphinx-static") {
            pats.push(format!("{name}/**"));
        } else if name.ends_with(".rst") {
            pats.push(name);
        }
    }
    pats.sort();
    Ok(pats.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: &str = "--- a.orig/k\t2023-12-03 00:00:00.000000000 +0000\n\
                           +++ a/k\t2026-12-07 10:00:00.000000000 +0000\n\
                           @@ -1,3 +1,4 @@\n x\n y\n z\n+n\n";
    const CREATED: &str = "--- a.orig/n.c\t1970-01-01 00:00:00.000000000 +0000\n\
                           +++ a/n.c\t2026-12-07 10:00:00.000000000 +0000\n\
                           @@ -0,0 +1 @@\n+int x;\n";

    #[test]
    fn headers_as_diff_urn_writes_them_pass() {
        assert_eq!(check_headers(&format!("{CHANGED}{CREATED}")).unwrap(), 2);
    }

    #[test]
    fn an_epoch_on_a_changed_file_fails() {
        let epoch = CHANGED.replace("2023-12-03 00:00:00", "1970-01-01 00:00:00");
        let e = check_headers(&epoch).unwrap_err().to_string();
        assert!(e.contains("file created over existing content"), "{e}");
        let real = CREATED.replace("1970-01-01 00:00:00", "2023-12-03 00:00:00");
        assert!(check_headers(&real).is_err());
        let new_epoch = CHANGED.replace("2026-12-07 10:00:00", "1970-01-01 00:00:00");
        assert!(check_headers(&new_epoch).is_err());
    }

    #[test]
    fn lead_trimming_keeps_the_trailing_context() {
        let diff = "+++ a/k\t0\n@@ -10,5 +10,6 @@ f\n a\n b\n c\n+n\n d\n e\n+++ a/o\t0\n@@ -1,2 +1,3 @@\n p\n+q\n r\n";
        let t = trim_lead(diff, "a/k", 0).unwrap();
        assert!(
            t.starts_with("+++ a/k\t0\n@@ -13,2 +13,3 @@ f\n+n\n d\n e\n"),
            "{t}"
        );
        // Another file's hunks stay as they are.
        assert!(t.ends_with("@@ -1,2 +1,3 @@\n p\n+q\n r\n"));
        let one = trim_lead(diff, "a/k", 1).unwrap();
        assert!(one.contains("@@ -12,3 +12,4 @@ f\n c\n+n\n"), "{one}");
        assert!(trim_lead(diff, "a/none", 0).is_err());
        assert_eq!(
            shift_hunk_header("@@ -5,2 +5 @@\n", 1).unwrap(),
            "@@ -6 +6,0 @@\n"
        );
    }

    #[test]
    fn dates_do_not_make_a_patch_stale() {
        let a = format!("Date: Mon, 7 Dec 2026 10:00:00 +0000\n{CHANGED}{CREATED}");
        let b = a
            .replace("Mon, 7 Dec", "Tue, 8 Dec")
            .replace("2026-12-07", "2026-12-08");
        assert_eq!(undated(&a), undated(&b));
        let epoch = a.replace("2023-12-03 00:00:00", "1970-01-01 00:00:00");
        assert_ne!(undated(&a), undated(&epoch));
    }

    #[test]
    fn an_added_file_is_read_back() {
        let p = format!("{CHANGED}{CREATED}diff -urN x\n");
        assert_eq!(added_file(&p, "n.c").unwrap(), "int x;\n");
        assert!(added_file(&p, "none").is_none());
    }

    #[test]
    fn touched_files() {
        assert_eq!(touched(&format!("{CHANGED}{CREATED}")), ["k", "n.c"]);
    }
}
