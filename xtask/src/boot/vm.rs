//! Boots the built QEMU with the guest kernel and initramfs, headless and always under a timeout,
//! and picks the framed results (the protocol crate's BEGIN/END markers) out of the serial console.

use crate::qemu::FIRMWARE_DIRS;
use crate::util::{cache_dir, note, out_dir, step};
use anyhow::{bail, Context, Result};
use my_rng_protocol::{marker, Marker, Mode};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Vm {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// Number of my_rng devices to plug in.
    pub devices: usize,
    /// More QEMU arguments for every boot of this VM (the Rust device: shared RAM and its
    /// vfio-user-pci devices, see vfio_user.rs).
    pub extra_args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            // No 5-level paging: with it, a KASAN kernel reports a wild access when an
            // interrupt comes while identify_cpu() has cleared the CPU's feature bits (LA57
            // included), which changes where KASAN thinks kernel memory starts (seen in about
            // one debug boot of 15, at 0.007 s, before any driver). The guest has no use for it.
            Accel::Tcg => &["-accel", "tcg", "-cpu", "max,la57=off"],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (software emulation)",
        }
    }

    /// The short name, as in `-accel`.
    pub fn short(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }

    fn from_short(s: &str) -> Option<Accel> {
        [Accel::Kvm, Accel::Tcg]
            .into_iter()
            .find(|a| a.short() == s)
    }
}

/// One boot's options: what the guest's /init does (MYRNG_MODE), its time limit, and what this
/// boot adds to the VM's usual command line.
pub struct Boot {
    pub mode: Mode,
    pub limit: Duration,
    /// Show the framed steps live.
    pub echo: bool,
    /// Extra `-device` arguments, after the my_rng devices.
    pub devices: Vec<String>,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// Names the serial log, target/my-rng/guest-<log>.log (default: the mode).
    pub log: String,
    /// The driver that binds the my_rng devices (the other one is kept out).
    pub driver: crate::cli::Driver,
    /// A QMP socket for a controller (see [`Vm::boot_controlled`]).
    pub qmp: Option<PathBuf>,
    /// The machine type (default `pc`).
    pub machine: String,
    /// Guest RAM (default 512M).
    pub memory: String,
    /// `-device` ids for the my_rng devices (`rng0`, `rng1`, ...), so QMP can unplug them.
    pub device_ids: bool,
}

impl Boot {
    pub fn new(mode: Mode, limit: Duration) -> Boot {
        Boot {
            mode,
            log: mode.as_str().into(),
            limit,
            echo: false,
            devices: Vec::new(),
            append: Vec::new(),
            driver: Default::default(),
            qmp: None,
            machine: "pc".into(),
            memory: "512M".into(),
            device_ids: false,
        }
    }

    /// A QMP socket at `path` (see [`Vm::boot_controlled`]).
    pub fn qmp(mut self, path: &Path) -> Boot {
        self.qmp = Some(path.to_path_buf());
        self
    }

    pub fn memory(mut self, m: &str) -> Boot {
        self.memory = m.into();
        self
    }

    /// Name the my_rng devices rng0, rng1, ... (for QMP device_del).
    pub fn device_ids(mut self) -> Boot {
        self.device_ids = true;
        self
    }

    pub fn echo(mut self) -> Boot {
        self.echo = true;
        self
    }

    pub fn device(mut self, d: &str) -> Boot {
        self.devices.push(d.into());
        self
    }

    pub fn append(mut self, word: &str) -> Boot {
        self.append.push(word.into());
        self
    }

    pub fn driver(mut self, d: crate::cli::Driver) -> Boot {
        self.driver = d;
        self
    }

    pub fn log_name(mut self, name: &str) -> Boot {
        self.log = name.into();
        self
    }
}

/// What one boot produced.
pub struct Run {
    pub accel: Accel,
    pub log: String,
    /// Step name -> (output, exit code) for every framed step that ended.
    pub steps: BTreeMap<String, (String, i32)>,
    /// Step name -> seconds the step took, as the guest timed it (its END marker).
    pub step_secs: BTreeMap<String, f64>,
    /// The whole boot, QEMU's start to its end, as the host timed it.
    pub elapsed: Duration,
    pub done: bool,
}

impl Run {
    /// Output and exit code of a framed step; a step that never ended is exit code -1.
    pub fn step(&self, name: &str) -> (String, i32) {
        self.steps
            .get(name)
            .cloned()
            .unwrap_or_else(|| (String::new(), -1))
    }

    /// Seconds a framed step took in the guest; None if it never ended or its END marker
    /// carries no time.
    pub fn step_secs(&self, name: &str) -> Option<f64> {
        self.step_secs.get(name).copied()
    }
}

/// What a controller running beside a guest (see [`Vm::boot_controlled`]) can use: the
/// serial console's lines as they come, and the boot's QMP socket.
pub struct Control {
    lines: mpsc::Receiver<String>,
    qmp: Option<PathBuf>,
}

impl Control {
    /// Connects to the boot's QMP socket.
    pub fn qmp(&self) -> Result<crate::qmp::Qmp> {
        let path = self.qmp.as_ref().context("this boot has no QMP socket")?;
        crate::qmp::Qmp::connect(path, Duration::from_secs(30))
    }

    /// The next console line containing `pattern`, at most `limit` from now.
    pub fn wait_line(&mut self, pattern: &str, limit: Duration) -> Result<String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(pattern) => return Ok(l),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "no console line with {pattern:?} within {} s",
                        limit.as_secs()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the guest ended before printing {pattern:?}")
                }
            }
        }
    }
}

/// A controller: runs beside the guest, returns a one-line summary.
pub type Controller<'a> = Box<dyn FnOnce(&mut Control) -> Result<String> + Send + 'a>;

impl Vm {
    pub(crate) fn command(&self, accel: Accel, boot: &Boot) -> Command {
        let mut c = Command::new(&self.qemu);
        for d in FIRMWARE_DIRS {
            c.args(["-L", d]);
        }
        let mut cmdline = format!("console=ttyS0 loglevel=4 panic=-1 {}", boot.mode.cmdline());
        for w in boot.driver.cmdline().iter().chain(&boot.append) {
            cmdline.push(' ');
            cmdline.push_str(w);
        }
        c.args(accel.args())
            .args(["-machine", &boot.machine, "-m", &boot.memory, "-smp", "2"])
            .args(["-nographic", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initramfs)
            .arg("-append")
            .arg(cmdline);
        if let Some(q) = &boot.qmp {
            c.arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", q.display()));
        }
        for i in 0..self.devices {
            if boot.device_ids {
                c.args(["-device", &format!("my_rng,id=rng{i}")]);
            } else {
                c.args(["-device", "my_rng"]);
            }
        }
        c.args(&self.extra_args);
        for d in &boot.devices {
            c.args(["-device", d]);
        }
        c
    }

    /// KVM fails on this kind of machine (nested virtualisation): try it once, briefly, and
    /// remember the answer for this boot of the host (see ProbeMemo).
    pub fn probe(&self) -> Accel {
        if fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_err()
        {
            note("no usable /dev/kvm: using TCG");
            return Accel::Tcg;
        }
        let memo = ProbeMemo::for_qemu(&self.qemu);
        if let Some(m) = &memo {
            if let Some(accel) = m.load() {
                note(&format!(
                    "accelerator {}: remembered from this host boot's KVM probe ({})",
                    accel.short(),
                    m.path.display()
                ));
                return accel;
            }
        }
        step("Probing KVM (15 s limit)");
        let boot = Boot::new(Mode::Probe, Duration::from_secs(15));
        let accel = match self.boot_with(Accel::Kvm, &boot, None).map(|(r, _)| r) {
            Ok(r) if r.log.contains(marker::PROBE_OK) => {
                note("KVM works");
                Accel::Kvm
            }
            _ => {
                note(&format!(
                    "KVM did not boot the guest: falling back to TCG ({})",
                    Accel::Tcg.args().join(" ")
                ));
                Accel::Tcg
            }
        };
        if let Some(m) = memo {
            m.store(accel);
        }
        accel
    }

    /// Boots as `boot` says and collects the framed steps; fails if the guest did not finish.
    pub fn boot(&self, accel: Accel, boot: &Boot) -> Result<Run> {
        self.boot_inner(accel, boot, None).map(|(r, _)| r)
    }

    /// [`Vm::boot`] with `control` running beside the guest (a thread that sees the console
    /// lines as they come and may use the boot's QMP socket); returns its result too.
    pub fn boot_controlled(
        &self,
        accel: Accel,
        boot: &Boot,
        control: Controller<'_>,
    ) -> Result<(Run, Result<String>)> {
        let (r, c) = self.boot_inner(accel, boot, Some(control))?;
        Ok((
            r,
            c.unwrap_or_else(|| Err(anyhow::anyhow!("no controller result"))),
        ))
    }

    fn boot_inner(
        &self,
        accel: Accel,
        boot: &Boot,
        control: Option<Controller<'_>>,
    ) -> Result<(Run, Option<Result<String>>)> {
        let extra = if boot.devices.is_empty() {
            String::new()
        } else {
            format!(" and {}", boot.devices.join(", "))
        };
        step(&format!(
            "Booting the guest ({}) under {} with {} my_rng device(s){extra}, limit {} s",
            boot.mode,
            accel.name(),
            self.devices,
            boot.limit.as_secs()
        ));
        let (r, c) = self.boot_with(accel, boot, control)?;
        let path = out_dir().join(format!("guest-{}.log", boot.log));
        fs::write(&path, &r.log)?;
        note(&format!("serial log: {}", path.display()));
        if !r.done {
            bail!(
                "the guest did not finish within {} s (serial log: {}){}",
                boot.limit.as_secs(),
                path.display(),
                match &c {
                    Some(Err(e)) => format!("; controller: {e:#}"),
                    _ => String::new(),
                }
            );
        }
        Ok((r, c))
    }

    /// Runs QEMU for `boot` until the guest's output ends or the limit passes, the controller
    /// (if any) beside it.
    fn boot_with(
        &self,
        accel: Accel,
        boot: &Boot,
        control: Option<Controller<'_>>,
    ) -> Result<(Run, Option<Result<String>>)> {
        let (mut child, rx, pumps) = self.spawn(accel, boot)?;
        let start = Instant::now();
        let (ctl_tx, ctl_rx) = mpsc::channel::<String>();
        let mut ctl = Control {
            lines: ctl_rx,
            qmp: boot.qmp.clone(),
        };
        let controlled = control.is_some();
        let (log, done, result) = std::thread::scope(|sc| {
            let handle = control.map(|f| sc.spawn(move || f(&mut ctl)));
            let to_ctl = controlled.then_some(&ctl_tx);
            let (log, done) = read_console(&mut child, &rx, boot, start, to_ctl);
            // The controller's waits end now: the guest will print nothing more.
            drop(ctl_tx);
            let result = handle.map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the controller panicked")))
            });
            (log, done, result)
        });
        let _ = child.kill();
        let _ = child.wait();
        for p in pumps {
            let _ = p.join();
        }
        Ok((run_of(accel, log, done, start.elapsed()), result))
    }

    /// Starts QEMU for `boot`: its stdout and stderr lines arrive on the receiver, sent by
    /// the two pump threads.
    fn spawn(
        &self,
        accel: Accel,
        boot: &Boot,
    ) -> Result<(Child, mpsc::Receiver<String>, [JoinHandle<()>; 2])> {
        let mut child = self
            .command(accel, boot)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start QEMU")?;
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        let a = std::thread::spawn(move || pump(stdout, tx));
        let b = std::thread::spawn(move || pump(stderr, tx2));
        Ok((child, rx, [a, b]))
    }

    /// An interactive guest shell on this terminal (Ctrl-A X leaves QEMU).
    pub fn shell(&self, accel: Accel, driver: crate::cli::Driver) -> Result<()> {
        step(&format!(
            "Interactive guest shell under {} (Ctrl-A X quits QEMU)",
            accel.name()
        ));
        let boot = Boot::new(Mode::Shell, Duration::MAX).driver(driver);
        let status = self.command(accel, &boot).status()?;
        if !status.success() {
            bail!("QEMU exited with {status}");
        }
        Ok(())
    }
}

/// The KVM probe's answer, remembered for one boot of the host and one QEMU binary: whether
/// KVM works depends on the host (nested virtualisation, modules), which only a host reboot
/// changes, and on QEMU, which a rebuild changes. Saves the 15 s probe on every cached run.
struct ProbeMemo {
    key: String,
    path: PathBuf,
}

impl ProbeMemo {
    /// None if the host's boot id cannot be read (nothing is remembered then).
    fn for_qemu(qemu: &Path) -> Option<ProbeMemo> {
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let mtime = fs::metadata(qemu)
            .and_then(|m| m.modified())
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(ProbeMemo {
            path: cache_dir().join("kvm-probe.json"),
            key: format!(
                "{} {} {}.{:09}",
                boot_id.trim(),
                qemu.display(),
                mtime.as_secs(),
                mtime.subsec_nanos()
            ),
        })
    }

    fn load(&self) -> Option<Accel> {
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&self.path).ok()?).ok()?;
        (v["key"] == self.key.as_str())
            .then(|| v["accel"].as_str().and_then(Accel::from_short))
            .flatten()
    }

    /// A memo that cannot be written only costs the next run a probe.
    fn store(&self, accel: Accel) {
        let v = serde_json::json!({ "key": self.key, "accel": accel.short() });
        if let Err(e) = fs::write(&self.path, v.to_string() + "\n") {
            note(&format!("cannot remember the KVM probe: {e}"));
        }
    }
}

/// Reads the console until QEMU's output ends or `boot.limit` passes since `start` (then
/// kills QEMU): the log, and whether the guest said it finished. Each line also goes to `ctl`
/// (a controller), when given.
fn read_console(
    child: &mut Child,
    rx: &mpsc::Receiver<String>,
    boot: &Boot,
    start: Instant,
    ctl: Option<&mpsc::Sender<String>>,
) -> (String, bool) {
    let mut log = String::new();
    let mut in_step = false;
    let mut done = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if boot.echo {
                    show(&line, &mut in_step);
                }
                done |= line.starts_with(marker::DONE) || line.starts_with(marker::PROBE_OK);
                if let Some(tx) = ctl {
                    // A controller that has finished no longer listens: that is fine.
                    let _ = tx.send(line.clone());
                }
                log.push_str(&line);
                log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if start.elapsed() > boot.limit {
            let _ = child.kill();
            break;
        }
    }
    (log, done)
}

/// The run of a finished boot: its log's framed steps and their times.
fn run_of(accel: Accel, log: String, done: bool, elapsed: Duration) -> Run {
    let framed = marker::frames(&log);
    Run {
        accel,
        step_secs: framed
            .iter()
            .filter_map(|(k, f)| Some((k.clone(), f.secs?)))
            .collect(),
        steps: framed
            .into_iter()
            .map(|(k, f)| (k, (f.text, f.rc)))
            .collect(),
        elapsed,
        log,
        done,
    }
}

fn pump(r: impl std::io::Read, tx: mpsc::Sender<String>) {
    for line in BufReader::new(r).split(b'\n') {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        if tx.send(text).is_err() {
            break;
        }
    }
}

/// Live view for a person: the framed steps' output, with a title per step.
fn show(line: &str, in_step: &mut bool) {
    let mut out = std::io::stdout().lock();
    match Marker::parse(line) {
        Some(Marker::Begin(name)) => {
            let _ = writeln!(out, "\n--- guest: {name} ---");
            *in_step = true;
        }
        Some(Marker::End { .. }) => *in_step = false,
        _ if *in_step => {
            let _ = writeln!(out, "{}", marker::start(line));
        }
        _ => {}
    }
}

/// Splits the serial log into steps: name -> (output, exit code). Kernel messages printed to
/// the console in the middle of a step stay in that step's text; checks match whole lines, so
/// they cannot fake a pass.
pub fn parse_steps(log: &str) -> BTreeMap<String, (String, i32)> {
    marker::frames(log)
        .into_iter()
        .map(|(k, f)| (k, (f.text, f.rc)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_parsed() {
        let log = "Booting from ROM..\x1b[2J@@MYRNG BEGIN demo\nRound 0 number 0: 1\n@@MYRNG END demo rc=0\n\
                   @@MYRNG BEGIN e2e\nx\n@@MYRNG END e2e rc=3\n@@MYRNG BEGIN cut\nhalf\n";
        let s = parse_steps(log);
        assert_eq!(s["demo"], ("Round 0 number 0: 1\n".to_string(), 0));
        assert_eq!(s["e2e"].1, 3);
        assert!(!s.contains_key("cut"), "a step without END did not finish");
    }

    #[test]
    fn step_times_are_parsed() {
        let log = "@@MYRNG BEGIN e2e\nok\n@@MYRNG END e2e secs=38.07 rc=0\n\
                   @@MYRNG BEGIN pci\n@@MYRNG END pci rc=0\n\
                   @@MYRNG BEGIN bad\n@@MYRNG END bad secs=1.50 rc=2\n";
        let f = marker::frames(log);
        assert_eq!(f["e2e"].secs, Some(38.07));
        assert_eq!(f["pci"].secs, None, "an END marker without a time");
        assert_eq!((f["bad"].rc, f["bad"].secs), (2, Some(1.5)));
        let s = parse_steps(log);
        assert_eq!(s["e2e"], ("ok\n".to_string(), 0));
        assert_eq!(s["bad"].1, 2, "rc= stays readable after secs=");
    }

    #[test]
    fn probe_memo() {
        let dir = std::env::temp_dir().join(format!("xtask-memo-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let memo = |key: &str| ProbeMemo {
            key: key.into(),
            path: dir.join("kvm-probe.json"),
        };
        assert_eq!(memo("boot1 qemu 1.0").load(), None, "nothing stored yet");
        memo("boot1 qemu 1.0").store(Accel::Tcg);
        assert_eq!(memo("boot1 qemu 1.0").load(), Some(Accel::Tcg));
        assert_eq!(memo("boot2 qemu 1.0").load(), None, "host rebooted");
        assert_eq!(memo("boot1 qemu 2.0").load(), None, "QEMU rebuilt");
        memo("boot1 qemu 2.0").store(Accel::Kvm);
        assert_eq!(memo("boot1 qemu 2.0").load(), Some(Accel::Kvm));
        fs::write(dir.join("kvm-probe.json"), "{not json").unwrap();
        assert_eq!(memo("boot1 qemu 2.0").load(), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
