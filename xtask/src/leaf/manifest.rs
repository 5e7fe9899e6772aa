//! The machine-readable record of what `cargo xtask build` produced: target/my-rng/manifest.json.
//! Each pipeline step rewrites its own section, so partial builds keep the others.

use crate::util::out_dir;
use anyhow::Result;
use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;

pub fn path() -> PathBuf {
    out_dir().join("manifest.json")
}

pub fn load() -> Value {
    fs::read_to_string(path())
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| json!({}))
}

pub fn update(section: &str, f: impl FnOnce(&mut Value)) -> Result<()> {
    let mut m = load();
    if !m[section].is_object() {
        m[section] = json!({});
    }
    f(&mut m[section]);
    m["schema"] = json!(1);
    fs::create_dir_all(out_dir())?;
    fs::write(path(), serde_json::to_string_pretty(&m)? + "\n")?;
    Ok(())
}
