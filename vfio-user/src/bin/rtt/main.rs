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
//! - *DMA command*: one FILL of `--dma-bytes` (4 KiB: a bounce-path read, a hwrng pool
//!   refill) run the way the drivers run it, through a second server process (`dma.rs`):
//!   the whole command, and the server's share of it (DMA_CMD posted → MSI eventfd).
//!
//! Rounds alternate the three (warm-up first) so that all see the same machine; the median
//! round of each is reported. `--json` prints one object for `cargo xtask bench`.

mod client;
mod dma;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use client::{bad, Client};
use my_rng_spec::{regs, Algorithm, Generator};
use my_rng_vfio_user::gate::HEADER_SIZE;

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
    /// Bytes per DMA command.
    #[arg(long, default_value_t = 4096)]
    dma_bytes: u32,
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

/// RNG reads through the real server, each value checked against the spec's glibc sequence.
struct Device {
    c: Client,
    expect: Generator,
}

impl Device {
    fn new(c: Client) -> Device {
        let expect = Generator::new(Algorithm::Glibc, 0).expect("glibc is deterministic");
        Device { c, expect }
    }
}

impl RoundTrip for Device {
    fn call(&mut self) -> io::Result<()> {
        let got = self.c.read32(client::BAR0, regs::RNG)?;
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
    fn start(bin: &Path, tag: &str) -> io::Result<Server> {
        let dir =
            std::env::temp_dir().join(format!("my-rng-vfio-user-rtt.{}.{tag}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Info: the line at disconnect with the server's DMA timing (`server_timing`).
        let child = Command::new(bin)
            .arg("--socket")
            .arg(dir.join("s.sock"))
            .args(["--once", "--log", "info", "--name", "rtt"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log"))?)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", bin.display())))?;
        Ok(Server { child, dir })
    }

    fn connect(&mut self) -> io::Result<Client> {
        Client::connect(&self.dir.join("s.sock"), &mut self.child)
    }

    /// After the client closed: the server must exit 0 (`--once`); its DMA timing line.
    fn finish(mut self) -> io::Result<String> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(st) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join("log"))?;
                return if st.success() {
                    Ok(log
                        .split_once("DMA command µs")
                        .map(|(_, t)| format!("DMA command µs{}", t.lines().next().unwrap_or("")))
                        .unwrap_or_default())
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

/// Every round's figures, µs per call.
#[derive(Default)]
struct Figures {
    floor: Vec<f64>,
    region_read: Vec<f64>,
    dma: Vec<dma::Times>,
    /// The DMA server's own account of its commands.
    server_timing: String,
}

/// DMA commands per round: each costs several round trips, so fewer of them fill a round.
fn dma_calls(args: &Args) -> u32 {
    (args.calls / 8).max(1)
}

fn measure(args: &Args, bin: &Path) -> io::Result<Figures> {
    let mut server = Server::start(bin, "rr")?;
    let mut dev = Device::new(server.connect()?);
    let mut dma_server = Server::start(bin, "dma")?;
    let mut dma = dma::Dma::new(dma_server.connect()?, args.dma_bytes)?;
    let mut floor = Floor::start()?;
    let dma_calls = dma_calls(args);
    let warm = (args.calls / 10).max(1);
    time(&mut floor, warm)?;
    time(&mut dev, warm)?;
    dma.round((dma_calls / 10).max(1))?;
    let mut f = Figures::default();
    for _ in 0..args.rounds.max(1) {
        f.floor.push(time(&mut floor, args.calls)?);
        f.region_read.push(time(&mut dev, args.calls)?);
        f.dma.push(dma.round(dma_calls)?);
    }
    drop(dev);
    drop(dma);
    server.finish()?;
    f.server_timing = dma_server.finish()?;
    Ok(f)
}

fn server_path(args: &Args) -> io::Result<PathBuf> {
    match &args.server {
        Some(p) => Ok(p.clone()),
        None => Ok(std::env::current_exe()?.with_file_name("my-rng-vfio-user")),
    }
}

fn report(args: &Args, f: Figures) {
    let floor = median(&mut f.floor.clone());
    let rr = median(&mut f.region_read.clone());
    let total: Vec<f64> = f.dma.iter().map(|t| t.total).collect();
    let to_msi: Vec<f64> = f.dma.iter().map(|t| t.to_msi).collect();
    let (dma, msi) = (median(&mut total.clone()), median(&mut to_msi.clone()));
    if args.json {
        let j = serde_json::json!({
            "floor_us": floor,
            "region_read_us": rr,
            "ratio": rr / floor,
            "dma_bytes": args.dma_bytes,
            "dma_us": dma,
            "dma_to_msi_us": msi,
            "dma_calls": dma_calls(args),
            "calls": args.calls,
            "server_timing": f.server_timing,
            "rounds": {
                "floor_us": f.floor,
                "region_read_us": f.region_read,
                "dma_us": total,
                "dma_to_msi_us": to_msi,
            },
        });
        println!("{j}");
    } else {
        println!("UNIX-socket round trip, two threads (floor): {floor:.2} µs");
        println!("REGION_READ of RNG through my-rng-vfio-user: {rr:.2} µs");
        println!(
            "ratio: {:.2}x (median of {} rounds of {} calls)",
            rr / floor,
            f.floor.len(),
            args.calls
        );
        println!(
            "DMA command of {} bytes, as a driver runs it: {dma:.2} µs; DMA_CMD posted → MSI {msi:.2} µs",
            args.dma_bytes
        );
        println!("server: {}", f.server_timing);
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
