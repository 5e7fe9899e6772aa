//! `my-rng-vfio-user-rtt`: the Rust device's per-access latency against its floor, measured
//! in one run on the host.
//!
//! - *floor*: a bare UNIX-socket request/reply between two threads of this process, with
//!   messages the size of a 4-byte REGION_READ (32 bytes) and of its reply (36 bytes): the
//!   least any socket protocol between two parties can cost per access.
//! - *REGION_READ*: a 4-byte REGION_READ of BAR0's RNG register (the seed's path) through
//!   the real server (the `my-rng-vfio-user` binary, seccomp filter on), by a raw client
//!   speaking the vfio-user protocol as QEMU's client does (VERSION first, one request, one
//!   reply). Every value read is checked against the spec's glibc sequence from seed 0, so a
//!   wrong or missing reply fails the run instead of producing a figure.
//!
//! Rounds alternate the two (warm-up first) so that both see the same machine; the median
//! round of each is reported. `--json` prints one object for `cargo xtask bench`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use my_rng_spec::{Algorithm, Generator};
use my_rng_vfio_user::gate::{cmd, flags, Header, HEADER_SIZE};

/// A 4-byte REGION_READ: header, offset, region, count.
const REQUEST: usize = HEADER_SIZE + 16;
/// Its reply: the same fields and the 4 bytes read.
const REPLY: usize = REQUEST + 4;

#[derive(Parser, Debug)]
#[command(about = "Per-access latency of my-rng-vfio-user against a bare UNIX-socket round trip")]
struct Args {
    /// The server binary (default: my-rng-vfio-user beside this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Timed round trips per round and per kind.
    #[arg(long, default_value_t = 20_000)]
    calls: u32,
    /// Rounds (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// One side of the comparison: send a request, wait for its reply.
trait RoundTrip {
    fn call(&mut self) -> io::Result<()>;
}

/// The floor's client end; a thread answers every 32-byte request with 36 bytes.
struct Floor {
    s: UnixStream,
    req: [u8; REQUEST],
    rep: [u8; REPLY],
}

impl Floor {
    fn start() -> io::Result<Floor> {
        let (s, mut peer) = UnixStream::pair()?;
        thread::Builder::new().name("echo".into()).spawn(move || {
            let mut req = [0u8; REQUEST];
            let rep = [0u8; REPLY];
            while peer.read_exact(&mut req).is_ok() && peer.write_all(&rep).is_ok() {}
        })?;
        Ok(Floor {
            s,
            req: [0; REQUEST],
            rep: [0; REPLY],
        })
    }
}

impl RoundTrip for Floor {
    fn call(&mut self) -> io::Result<()> {
        self.s.write_all(&self.req)?;
        self.s.read_exact(&mut self.rep)
    }
}

/// A raw vfio-user client of the real server, reading RNG and checking each value.
struct Device {
    s: UnixStream,
    id: u16,
    expect: Generator,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Device {
    fn connect(socket: &Path, server: &mut Child) -> io::Result<Device> {
        let t = Instant::now();
        let s = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if t.elapsed() > Duration::from_secs(10) => return Err(e),
                Err(_) if server.try_wait()?.is_some() => {
                    return Err(bad("the server exited at start".into()))
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let expect = Generator::new(Algorithm::Glibc, 0).expect("glibc is deterministic");
        let mut d = Device { s, id: 0, expect };
        d.version()?;
        Ok(d)
    }

    fn header(&mut self, command: u16, size: usize) -> [u8; HEADER_SIZE] {
        self.id = self.id.wrapping_add(1);
        Header {
            id: self.id,
            command,
            size: size as u32,
            flags: 0,
            error: 0,
        }
        .bytes()
    }

    /// A reply header to the last request, without the error flag.
    fn reply_header(&mut self, command: u16) -> io::Result<Header> {
        let mut hb = [0u8; HEADER_SIZE];
        self.s.read_exact(&mut hb)?;
        let h = Header::parse(&hb);
        if h.id != self.id || h.command != command || h.flags & flags::TYPE_MASK != flags::REPLY {
            return Err(bad(format!("unexpected reply {h:?}")));
        }
        if h.flags & flags::ERROR != 0 {
            return Err(bad(format!("command {command}: error {}", h.error)));
        }
        Ok(h)
    }

    fn version(&mut self) -> io::Result<()> {
        let caps = b"{\"capabilities\":{\"max_msg_fds\":16}}\0";
        let mut m = self
            .header(cmd::VERSION, HEADER_SIZE + 4 + caps.len())
            .to_vec();
        m.extend_from_slice(&[0, 0, 1, 0]);
        m.extend_from_slice(caps);
        self.s.write_all(&m)?;
        let h = self.reply_header(cmd::VERSION)?;
        let mut rest = vec![0u8; (h.size as usize).saturating_sub(HEADER_SIZE)];
        self.s.read_exact(&mut rest)
    }
}

impl RoundTrip for Device {
    fn call(&mut self) -> io::Result<()> {
        let mut m = [0u8; REQUEST];
        m[..HEADER_SIZE].copy_from_slice(&self.header(cmd::REGION_READ, REQUEST));
        // offset 0 (RNG), region 0 (BAR0), count 4
        m[HEADER_SIZE + 12..].copy_from_slice(&4u32.to_le_bytes());
        self.s.write_all(&m)?;
        let h = self.reply_header(cmd::REGION_READ)?;
        let mut rest = [0u8; REPLY - HEADER_SIZE];
        if h.size as usize != REPLY {
            return Err(bad(format!("reply of {} bytes, expected {REPLY}", h.size)));
        }
        self.s.read_exact(&mut rest)?;
        let got = u32::from_le_bytes(rest[16..20].try_into().expect("4 bytes"));
        let want = self.expect.next_u32();
        if got != want {
            return Err(bad(format!("RNG read {got:#x}, the spec says {want:#x}")));
        }
        Ok(())
    }
}

/// Microseconds per call of `calls` calls.
fn time(t: &mut dyn RoundTrip, calls: u32) -> io::Result<f64> {
    let start = Instant::now();
    for _ in 0..calls {
        t.call()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(calls.max(1)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The server process on a socket in a fresh directory; killed if still running on drop.
struct Server {
    child: Child,
    dir: PathBuf,
}

impl Server {
    fn start(bin: &Path) -> io::Result<Server> {
        let dir = std::env::temp_dir().join(format!("my-rng-vfio-user-rtt.{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(bin)
            .arg("--socket")
            .arg(dir.join("s.sock"))
            .args(["--once", "--log", "warn", "--name", "rtt"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", bin.display())))?;
        Ok(Server { child, dir })
    }

    /// After the client closed: the server must exit 0 (`--once`).
    fn finish(mut self) -> io::Result<()> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(st) = self.child.try_wait()? {
                return if st.success() {
                    Ok(())
                } else {
                    Err(bad(format!("the server exited {st}")))
                };
            }
            thread::sleep(Duration::from_millis(5));
        }
        Err(bad("the server did not exit after the client closed".into()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Medians of the floor and of REGION_READ, µs per call, and every round's figures.
struct Figures {
    floor: Vec<f64>,
    region_read: Vec<f64>,
}

fn measure(args: &Args, bin: &Path) -> io::Result<Figures> {
    let mut server = Server::start(bin)?;
    let mut dev = Device::connect(&server.dir.join("s.sock"), &mut server.child)?;
    let mut floor = Floor::start()?;
    let warm = (args.calls / 10).max(1);
    time(&mut floor, warm)?;
    time(&mut dev, warm)?;
    let mut f = Figures {
        floor: Vec::new(),
        region_read: Vec::new(),
    };
    for _ in 0..args.rounds.max(1) {
        f.floor.push(time(&mut floor, args.calls)?);
        f.region_read.push(time(&mut dev, args.calls)?);
    }
    drop(dev);
    server.finish()?;
    Ok(f)
}

fn server_path(args: &Args) -> io::Result<PathBuf> {
    match &args.server {
        Some(p) => Ok(p.clone()),
        None => Ok(std::env::current_exe()?.with_file_name("my-rng-vfio-user")),
    }
}

fn report(args: &Args, mut f: Figures) {
    let rounds = (f.floor.clone(), f.region_read.clone());
    let floor = median(&mut f.floor);
    let rr = median(&mut f.region_read);
    if args.json {
        let j = serde_json::json!({
            "floor_us": floor,
            "region_read_us": rr,
            "ratio": rr / floor,
            "calls": args.calls,
            "rounds": { "floor_us": rounds.0, "region_read_us": rounds.1 },
        });
        println!("{j}");
    } else {
        println!("UNIX-socket round trip, two threads (floor): {floor:.2} µs");
        println!("REGION_READ of RNG through my-rng-vfio-user: {rr:.2} µs");
        println!(
            "ratio: {:.2}x (median of {} rounds of {} calls)",
            rr / floor,
            rounds.0.len(),
            args.calls
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = server_path(&args).and_then(|bin| measure(&args, &bin));
    match r {
        Ok(f) => {
            report(&args, f);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("my-rng-vfio-user-rtt: {e}");
            ExitCode::FAILURE
        }
    }
}
