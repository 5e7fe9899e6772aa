//! `cargo xtask vectors`: the files generated from the reference crate, so that the C side (the
//! qtest) and every other reader test against the same numbers: spec/vectors/, the QEMU
//! device's register header, the qtest's vector header, the storm's DMA cases with the model's verdicts, the Linux drivers'
//! register definitions (C header and Rust module) and their uapi header; and from the protocol crate, the names the
//! guest's shell /init shares with the host (protocol.sh).

use crate::util::{repo_root, write_if_changed};
use anyhow::{bail, Result};
use my_rng_spec::{linux_regs, linux_uapi, qemu_header, storm, vectors, Algorithm};
use std::path::PathBuf;

/// Every generated file, as (path, content).
fn generated() -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = Algorithm::DETERMINISTIC
        .iter()
        .map(|&alg| {
            (
                repo_root()
                    .join("spec/vectors")
                    .join(vectors::file_name(alg)),
                vectors::render(alg),
            )
        })
        .collect();
    // The register ABI of the QEMU device and its qtests.
    files.push((repo_root().join(qemu_header::PATH), qemu_header::render()));
    // The qtest's copy: the first values and a digest of every block, as C.
    files.push((
        repo_root().join(vectors::C_HEADER_PATH),
        vectors::render_c_header(),
    ));
    // The storm's DMA commands and what the spec's DMA model says each does.
    files.push((
        repo_root().join(storm::C_HEADER_PATH),
        storm::render_c_header(),
    ));
    // Both Linux drivers' register definitions, and their user ABI header.
    files.push((repo_root().join(linux_uapi::PATH), linux_uapi::render()));
    files.push((
        repo_root().join(linux_regs::C_HEADER_PATH),
        linux_regs::render_linux_c_header(),
    ));
    files.push((
        repo_root().join(linux_regs::RUST_PATH),
        linux_regs::render_rust_regs(),
    ));
    files.push((
        repo_root().join(my_rng_protocol::shell::PATH),
        my_rng_protocol::shell::render(),
    ));
    files
}

/// Writes the generated files; with `check`, fails instead if one differs.
pub fn write(check: bool) -> Result<String> {
    let files = generated();
    let stale: Vec<String> = files
        .iter()
        .filter(|(path, text)| std::fs::read_to_string(path).ok().as_ref() != Some(text))
        .map(|(path, _)| path.display().to_string())
        .collect();
    if check {
        if !stale.is_empty() {
            bail!("stale: {}: run `cargo xtask vectors`", stale.join(", "));
        }
    } else {
        for (path, text) in &files {
            if write_if_changed(path, text.as_bytes())? {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(format!("{} file(s) match the reference crate", files.len()))
}
