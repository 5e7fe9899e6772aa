//! Live migration under load: the guest (`my-rng-stress migrate`) reads seeded streams and
//! verifies every word while the host moves the running VM from QEMU to QEMU over a UNIX
//! socket, `MIGRATIONS` times. Each destination logs the device's DMA trace events: when its
//! first one is not a command start, a DMA command was in flight at the migration and resumed
//! on the destination.

use crate::qmp::Qmp;
use crate::reliability::{num, result_line, socket};
use crate::util::{note, out_dir, step};
use crate::vm;
use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Migrations per run.
pub const MIGRATIONS: u32 = 20;
/// At most this many more when none of the planned ones caught a DMA command in flight.
const EXTRA: u32 = 20;
/// How long the guest reads; the migrations happen inside this window.
const GUEST_SECONDS: u64 = 75;
/// Boot until the guest is reading, and the end after its window.
const BOOT_LIMIT: Duration = Duration::from_secs(300);

pub struct Outcome {
    want: u32,
    done: u32,
    /// Seconds per migration (from `migrate` to the source reporting completion).
    times: Vec<f64>,
    /// Migrations whose destination's first DMA event was not a command start.
    in_flight: u32,
    /// The guest's `migrate` step.
    step: (String, i32),
}

/// Kills every QEMU it holds when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pump(r: impl std::io::Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(text).is_err() {
                break;
            }
        }
    });
}

/// Collects console lines until one contains `pattern` (or `limit` passes).
fn wait_line(
    rx: &mpsc::Receiver<String>,
    log: &mut String,
    pattern: &str,
    limit: Duration,
) -> Result<()> {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(pattern);
                log.push_str(&l);
                log.push('\n');
                if hit {
                    return Ok(());
                }
            }
            Err(_) => bail!(
                "no console line with {pattern:?} within {} s",
                limit.as_secs()
            ),
        }
    }
}

pub fn run(vm: &vm::Vm, accel: vm::Accel, migrations: u32) -> Result<Outcome> {
    step(&format!(
        "Live migration: {migrations} migrations of the running guest under {} while it \
         verifies seeded streams",
        accel.name()
    ));
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Children(Vec::new());
    let trace = |i: u32| out_dir().join(format!("migration-trace-{i}.log"));
    let stream = |i: u32| socket(&format!("migrate-{i}"));
    let start = |i: u32, children: &mut Children| -> Result<Qmp> {
        let qmp = socket(&format!("qmp-{i}"));
        let _ = fs::remove_file(&qmp);
        let _ = fs::remove_file(trace(i));
        let b = vm::Boot::new("migrate", BOOT_LIMIT)
            .memory("256M")
            .qmp(&qmp)
            .append(&format!("MYRNG_SECONDS={GUEST_SECONDS}"));
        let mut cmd = vm.command(accel, &b);
        cmd.args(["-d", "trace:my_rng_dma_*", "-D"]).arg(trace(i));
        if i > 0 {
            cmd.arg("-incoming")
                .arg(format!("unix:{}", stream(i).display()));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start QEMU")?;
        pump(child.stdout.take().unwrap(), tx.clone());
        pump(child.stderr.take().unwrap(), tx.clone());
        children.0.push(child);
        let q = Qmp::connect(&qmp, Duration::from_secs(30));
        let _ = fs::remove_file(&qmp);
        q
    };
    let mut log = String::new();
    let mut src = start(0, &mut children)?;
    wait_line(&rx, &mut log, "@@MIG ready", BOOT_LIMIT)?;
    let mut times = Vec::new();
    let mut done = 0;
    let mut in_flight = 0;
    let begin = Instant::now();
    let guest_window = Duration::from_secs(GUEST_SECONDS);
    for i in 1..=migrations + EXTRA {
        // Past the planned ones, more only while none caught DMA in flight (a debug kernel
        // spends less of its time in DMA) and while the guest still reads.
        if i > migrations
            && (in_flight > 0 || begin.elapsed() + Duration::from_secs(8) > guest_window)
        {
            break;
        }
        // The planned migrations spread over the first 60 % of the guest's reading window,
        // the rest of it for the extra ones.
        let at = guest_window * 3 * i.min(migrations) / (5 * (migrations + 1));
        while begin.elapsed() < at {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                log.push_str(&l);
                log.push('\n');
            }
        }
        let mut dst = start(i, &mut children)?;
        let t = Instant::now();
        src.execute(
            "migrate",
            json!({ "uri": format!("unix:{}", stream(i).display()) }),
        )?;
        loop {
            let st = src.execute("query-migrate", json!({}))?;
            match st["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "cancelled") => bail!("migration {i}: {st}"),
                _ if t.elapsed() > Duration::from_secs(120) => {
                    bail!("migration {i} took over 120 s")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        times.push(t.elapsed().as_secs_f64());
        let status = dst.execute("query-status", json!({}))?;
        ensure!(
            status["status"] == "running",
            "migration {i}: the destination is {status}"
        );
        let _ = src.execute("quit", json!({}));
        let _ = fs::remove_file(stream(i));
        done += 1;
        if first_dma_event(&trace(i)).is_some_and(|e| e != "my_rng_dma_start") {
            in_flight += 1;
        }
        src = dst;
    }
    wait_line(&rx, &mut log, "@@MYRNG DONE", guest_window + BOOT_LIMIT)?;
    drop(children);
    let path = out_dir().join("guest-migration.log");
    fs::write(&path, &log)?;
    note(&format!("serial log: {}", path.display()));
    let step = vm::parse_steps(&log)
        .remove("migrate")
        .unwrap_or((String::new(), -1));
    Ok(Outcome {
        want: migrations,
        done,
        times,
        in_flight,
        step,
    })
}

/// The name of the first my_rng DMA trace event in a QEMU log (`my_rng_dma_start`, ...).
fn first_dma_event(path: &PathBuf) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with("my_rng_dma_"))
        .map(str::to_string)
}

impl Outcome {
    pub fn migrations(&self) -> Result<String> {
        ensure!(
            self.done >= self.want,
            "{} of {} migrations",
            self.done,
            self.want
        );
        let max = self.times.iter().cloned().fold(0.0, f64::max);
        let mean = self.times.iter().sum::<f64>() / self.times.len().max(1) as f64;
        Ok(format!(
            "{} live migrations (256 MiB guest, UNIX socket), {mean:.2} s on average, {max:.2} s \
             at most",
            self.done
        ))
    }

    /// What the guest verified across the migrations.
    pub fn stream(&self) -> Result<String> {
        let (t, rc) = &self.step;
        let r = result_line(t, "migrate")?;
        let (words, divergent, errors) =
            (num(&r, "words")?, num(&r, "divergent")?, num(&r, "errors")?);
        ensure!(
            *rc == 0 && divergent == 0 && errors == 0 && words > 0,
            "exit {rc}: {divergent} divergent of {words} words, {errors} errors: {}",
            t.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        );
        Ok(format!(
            "0 divergent of {words} 64-bit words in {} rounds (RAND64 ioctls and read() by DMA, \
             every algorithm, each word checked against the reference generator whose prefix is \
             the committed vector)",
            num(&r, "rounds")?
        ))
    }

    pub fn in_flight(&self) -> Result<String> {
        ensure!(
            self.in_flight > 0,
            "no migration caught a DMA command in flight (of {})",
            self.done
        );
        Ok(format!(
            "{} of {} migrations caught a DMA command in flight; it completed on the destination \
             and the stream stayed right",
            self.in_flight, self.done
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_dma_event_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-mig-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.log");
        fs::write(
            &p,
            "123@1.5:my_rng_dma_segment segment 3\nmy_rng_dma_start cmd 0x1\n",
        )
        .unwrap();
        assert_eq!(first_dma_event(&p).as_deref(), Some("my_rng_dma_segment"));
        fs::write(&p, "nothing\n").unwrap();
        assert_eq!(first_dma_event(&p), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
