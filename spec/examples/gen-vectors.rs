//! Writes the committed test vectors: `gen-vectors <dir>` (normally `spec/vectors`).
//! `cargo xtask vectors` does the same through `my_rng_spec::vectors::render`.

use my_rng_spec::{vectors, Algorithm};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: gen-vectors <dir>");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("gen-vectors: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for alg in Algorithm::DETERMINISTIC {
        let path = dir.join(vectors::file_name(alg));
        if let Err(e) = std::fs::write(&path, vectors::render(alg)) {
            eprintln!("gen-vectors: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
