//! Small helpers shared by every pipeline step: paths, command execution, cache keys.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Root of the repository (the workspace root, one level above xtask/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Where builds are cached: outside the repo so a clean clone reuses them.
/// `MY_RNG_CACHE` overrides the default `~/.cache/my-rng`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MY_RNG_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("my-rng")
}

/// Artifacts of this checkout that other tools read (manifest, initramfs, logs).
pub fn out_dir() -> PathBuf {
    repo_root().join("target").join("my-rng")
}

/// Prints a step banner to stderr; long operations announce themselves so a user sees progress.
pub fn step(msg: &str) {
    eprintln!("\x1b[1m==> {msg}\x1b[0m");
}

pub fn note(msg: &str) {
    eprintln!("    {msg}");
}

/// Runs a command with inherited stdio, failing with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = describe(cmd);
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !status.success() {
        bail!("`{desc}` failed ({status})");
    }
    let secs = start.elapsed().as_secs();
    if secs >= 10 {
        note(&format!("({secs} s) {desc}"));
    }
    Ok(())
}

/// Runs a command, capturing stdout; stderr goes to the terminal.
pub fn output(cmd: &mut Command) -> Result<String> {
    let desc = describe(cmd);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{desc}`"))?;
    if !out.status.success() {
        bail!("`{desc}` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command quietly, with its combined output saved to `log`; the log tail is shown on failure.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let desc = describe(cmd);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::File::create(log)?;
    let start = Instant::now();
    let status = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot start `{desc}`"))?;
    finish_logged(&desc, status, log, start)
}

/// The end of a logged command: on failure the log's tail and an error, else the time note.
fn finish_logged(desc: &str, status: ExitStatus, log: &Path, start: Instant) -> Result<()> {
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("    | {line}");
        }
        bail!("`{desc}` failed ({status}); full log: {}", log.display());
    }
    note(&format!(
        "({} s) {desc} [log: {}]",
        start.elapsed().as_secs(),
        log.display()
    ));
    Ok(())
}

/// Which of a build's output lines count as its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    /// kbuild's quiet-mode actions ("  CC      kernel/fork.o"), against an expected total.
    Kbuild,
    /// ninja's "[n/m] " line prefix, which carries its own total.
    Ninja,
}

/// How [`run_logged_progress`] follows a long build: what it counts, against which total, and
/// the label shown after the figures.
pub struct Progress {
    label: String,
    counted: Counted,
    /// Expected total and whether it is a guess (shown `~m`); None: unknown.
    total: Option<(u64, bool)>,
    /// kbuild: the file that keeps this build's count for the next build of the same output
    /// folder, and whether this build starts from an empty folder.
    record: Option<(PathBuf, bool)>,
}

impl Progress {
    /// A ninja build: ninja prints its own `[n/m]`.
    pub fn ninja(label: &str) -> Progress {
        Progress {
            label: label.into(),
            counted: Counted::Ninja,
            total: None,
            record: None,
        }
    }

    /// A kbuild build into an output folder whose counts are kept in `record`. `scratch`: the
    /// folder has no previous build (the full count is expected); `estimate`: the full count
    /// when no build of this folder has recorded one yet.
    pub fn kbuild(label: &str, record: &Path, scratch: bool, estimate: u64) -> Progress {
        let text = fs::read_to_string(record).ok();
        Progress {
            label: label.into(),
            counted: Counted::Kbuild,
            total: expected_total(text.as_deref(), scratch, estimate),
            record: Some((record.to_path_buf(), scratch)),
        }
    }
}

/// A recorded count: `key N` on its own line.
fn recorded(text: Option<&str>, key: &str) -> Option<u64> {
    text?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The total a kbuild build is measured against. A build from scratch expects the last
/// recorded full build's count (exact for the same configuration), else the estimate; an
/// incremental build expects about what the previous build did (editing one file rebuilds
/// about the same again), unknown if nothing is recorded.
fn expected_total(record: Option<&str>, scratch: bool, estimate: u64) -> Option<(u64, bool)> {
    if scratch {
        Some(match recorded(record, "full") {
            Some(n) => (n, false),
            None => (estimate, true),
        })
    } else {
        recorded(record, "last").map(|n| (n, true))
    }
}

/// The record after a successful build that counted `count` steps: the full count is only
/// learnt from a build from scratch.
fn record_text(previous: Option<&str>, scratch: bool, count: u64) -> String {
    let full = if scratch {
        Some(count)
    } else {
        recorded(previous, "full")
    };
    let mut s = String::new();
    if let Some(f) = full {
        s.push_str(&format!("full {f}\n"));
    }
    s.push_str(&format!("last {count}\n"));
    s
}

/// Whether `line` is one of kbuild's quiet-mode action lines: two spaces, a tag of upper-case
/// letters, digits or `_` (CC, LD, AR, RUSTC, BINDGEN, HOSTCC, EXPORTS, ...), optionally
/// `[M]`, then the target. Messages such as "Kernel: arch/x86/boot/bzImage is ready" and
/// make's own lines do not start so.
fn kbuild_action(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    let tag: &str = rest.split(' ').next().unwrap_or_default();
    !tag.is_empty()
        && tag.starts_with(|c: char| c.is_ascii_uppercase())
        && tag
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && rest.len() > tag.len()
}

/// ninja's status prefix "[n/m] " (its default NINJA_STATUS).
fn ninja_status(line: &str) -> Option<(u64, u64)> {
    let (figures, _) = line.strip_prefix('[')?.split_once("] ")?;
    let (n, m) = figures.split_once('/')?;
    Some((n.parse().ok()?, m.parse().ok()?))
}

/// "42 s", "2 min 10 s".
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// Percent done; a total that turned out too small never shows more than 99 % while the
/// build runs.
fn percent(done: u64, total: u64) -> u64 {
    (done * 100).checked_div(total).unwrap_or(0).min(99)
}

/// The progress line: "    [1234/2100] 58% kernel (Linux 7.3, guest) 2 min 10 s". A guessed
/// total is shown `~m`; a count past the total raises it to the count.
fn progress_line(done: u64, total: Option<(u64, bool)>, label: &str, elapsed: Duration) -> String {
    let time = minutes(elapsed);
    match total {
        Some((m, guess)) => {
            let shown = m.max(done);
            let tilde = if guess || done > m { "~" } else { "" };
            format!(
                "    [{done}/{tilde}{shown}] {}% {label} {time}",
                percent(done, shown)
            )
        }
        None => format!("    [{done}] {label} {time}"),
    }
}

/// When to show progress: on a terminal, one line rewritten at most every 0.5 s; in a log
/// (CI), a new line at most every 30 s or at each further 10 %, so a long build leaves a few
/// dozen lines at most.
struct Pace {
    tty: bool,
    last: Option<Duration>,
    last_tenth: u64,
}

impl Pace {
    fn due(&mut self, now: Duration, pct: Option<u64>) -> bool {
        let tenth = pct.map_or(0, |p| p / 10);
        let due = match self.last {
            None if self.tty => true,
            None => now >= Duration::from_secs(30) || tenth > self.last_tenth,
            Some(t) if self.tty => now >= t + Duration::from_millis(500),
            Some(t) => now >= t + Duration::from_secs(30) || tenth > self.last_tenth,
        };
        if due {
            self.last = Some(now);
            self.last_tenth = tenth;
        }
        due
    }
}

/// Longest progress line on a terminal: a wrapped line cannot be rewritten with `\r`.
const TTY_WIDTH: usize = 79;

/// [`run_logged`] for long builds: the output still goes whole to `log`, and progress (steps
/// done of the expected total, time) is shown on stderr meanwhile. stdout and stderr are read
/// by a thread each, so their lines interleave in the log about as the build printed them.
pub fn run_logged_progress(cmd: &mut Command, log: &Path, progress: Progress) -> Result<()> {
    let desc = describe(cmd);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = std::io::LineWriter::new(fs::File::create(log)?);
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{desc}`"))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let readers = [
        pump_lines(child.stdout.take().expect("piped"), tx.clone()),
        pump_lines(child.stderr.take().expect("piped"), tx),
    ];
    let tty = std::io::stderr().is_terminal();
    let mut pace = Pace {
        tty,
        last: None,
        last_tenth: 0,
    };
    let (mut done, mut total) = (0u64, progress.total);
    let mut drawn = false;
    loop {
        let ended = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                file.write_all(&line)?;
                file.write_all(b"\n")?;
                let text = String::from_utf8_lossy(&line);
                progress.count(&text, &mut done, &mut total);
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        if ended {
            break;
        }
        let pct = total.map(|(m, _)| percent(done, m.max(done)));
        if pace.due(start.elapsed(), pct) {
            let line = progress_line(done, total, &progress.label, start.elapsed());
            drawn |= show_progress(&line, tty);
        }
    }
    for r in readers {
        let _ = r.join();
    }
    file.flush()?;
    let status = child.wait()?;
    if drawn {
        eprint!("\r\x1b[2K");
    }
    if status.success() {
        progress.keep(done);
    }
    finish_logged(&desc, status, log, start)
}

impl Progress {
    /// Counts one output line: a kbuild action, or ninja's own `[n/m]`.
    fn count(&self, text: &str, done: &mut u64, total: &mut Option<(u64, bool)>) {
        match self.counted {
            Counted::Kbuild => *done += u64::from(kbuild_action(text)),
            Counted::Ninja => {
                if let Some((n, m)) = ninja_status(text) {
                    (*done, *total) = (n, Some((m, false)));
                }
            }
        }
    }

    /// After a successful build: its count, for the next build's display (kbuild).
    fn keep(&self, done: u64) {
        if let Some((path, scratch)) = &self.record {
            let previous = fs::read_to_string(path).ok();
            // Only a hint for the next build's display: failing to keep it costs nothing else.
            let _ = fs::write(path, record_text(previous.as_deref(), *scratch, done));
        }
    }
}

/// A progress line: redrawn in place on a terminal (true: something is drawn), else one
/// line each.
fn show_progress(line: &str, tty: bool) -> bool {
    if tty {
        let line: String = line.chars().take(TTY_WIDTH).collect();
        eprint!("\r\x1b[2K{line}");
        true
    } else {
        eprintln!("{line}");
        false
    }
}

/// Sends `r`'s lines (without the newline) to `tx` until end of file.
fn pump_lines(
    r: impl std::io::Read + Send + 'static,
    tx: mpsc::Sender<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).split(b'\n') {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    })
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Writes `content` only if it differs, so unchanged inputs keep their mtime and make/ninja
/// rebuild only what really changed.
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool> {
    if fs::read(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // Work trees are hard-linked copies of pristine trees: unlink first so the pristine file
    // keeps its content.
    let _ = fs::remove_file(path);
    fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Hex SHA-256 of several labelled inputs: the key under which a build is cached.
pub fn key_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Number of parallel build jobs: all cores (2 here).
pub fn jobs() -> String {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .to_string()
}

/// The date and time now, UTC, as the records print it.
pub fn today() -> String {
    output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|_| "unknown date".into())
}

/// A QMP socket path short enough for sun_path wherever the checkout is.
pub fn socket(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("my-rng-{}-{name}.sock", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kbuild_actions_are_recognised() {
        for l in [
            "  CC      kernel/fork.o",
            "  CC [M]  /root/.cache/my-rng/linux-7.3/module/my-rng.o",
            "  AS      arch/x86/entry/entry_64.o",
            "  LD      vmlinux.o",
            "  AR      lib/lib.a",
            "  RUSTC L rust/core.o",
            "  BINDGEN rust/bindings/bindings_generated.rs",
            "  HOSTCC  scripts/kconfig/conf.o",
            "  EXPORTS rust/exports_core_generated.h",
            "  DESCEND objtool",
            "  LD [M]  drivers/misc/my_rng.ko",
        ] {
            assert!(kbuild_action(l), "{l:?}");
        }
        for l in [
            "Kernel: arch/x86/boot/bzImage is ready  (#4)",
            "make[1]: Entering directory '/root/.cache/my-rng/linux-7.3/build'",
            "  123 |         int x;",
            "  Kernel: not a tag",
            "   CC      three spaces",
            "  CC",
            "",
            "drivers/misc/my-rng.c:12:5: warning: unused variable",
        ] {
            assert!(!kbuild_action(l), "{l:?}");
        }
    }

    #[test]
    fn ninja_status_is_read() {
        assert_eq!(
            ninja_status("[12/1652] Compiling C object libcommon.a.p/hw_misc_my-rng.c.o"),
            Some((12, 1652))
        );
        assert_eq!(ninja_status("ninja: Entering directory `build'"), None);
        assert_eq!(ninja_status("[x/3] no"), None);
        assert_eq!(ninja_status("[1/2]no space"), None);
    }

    #[test]
    fn totals_come_from_the_record_or_the_estimate() {
        // First build of a folder: the committed estimate, marked as a guess.
        assert_eq!(expected_total(None, true, 2500), Some((2500, true)));
        // An old folder built before counts were kept: nothing to go on.
        assert_eq!(expected_total(None, false, 2500), None);
        let rec = record_text(None, true, 2412);
        assert_eq!(rec, "full 2412\nlast 2412\n");
        assert_eq!(expected_total(Some(&rec), true, 2500), Some((2412, false)));
        assert_eq!(expected_total(Some(&rec), false, 2500), Some((2412, true)));
        // An incremental build keeps the full count and records its own.
        let rec = record_text(Some(&rec), false, 7);
        assert_eq!(rec, "full 2412\nlast 7\n");
        assert_eq!(expected_total(Some(&rec), false, 2500), Some((7, true)));
        assert_eq!(expected_total(Some(&rec), true, 2500), Some((2412, false)));
        assert_eq!(record_text(None, false, 7), "last 7\n");
        assert_eq!(expected_total(Some("garbage"), true, 9), Some((9, true)));
    }

    #[test]
    fn progress_lines() {
        let t = Duration::from_secs(130);
        assert_eq!(
            progress_line(1234, Some((2100, false)), "kernel (Linux 7.3, guest)", t),
            "    [1234/2100] 58% kernel (Linux 7.3, guest) 2 min 10 s"
        );
        assert_eq!(
            progress_line(1234, Some((2100, true)), "k", Duration::from_secs(42)),
            "    [1234/~2100] 58% k 42 s"
        );
        // Past the expected total: the total follows the count, never more than 99 %.
        assert_eq!(
            progress_line(2600, Some((2500, false)), "k", t),
            "    [2600/~2600] 99% k 2 min 10 s"
        );
        assert_eq!(
            progress_line(3, Some((0, true)), "k", t),
            "    [3/~3] 99% k 2 min 10 s"
        );
        assert_eq!(
            progress_line(0, Some((0, true)), "k", t),
            "    [0/~0] 0% k 2 min 10 s"
        );
        assert_eq!(progress_line(5, None, "k", t), "    [5] k 2 min 10 s");
        assert_eq!(percent(50, 100), 50);
        assert_eq!(percent(100, 100), 99);
    }

    #[test]
    fn pace_on_a_terminal_and_in_a_log() {
        let ms = Duration::from_millis;
        let mut tty = Pace {
            tty: true,
            last: None,
            last_tenth: 0,
        };
        assert!(tty.due(ms(10), Some(0)));
        assert!(!tty.due(ms(400), Some(50)));
        assert!(tty.due(ms(510), Some(50)));
        let mut log = Pace {
            tty: false,
            last: None,
            last_tenth: 0,
        };
        assert!(!log.due(ms(10), Some(5)), "nothing worth a line yet");
        assert!(log.due(ms(1000), Some(12)), "10 % passed");
        assert!(!log.due(ms(2000), Some(19)));
        assert!(log.due(ms(2500), Some(20)), "20 % passed");
        assert!(!log.due(ms(20_000), Some(21)));
        assert!(log.due(ms(32_500), Some(21)), "30 s passed");
        let mut unknown = Pace {
            tty: false,
            last: None,
            last_tenth: 0,
        };
        assert!(!unknown.due(ms(29_000), None));
        assert!(unknown.due(ms(30_000), None));
        assert!(!unknown.due(ms(59_000), None));
        assert!(unknown.due(ms(60_000), None));
    }

    #[test]
    fn logged_progress_keeps_the_whole_output() {
        let dir = std::env::temp_dir().join(format!("xtask-progress-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("b.log");
        let record = dir.join(".my-rng-objects");
        run_logged_progress(
            Command::new("sh").arg("-c").arg(
                "echo '  CC      a.o'; echo '  LD      b' >&2; echo 'Kernel: ready'; \
                 printf '  AR      c.a'",
            ),
            &log,
            Progress::kbuild("test", &record, true, 10),
        )
        .unwrap();
        let text = fs::read_to_string(&log).unwrap();
        for l in [
            "  CC      a.o",
            "  LD      b",
            "Kernel: ready",
            "  AR      c.a",
        ] {
            assert!(text.lines().any(|x| x == l), "{l:?} in {text:?}");
        }
        assert_eq!(text.lines().count(), 4);
        assert_eq!(fs::read_to_string(&record).unwrap(), "full 3\nlast 3\n");
        let err = run_logged_progress(
            Command::new("sh").arg("-c").arg("echo broken; exit 3"),
            &log,
            Progress::ninja("test"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("failed"), "{err:#}");
        assert_eq!(fs::read_to_string(&log).unwrap(), "broken\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
