//! The in-guest e2e program's lines: one per test, then the summary `N passed, M failed` that
//! the host's verdict reads.

use std::fmt;

/// A passed test: `ok - <name>`.
pub const OK: &str = "ok - ";
/// A failed test: `not ok - <name>: <reason>`.
pub const NOT_OK: &str = "not ok - ";
/// A test that does not apply: `skip - <name>: <why>`.
pub const SKIP: &str = "skip - ";

/// The closing line's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

impl Summary {
    /// The counts of one summary line (blanks around it ignored).
    pub fn parse(line: &str) -> Option<Summary> {
        let (p, f) = line.trim().split_once(" passed, ")?;
        let f = f.strip_suffix(" failed")?;
        Some(Summary {
            passed: p.parse().ok()?,
            failed: f.parse().ok()?,
        })
    }

    /// The last summary line of the program's output.
    pub fn find_last(text: &str) -> Option<Summary> {
        text.lines().rev().find_map(Summary::parse)
    }
}

/// The line before the summary when tests did not apply.
pub fn not_applicable(skipped: usize) -> String {
    format!("{skipped} not applicable (not counted)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Summary {
            passed: 57,
            failed: 1,
        };
        assert_eq!(s.to_string(), "57 passed, 1 failed");
        assert_eq!(Summary::parse(&s.to_string()), Some(s));
    }

    #[test]
    fn output_of_real_runs() {
        // The end of the e2e step in guest-test.log.
        let t = "ok - dma-unbind-while-reading\nok - kmsg-clean\n57 passed, 0 failed\n";
        let s = Summary::find_last(t).unwrap();
        assert_eq!((s.passed, s.failed), (57, 0));
        assert_eq!(Summary::find_last("ok - a\n"), None);
        assert_eq!(Summary::parse("x passed, 0 failed"), None);
        assert_eq!(Summary::parse("1 passed, 0 failed, 2 skipped"), None);
        assert_eq!(not_applicable(2), "2 not applicable (not counted)");
    }
}
