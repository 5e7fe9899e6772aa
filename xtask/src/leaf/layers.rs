//! The import check of xtask's own layers: every module sits in a layer folder (leaf,
//! component, boot, cmd; main.rs declares each with `#[path = "<layer>/<file>.rs"]`), and its
//! `crate::` paths may name modules of its own layer or below, never above, and never close a
//! circle. Tests (`#[cfg(test)]` to the end of a file) are not judged. Run by the suite's
//! host stage and by a unit test.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first.
pub const LAYERS: &[&str] = &["leaf", "component", "boot", "cmd"];

/// One module of the crate: its layer (an index into [`LAYERS`]) and its source, child
/// modules' files included.
#[derive(Debug)]
pub struct Module {
    pub layer: usize,
    pub text: String,
}

/// The suite's check: reads xtask/src and judges it.
pub fn check() -> Result<String> {
    let modules = read_crate(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))?;
    let edges = judge(&modules)?;
    Ok(format!(
        "{} modules in {} layers, {edges} imports between modules, all pointing down, no circle",
        modules.len(),
        LAYERS.len()
    ))
}

/// The modules main.rs declares, by name.
pub fn read_crate(src: &Path) -> Result<BTreeMap<String, Module>> {
    let main = fs::read_to_string(src.join("main.rs")).context("reading main.rs")?;
    let mut modules = BTreeMap::new();
    let mut lines = main.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let Some(path) = l
            .strip_prefix("#[path = \"")
            .and_then(|p| p.strip_suffix("\"]"))
        else {
            if l.starts_with("mod ") || l.starts_with("pub mod ") {
                bail!("main.rs: `{l}` has no #[path = \"<layer>/...\"]: which layer is it in?");
            }
            continue;
        };
        let name = lines
            .next()
            .and_then(|m| m.strip_prefix("mod "))
            .and_then(|m| m.strip_suffix(';'))
            .with_context(|| format!("main.rs: no `mod <name>;` after {l}"))?;
        let layer = path
            .split('/')
            .next()
            .and_then(|d| LAYERS.iter().position(|x| *x == d))
            .with_context(|| format!("main.rs: {path} is in no layer folder {LAYERS:?}"))?;
        let text = module_text(&src.join(path))?;
        modules.insert(name.to_string(), Module { layer, text });
    }
    Ok(modules)
}

/// A module file's text without its tests (they may use anything), with its child modules'
/// files (`mod x;` in a file loaded by `#[path]` is `x.rs` beside it).
fn module_text(file: &PathBuf) -> Result<String> {
    let mut text =
        fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if let Some(i) = text.find("\n#[cfg(test)]") {
        text.truncate(i);
    }
    let children: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("pub ");
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    for c in children {
        text.push_str(&module_text(&file.with_file_name(format!("{c}.rs")))?);
    }
    Ok(text)
}

/// The modules a source text names through `crate::` (in code, not comments).
pub fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c, d::{e, f}}`: the first name of each top-level item.
                let mut depth = 0;
                let mut item_start = true;
                for (j, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && (c.is_alphanumeric() || c == '_') => {
                            out.insert(ident(&group[j..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.remove("");
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Fails on an import pointing up a layer or closing a circle; returns the number of imports.
pub fn judge(modules: &BTreeMap<String, Module>) -> Result<usize> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut up = Vec::new();
    for (name, m) in modules {
        let targets = imports(&m.text);
        for t in targets.iter().filter(|t| *t != name) {
            let Some((to, tm)) = modules.get_key_value(t.as_str()) else {
                continue; // `crate::` items of main.rs, or a name rustc would reject anyway
            };
            if tm.layer > m.layer {
                up.push(format!(
                    "{name} ({}) imports {to} ({}), a higher layer",
                    LAYERS[m.layer], LAYERS[tm.layer]
                ));
            }
            graph.entry(name).or_default().push(to);
        }
    }
    if !up.is_empty() {
        bail!("{}", up.join("; "));
    }
    if let Some(c) = circle(&graph) {
        bail!("import circle: {}", c.join(" -> "));
    }
    Ok(graph.values().map(Vec::len).sum())
}

/// A circle of the graph, as its modules with the first repeated at the end, if there is one.
fn circle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    // Depth-first; `path` is the current chain, `done` the modules fully explored.
    fn visit<'a>(
        n: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(i) = path.iter().position(|p| *p == n) {
            let mut c = path[i..].to_vec();
            c.push(n);
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n);
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n);
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_of(mods: &[(&str, usize, &str)]) -> BTreeMap<String, Module> {
        mods.iter()
            .map(|(n, layer, text)| {
                let m = Module {
                    layer: *layer,
                    text: text.to_string(),
                };
                (n.to_string(), m)
            })
            .collect()
    }

    #[test]
    fn xtask_imports_point_down() {
        check().unwrap();
    }

    #[test]
    fn paths_are_read() {
        let t = "use crate::util::{a, b};\nuse crate::{apt, kernel::{self, Tree}, vm};\n\
                 // crate::suite in a comment\nlet x = crate::qemu::build()?;";
        let want = ["apt", "kernel", "qemu", "util", "vm"];
        assert_eq!(imports(t), want.iter().map(|s| s.to_string()).collect());
    }

    #[test]
    fn upward_import_fails() {
        let m = crate_of(&[("util", 0, "use crate::vm;"), ("vm", 2, "")]);
        let e = judge(&m).unwrap_err().to_string();
        assert!(e.contains("util (leaf) imports vm (boot)"), "{e}");
    }

    #[test]
    fn circle_fails() {
        let m = crate_of(&[
            ("a", 1, "crate::b::x()"),
            ("b", 1, "use crate::{c};"),
            ("c", 1, "use crate::a;"),
            ("d", 3, "use crate::{a, util};"),
            ("util", 0, ""),
        ]);
        let e = judge(&m).unwrap_err().to_string();
        assert_eq!(e, "import circle: a -> b -> c -> a");
        let ok = crate_of(&[
            ("a", 1, "crate::b::x()"),
            ("b", 1, ""),
            ("d", 3, "crate::a"),
        ]);
        assert_eq!(judge(&ok).unwrap(), 2);
    }
}
