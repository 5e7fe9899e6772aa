//! The `@@RESULT <kind> key=value ...` record a guest stress tool prints last; the host reports
//! and judges its figures.

use std::collections::BTreeMap;
use std::fmt;

/// What a result line starts with.
pub const RESULT: &str = "@@RESULT";

crate::names! {
    /// Every record kind, as (constant name, kind).
    KINDS;
    /// The stress workers' sum.
    STRESS = "stress";
    /// The ioctl/read fuzzer.
    FUZZ = "fuzz";
    /// The users during hot-unplug cycles.
    HOTPLUG = "hotplug";
    /// The seeded streams during migrations.
    MIGRATE = "migrate";
    /// The memory map race.
    RACE = "race";
}

/// One result record: its kind and its fields in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub kind: String,
    pub fields: Vec<(String, String)>,
    /// Free text after the fields (an error's words), not read back as fields.
    pub tail: Option<String>,
}

impl Record {
    pub fn new(kind: &str) -> Record {
        Record {
            kind: kind.into(),
            ..Record::default()
        }
    }

    /// Adds `key=value`.
    pub fn field(mut self, key: &str, value: impl fmt::Display) -> Record {
        self.fields.push((key.into(), value.to_string()));
        self
    }

    /// Adds `key="text"`: the words of an error, quoted.
    pub fn quoted(self, key: &str, text: impl fmt::Display) -> Record {
        self.field(key, format!("\"{text}\""))
    }

    /// Ends the line with free text.
    pub fn tail(mut self, text: impl fmt::Display) -> Record {
        self.tail = Some(text.to_string());
        self
    }

    /// The fields of the last `@@RESULT <kind>` line in `text` (it may follow kernel noise on
    /// its line): each blank-separated `key=value` word.
    pub fn find_last(text: &str, kind: &str) -> Option<BTreeMap<String, String>> {
        let head = format!("{RESULT} {kind} ");
        let line = text
            .lines()
            .rev()
            .find_map(|l| l.find(&head).map(|i| &l[i + head.len()..]))?;
        Some(
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RESULT} {}", self.kind)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        match &self.tail {
            Some(t) => write!(f, " {t}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Record::new(FUZZ).field("calls", 5).field("failures", 0);
        let line = r.to_string();
        assert_eq!(line, "@@RESULT fuzz calls=5 failures=0");
        let got = Record::find_last(&format!("noise\n{line}\n"), FUZZ).unwrap();
        let want: BTreeMap<_, _> = r.fields.into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lines_of_real_logs() {
        // From guest-migration.log and guest-hotplug-c.log of a suite run.
        let t = "[  9.1] x\n@@RESULT migrate rounds=854 words=448387152 divergent=0 errors=2\n";
        let r = Record::find_last(t, MIGRATE).unwrap();
        assert_eq!(r["words"], "448387152");
        assert_eq!(r["errors"], "2");
        let t = "@@RESULT hotplug cycles=10 want_cycles=10 plugged=11 ops=21996 enodev=40 \
                 reopened=44 other_errors=0 stable_checks=2155 stable_failures=0 timed_out=0";
        let r = Record::find_last(t, HOTPLUG).unwrap();
        assert_eq!((r.len(), r["plugged"].as_str()), (10, "11"));
        // A record may follow kernel output on its line; the last one counts.
        let t = "@@RESULT fuzz calls=1\n[ 3.1] noise @@RESULT fuzz calls=5 failures=0\n";
        assert_eq!(Record::find_last(t, FUZZ).unwrap()["calls"], "5");
        assert_eq!(Record::find_last(t, STRESS), None);
    }

    #[test]
    fn error_records() {
        // What the tools printed on a failure to start, byte for byte.
        let r = Record::new(STRESS)
            .field("failures", 1)
            .quoted("error", "current_exe: gone");
        assert_eq!(
            r.to_string(),
            "@@RESULT stress failures=1 error=\"current_exe: gone\""
        );
        let r = Record::new(MIGRATE).field("errors", 1).tail("(no device)");
        assert_eq!(r.to_string(), "@@RESULT migrate errors=1 (no device)");
    }
}
