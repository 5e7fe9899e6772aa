//! Live migration under load: the guest (`my-rng-stress migrate`) reads seeded streams and
//! verifies every word while the host moves the running VM from QEMU to QEMU over a UNIX
//! socket, `MIGRATIONS` times. Each destination logs the device's DMA trace events: when its
//! first one is not a command start, a DMA command was in flight at the migration and resumed
//! on the destination.

use crate::checks::{num, result_line};
use crate::qmp::Qmp;
use crate::util::socket;
use crate::util::{note, out_dir, step};
use crate::vm;
use anyhow::{bail, ensure, Context, Result};
use my_rng_protocol::{marker, param, record, step, Mode};
use serde_json::json;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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

/// Why the project's tooling refuses to migrate a VM whose my_rng devices are served over
/// vfio-user (see vfio-user/README.md).
pub const VFIO_USER_REFUSAL: &str = "this VM's my_rng device is served over vfio-user \
     (my-rng-vfio-user): QEMU's vfio-user client has no migration support and registers no \
     migration blocker, so the migration would complete and the device's state (algorithm, \
     seed, generator position, a DMA command in flight) would be lost: the guest's seeded \
     streams would not continue on the destination, with no error from QEMU. Migrate a VM \
     with the \
     in-QEMU device (-device my_rng) instead, or stop the device's users and reseed after \
     restarting the VM";

/// Refuses a VM that cannot be migrated without losing device state: one with a
/// vfio-user-pci device (the Rust device).
pub fn ensure_migratable(vm: &vm::Vm) -> Result<()> {
    if vm.extra_args.iter().any(|a| a.contains("vfio-user-pci")) {
        bail!("refusing to migrate: {VFIO_USER_REFUSAL}");
    }
    Ok(())
}

/// One QEMU of a migration: console lines go to `tx`, the process into `children`.
struct Start<'a> {
    vm: &'a vm::Vm,
    accel: vm::Accel,
    /// The guest's reading window (MYRNG_SECONDS of the `migrate` mode).
    guest_seconds: u64,
    /// Guest RAM (`-m`): a Rust-device VM's must match its shared memory backend's size.
    memory: &'static str,
    /// The stream socket to listen on (a destination), if any.
    incoming: Option<PathBuf>,
    /// Where the device's DMA trace goes, if anywhere.
    trace: Option<PathBuf>,
}

impl Start<'_> {
    /// Starts this QEMU and connects to its QMP socket (`name` tells the socket apart).
    fn spawn(&self, name: &str, tx: &mpsc::Sender<String>, children: &mut Children) -> Result<Qmp> {
        let qmp = socket(&format!("qmp-{name}"));
        let _ = fs::remove_file(&qmp);
        let b = vm::Boot::new(Mode::Migrate, BOOT_LIMIT)
            .memory(self.memory)
            .qmp(&qmp)
            .append(&param::word(param::SECONDS, self.guest_seconds));
        let mut cmd = self.vm.command(self.accel, &b);
        if let Some(t) = &self.trace {
            let _ = fs::remove_file(t);
            cmd.args(["-d", "trace:my_rng_dma_*", "-D"]).arg(t);
        }
        if let Some(s) = &self.incoming {
            cmd.arg("-incoming").arg(format!("unix:{}", s.display()));
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
    }
}

/// `migrate` on `src` to the stream socket `to`; waits for the end, at most 120 s. Returns
/// the seconds it took and the last `query-migrate` answer.
fn migrate(src: &mut Qmp, to: &std::path::Path, i: u32) -> Result<(f64, serde_json::Value)> {
    let t = Instant::now();
    src.execute(
        "migrate",
        json!({ "uri": format!("unix:{}", to.display()) }),
    )?;
    loop {
        let st = src.execute("query-migrate", json!({}))?;
        match st["status"].as_str() {
            Some("completed") => return Ok((t.elapsed().as_secs_f64(), st)),
            Some("failed" | "cancelled") => bail!("migration {i}: {st}"),
            _ if t.elapsed() > Duration::from_secs(120) => {
                bail!("migration {i} took over 120 s")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

pub fn run(vm: &vm::Vm, accel: vm::Accel, migrations: u32) -> Result<Outcome> {
    ensure_migratable(vm)?;
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
        Start {
            vm,
            accel,
            guest_seconds: GUEST_SECONDS,
            memory: "256M",
            incoming: (i > 0).then(|| stream(i)),
            trace: Some(trace(i)),
        }
        .spawn(&i.to_string(), &tx, children)
    };
    let mut log = String::new();
    let mut src = start(0, &mut children)?;
    wait_line(&rx, &mut log, marker::MIG_READY, BOOT_LIMIT)?;
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
        collect_until(&rx, &mut log, begin + at);
        let mut dst = start(i, &mut children)?;
        times.push(hand_over(&mut src, &mut dst, &stream(i), i)?);
        done += 1;
        if first_dma_event(&trace(i)).is_some_and(|e| e != "my_rng_dma_start") {
            in_flight += 1;
        }
        src = dst;
    }
    wait_line(&rx, &mut log, marker::DONE, guest_window + BOOT_LIMIT)?;
    drop(children);
    Ok(Outcome {
        want: migrations,
        done,
        times,
        in_flight,
        step: guest_step(&log)?,
    })
}

/// Keeps the guest's serial log; its `migrate` step.
fn guest_step(log: &str) -> Result<(String, i32)> {
    let path = out_dir().join("guest-migration.log");
    fs::write(&path, log)?;
    note(&format!("serial log: {}", path.display()));
    Ok(vm::parse_steps(log)
        .remove(step::MIGRATE)
        .unwrap_or((String::new(), -1)))
}

/// The guest's console lines into `log` until `until`.
fn collect_until(rx: &mpsc::Receiver<String>, log: &mut String, until: Instant) {
    while Instant::now() < until {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push_str(l.as_str());
            log.push('\n');
        }
    }
}

/// Migration `i` from `src` to `dst` over `stream`: its time (seconds) once the destination
/// runs; the source is told to quit.
fn hand_over(src: &mut Qmp, dst: &mut Qmp, stream: &Path, i: u32) -> Result<f64> {
    let secs = migrate(src, stream, i)?.0;
    let status = dst.execute("query-status", json!({}))?;
    ensure!(
        status["status"] == "running",
        "migration {i}: the destination is {status}"
    );
    let _ = src.execute("quit", json!({}));
    let _ = fs::remove_file(stream);
    Ok(secs)
}

/// The guest's reading window of the by-hand migration of the Rust device, and when in it
/// the migration starts (the reading has run for a while: the generator is mid-stream).
const BY_HAND_SECONDS: u64 = 30;
const BY_HAND_AT: Duration = Duration::from_secs(10);

/// `vm` with only the vfio-user device whose socket path contains `keep`: a migration's
/// source and destination each need a server of their own (one serves one QEMU).
fn only_device(vm: &vm::Vm, keep: &str) -> vm::Vm {
    let mut args = Vec::new();
    let mut it = vm.extra_args.iter().peekable();
    while let Some(a) = it.next() {
        if a == "-device" {
            if let Some(d) = it.peek() {
                if d.contains("vfio-user-pci") && !d.contains(keep) {
                    it.next();
                    continue;
                }
            }
        }
        args.push(a.clone());
    }
    vm::Vm {
        extra_args: args,
        ..vm.clone()
    }
}

/// What a user gets who migrates a VM with the Rust device by hand (QMP `migrate`, around
/// [`ensure_migratable`]).
pub struct ByHand {
    /// The source's last `query-migrate` answer, or why the migration failed.
    status: Result<serde_json::Value, String>,
    /// The guest's `migrate` step.
    step: (String, i32),
}

/// One boot with one Rust device (`rust` must be the VM of two running servers, see
/// [`crate::parts::served`]): the guest reads and verifies seeded streams from it
/// while the host migrates it once, by hand, to a destination QEMU with the second server.
pub fn rust_device_by_hand(rust: &vm::Vm, accel: vm::Accel) -> Result<ByHand> {
    step("Migrating a VM with the Rust device by hand (QMP migrate), as a user could");
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Children(Vec::new());
    let stream = socket("migrate-rust");
    let (src_vm, dst_vm) = (
        only_device(rust, "rng0.sock"),
        only_device(rust, "rng1.sock"),
    );
    let start = |vm, incoming| Start {
        vm,
        accel,
        guest_seconds: BY_HAND_SECONDS,
        memory: crate::vfio_user::GUEST_RAM,
        incoming,
        trace: None,
    };
    let mut log = String::new();
    // QEMU's own complaint, if it did not start, says more than the refused QMP socket.
    let said = |rx: &mpsc::Receiver<String>| rx.try_iter().collect::<Vec<_>>().join(" | ");
    let mut src = start(&src_vm, None)
        .spawn("rust-src", &tx, &mut children)
        .with_context(|| format!("the source QEMU: {}", said(&rx)))?;
    wait_line(&rx, &mut log, marker::MIG_READY, BOOT_LIMIT)?;
    let begin = Instant::now();
    while begin.elapsed() < BY_HAND_AT {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push_str(&l);
            log.push('\n');
        }
    }
    let _dst = start(&dst_vm, Some(stream.clone()))
        .spawn("rust-dst", &tx, &mut children)
        .with_context(|| format!("the destination QEMU: {}", said(&rx)))?;
    let status = migrate(&mut src, &stream, 1)
        .map(|(_, st)| st)
        .map_err(|e| format!("{e:#}"));
    if status.is_ok() {
        let _ = src.execute("quit", json!({}));
    }
    let _ = fs::remove_file(&stream);
    let window = Duration::from_secs(BY_HAND_SECONDS);
    let end = wait_line(&rx, &mut log, marker::DONE, window + BOOT_LIMIT);
    drop(children);
    let path = out_dir().join("guest-migration-rust.log");
    fs::write(&path, &log)?;
    note(&format!("serial log: {}", path.display()));
    if status.is_ok() {
        end?;
    }
    let step = vm::parse_steps(&log)
        .remove(step::MIGRATE)
        .unwrap_or((String::new(), -1));
    Ok(ByHand { status, step })
}

impl ByHand {
    /// Passes while QEMU behaves as vfio-user/README.md says: the migration completes and the
    /// guest's stream does not survive it. Fails, saying so, the day QEMU carries the state
    /// or refuses the migration.
    pub fn check(&self) -> Result<String> {
        let st = match &self.status {
            Ok(st) => st,
            Err(e) => bail!(
                "QEMU no longer completes the migration of a vfio-user device ({e}): it may \
                 now register a blocker; update vfio-user/README.md, the server's --help and \
                 ensure_migratable in xtask/src/cmd/migration.rs"
            ),
        };
        let (t, _) = &self.step;
        let r = result_line(t, record::MIGRATE)?;
        let (words, divergent, errors) =
            (num(&r, "words")?, num(&r, "divergent")?, num(&r, "errors")?);
        ensure!(words > 0, "the guest verified no word: {}", t.trim());
        ensure!(
            divergent > 0 || errors > 0,
            "the guest's seeded stream survived the migration of the Rust device ({words} words \
             right): QEMU now carries the vfio-user device's state. Lift the refusal \
             (ensure_migratable in xtask/src/cmd/migration.rs), correct vfio-user/README.md and the \
             server's --help, and make this test expect the stream to continue"
        );
        Ok(format!(
            "QMP migrate completed (vfio transferred {} bytes) and the device state was lost: \
             {divergent} of {words} words diverged and {errors} call(s) failed after the \
             migration, with no error from QEMU (what the tooling's refusal prevents)",
            st["vfio"]["transferred"].as_u64().unwrap_or(0)
        ))
    }
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
        let r = result_line(t, record::MIGRATE)?;
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
    fn vfio_user_vms_are_refused() {
        let vm = |extra: &[&str]| vm::Vm {
            qemu: "q".into(),
            kernel: "k".into(),
            initramfs: "i".into(),
            devices: 0,
            extra_args: extra.iter().map(|a| a.to_string()).collect(),
        };
        let d0 = r#"{"driver":"vfio-user-pci","socket":{"path":"/t/rng0.sock","type":"unix"}}"#;
        let d1 = r#"{"driver":"vfio-user-pci","socket":{"path":"/t/rng1.sock","type":"unix"}}"#;
        assert!(ensure_migratable(&vm(&[])).is_ok());
        let rust = vm(&[
            "-machine",
            "memory-backend=mem",
            "-device",
            d0,
            "-device",
            d1,
        ]);
        let e = ensure_migratable(&rust).unwrap_err().to_string();
        assert!(e.contains("no migration support"), "{e}");
        let src = only_device(&rust, "rng0.sock");
        assert_eq!(
            src.extra_args,
            ["-machine", "memory-backend=mem", "-device", d0]
        );
        assert!(ensure_migratable(&src).is_err());
    }

    #[test]
    fn by_hand_verdicts() {
        let done = json!({ "status": "completed", "vfio": { "transferred": 0 } });
        let step = |words: u64, divergent: u64, errors: u64| {
            let line = format!(
                "@@RESULT migrate rounds=3 words={words} divergent={divergent} errors={errors}\n"
            );
            (line, 1)
        };
        // Today's QEMU: completed, the stream lost.
        let lost = ByHand {
            status: Ok(done.clone()),
            step: step(900, 12, 0),
        };
        assert!(lost.check().unwrap().contains("state was lost"));
        // The day QEMU carries the state: the test fails and says so.
        let kept = ByHand {
            status: Ok(done),
            step: step(900, 0, 0),
        };
        let e = kept.check().unwrap_err().to_string();
        assert!(e.contains("QEMU now carries"), "{e}");
        // The day QEMU blocks it.
        let blocked = ByHand {
            status: Err("migration 1: failed".into()),
            step: step(0, 0, 0),
        };
        let e = blocked.check().unwrap_err().to_string();
        assert!(e.contains("no longer completes"), "{e}");
    }

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
