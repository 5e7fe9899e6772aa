//! Writes the committed test vectors: `gen-vectors <dir> [<c-header>]` (normally
//! `spec/vectors`; the C header defaults to `qemu/tests/qtest/my-rng-vectors.h` of this
//! repository). `cargo xtask vectors` does the same through `my_rng_spec::vectors::render`
//! and `render_c_header`.

use my_rng_spec::{vectors, Algorithm};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn write(path: &Path, text: &str) -> bool {
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("gen-vectors: {}: {e}", path.display());
        return false;
    }
    println!("wrote {}", path.display());
    true
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, header) = match args.as_slice() {
        [dir] => (
            PathBuf::from(dir),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(vectors::C_HEADER_PATH),
        ),
        [dir, header] => (PathBuf::from(dir), PathBuf::from(header)),
        _ => {
            eprintln!("usage: gen-vectors <dir> [<c-header>]");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("gen-vectors: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for alg in Algorithm::DETERMINISTIC {
        if !write(&dir.join(vectors::file_name(alg)), &vectors::render(alg)) {
            return ExitCode::FAILURE;
        }
    }
    if !write(&header, &vectors::render_c_header()) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
