//! The Rust driver (linux/rust/): applied to the guest kernel's tree beside the C driver, built
//! in and as the out-of-tree my_rng_rust.ko. It is not part of the Linux 6.6.4 deliverable
//! (6.6 has no Rust PCI abstractions): `kernel::component()`, which the patches and checkpatch
//! use, stays the C driver only.
//!
//! Both drivers are built into the one guest kernel; each boot keeps exactly one of them on the
//! kernel command line (`initcall_blacklist=`), see [`Driver::cmdline`].

use crate::cli::Driver;
use crate::integrate::{self, files_below, Component};
use crate::kernel::{self, Tree};
use crate::util::{cache_dir, repo_root, run, run_logged, step};
use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built-in C driver's initcall (module_pci_driver()).
pub const C_INITCALL: &str = "my_rng_pci_driver_init";
/// The built-in Rust driver's initcall (`__<module name>_init`, from the module! macro).
const RUST_INITCALL: &str = "__my_rng_rust_init";

impl Driver {
    /// Kernel command-line words of a boot with this driver: the other built-in driver's
    /// initcall is skipped.
    pub fn cmdline(self) -> Vec<String> {
        match self {
            Driver::C => vec![format!("initcall_blacklist={RUST_INITCALL}")],
            Driver::Rust => vec![format!("initcall_blacklist={C_INITCALL}")],
        }
    }

    /// "c" or "rust", as on the command line.
    pub fn short(self) -> &'static str {
        match self {
            Driver::C => "c",
            Driver::Rust => "rust",
        }
    }

    /// The PCI driver's name (/sys/bus/pci/drivers/<name>).
    pub fn pci_name(self) -> &'static str {
        match self {
            Driver::C => "my_rng",
            Driver::Rust => "my_rng_rust",
        }
    }
}

/// The linux/rust component: its integration.txt edits plus the files under linux/rust/drivers.
pub fn component() -> Result<Component> {
    let dir = repo_root().join("linux/rust");
    let new_files = files_below(&dir, "drivers")?;
    Ok(Component { dir, new_files })
}

/// Brings the kernel work tree to pristine + the C driver + the Rust driver.
pub fn apply(pristine: &Path, work: &Path) -> Result<usize> {
    let c = kernel::component()?.changes(pristine)?;
    let both = component()?.changes_over(pristine, c)?;
    integrate::apply_changes(&both, pristine, work)
}

/// Where linux/rust is built as the out-of-tree module: beside linux/c's module folder.
fn module_dir(t: &Tree) -> PathBuf {
    t.sibling("module-rust")
}

/// The Rust driver as the out-of-tree module.
pub fn module(t: &Tree) -> PathBuf {
    module_dir(t).join("my_rng_rust.ko")
}

/// The Rust driver's module built beside the C driver's module `c_module` (same kernel tree
/// and variant: module[-debug]/my_rng.ko -> module-rust[-debug]/my_rng_rust.ko), if it exists.
pub fn module_beside(c_module: &Path) -> Option<PathBuf> {
    let dir = c_module.parent()?;
    let name = dir.file_name()?.to_str()?;
    let rust = name.replacen("module", "module-rust", 1);
    let m = dir.with_file_name(rust).join("my_rng_rust.ko");
    m.exists().then_some(m)
}

/// Builds linux/rust as my_rng_rust.ko against the guest kernel; `make` is the kernel's make
/// command (O=, LLVM=, toolchain).
pub fn build_module(t: &Tree, mut make: Command) -> Result<()> {
    let dir = module_dir(t);
    let src = repo_root().join("linux/rust");
    kernel::sync_dir(&src.join("drivers"), &dir.join("drivers"))?;
    std::fs::copy(src.join("Kbuild"), dir.join("Kbuild"))?;
    step("Building the out-of-tree module my_rng_rust.ko");
    run_logged(
        make.arg(format!("M={}", dir.display())).arg("modules"),
        &t.log("module-rust-build"),
    )
}

/// The Rust driver's own style gates: rustfmt with the kernel's .rustfmt.toml, a `CLIPPY=1`
/// build of the module with warnings as errors, and checkpatch --strict on its C glue.
pub fn gates(t: &Tree) -> Result<String> {
    let src = repo_root().join("linux/rust");
    let files: Vec<PathBuf> = files_below(&src, "drivers")?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let is = |p: &Path, ext: &str| p.extension().is_some_and(|e| e == ext);
    let rs: Vec<&PathBuf> = files.iter().filter(|p| is(p, "rs")).collect();
    let c: Vec<&PathBuf> = files.iter().filter(|p| is(p, "c") || is(p, "h")).collect();
    run(Command::new("rustfmt")
        .args(["--check", "--edition", "2021", "--config-path"])
        .arg(t.work.join(".rustfmt.toml"))
        .args(&rs))?;

    // A fresh folder: every file is compiled, so clippy sees all of them.
    let dir = module_dir(t).with_file_name("module-rust-clippy");
    let _ = std::fs::remove_dir_all(&dir);
    kernel::sync_dir(&src.join("drivers"), &dir.join("drivers"))?;
    std::fs::copy(src.join("Kbuild"), dir.join("Kbuild"))?;
    run_logged(
        kernel::make_for(t)?
            .arg(format!("M={}", dir.display()))
            .args(["CLIPPY=1", "KRUSTFLAGS=-Dwarnings", "modules"]),
        &cache_dir().join("logs/module-rust-clippy.log"),
    )?;

    let issues = kernel::checkpatch_issues(&kernel::pristine()?, &c)?;
    ensure!(
        issues.is_empty(),
        "checkpatch --strict: {}",
        issues.join("; ")
    );
    Ok(format!(
        "{} Rust file(s) rustfmt- and clippy-clean, {} C file(s) checkpatch-clean",
        rs.len(),
        c.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_driver_keeps_the_other_out() {
        assert_eq!(
            Driver::C.cmdline(),
            ["initcall_blacklist=__my_rng_rust_init"]
        );
        assert!(Driver::Rust
            .cmdline()
            .contains(&"initcall_blacklist=my_rng_pci_driver_init".to_string()));
    }
}
