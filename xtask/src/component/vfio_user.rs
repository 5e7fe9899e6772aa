//! The Rust device (vfio-user/): build the server, start one per device, and the QEMU
//! arguments that reach them through QEMU's own `vfio-user-pci` (no my_rng in QEMU needed;
//! boot/parts.rs puts them in a VM).

use crate::cli::DeviceKind;
use crate::util::{note, out_dir, repo_root, step};
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Guest RAM: QEMU must share it with the servers for DMA (the Vm's `-m`).
pub const GUEST_RAM: &str = "512M";

/// Builds the server (release) and returns its path.
pub fn build_server() -> Result<PathBuf> {
    crate::util::run(Command::new(env!("CARGO")).current_dir(repo_root()).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "my-rng-vfio-user",
    ]))?;
    let bin = repo_root().join("target/release/my-rng-vfio-user");
    ensure!(bin.exists(), "{} missing after the build", bin.display());
    Ok(bin)
}

/// Starts `n` servers when `device` is the Rust one (building the server first).
pub fn start_for(device: DeviceKind, n: usize) -> Result<Option<Servers>> {
    match device {
        DeviceKind::C => Ok(None),
        DeviceKind::Rust => Ok(Some(Servers::start(&build_server()?, n)?)),
    }
}

/// The Rust device's PCI slot in the bench boot (`-device ...,addr=`): a slot of its own, so
/// that the guest's bench finds its node by address and the host can tell the runs apart.
pub const BENCH_SLOT: &str = "10.0";
/// The same slot as the guest's sysfs names it.
pub const BENCH_ADDR: &str = "0000:00:10.0";

/// Running servers, one per device; stopped (SIGTERM) on drop if not by [`Servers::stop`].
pub struct Servers {
    children: Vec<Child>,
    sockets: Vec<PathBuf>,
    logs: Vec<PathBuf>,
    /// A socket directory of our own under /tmp, removed at the end.
    tmp_dir: Option<PathBuf>,
}

impl Servers {
    /// Starts `n` servers with sockets and logs under target/my-rng/vfio-user/.
    pub fn start(bin: &PathBuf, n: usize) -> Result<Servers> {
        let dir = out_dir().join("vfio-user");
        fs::create_dir_all(&dir)?;
        // sun_path holds 107 bytes and a NUL: a checkout deep in the file system gets its
        // sockets in a private directory under /tmp instead (the logs stay in `dir`).
        let mut sock_dir = dir.clone();
        if dir.join("rng0.sock").as_os_str().len() >= 108 {
            sock_dir =
                std::env::temp_dir().join(format!("my-rng-vfio-user.{}", std::process::id()));
            fs::create_dir_all(&sock_dir)?;
        }
        let mut s = Servers {
            children: Vec::new(),
            sockets: Vec::new(),
            logs: Vec::new(),
            tmp_dir: (sock_dir != dir).then(|| sock_dir.clone()),
        };
        for i in 0..n {
            let socket = sock_dir.join(format!("rng{i}.sock"));
            ensure!(
                socket.as_os_str().len() < 108,
                "socket path too long for a UNIX socket: {}",
                socket.display()
            );
            let log = dir.join(format!("rng{i}.log"));
            let child = Command::new(bin)
                .arg("--socket")
                .arg(&socket)
                .args(["--name", &format!("rust-rng{i}"), "--log", "info"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            s.children.push(child);
            s.sockets.push(socket);
            s.logs.push(log);
        }
        s.wait_listening()?;
        step(&format!(
            "Rust device: {n} vfio-user server(s), sockets in {}, logs in {}",
            sock_dir.display(),
            dir.display()
        ));
        Ok(s)
    }

    /// Wait until every server accepts connections. QEMU exits at once if a socket is not
    /// there yet, and a server replaces a stale socket file left by a killed run, so wait
    /// for one that accepts a connection.
    fn wait_listening(&mut self) -> Result<()> {
        let t = Instant::now();
        for (i, sock) in self.sockets.iter().enumerate() {
            while std::os::unix::net::UnixStream::connect(sock).is_err() {
                if let Some(st) = self.children[i].try_wait()? {
                    bail!(
                        "the Rust device server {i} exited ({st}): {}",
                        fs::read_to_string(&self.logs[i]).unwrap_or_default().trim()
                    );
                }
                ensure!(
                    t.elapsed() < Duration::from_secs(10),
                    "the Rust device server {i} does not listen on {}",
                    sock.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Shared guest RAM and one vfio-user-pci device per server (at `slot` and on when
    /// given, else where QEMU puts them).
    pub fn qemu_args(&self, slot: Option<&str>) -> Vec<String> {
        let mut extra = vec![
            "-object".to_string(),
            format!("memory-backend-memfd,id=mem,size={GUEST_RAM},share=on"),
            "-machine".to_string(),
            "memory-backend=mem".to_string(),
        ];
        let first = slot.and_then(|s| u32::from_str_radix(s.trim_end_matches(".0"), 16).ok());
        for (i, s) in self.sockets.iter().enumerate() {
            let mut dev = serde_json::json!({
                "driver": "vfio-user-pci",
                "socket": { "path": s, "type": "unix" },
            });
            if let Some(f) = first {
                dev["addr"] = format!("{:x}.0", f + i as u32).into();
            }
            extra.push("-device".into());
            extra.push(dev.to_string());
        }
        extra
    }

    /// SIGTERM, and check every server stopped cleanly (exit 0) without an error line.
    /// Returns a summary for a check line.
    pub fn stop(mut self) -> Result<String> {
        let mut guest_errors = 0;
        let mut problems = Vec::new();
        for (i, child) in self.children.iter_mut().enumerate() {
            sigterm(child);
            let t = Instant::now();
            let status = loop {
                if let Some(st) = child.try_wait()? {
                    break Some(st);
                }
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let log = fs::read_to_string(&self.logs[i]).unwrap_or_default();
            guest_errors += log.matches("guest_error").count();
            match status {
                Some(st) if st.success() => {}
                Some(st) => problems.push(format!("server {i} exited {st}")),
                None => problems.push(format!("server {i} ignored SIGTERM")),
            }
            for l in log
                .lines()
                .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
            {
                problems.push(format!("server {i}: {l}"));
            }
        }
        self.children.clear();
        if !problems.is_empty() {
            bail!(
                "{} (logs: {})",
                problems.join("; "),
                self.logs[0].parent().unwrap().display()
            );
        }
        note(&format!(
            "Rust device servers stopped cleanly; {guest_errors} guest-error line(s) in their logs"
        ));
        Ok(format!(
            "{} server(s) exited 0 on SIGTERM, no error lines, {guest_errors} guest error(s) logged",
            self.logs.len()
        ))
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            sigterm(c);
            let _ = c.wait();
        }
        if let Some(d) = &self.tmp_dir {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// SIGTERM: the servers' clean stop (xtask has no libc dependency).
fn sigterm(c: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
}
