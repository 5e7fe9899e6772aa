//! Small helpers shared by every pipeline step: paths, command execution, cache keys.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Root of the repository (the workspace root, one level above xtask/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Where builds are cached: outside the repo so a clean clone reuses them.
/// `MY_RNG_CACHE` overrides the default `~/.cache/my-rng`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MY_RNG_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("my-rng")
}

/// Artifacts of this checkout that other tools read (manifest, initramfs, logs).
pub fn out_dir() -> PathBuf {
    repo_root().join("target").join("my-rng")
}

/// Prints a step banner to stderr; long operations announce themselves so a user sees progress.
pub fn step(msg: &str) {
    eprintln!("\x1b[1m==> {msg}\x1b[0m");
}

pub fn note(msg: &str) {
    eprintln!("    {msg}");
}

/// Runs a command with inherited stdio, failing with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = describe(cmd);
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !status.success() {
        bail!("`{desc}` failed ({status})");
    }
    let secs = start.elapsed().as_secs();
    if secs >= 10 {
        note(&format!("({secs} s) {desc}"));
    }
    Ok(())
}

/// Runs a command, capturing stdout; stderr goes to the terminal.
pub fn output(cmd: &mut Command) -> Result<String> {
    let desc = describe(cmd);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !out.status.success() {
        bail!("`{desc}` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command quietly, with its combined output saved to `log`; the log tail is shown on failure.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let desc = describe(cmd);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::File::create(log)?;
    let start = Instant::now();
    let status = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("    | {line}");
        }
        bail!("`{desc}` failed ({status}); full log: {}", log.display());
    }
    note(&format!(
        "({} s) {desc} [log: {}]",
        start.elapsed().as_secs(),
        log.display()
    ));
    Ok(())
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Writes `content` only if it differs, so unchanged inputs keep their mtime and make/ninja
/// rebuild only what really changed.
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool> {
    if fs::read(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // Work trees are hard-linked copies of pristine trees: unlink first so the pristine file
    // keeps its content.
    let _ = fs::remove_file(path);
    fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Hex SHA-256 of several labelled inputs: the key under which a build is cached.
pub fn key_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Number of parallel build jobs: all cores (2 here).
pub fn jobs() -> String {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .to_string()
}
