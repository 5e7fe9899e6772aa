//! `cargo xtask vectors`: the files generated from the reference crate, so that the C side (the
//! qtest) and every other reader test against the same numbers: spec/vectors/, the QEMU
//! device's register header, the qtest's vector header, the storm's DMA cases with the model's
//! verdicts, the Linux drivers' register definitions (C header and Rust module) and their uapi
//! header; and from the protocol crate, the names the guest's shell /init shares with the
//! host (protocol.sh).

use crate::util::{repo_root, write_if_changed};
use anyhow::{bail, Result};
use my_rng_spec::{linux_regs, linux_uapi, qemu_header, storm, vectors, Algorithm};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How a generated file's content is made.
type Render = Box<dyn Fn() -> String>;

/// Every generated file, as (path, how to render it): rendered only by who needs the content
/// (the storm's cases run the DMA model 2,048 times).
fn generated() -> Vec<(PathBuf, Render)> {
    let mut files: Vec<(PathBuf, Render)> = Algorithm::DETERMINISTIC
        .iter()
        .map(|&alg| {
            let path = repo_root()
                .join("spec/vectors")
                .join(vectors::file_name(alg));
            (path, Box::new(move || vectors::render(alg)) as Render)
        })
        .collect();
    let mut add = |path: &str, render: fn() -> String| {
        files.push((repo_root().join(path), Box::new(render)));
    };
    // The register ABI of the QEMU device and its qtests.
    add(qemu_header::PATH, qemu_header::render);
    // The qtest's copy: the first values and a digest of every block, as C.
    add(vectors::C_HEADER_PATH, vectors::render_c_header);
    // The storm's DMA commands and what the spec's DMA model says each does.
    add(storm::C_HEADER_PATH, storm::render_c_header);
    // Both Linux drivers' register definitions, and their user ABI header.
    add(linux_uapi::PATH, linux_uapi::render);
    add(linux_regs::C_HEADER_PATH, linux_regs::render_linux_c_header);
    add(linux_regs::RUST_PATH, linux_regs::render_rust_regs);
    add(my_rng_protocol::shell::PATH, my_rng_protocol::shell::render);
    files
}

/// Writes the generated files; with `check`, fails instead if one differs.
pub fn write(check: bool) -> Result<String> {
    let files: Vec<(PathBuf, String)> = generated().into_iter().map(|(p, r)| (p, r())).collect();
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

/// A value the spec or protocol crate defines, and what it is.
struct Needle {
    what: String,
    kind: NeedleKind,
}

enum NeedleKind {
    /// A number, as a literal token (`0x8004_7101`, `0x80047101u`: `_` and suffixes ignored).
    Hex(String),
    /// A number whose literals start with this (the ID magic in any full ID value).
    HexPrefix(String),
    /// Text inside a string literal.
    Quoted(String),
    /// A console marker: a string literal starting `@@` and a capital (a diff's `@@ -1` is not).
    Marker,
}

/// The values nobody types again: the PCI identity, the ID magic, the ioctl numbers (spec
/// crate), the bench row ids and the console markers' prefix (protocol crate).
fn needles() -> Vec<Needle> {
    use my_rng_spec::{regs, uapi};
    let hex = |what: &str, v: u64| Needle {
        what: what.into(),
        kind: NeedleKind::Hex(format!("{v:#x}")),
    };
    let mut v = vec![
        hex("the PCI vendor id", regs::PCI_VENDOR_ID.into()),
        hex("the PCI device id", regs::PCI_DEVICE_ID.into()),
        Needle {
            what: "the ID magic".into(),
            kind: NeedleKind::HexPrefix(format!("{:#x}", regs::ID_MAGIC)),
        },
    ];
    for i in uapi::IOCTLS {
        v.push(hex(&format!("ioctl {}", i.name), i.number().into()));
    }
    for id in my_rng_protocol::bench::row::ALL {
        v.push(Needle {
            what: "a bench row id".into(),
            kind: NeedleKind::Quoted(format!("\"{id}\"")),
        });
    }
    v.push(Needle {
        what: "a console marker".into(),
        kind: NeedleKind::Marker,
    });
    v
}

/// Whether `line` spells `n`.
fn spells(line: &str, n: &Needle) -> bool {
    let token = |t: &str| {
        let t = t.to_ascii_lowercase().replace('_', "");
        t.trim_end_matches(['u', 'l']).to_string()
    };
    let mut tokens = line
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .map(token);
    match &n.kind {
        NeedleKind::Hex(h) => tokens.any(|t| t == *h),
        NeedleKind::HexPrefix(h) => tokens.any(|t| t.starts_with(h.as_str())),
        NeedleKind::Quoted(q) => line.contains(q.as_str()),
        NeedleKind::Marker => line
            .match_indices("\"@@")
            .any(|(i, m)| line[i + m.len()..].starts_with(|c: char| c.is_ascii_uppercase())),
    }
}

/// Where a value may be written: where it is defined or generated, in test code (whose
/// expectations are written independently on purpose), and in the seed's app, kept unchanged.
fn exempt(path: &str, skip: &[String]) -> bool {
    const PLACES: &[&str] = &[
        "spec/",
        "protocol/",
        "patches/",
        "docs/",
        "qemu/tests/",
        "guest/e2e/src/suite/",
        "guest/c/my-app.c",
    ];
    PLACES.iter().any(|p| path.starts_with(p))
        || path.contains("/tests/")
        || path.ends_with("tests.rs")
        || skip.iter().any(|g| g == path)
}

/// The lines of `path` that are code: a Rust file up to its inline `#[cfg(test)]` module,
/// without comment lines.
fn code_lines(path: &str, text: &str) -> Vec<(usize, String)> {
    let shell = path.ends_with(".sh") || path.ends_with("/init");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if path.ends_with(".rs") && t.starts_with("#[cfg(test)]") {
            match test_module(&lines[i + 1..]) {
                Some(None) => break,
                _ => continue,
            }
        }
        let comment = ["//", "/*", "* ", "*/"].iter().any(|c| t.starts_with(c)) || t == "*";
        if !(comment || (shell && t.starts_with('#'))) {
            out.push((i + 1, line.to_string()));
        }
    }
    out
}

/// What follows a `#[cfg(test)]`: `Some(None)` for an inline module (`mod tests {`), which
/// runs to the end of the file; `Some(Some(name))` for a module in its own file.
fn test_module(rest: &[&str]) -> Option<Option<String>> {
    let decl = rest.first()?.trim().strip_prefix("mod ")?;
    match decl.strip_suffix(';') {
        Some(name) => Some(Some(name.to_string())),
        None => decl.ends_with('{').then_some(None),
    }
}

/// The Rust files that are test modules of another (`#[cfg(test)] mod fake;` in `main.rs`).
fn test_files(texts: &BTreeMap<&str, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in texts.iter().filter(|(p, _)| p.ends_with(".rs")) {
        let lines: Vec<&str> = text.lines().collect();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for (i, l) in lines.iter().enumerate() {
            if l.trim_start().starts_with("#[cfg(test)]") {
                if let Some(Some(name)) = test_module(&lines[i + 1..]) {
                    out.push(format!("{dir}/{name}.rs"));
                }
            }
        }
    }
    out
}

/// Fails on a value of [`needles`] written in code outside the places it belongs.
pub fn typed_once() -> Result<String> {
    let root = repo_root();
    let listing = crate::util::output(
        std::process::Command::new("git")
            .args([
                "ls-files",
                "*.rs",
                "*.c",
                "*.h",
                "*.sh",
                "guest/initramfs/init",
            ])
            .current_dir(&root),
    )?;
    // Each file read once: for the test modules it declares, then for its own lines.
    let mut texts = BTreeMap::new();
    for path in listing.lines() {
        texts.insert(path, std::fs::read_to_string(root.join(path))?);
    }
    let mut skip: Vec<String> = generated()
        .into_iter()
        .filter_map(|(p, _)| Some(p.strip_prefix(&root).ok()?.display().to_string()))
        .collect();
    skip.extend(test_files(&texts));
    let needles = needles();
    let (mut files, mut found) = (0, Vec::new());
    for (path, text) in texts.iter().filter(|(p, _)| !exempt(p, &skip)) {
        files += 1;
        for (n, line) in code_lines(path, text) {
            for needle in needles.iter().filter(|k| spells(&line, k)) {
                found.push(format!("{path}:{n} types {} again", needle.what));
            }
        }
    }
    if !found.is_empty() {
        bail!(
            "{}: take it from the spec or protocol crate",
            found.join("; ")
        );
    }
    Ok(format!(
        "{} values of the spec and protocol crates, none typed again in {files} files' code",
        needles.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needle(kind: NeedleKind) -> Needle {
        Needle {
            what: String::new(),
            kind,
        }
    }

    #[test]
    fn literals_are_found_however_spelled() {
        let ioctl = needle(NeedleKind::Hex("0x80047101".into()));
        assert!(spells("    assert!(n == 0x8004_7101);", &ioctl));
        assert!(spells("#define RAND_IOCTL\t0x80047101u", &ioctl));
        assert!(!spells("let x = 0x800471011;", &ioctl));
        let magic = needle(NeedleKind::HexPrefix("0x4d52".into()));
        assert!(spells("if id == 0x4D52_0201 {", &magic));
        let row = needle(NeedleKind::Quoted("\"ioctl-rand\"".into()));
        assert!(spells("    row(\"ioctl-rand\".into(),", &row));
        assert!(!spells("    row(\"ioctl-rand64\".into(),", &row));
    }

    #[test]
    fn comments_and_rust_tests_are_not_code() {
        let text = "// 0xcafe\nlet a = 1;\n /* x\n * 0xcafe\n */\n#[cfg(test)]\nmod tests {\nlet b = 0xcafe;\n";
        let lines: Vec<usize> = code_lines("x.rs", text).iter().map(|l| l.0).collect();
        assert_eq!(lines, [2]);
        let sh = code_lines("guest/initramfs/init", "# \"@@\"\necho \"@@\"\n");
        assert_eq!(sh.len(), 1);
        let main = "#[cfg(test)]\nmod fake;\nconst A: u32 = 0xcafe;\n";
        let lines: Vec<usize> = code_lines("m.rs", main).iter().map(|l| l.0).collect();
        assert_eq!(
            lines,
            [2, 3],
            "the rest of a file declaring a test module is code"
        );
        assert_eq!(test_module(&["mod fake;"]), Some(Some("fake".to_string())));
        let marker = needle(NeedleKind::Marker);
        assert!(spells("println!(\"@@WORKER {n}\");", &marker));
        assert!(!spells("out.push_str(\"@@ -1,3 +1,4 @@\");", &marker));
        assert!(exempt("guest/c/my-app.c", &[]));
        assert!(!exempt("linux/c/drivers/misc/my-rng.c", &[]));
    }
}
