//! The CLI's unit tests: argument parsing, and each command's output and errors against
//! [`FakeDevice`].

use clap::CommandFactory;
use my_rng::{Error, Info};

use super::*;
use crate::fake::FakeDevice;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("my-rng").chain(args.iter().copied()))
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn defaults() {
    let cli = parse(&["demo"]).unwrap();
    assert_eq!(cli.device, PathBuf::from("/dev/my_rng_driver"));
    assert!(matches!(cli.command, Command::Demo { seed: 0 }));
    let cli = parse(&["get"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Get {
            count: 1,
            bits: 32,
            hex: false
        }
    ));
    assert!(matches!(
        parse(&["dump"]).unwrap().command,
        Command::Dump { bytes: None }
    ));
    assert!(matches!(
        parse(&["algo"]).unwrap().command,
        Command::Algo { algorithm: None }
    ));
}

#[test]
fn values_and_global_device() {
    let cli = parse(&["seed", "0x42", "--device", "/dev/my_rng_driver1"]).unwrap();
    assert_eq!(cli.device, PathBuf::from("/dev/my_rng_driver1"));
    assert!(matches!(cli.command, Command::Seed { value: 0x42 }));
    let cli = parse(&["--device", "/tmp/x", "demo", "--seed", "66"]).unwrap();
    assert_eq!(cli.device, PathBuf::from("/tmp/x"));
    assert!(matches!(cli.command, Command::Demo { seed: 66 }));
    let cli = parse(&["get", "-n", "0x10", "--bits", "64", "--hex"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Get {
            count: 16,
            bits: 64,
            hex: true
        }
    ));
    let cli = parse(&["dump", "--bytes", "1048576"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Dump {
            bytes: Some(1_048_576)
        }
    ));
    let cli = parse(&["algo", "chacha20"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Algo {
            algorithm: Some(AlgoArg::Known(Algorithm::ChaCha20))
        }
    ));
    let cli = parse(&["algo", "9"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Algo {
            algorithm: Some(AlgoArg::Id(9))
        }
    ));
    let cli = parse(&["bench", "--seconds", "0.25"]).unwrap();
    assert!(
        matches!(&cli.command, Command::Bench { seconds, json: false, smoke: false, rows } if *seconds == 0.25 && rows.is_empty())
    );
    let cli = parse(&["bench", "--rows", "ioctl-rand,hwrng-my_rng"]).unwrap();
    assert!(
        matches!(&cli.command, Command::Bench { rows, .. } if rows == &["ioctl-rand", "hwrng-my_rng"])
    );
    let cli = parse(&["bench", "--json", "--smoke"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Bench {
            json: true,
            smoke: true,
            ..
        }
    ));
}

#[test]
fn bad_values_rejected() {
    for args in [
        &["seed"][..],
        &["seed", "-1"],
        &["seed", "4294967296"],
        &["seed", "0x"],
        &["seed", "forty-two"],
        &["demo", "--seed", "1.5"],
        &["get", "--bits", "16"],
        &["get", "-n", "-3"],
        &["dump", "--bytes", "lots"],
        &["algo", "mt19937"],
        &["bench", "--seconds", "0"],
        &["bench", "--seconds", "nan"],
        &["frobnicate"],
        &[],
    ] {
        assert!(parse(args).is_err(), "{args:?} accepted");
    }
}

// ------------------------------------------------ commands against the fake device

/// Run the command line `args` (device options included) on `dev`; (result, stdout).
fn run_on(dev: &FakeDevice, args: &[&str]) -> (CmdResult, Vec<u8>) {
    let cli = parse(args).unwrap();
    let mut out = Vec::new();
    let env = Env {
        sys: Sysfs::at("/nonexistent-sys"),
        ..Env::default()
    };
    let r = execute(dev, &env, cli.command, &mut out);
    (r, out)
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

fn message(r: CmdResult) -> String {
    match r {
        Err(Failure::Msg(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The seed document's expected output: glibc's rand() after srand(0), twice.
const DEMO_SEED_0: &str = "\
Round 0 number 0: 1804289383
Round 0 number 1: 846930886
Round 0 number 2: 1681692777
Round 0 number 3: 1714636915
Round 0 number 4: 1957747793
Round 1 number 0: 1804289383
Round 1 number 1: 846930886
Round 1 number 2: 1681692777
Round 1 number 3: 1714636915
Round 1 number 4: 1957747793
";

#[test]
fn demo_prints_the_seed_apps_output() {
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["demo"]);
    r.unwrap();
    assert_eq!(text(out), DEMO_SEED_0);
    let calls = dev.calls();
    assert_eq!(calls.len(), 12);
    assert_eq!(calls[0], "SEED 0x0");
    assert_eq!(calls[6], "SEED 0x0");
    assert!(calls.iter().filter(|c| *c == "RAND").count() == 10);

    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["demo", "--seed", "0x42"]);
    r.unwrap();
    let out = text(out);
    assert_eq!(out.lines().count(), 10);
    assert_eq!(dev.calls()[0], "SEED 0x42");
    assert_ne!(out, DEMO_SEED_0);
}

#[test]
fn demo_stops_at_the_first_error_keeping_earlier_lines() {
    let dev = FakeDevice::new().failing_after(3);
    let (r, out) = run_on(&dev, &["demo"]);
    assert_eq!(
        message(r),
        "RAND on /dev/fake_rng: device removed (ENODEV): the my_rng PCI device was unbound or unplugged"
    );
    assert_eq!(
        text(out),
        DEMO_SEED_0
            .lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
}

#[test]
fn get_formats() {
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["get", "-n", "3"]);
    r.unwrap();
    assert_eq!(text(out), "1804289383\n846930886\n1681692777\n");
    let (r, out) = run_on(&dev, &["get", "--hex"]);
    r.unwrap();
    assert_eq!(text(out), format!("{:#010x}\n", 1714636915u32));
    assert_eq!(text(run_on(&dev, &["get", "-n", "0"]).1), "");

    // 64-bit: glibc's RNG64 is two rand() values, lo | hi << 32.
    let mut gen = my_rng_spec::Generator::new(Algorithm::Glibc, 0).unwrap();
    let (a, b) = (gen.next_u64(), gen.next_u64());
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["get", "-n", "2", "--bits", "64"]);
    r.unwrap();
    assert_eq!(text(out), format!("{a}\n{b}\n"));
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["get", "--bits", "64", "--hex"]);
    r.unwrap();
    let out = text(out);
    assert_eq!(out, format!("{a:#018x}\n"));
    assert_eq!(out.len(), 19);
    assert_eq!(dev.calls(), ["RAND64"]);
}

#[test]
fn dump_writes_exactly_the_bytes_asked() {
    let mut gen = my_rng_spec::Generator::new(Algorithm::Glibc, 0).unwrap();
    let stream: Vec<u8> = (0..20_000)
        .flat_map(|_| gen.next_u64().to_le_bytes())
        .collect();
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["dump", "--bytes", "10"]);
    r.unwrap();
    assert_eq!(out, stream[..10]);
    assert_eq!(dev.calls(), ["read 10"]);

    // The device's short reads are continued.
    let dev = FakeDevice {
        read_bound: 40_000,
        ..FakeDevice::new()
    };
    let (r, out) = run_on(&dev, &["dump", "--bytes", "100000"]);
    r.unwrap();
    assert_eq!(out.len(), 100_000);
    assert_eq!(dev.calls(), ["read 100000", "read 60000", "read 20000"]);
    // Each call drops the unused bytes of its last value: 40000 is a multiple of 8.
    assert_eq!(out, stream[..100_000]);
}

#[test]
fn dump_errors() {
    let dev = FakeDevice {
        eof: true,
        ..FakeDevice::new()
    };
    assert_eq!(
        message(run_on(&dev, &["dump"]).0),
        "/dev/fake_rng: unexpected end of file"
    );
    let dev = FakeDevice::new().failing_after(1);
    let (r, out) = run_on(&dev, &["dump", "--bytes", "1000000"]);
    assert!(message(r).starts_with("read on /dev/fake_rng: device removed (ENODEV)"));
    assert_eq!(out.len(), 65536);
}

/// A reader that went away: `dump | head -c 10` must end quietly.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn closed_stdout_is_quiet_other_write_errors_are_not() {
    let dev = FakeDevice::new();
    let cli = parse(&["dump"]).unwrap();
    let r = execute(&dev, &Env::default(), cli.command, &mut ClosedPipe);
    assert!(matches!(r, Err(Failure::Quiet)), "{r:?}");
    let f = Failure::from(io::Error::from_raw_os_error(libc::ENOSPC));
    assert!(message(Err(f)).starts_with("writing output: "));
}

#[test]
fn algo_show_and_select() {
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["algo"]);
    r.unwrap();
    assert_eq!(text(out), "0 glibc\n");
    let (r, out) = run_on(&dev, &["algo", "ChaCha20"]);
    r.unwrap();
    assert_eq!(text(out), "");
    assert_eq!(text(run_on(&dev, &["algo"]).1), "2 chacha20\n");
    run_on(&dev, &["algo", "0x3"]).0.unwrap();
    assert_eq!(text(run_on(&dev, &["algo"]).1), "3 host\n");
    // An id the library does not know is passed through to the device.
    assert_eq!(
        message(run_on(&dev, &["algo", "9"]).0),
        "algorithm 9 is not supported by the device (EINVAL)"
    );
    assert_eq!(
        dev.calls(),
        [
            "GET_ALGO",
            "SET_ALGO 2",
            "GET_ALGO",
            "SET_ALGO 3",
            "GET_ALGO",
            "SET_ALGO 9"
        ]
    );
    // A newer device may report an id this library does not know.
    let dev = FakeDevice {
        info: Info {
            algos: 0x30,
            ..FakeDevice::new().info
        },
        ..FakeDevice::new()
    };
    run_on(&dev, &["algo", "5"]).0.unwrap_err();
}

#[test]
fn seed_command() {
    let dev = FakeDevice::new();
    let (r, out) = run_on(&dev, &["seed", "0xdeadbeef"]);
    r.unwrap();
    assert!(out.is_empty());
    assert_eq!(dev.calls(), ["SEED 0xdeadbeef"]);
    let dev = FakeDevice::new().failing_after(0);
    assert_eq!(
        message(run_on(&dev, &["seed", "1"]).0),
        "SEED on /dev/fake_rng: device removed (ENODEV): the my_rng PCI device was unbound or unplugged"
    );
}

#[test]
fn info_without_sysfs() {
    let dev = FakeDevice::new();
    dev.set_algorithm_id(2).unwrap();
    let (r, out) = run_on(&dev, &["info"]);
    r.unwrap();
    assert_eq!(
        text(out),
        "\
device       /dev/fake_rng
pci          unknown (/nonexistent-sys/class/misc/fake_rng/device: No such file or directory (os error 2))
abi version  2.0
id           0x4d520200
features     0x00000007 (rng64, algo, entropy)
algorithm    2 chacha20
algorithms   0x0000000f (0 glibc, 1 xoshiro256pp, 2 chacha20, 3 host)
"
    );
}

#[test]
fn info_of_odd_devices() {
    let v1 = FakeDevice {
        info: Info {
            id: 0,
            features: 0,
            algos: 1,
            algo: 0,
            abi_version: Some((1, 0)),
        },
        ..FakeDevice::new()
    };
    let out = text(run_on(&v1, &["info"]).1);
    assert!(
        out.contains("abi version  1.0 (seed exercise device, no ID register)\n"),
        "{out}"
    );
    assert!(out.contains("features     0x00000000 ()\n"), "{out}");
    assert!(out.contains("algorithms   0x00000001 (0 glibc)\n"), "{out}");

    let newer = FakeDevice {
        info: Info {
            id: 0x1234,
            features: 0x60,
            algos: 0x21,
            algo: 0,
            abi_version: None,
        },
        ..FakeDevice::new()
    };
    let out = text(run_on(&newer, &["info"]).1);
    assert!(
        out.contains("abi version  unknown (no magic in ID)\n"),
        "{out}"
    );
    assert!(
        out.contains("features     0x00000060 (bit5, bit6)\n"),
        "{out}"
    );
    assert!(
        out.contains("algorithms   0x00000021 (0 glibc, 5 (unknown))\n"),
        "{out}"
    );

    // An ABI 1 driver has no INFO: the PCI lines are still printed.
    let old = FakeDevice {
        info_error: Some(|p| Error::NotSupported {
            op: "INFO",
            path: p.to_path_buf(),
        }),
        ..FakeDevice::new()
    };
    let (r, out) = run_on(&old, &["info"]);
    r.unwrap();
    assert!(text(out).ends_with(
        "abi version  unknown: INFO on /dev/fake_rng: ioctl not supported (ENOTTY): not a my_rng device, or the driver is too old\n"
    ));
    let gone = FakeDevice::new().failing_after(0);
    assert!(
        message(run_on(&gone, &["info"]).0).starts_with("INFO on /dev/fake_rng: device removed")
    );
}

#[test]
fn info_with_a_sysfs_tree() {
    let root = tempfile::tempdir().unwrap();
    let pci = root.path().join("devices/pci0000:00/0000:00:03.0");
    std::fs::create_dir_all(&pci).unwrap();
    std::fs::write(
        pci.join("resource"),
        "0x00000000febf1000 0x00000000febf1fff 0x0000000000040200\n",
    )
    .unwrap();
    let class = root.path().join("class/misc/fake_rng");
    std::fs::create_dir_all(&class).unwrap();
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:00/0000:00:03.0",
        class.join("device"),
    )
    .unwrap();
    let dev = FakeDevice::new();
    let mut out = Vec::new();
    info::run(&dev, &Sysfs::at(root.path()), &mut out).unwrap();
    let out = text(out);
    assert!(out.contains("\npci address  0000:00:03.0\ndriver       (none)\nbar0         0xfebf1000-0xfebf1fff (4096 bytes, mem 32-bit non-prefetchable)\nabi version  2.0\n"), "{out}");
}
