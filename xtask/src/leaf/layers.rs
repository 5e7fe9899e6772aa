//! The import check of xtask's own layers: every module sits in a layer folder (leaf,
//! component, boot, cmd; main.rs declares each with `#[path = "<layer>/<file>.rs"]`), and its
//! `crate::` paths may name modules of its own layer or below, never above, and never close a
//! circle (`super::` in a module of the crate root counts as `crate::`). Tests
//! (`#[cfg(test)]` to the end of a file) are not judged. Run by the suite's host stage and by a
//! unit test.

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

/// The picture of the layers, beside docs/architecture.md.
const PICTURE: &str = "docs/architecture-layers.svg";

/// The suite's check: reads xtask/src and judges it; the picture must show it as it is.
pub fn check() -> Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = read_crate(&root.join("src"))?;
    let edges = judge(&modules)?;
    let picture = root.join("..").join(PICTURE);
    if fs::read_to_string(&picture).ok() != Some(svg(&modules)) {
        bail!("{PICTURE} is stale: MY_RNG_WRITE_LAYERS_SVG=1 cargo test -p xtask layers_picture");
    }
    Ok(format!(
        "{} modules in {} layers, {edges} imports between modules, all pointing down, no \
         circle; {PICTURE} current",
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
        // `super::` in a module of the crate root is `crate::`.
        let text = module_text(&src.join(path))?.replace("super::", "crate::");
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
        // A child's `super::` is its parent: the same module for the check.
        let child = module_text(&file.with_file_name(format!("{c}.rs")))?;
        text.push_str(&child.replace("super::", "self::"));
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
    let graph = graph(modules);
    let mut up = Vec::new();
    for (name, tos) in &graph {
        for to in tos {
            let (from, at) = (modules[*name].layer, modules[*to].layer);
            if at > from {
                up.push(format!(
                    "{name} ({}) imports {to} ({}), a higher layer",
                    LAYERS[from], LAYERS[at]
                ));
            }
        }
    }
    if !up.is_empty() {
        bail!("{}", up.join("; "));
    }
    if let Some(c) = circle(&graph) {
        bail!("import circle: {}", c.join(" -> "));
    }
    Ok(graph.values().map(BTreeSet::len).sum())
}

/// A circle of the graph, as its modules with the first repeated at the end, if there is one.
fn circle<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    // Depth-first; `path` is the current chain, `done` the modules fully explored.
    fn visit<'a>(
        n: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
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

/// The import graph: each module's imports of other modules (`crate::` names that are no
/// module, such as main.rs's items, are left out).
pub fn graph(modules: &BTreeMap<String, Module>) -> BTreeMap<&str, BTreeSet<&str>> {
    modules
        .iter()
        .map(|(name, m)| {
            let to = imports(&m.text)
                .into_iter()
                .filter(|t| t != name)
                .filter_map(|t| modules.get_key_value(t.as_str()).map(|(k, _)| k.as_str()))
                .collect();
            (name.as_str(), to)
        })
        .collect()
}

/// Picture geometry: width, the left column of layer names, a layer band's height, a
/// module's box.
const WIDTH: f64 = 1180.0;
const LEFT: f64 = 110.0;
const BAND: f64 = 150.0;
const BOX_H: f64 = 26.0;

/// Where each module's box is: layers as bands, the highest at the top; leaves by name, each
/// higher layer ordered by where its imports sit (fewer crossings).
fn positions(
    modules: &BTreeMap<String, Module>,
    graph: &BTreeMap<&str, BTreeSet<&str>>,
) -> BTreeMap<String, (f64, f64, f64)> {
    let mut pos: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for layer in 0..LAYERS.len() {
        let mut names: Vec<(f64, &str)> = modules
            .iter()
            .filter(|(_, m)| m.layer == layer)
            .map(|(n, _)| {
                let xs: Vec<f64> = graph[n.as_str()]
                    .iter()
                    .filter_map(|t| pos.get(*t).map(|p| p.0))
                    .collect();
                let mean = if xs.is_empty() {
                    0.0
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                (mean, n.as_str())
            })
            .collect();
        names.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let slot = (WIDTH - LEFT - 20.0) / names.len() as f64;
        let y = 70.0 + (LAYERS.len() - 1 - layer) as f64 * BAND + BAND / 2.0;
        for (i, (_, n)) in names.iter().enumerate() {
            let x = LEFT + slot * (i as f64 + 0.5);
            pos.insert(n.to_string(), (x, y, (slot - 8.0).min(130.0)));
        }
    }
    pos
}

/// The layer picture of docs/architecture.md, drawn from the crate itself: one band per
/// layer, a box per module, an arrow per import (grey down a layer, blue within one).
pub fn svg(modules: &BTreeMap<String, Module>) -> String {
    let graph = graph(modules);
    let pos = positions(modules, &graph);
    let height = 100.0 + LAYERS.len() as f64 * BAND;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"DejaVu Sans, sans-serif\">\n\
         <defs><marker id=\"a\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/>\
         </marker></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"20\" y=\"32\" font-size=\"18\" font-weight=\"bold\">xtask: modules in \
         layers, imports point down</text>\n<text x=\"20\" y=\"54\" font-size=\"12\" \
         fill=\"#555\">drawn from xtask/src by leaf/layers.rs; an arrow is an import (grey: \
         to a lower layer, blue: within a layer)</text>\n"
    );
    for (layer, name) in LAYERS.iter().enumerate() {
        let top = 70.0 + (LAYERS.len() - 1 - layer) as f64 * BAND;
        let fill = if layer % 2 == 0 { "#f3f6fa" } else { "#fafafa" };
        s += &format!(
            "<rect x=\"10\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" \
             stroke=\"#ccd\"/>\n<text x=\"20\" y=\"{}\" font-size=\"15\" \
             font-weight=\"bold\">{name}/</text>\n",
            WIDTH - 20.0,
            BAND - 6.0,
            top + BAND / 2.0 + 5.0
        );
    }
    // Nearly every module uses the leaves: those imports are counted, not drawn.
    let mut to_leaves = 0;
    for (from, tos) in &graph {
        for to in tos {
            if modules[*to].layer == 0 && modules[*from].layer > 0 {
                to_leaves += 1;
            } else {
                s += &arrow(pos[*from], pos[*to]);
            }
        }
    }
    s += &format!(
        "<text x=\"20\" y=\"{}\" font-size=\"11\" fill=\"#555\">+ {to_leaves} imports of \
         leaves from the layers above, not drawn</text>\n",
        height - 12.0
    );
    for (name, (x, y, w)) in &pos {
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"4\" \
             fill=\"white\" stroke=\"#333\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\" \
             text-anchor=\"middle\">{name}</text>\n",
            x - w / 2.0,
            y - BOX_H / 2.0,
            y + 4.0
        );
    }
    s + "</svg>\n"
}

/// One import's arrow: down from the bottom of one box to the top of a lower one, or within
/// a layer an arc under the boxes.
fn arrow(from: (f64, f64, f64), to: (f64, f64, f64)) -> String {
    let (x1, y1, x2) = (from.0, from.1 + BOX_H / 2.0, to.0);
    if (to.1 - from.1).abs() < 1.0 {
        let dip = y1 + 22.0 + (x2 - x1).abs() / 40.0;
        format!(
            "<path d=\"M{x1:.1},{y1:.1} Q{:.1},{dip:.1} {x2:.1},{y1:.1}\" fill=\"none\" \
             stroke=\"#2a6fdb\" stroke-width=\"1.3\" marker-end=\"url(#a)\"/>\n",
            (x1 + x2) / 2.0
        )
    } else {
        let y2 = to.1 - BOX_H / 2.0;
        format!(
            "<path d=\"M{x1:.1},{y1:.1} L{x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#888\" \
             stroke-opacity=\"0.55\" stroke-width=\"1\" marker-end=\"url(#a)\"/>\n"
        )
    }
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

    /// docs/architecture-layers.svg is the picture of the crate as it is. To redraw it:
    /// `MY_RNG_WRITE_LAYERS_SVG=1 cargo test -p xtask layers_picture`.
    #[test]
    fn layers_picture_is_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let want = svg(&read_crate(&root.join("src")).unwrap());
        let path = root.join("../docs/architecture-layers.svg");
        if std::env::var_os("MY_RNG_WRITE_LAYERS_SVG").is_some() {
            fs::write(&path, &want).unwrap();
        }
        let have = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: MY_RNG_WRITE_LAYERS_SVG=1 cargo test -p xtask layers_picture",
            path.display()
        );
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
