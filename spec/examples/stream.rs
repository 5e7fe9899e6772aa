//! Writes the byte stream of the reference [`Generator`] to stdout, for statistical test
//! batteries (`cargo xtask stats` pipes it into `dieharder -g 200`):
//! `stream <algorithm> <seed> [<bytes>]`, the algorithm by name (glibc, xoshiro256pp,
//! chacha20). The bytes are the little-endian `next_u64()` outputs, exactly what `read()` of
//! the device returns after the same ALGO and SEED writes. Without `<bytes>` it writes until
//! the reader goes away. At the end it prints `stream: <n> bytes` to stderr: how much the
//! reader took (give or take the pipe's buffer).

use my_rng_spec::{Algorithm, Generator};
use std::io::{ErrorKind, Write};
use std::process::ExitCode;

/// 64 KiB per write: large enough that the pipe, not the system call, sets the pace.
const CHUNK: usize = 64 * 1024;

fn parse_num<T: TryFrom<u64>>(s: &str) -> Option<T> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => s.parse().ok()?,
    };
    T::try_from(v).ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [alg, seed] => Some((alg, seed, None)),
        [alg, seed, bytes] => parse_num::<u64>(bytes).map(|b| (alg, seed, Some(b))),
        _ => None,
    };
    let Some((alg, seed, limit)) = parsed else {
        eprintln!("usage: stream <glibc|xoshiro256pp|chacha20> <seed> [<bytes>]");
        return ExitCode::from(2);
    };
    let gen = Algorithm::from_name(alg)
        .zip(parse_num::<u32>(seed))
        .and_then(|(a, s)| Generator::new(a, s));
    let Some(mut gen) = gen else {
        eprintln!("stream: need a deterministic algorithm name and a u32 seed, got {alg} {seed}");
        return ExitCode::from(2);
    };
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; CHUNK];
    let mut left = limit.unwrap_or(u64::MAX);
    let mut written = 0u64;
    let end = |written: u64| {
        eprintln!("stream: {written} bytes");
        ExitCode::SUCCESS
    };
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            word.copy_from_slice(&gen.next_u64().to_le_bytes());
        }
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        match out.write_all(&buf[..n]) {
            Ok(()) => {
                left -= n as u64;
                written += n as u64;
            }
            // The reader (dieharder) has all it wants: a normal end.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return end(written),
            Err(e) => {
                eprintln!("stream: writing stdout: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    end(written)
}
