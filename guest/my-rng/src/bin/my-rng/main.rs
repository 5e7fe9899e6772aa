//! `my-rng`: command-line front end to the my_rng device.

mod bench;
mod dev;
#[cfg(test)]
mod fake;
mod info;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use my_rng::parse::{parse_algorithm, parse_u32, parse_u64, AlgoArg};
use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Device};

use dev::RngDevice;

#[derive(Debug, Parser)]
#[command(
    name = "my-rng",
    version,
    about = "Use the my_rng PCI random number generator through its Linux driver",
    after_help = "Numbers may be given in decimal or as 0x-prefixed hex."
)]
struct Cli {
    /// Device node to use
    #[arg(long, global = true, value_name = "PATH", default_value = my_rng::DEFAULT_PATH)]
    device: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the seed exercise's app: seed, then two rounds of five numbers (classic ioctls)
    Demo {
        /// Seed written before each round
        #[arg(long, default_value = "0", value_parser = parse_u32)]
        seed: u32,
    },
    /// Reseed the current algorithm
    Seed {
        /// The seed (u32)
        #[arg(value_parser = parse_u32)]
        value: u32,
    },
    /// Print random numbers, one per line
    Get {
        /// How many numbers
        #[arg(short = 'n', long, default_value = "1", value_parser = parse_u64)]
        count: u64,
        /// Width of each number: 32 (RAND ioctl) or 64 (RAND64 ioctl)
        #[arg(long, default_value = "32", value_parser = parse_bits)]
        bits: u32,
        /// Print as 0x-prefixed, zero-padded hex
        #[arg(long)]
        hex: bool,
    },
    /// Write raw random bytes (read() of the device) to stdout, e.g. for dieharder or rngtest
    Dump {
        /// Stop after this many bytes (default: until stdout is closed)
        #[arg(long, value_parser = parse_u64)]
        bytes: Option<u64>,
    },
    /// Show the current algorithm, or select one by name or id
    Algo {
        /// glibc, xoshiro256pp, chacha20, host, or a numeric id
        #[arg(value_parser = parse_algorithm)]
        algorithm: Option<AlgoArg>,
    },
    /// Show the device's PCI address, BAR0, ABI version, features and algorithms
    Info,
    /// Measure the throughput of each interface (changes the device's sequence)
    Bench {
        /// Time spent on each interface
        #[arg(long, default_value = "1", value_parser = parse_seconds)]
        seconds: f64,
        /// Print one JSON object instead of a table
        #[arg(long)]
        json: bool,
        /// A few calls per interface only (checks that every row runs; no useful figures)
        #[arg(long)]
        smoke: bool,
        /// Only these rows (comma-separated ids, as --json names them)
        #[arg(long, value_delimiter = ',', value_name = "ID,...")]
        rows: Vec<String>,
    },
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "32" => Ok(32),
        "64" => Ok(64),
        _ => Err(format!("bits must be 32 or 64, not {s:?}")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "invalid duration {s:?}: expected seconds in (0, 3600]"
        )),
    }
}

/// How a command failed.
#[derive(Debug)]
enum Failure {
    /// The reader of stdout went away (EPIPE): a normal way for `dump | head` to end.
    Quiet,
    /// A one-line message for stderr; exit code 1.
    Msg(String),
}

impl From<my_rng::Error> for Failure {
    fn from(e: my_rng::Error) -> Self {
        Failure::Msg(e.to_string())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Quiet
        } else {
            Failure::Msg(format!("writing output: {e}"))
        }
    }
}

type CmdResult = Result<(), Failure>;

/// The system around the device: sysfs and the other random sources (tests substitute
/// them).
pub struct Env {
    pub sys: Sysfs,
    pub hwrng: PathBuf,
    pub zero: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            sys: Sysfs::default(),
            hwrng: PathBuf::from("/dev/hwrng"),
            zero: PathBuf::from("/dev/zero"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = Device::open(&cli.device)
        .map_err(Failure::from)
        .and_then(|dev| {
            let mut out = io::BufWriter::new(io::stdout().lock());
            execute(&dev, &Env::default(), cli.command, &mut out)?;
            Ok(out.flush()?)
        });
    match r {
        Ok(()) | Err(Failure::Quiet) => ExitCode::SUCCESS,
        Err(Failure::Msg(m)) => {
            eprintln!("my-rng: {m}");
            ExitCode::FAILURE
        }
    }
}

/// Run `command` on `dev`, writing its output to `out`.
fn execute(dev: &dyn RngDevice, env: &Env, command: Command, out: &mut dyn Write) -> CmdResult {
    match command {
        Command::Demo { seed } => demo(dev, seed, out),
        Command::Seed { value } => Ok(dev.seed(value)?),
        Command::Get { count, bits, hex } => get(dev, count, bits, hex, out),
        Command::Dump { bytes } => dump(dev, bytes, out),
        Command::Algo { algorithm } => algo(dev, algorithm, out),
        Command::Info => info::run(dev, &env.sys, out),
        Command::Bench {
            seconds,
            json,
            smoke,
            rows,
        } => {
            let budget = if smoke {
                bench::Budget::SMOKE
            } else {
                bench::Budget::timed(seconds)
            };
            bench::run(dev, env, budget, json, &rows, out)
        }
    }
}

/// Same calls and same output as the seed document's my-app.c.
fn demo(dev: &dyn RngDevice, seed: u32, out: &mut dyn Write) -> CmdResult {
    for i in 0..2 {
        dev.seed(seed)?;
        for j in 0..5 {
            let n = dev.next_u32()?;
            writeln!(out, "Round {i} number {j}: {n}")?;
        }
    }
    Ok(())
}

fn get(dev: &dyn RngDevice, count: u64, bits: u32, hex: bool, out: &mut dyn Write) -> CmdResult {
    for _ in 0..count {
        match (bits, hex) {
            (64, false) => writeln!(out, "{}", dev.next_u64()?)?,
            (64, true) => writeln!(out, "{:#018x}", dev.next_u64()?)?,
            (_, false) => writeln!(out, "{}", dev.next_u32()?)?,
            (_, true) => writeln!(out, "{:#010x}", dev.next_u32()?)?,
        }
    }
    Ok(())
}

fn dump(dev: &dyn RngDevice, limit: Option<u64>, out: &mut dyn Write) -> CmdResult {
    // One driver call returns at most 1 MiB (with DMA; 64 KiB on the MMIO path), so a
    // bigger buffer gains nothing.
    let mut buf = vec![0u8; 1024 * 1024];
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = dev.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Failure::Msg(format!(
                "{}: unexpected end of file",
                dev.path().display()
            )));
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn algo(dev: &dyn RngDevice, choice: Option<AlgoArg>, out: &mut dyn Write) -> CmdResult {
    match choice {
        Some(a) => Ok(dev.set_algorithm_id(a.id())?),
        None => {
            let id = dev.algorithm_id()?;
            let name = Algorithm::from_id(id).map_or("unknown", |a| a.name());
            writeln!(out, "{id} {name}")?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
