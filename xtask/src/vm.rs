//! Boots the built QEMU with the guest kernel and initramfs, headless and always under a timeout,
//! and picks the framed results ("@@MYRNG BEGIN/END") out of the serial console.

use crate::qemu::FIRMWARE_DIRS;
use crate::util::{note, out_dir, step};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Vm {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// Number of my_rng devices to plug in.
    pub devices: usize,
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
            Accel::Tcg => &["-accel", "tcg", "-cpu", "max"],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (software emulation)",
        }
    }
}

/// What one boot produced.
pub struct Run {
    pub accel: Accel,
    pub log: String,
    /// Step name -> (output, exit code) for every framed step that ended.
    pub steps: BTreeMap<String, (String, i32)>,
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
}

impl Vm {
    fn command(&self, accel: Accel, mode: &str) -> Command {
        let mut c = Command::new(&self.qemu);
        for d in FIRMWARE_DIRS {
            c.args(["-L", d]);
        }
        c.args(accel.args())
            .args(["-machine", "pc", "-m", "512M", "-smp", "2"])
            .args(["-nographic", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initramfs)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 loglevel=4 panic=-1 MYRNG_MODE={mode}{}",
                // The module boot keeps the built-in driver out, so my_rng.ko binds the devices.
                if mode == "module" {
                    " initcall_blacklist=my_rng_pci_driver_init"
                } else {
                    ""
                }
            ));
        for _ in 0..self.devices {
            c.args(["-device", "my_rng"]);
        }
        c
    }

    /// KVM fails on this kind of machine (nested virtualisation): try it once, briefly.
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
        step("Probing KVM (15 s limit)");
        match self.boot_with(Accel::Kvm, "probe", Duration::from_secs(15), false) {
            Ok(r) if r.log.contains("@@MYRNG PROBE-OK") => {
                note("KVM works");
                Accel::Kvm
            }
            _ => {
                note("KVM did not boot the guest: falling back to TCG (-accel tcg -cpu max)");
                Accel::Tcg
            }
        }
    }

    /// Boots in `mode` (run, test) and collects the framed steps; `echo` shows them live.
    pub fn boot(&self, accel: Accel, mode: &str, limit: Duration, echo: bool) -> Result<Run> {
        step(&format!(
            "Booting the guest ({mode}) under {} with {} my_rng device(s), limit {} s",
            accel.name(),
            self.devices,
            limit.as_secs()
        ));
        let r = self.boot_with(accel, mode, limit, echo)?;
        let path = out_dir().join(format!("guest-{mode}.log"));
        fs::write(&path, &r.log)?;
        note(&format!("serial log: {}", path.display()));
        if !r.done {
            bail!(
                "the guest did not finish within {} s (serial log: {})",
                limit.as_secs(),
                path.display()
            );
        }
        Ok(r)
    }

    fn boot_with(&self, accel: Accel, mode: &str, limit: Duration, echo: bool) -> Result<Run> {
        let mut child = self
            .command(accel, mode)
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
        let start = Instant::now();
        let mut log = String::new();
        let mut in_step = false;
        let mut done = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if echo {
                        show(&line, &mut in_step);
                    }
                    done |=
                        line.starts_with("@@MYRNG DONE") || line.starts_with("@@MYRNG PROBE-OK");
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = (a.join(), b.join());
        Ok(Run {
            accel,
            steps: parse_steps(&log),
            log,
            done,
        })
    }

    /// An interactive guest shell on this terminal (Ctrl-A X leaves QEMU).
    pub fn shell(&self, accel: Accel) -> Result<()> {
        step(&format!(
            "Interactive guest shell under {} (Ctrl-A X quits QEMU)",
            accel.name()
        ));
        let status = self.command(accel, "shell").status()?;
        if !status.success() {
            bail!("QEMU exited with {status}");
        }
        Ok(())
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

/// A marker can share its line with firmware output (SeaBIOS clears the screen with escape
/// sequences and no newline): start the line at the marker.
fn marker(line: &str) -> &str {
    match line.find("@@MYRNG ") {
        Some(i) => &line[i..],
        None => line,
    }
}

/// Live view for a person: the framed steps' output, with a title per step.
fn show(line: &str, in_step: &mut bool) {
    let line = marker(line);
    let mut out = std::io::stdout().lock();
    if let Some(name) = line.strip_prefix("@@MYRNG BEGIN ") {
        let _ = writeln!(out, "\n--- guest: {name} ---");
        *in_step = true;
    } else if line.starts_with("@@MYRNG END ") {
        *in_step = false;
    } else if *in_step {
        let _ = writeln!(out, "{line}");
    }
}

/// Splits the serial log into steps. Kernel messages printed to the console in the middle of a
/// step stay in that step's text; checks match whole lines, so they cannot fake a pass.
pub fn parse_steps(log: &str) -> BTreeMap<String, (String, i32)> {
    let mut steps = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in log.lines() {
        let line = marker(line);
        if let Some(name) = line.strip_prefix("@@MYRNG BEGIN ") {
            cur = Some((name.trim().to_string(), String::new()));
        } else if let Some(rest) = line.strip_prefix("@@MYRNG END ") {
            if let Some((name, text)) = cur.take() {
                let rc = rest
                    .rsplit("rc=")
                    .next()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(-1);
                steps.insert(name, (text, rc));
            }
        } else if let Some((_, text)) = cur.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    steps
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
}
