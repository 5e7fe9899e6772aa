//! `my-rng-vfio-user`: serve one my_rng PCI function on a UNIX socket for QEMU's
//! `vfio-user-pci`. One process per device: start one per socket.
//!
//! ```text
//! my-rng-vfio-user --socket /run/my-rng0.sock &
//! qemu-system-x86_64 ... \
//!   -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem \
//!   -device '{"driver":"vfio-user-pci","socket":{"path":"/run/my-rng0.sock","type":"unix"}}'
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use log::{error, info};
use my_rng_spec::Algorithm;
use my_rng_vfio_user::device::{Defaults, Device};
use my_rng_vfio_user::gate::{self, Gate};
use my_rng_vfio_user::seccomp;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "The my_rng PCI device as a vfio-user server (one device per process)",
    long_about = "The my_rng PCI device as a vfio-user server (one device per process).\n\n\
        Not migratable: do not migrate (or savevm/loadvm) a VM whose my_rng is served by this \
        server. QEMU's vfio-user client has no migration support and registers no migration \
        blocker, so a migration completes while the device's state (algorithm, seed, \
        generator position, DMA in flight) stays in this process; the destination's server \
        starts from power-on and the guest's seeded streams do not continue, with no error \
        from QEMU. A VM \
        that must migrate uses QEMU's in-process device (-device my_rng) instead; otherwise \
        restart the VM where it should run and reseed. See vfio-user/README.md."
)]
struct Args {
    /// UNIX socket to listen on (QEMU: -device vfio-user-pci with this socket path). A
    /// stale socket file (nobody listening) is replaced.
    #[arg(long, required_unless_present = "seccomp_selftest")]
    socket: Option<PathBuf>,
    /// Name in log lines (default: the socket's file name).
    #[arg(long)]
    name: Option<String>,
    /// Algorithm after power-on and reset: glibc, xoshiro256pp, chacha20, host or an id
    /// 0-3. The spec's reset state is glibc.
    #[arg(long, default_value = "glibc", value_parser = parse_algo)]
    algo: Algorithm,
    /// Seed latch after power-on and reset (decimal or 0x hex). The spec's is 0.
    #[arg(long, default_value = "0", value_parser = parse_seed)]
    seed: u32,
    /// Log level: error, warn (includes guest errors), info, debug, trace.
    #[arg(long, default_value = "info")]
    log: log::LevelFilter,
    /// Exit when the first connection ends instead of waiting for the next one.
    #[arg(long)]
    once: bool,
    /// Do not install the seccomp filter (debugging only).
    #[arg(long)]
    no_seccomp: bool,
    /// Time a client has to send the rest of a message once its header arrived, and to
    /// take a reply, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    io_timeout_ms: u64,
    /// Pause of the DMA thread after each 64 KiB chunk, in milliseconds (tests).
    #[arg(long, hide = true, default_value_t = 0)]
    dma_delay_ms: u64,
    /// Install the seccomp filter, try calls it must refuse, report, exit (for tests).
    #[arg(long, hide = true)]
    seccomp_selftest: bool,
}

fn parse_algo(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(s)
        .or_else(|| s.parse().ok().and_then(Algorithm::from_id))
        .ok_or_else(|| {
            format!("unknown algorithm {s:?} (glibc, xoshiro256pp, chacha20, host, 0-3)")
        })
}

fn parse_seed(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad seed {s:?}: {e}"))
}

/// Block SIGTERM and SIGINT in every thread (call before any thread starts) and return a
/// signalfd that becomes readable when one arrives.
fn stop_signals() -> io::Result<OwnedFd> {
    // SAFETY: plain libc signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Install the filter and check that calls outside it fail with EPERM.
fn seccomp_selftest() -> ExitCode {
    if let Err(e) = seccomp::install() {
        eprintln!("install: {e}");
        return ExitCode::FAILURE;
    }
    let mut refused = 0;
    let mut check = |what: &str, r: libc::c_long| {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let ok = r < 0 && errno == libc::EPERM;
        println!(
            "{what}: {}",
            if ok {
                "refused (EPERM)".to_string()
            } else {
                format!("ALLOWED (ret {r}, errno {errno})")
            }
        );
        refused += usize::from(ok);
    };
    // SAFETY: raw system calls with valid (or deliberately harmless) arguments.
    unsafe {
        check(
            "socket",
            libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0).into(),
        );
        check(
            "openat",
            libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY).into(),
        );
        let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        check(
            "execve",
            libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()).into(),
        );
    }
    let mut b = [0u8; 4];
    // SAFETY: writes at most 4 bytes into `b`.
    let allowed = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) } == 4;
    println!("getrandom: {}", if allowed { "allowed" } else { "REFUSED" });
    if refused == 3 && allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(args: Args) -> io::Result<()> {
    let socket = args.socket.expect("clap requires --socket");
    let name = args.name.unwrap_or_else(|| {
        socket
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "my_rng".into())
    });
    let stop = stop_signals()?;
    let listener = gate::bind(&socket)?;
    let defaults = Defaults {
        algo: args.algo,
        seed: args.seed,
    };
    let device = Device::with_chunk_delay(
        name.clone(),
        defaults,
        Duration::from_millis(args.dma_delay_ms),
    )?;
    let mut g = Gate::new(&name, device, Duration::from_millis(args.io_timeout_ms))?;
    if args.no_seccomp {
        info!("{name}: seccomp filter NOT installed (--no-seccomp)");
    } else {
        seccomp::install()?;
    }
    info!(
        "{name}: serving my_rng (ABI 2.1) on {} (reset state: {} seed {:#x})",
        socket.display(),
        args.algo,
        args.seed
    );
    let r = gate::serve(&mut g, &listener, stop.as_raw_fd(), args.once);
    drop(listener);
    if let Err(e) = std::fs::remove_file(&socket) {
        error!("{name}: removing {}: {e}", socket.display());
    }
    r
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.seccomp_selftest {
        return seccomp_selftest();
    }
    env_logger::Builder::new()
        .filter_level(args.log)
        // µs: `--log trace` lines are a timeline of messages and DMA commands that lines up
        // with QEMU's `-msg timestamp=on` trace (same clock).
        .format_timestamp_micros()
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
