//! The `@@` lines on the guest's serial console: /init's step frames (`@@MYRNG BEGIN/END`),
//! its end (`@@MYRNG DONE`), the probe boot's answer, and the lines of the stress tool's modes
//! that the host waits for (`@@HP`, `@@MIG`) or the parent process sums (`@@WORKER`).

use std::collections::BTreeMap;
use std::fmt;

crate::names! {
    /// Every marker text, as (constant name, text), for the shell file.
    ALL;
    /// What every /init marker starts with.
    PREFIX = "@@MYRNG ";
    /// `@@MYRNG BEGIN <step>`.
    BEGIN = "@@MYRNG BEGIN";
    /// `@@MYRNG END <step> secs=<s.cc> rc=<rc>`.
    END = "@@MYRNG END";
    /// /init is done; the guest reboots.
    DONE = "@@MYRNG DONE";
    /// The probe boot's whole output.
    PROBE_OK = "@@MYRNG PROBE-OK";
    /// The END marker's step time key (the guest's /proc/uptime, 0.01 s).
    SECS_KEY = "secs=";
    /// The END marker's exit code key; it stays last.
    RC_KEY = "rc=";
    /// A stress worker's counts, `@@WORKER <i> key=value ...`, summed by the parent.
    WORKER = "@@WORKER";
    /// The hot-plug monitor: the device is bound and its node present, `@@HP up <n> <node>`.
    HP_UP = "@@HP up";
    /// The hot-plug monitor: the device is gone, `@@HP down <n>`.
    HP_DOWN = "@@HP down";
    /// The hot-plug users: the other device returned wrong numbers.
    HP_STABLE_FAILURE = "@@HP stable-device failure";
    /// The migrate mode's reader has its expected streams and starts reading.
    MIG_READY = "@@MIG ready";
}

/// One /init marker.
#[derive(Clone, Debug, PartialEq)]
pub enum Marker {
    Begin(String),
    End {
        name: String,
        /// Absent in the markers of an older /init.
        secs: Option<f64>,
        /// -1 if unreadable.
        rc: i32,
    },
    Done,
    ProbeOk,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Marker::Begin(name) => write!(f, "{BEGIN} {name}"),
            Marker::End { name, secs, rc } => {
                write!(f, "{END} {name} ")?;
                if let Some(s) = secs {
                    write!(f, "{SECS_KEY}{s:.2} ")?;
                }
                write!(f, "{RC_KEY}{rc}")
            }
            Marker::Done => f.write_str(DONE),
            Marker::ProbeOk => f.write_str(PROBE_OK),
        }
    }
}

/// A marker can share its line with firmware output (SeaBIOS clears the screen with escape
/// sequences and no newline): the line from the marker on, or the whole line.
pub fn start(line: &str) -> &str {
    match line.find(PREFIX) {
        Some(i) => &line[i..],
        None => line,
    }
}

/// Strips `word` and the blank after it (or the end of the line).
fn after<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix(' ')
}

impl Marker {
    /// The marker on `line` (see [`start`]), if any.
    pub fn parse(line: &str) -> Option<Marker> {
        let line = start(line);
        if let Some(name) = after(line, BEGIN) {
            return Some(Marker::Begin(name.trim().to_string()));
        }
        if let Some(rest) = after(line, END) {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            let rc = rest
                .rsplit(RC_KEY)
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(-1);
            let secs = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix(SECS_KEY)?.parse().ok());
            return Some(Marker::End { name, secs, rc });
        }
        if line.starts_with(DONE) {
            return Some(Marker::Done);
        }
        line.starts_with(PROBE_OK).then_some(Marker::ProbeOk)
    }

    /// Whether `line` ends the boot's /init output (DONE, or the probe boot's answer).
    pub fn ends_boot(line: &str) -> bool {
        matches!(Marker::parse(line), Some(Marker::Done | Marker::ProbeOk))
    }
}

/// One framed step of the serial log.
#[derive(Clone, Debug, PartialEq)]
pub struct Framed {
    /// The lines between the markers, each ending in a newline. Kernel messages printed to
    /// the console in the middle of a step stay in it.
    pub text: String,
    pub rc: i32,
    /// From the END marker's `secs=`.
    pub secs: Option<f64>,
}

/// The finished steps of a serial log by name; a step without END did not finish and is
/// left out. The END marker's own name is not needed: it closes the open step.
pub fn frames(log: &str) -> BTreeMap<String, Framed> {
    let mut steps = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in log.lines() {
        match Marker::parse(line) {
            Some(Marker::Begin(name)) => cur = Some((name, String::new())),
            Some(Marker::End { secs, rc, .. }) => {
                if let Some((name, text)) = cur.take() {
                    steps.insert(name, Framed { text, rc, secs });
                }
            }
            _ => {
                if let Some((_, text)) = cur.as_mut() {
                    text.push_str(start(line));
                    text.push('\n');
                }
            }
        }
    }
    steps
}

/// The hot-plug monitor's line for the `n`th plug.
pub fn hp_up(n: u32, node: &str) -> String {
    format!("{HP_UP} {n} {node}")
}

/// What the host waits for before the `n`th unplug: the start of [`hp_up`]'s line.
pub fn hp_up_start(n: u32) -> String {
    format!("{HP_UP} {n} ")
}

/// The hot-plug monitor's line for the `n`th unplug.
pub fn hp_down(n: u32) -> String {
    format!("{HP_DOWN} {n}")
}

/// A stress worker's result line's head, `@@WORKER <i>`.
pub fn worker(i: u32) -> String {
    format!("{WORKER} {i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(name: &str, secs: Option<f64>, rc: i32) -> Marker {
        let name = name.into();
        Marker::End { name, secs, rc }
    }

    #[test]
    fn round_trips() {
        for m in [
            Marker::Begin("rngtest-hwrng".into()),
            end("e2e", Some(38.07), 0),
            end("bad", Some(0.0), 2),
            end("old", None, 0),
            Marker::Done,
            Marker::ProbeOk,
        ] {
            assert_eq!(Marker::parse(&m.to_string()), Some(m.clone()), "{m}");
        }
    }

    #[test]
    fn lines_of_real_logs() {
        // Copied from target/my-rng/guest-*.log of a suite run (the shell /init's output).
        let boot = "Booting from ROM..\x1b[c\x1b[?7l\x1b[2J\x1b[0m.\r@@MYRNG BEGIN pci";
        assert_eq!(Marker::parse(boot), Some(Marker::Begin("pci".into())));
        let e = "@@MYRNG END rngtest-hwrng secs=0.09 rc=0";
        assert_eq!(Marker::parse(e), Some(end("rngtest-hwrng", Some(0.09), 0)));
        assert_eq!(
            Marker::parse("@@MYRNG END e2e secs=4.16 rc=1"),
            Some(end("e2e", Some(4.16), 1))
        );
        assert_eq!(Marker::parse("@@MYRNG DONE"), Some(Marker::Done));
        assert_eq!(Marker::parse("@@MYRNG PROBE-OK"), Some(Marker::ProbeOk));
        assert!(Marker::ends_boot("@@MYRNG DONE"));
        assert!(!Marker::ends_boot("@@MYRNG BEGIN dmesg"));
        assert_eq!(
            Marker::parse("[  1.2] my_rng 0000:00:03.0: MSI interrupt"),
            None
        );
        assert_eq!(Marker::parse("@@MYRNG BEGINNER x"), None);
    }

    #[test]
    fn display_is_what_init_prints() {
        // /init's printf: '@@MYRNG END %s secs=%d.%02d rc=%d'.
        assert_eq!(
            end("my-app", Some(0.4), 0).to_string(),
            "@@MYRNG END my-app secs=0.40 rc=0"
        );
        assert_eq!(Marker::Begin("e2e".into()).to_string(), "@@MYRNG BEGIN e2e");
    }

    #[test]
    fn frames_of_a_log() {
        let log = "Booting from ROM..\x1b[2J@@MYRNG BEGIN demo\nRound 0 number 0: 1\n\
                   @@MYRNG END demo rc=0\n@@MYRNG BEGIN e2e\nok\n\
                   @@MYRNG END e2e secs=38.07 rc=3\n@@MYRNG BEGIN cut\nhalf\n";
        let f = frames(log);
        assert_eq!(f["demo"].text, "Round 0 number 0: 1\n");
        assert_eq!((f["demo"].rc, f["demo"].secs), (0, None));
        assert_eq!((f["e2e"].rc, f["e2e"].secs), (3, Some(38.07)));
        assert!(!f.contains_key("cut"), "a step without END did not finish");
    }

    #[test]
    fn stress_tool_lines() {
        // As in guest-hotplug-c.log and guest-stress-c.log.
        assert_eq!(
            hp_up(1, "/dev/my_rng_driver1"),
            "@@HP up 1 /dev/my_rng_driver1"
        );
        assert!(hp_up(11, "/dev/x").starts_with(&hp_up_start(11)));
        assert!(!hp_up(11, "/dev/x").starts_with(&hp_up_start(1)));
        assert_eq!(hp_down(10), "@@HP down 10");
        assert_eq!(worker(0), "@@WORKER 0");
    }
}
