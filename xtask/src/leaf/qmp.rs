//! A minimal QMP client (QEMU's JSON machine protocol over a UNIX socket): enough to plug and
//! unplug devices and to migrate, with every wait bounded.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events that arrived while waiting for something else, oldest first.
    events: Vec<Value>,
}

impl Qmp {
    /// Connects to `path` (retrying until QEMU has created it, at most `limit`) and leaves
    /// capabilities negotiation mode.
    pub fn connect(path: &Path, limit: Duration) -> Result<Qmp> {
        let end = Instant::now() + limit;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > end => {
                    return Err(e).with_context(|| format!("QMP socket {}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut q = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            events: Vec::new(),
        };
        let greeting = q.read_message(Instant::now() + Duration::from_secs(30))?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        q.execute("qmp_capabilities", json!({}))?;
        Ok(q)
    }

    /// One message, or an error once `deadline` passes.
    fn read_message(&mut self, deadline: Instant) -> Result<Value> {
        // read_until keeps what it read before a timeout (read_line may not).
        let mut line = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => bail!("QMP connection closed"),
                Ok(_) if line.ends_with(b"\n") => {
                    return serde_json::from_slice(&line)
                        .with_context(|| format!("QMP: {}", String::from_utf8_lossy(&line)))
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() > deadline {
                bail!("no QMP message in time");
            }
        }
    }

    /// Runs `cmd` with `args`; its `return` value, or its `error` as an error.
    pub fn execute(&mut self, cmd: &str, args: Value) -> Result<Value> {
        let mut msg = json!({ "execute": cmd });
        if args.as_object().is_some_and(|o| !o.is_empty()) {
            msg["arguments"] = args;
        }
        writeln!(self.writer, "{msg}")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.read_message(deadline)?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(anyhow!("QMP {cmd}: {e}"));
            }
            if v.get("event").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Waits for event `name` (one that already arrived counts), at most `limit`.
    pub fn wait_event(&mut self, name: &str, limit: Duration) -> Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + limit;
        loop {
            let v = self
                .read_message(deadline)
                .with_context(|| format!("waiting for QMP event {name}"))?;
            if v["event"] == name {
                return Ok(v);
            }
            if v.get("event").is_some() {
                self.events.push(v);
            }
        }
    }
}
