//! Applies a component (qemu/ or linux/) to an upstream source tree.
//!
//! A component declares its edits of existing upstream files in `integration.txt`, one per line:
//! `<path in tree>\t<mode>\t<snippet path>[\tlead=<n>]` with mode `top`, `after:<exact line>`
//! or `before:<exact line>`. `lead=<n>` keeps only n context lines above the edit in the
//! deliverable patch, for an anchor whose lines above differ between the trees the patch must
//! apply to (the build trees are not affected). Whole new files are copied to the same relative
//! path. The same computed change set feeds the build trees and the deliverable patches, so they
//! cannot drift.

use crate::util::{read, write_if_changed};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// One file of the upstream tree as the component wants it.
pub struct Change {
    /// Path relative to the tree root.
    pub path: String,
    /// Upstream content; `None` for a file the component adds.
    pub original: Option<String>,
    pub modified: String,
    /// Context lines the deliverable patch keeps above each hunk (`lead=<n>`); `None`: diff's.
    pub lead: Option<usize>,
}

/// A component: where its files live and which of them are new upstream files.
pub struct Component {
    /// Folder holding integration.txt and the snippets.
    pub dir: PathBuf,
    /// (path in tree, file in repo) for each whole file the component adds.
    pub new_files: Vec<(String, PathBuf)>,
}

enum Mode {
    Top,
    After(String),
    Before(String),
}

fn parse_mode(s: &str) -> Result<Mode> {
    if s == "top" {
        Ok(Mode::Top)
    } else if let Some(l) = s.strip_prefix("after:") {
        Ok(Mode::After(l.to_string()))
    } else if let Some(l) = s.strip_prefix("before:") {
        Ok(Mode::Before(l.to_string()))
    } else {
        bail!("unknown insertion mode `{s}` (expected top, after:<line>, before:<line>)")
    }
}

/// The optional fourth field: `lead=<n>`.
fn parse_lead(s: &str) -> Result<usize> {
    s.strip_prefix("lead=")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unknown option `{s}` (expected lead=<lines>)"))
}

/// Inserts `snippet` into `text` as `mode` says; errors if the anchor line is missing.
fn insert(text: &str, mode: &Mode, snippet: &str) -> Result<String> {
    let snippet = if snippet.ends_with('\n') {
        snippet.to_string()
    } else {
        format!("{snippet}\n")
    };
    let (anchor, after) = match mode {
        Mode::Top => return Ok(format!("{snippet}{text}")),
        Mode::After(a) => (a, true),
        Mode::Before(a) => (a, false),
    };
    let mut out = String::with_capacity(text.len() + snippet.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let is_anchor = !done && line.trim_end_matches('\n') == anchor;
        if is_anchor && !after {
            out.push_str(&snippet);
        }
        out.push_str(line);
        if is_anchor {
            if after {
                out.push_str(&snippet);
            }
            done = true;
        }
    }
    if !done {
        bail!("anchor line not found: `{anchor}`");
    }
    Ok(out)
}

impl Component {
    /// Computes every changed or added file against the upstream tree `tree`.
    pub fn changes(&self, tree: &Path) -> Result<Vec<Change>> {
        self.changes_over(tree, Vec::new())
    }

    /// Like `changes`, on top of another component's change set `base`: a file both edit gets
    /// both edits (this component's after `base`'s).
    pub fn changes_over(&self, tree: &Path, base: Vec<Change>) -> Result<Vec<Change>> {
        let spec = self.dir.join("integration.txt");
        let mut edited: Vec<Change> = base;
        let lines = if spec.exists() {
            read(&spec)?
        } else {
            String::new()
        };
        for (n, line) in lines.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if !(3..=4).contains(&f.len()) {
                bail!(
                    "{}:{}: expected 3 or 4 tab-separated fields",
                    spec.display(),
                    n + 1
                );
            }
            let lead = f.get(3).map(|o| parse_lead(o)).transpose()?;
            let mode = parse_mode(f[1])?;
            let snippet = read(&self.dir.join(f[2]))?;
            let pos = edited.iter().position(|c| c.path == f[0]);
            let idx = match pos {
                Some(i) => i,
                None => {
                    let upstream = read(&tree.join(f[0]))?;
                    edited.push(Change {
                        path: f[0].to_string(),
                        original: Some(upstream.clone()),
                        modified: upstream,
                        lead: None,
                    });
                    edited.len() - 1
                }
            };
            let c = &mut edited[idx];
            c.lead = lead.or(c.lead);
            c.modified = insert(&c.modified, &mode, &snippet)
                .with_context(|| format!("{}:{}: {}", spec.display(), n + 1, f[0]))?;
        }
        for (path, src) in &self.new_files {
            if tree.join(path).exists() {
                bail!("{path} already exists upstream in {}", tree.display());
            }
            edited.push(Change {
                path: path.clone(),
                original: None,
                modified: read(src)?,
                lead: None,
            });
        }
        edited.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(edited)
    }

    /// Brings `work` (a copy of `pristine`) to pristine + this component, touching only files
    /// whose content changes, and restoring files a previous application edited but this one
    /// no longer does.
    pub fn apply(&self, pristine: &Path, work: &Path) -> Result<usize> {
        apply_changes(&self.changes(pristine)?, pristine, work)
    }
}

/// Brings `work` (a copy of `pristine`) to pristine + `changes`, as [`Component::apply`].
pub fn apply_changes(changes: &[Change], pristine: &Path, work: &Path) -> Result<usize> {
    let record = work.join(".my-rng-applied");
    let previous = fs::read_to_string(&record).unwrap_or_default();
    for old in previous.lines() {
        if changes.iter().any(|c| c.path == old) {
            continue;
        }
        let up = pristine.join(old);
        if up.exists() {
            fs::copy(&up, work.join(old))?;
        } else {
            let _ = fs::remove_file(work.join(old));
        }
    }
    let mut written = 0;
    for c in changes {
        if write_if_changed(&work.join(&c.path), c.modified.as_bytes())? {
            written += 1;
        }
    }
    let list: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    // Only when it changes: a current tree is not written at all.
    write_if_changed(&record, list.join("\n").as_bytes())?;
    Ok(written)
}

/// Lists files below `root/sub` as (path relative to `root`, absolute path), sorted.
pub fn files_below(root: &Path, sub: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(sub)];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_modes() {
        let t = "a\nb\nc\n";
        assert_eq!(insert(t, &Mode::Top, "x").unwrap(), "x\na\nb\nc\n");
        assert_eq!(
            insert(t, &Mode::After("b".into()), "x\n").unwrap(),
            "a\nb\nx\nc\n"
        );
        assert_eq!(
            insert(t, &Mode::Before("b".into()), "x\n").unwrap(),
            "a\nx\nb\nc\n"
        );
        assert!(insert(t, &Mode::After("zz".into()), "x").is_err());
    }

    #[test]
    fn anchor_must_match_whole_line() {
        assert!(insert("abc\n", &Mode::After("ab".into()), "x").is_err());
        // Only the first occurrence is used.
        assert_eq!(
            insert("a\na\n", &Mode::After("a".into()), "x").unwrap(),
            "a\nx\na\n"
        );
    }

    #[test]
    fn lead_option_parses() {
        assert_eq!(parse_lead("lead=0").unwrap(), 0);
        assert!(parse_lead("lead=x").is_err());
        assert!(parse_lead("context=1").is_err());
    }

    #[test]
    fn modes_parse() {
        assert!(matches!(parse_mode("top").unwrap(), Mode::Top));
        assert!(matches!(parse_mode("after:x").unwrap(), Mode::After(s) if s == "x"));
        assert!(parse_mode("middle").is_err());
    }
}
