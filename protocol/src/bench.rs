//! The bench report: the JSON object `my-rng bench --json` prints and `cargo xtask bench` reads.

use serde::{Deserialize, Serialize};

/// One measured row.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct BenchRow {
    pub id: String,
    pub label: String,
    pub bytes_per_call: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The row did not run: the driver lacks an optional attribute it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl BenchRow {
    /// Throughput in MB/s (10^6 bytes), if the row measured anything.
    pub fn mb_per_s(&self) -> Option<f64> {
        (self.bytes > 0 && self.seconds > 0.0).then(|| self.bytes as f64 / self.seconds / 1e6)
    }

    /// Calls per second, if the row measured anything.
    pub fn calls_per_s(&self) -> Option<f64> {
        let calls = self.bytes as f64 / self.bytes_per_call.max(1) as f64;
        self.mb_per_s().map(|_| calls / self.seconds)
    }
}

/// The whole report of one run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct BenchReport {
    pub rows: Vec<BenchRow>,
    /// The guest's kernel release.
    #[serde(default)]
    pub kernel: String,
    /// /sys/class/misc/hw_random/rng_available.
    #[serde(default)]
    pub hwrng_available: String,
    /// The PCI address of the device measured.
    #[serde(default)]
    pub pci: Option<String>,
}

/// The ids of `my-rng bench`'s rows: the guest names its rows with these, and `cargo xtask
/// bench` picks rows, goals and charts by them.
pub mod row {
    /// The seed's path: one RAND ioctl per 4 bytes (the reference of every other row).
    pub const IOCTL_RAND: &str = "ioctl-rand";
    pub const IOCTL_RAND64: &str = "ioctl-rand64";
    /// RAND through the register path (the driver's `ioctl_path` set to `mmio`).
    pub const IOCTL_RAND_MMIO: &str = "ioctl-rand-mmio";
    pub const IOCTL_RAND64_MMIO: &str = "ioctl-rand64-mmio";
    pub const IOCTL_SEED_READ: &str = "ioctl-seed-read";
    pub const READ_MMIO_64K: &str = "read-mmio-64k";
    pub const READ_BOUNCE_4K: &str = "read-bounce-4k";
    pub const READ_BOUNCE_64K: &str = "read-bounce-64k";
    pub const READ_BOUNCE_1M: &str = "read-bounce-1m";
    pub const READ_ZEROCOPY_4K: &str = "read-zerocopy-4k";
    pub const READ_ZEROCOPY_64K: &str = "read-zerocopy-64k";
    pub const READ_ZEROCOPY_1M: &str = "read-zerocopy-1m";
    /// /dev/hwrng with the device's own source selected.
    pub const HWRNG_MY_RNG: &str = "hwrng-my_rng";
    pub const HWRNG_VIRTIO: &str = "hwrng-virtio";
    pub const GETRANDOM_4B: &str = "getrandom-4b";
    pub const GETRANDOM_4K: &str = "getrandom-4k";
    pub const GETRANDOM_64K: &str = "getrandom-64k";
    pub const GETRANDOM_1M: &str = "getrandom-1m";
    pub const ZERO_4K: &str = "zero-4k";
    pub const ZERO_64K: &str = "zero-64k";
    pub const ZERO_1M: &str = "zero-1m";
    pub const READ_DMA_1M_GLIBC: &str = "read-dma-1m-glibc";
    pub const READ_DMA_1M_XOSHIRO: &str = "read-dma-1m-xoshiro256pp";
    pub const READ_DMA_1M_CHACHA: &str = "read-dma-1m-chacha20";
    pub const READ_DMA_1M_HOST: &str = "read-dma-1m-host";

    /// Every row, in the order the guest measures and prints them (the chart keeps it), and
    /// whether it is a device row: measured on the C device with the C driver, and again on
    /// the Rust device and with the Rust driver (ids prefixed [`RUST_DEVICE`], [`RUST_DRIVER`]).
    const TABLE: [(&str, bool); 25] = [
        (IOCTL_RAND, true),
        (IOCTL_RAND64, true),
        (IOCTL_RAND_MMIO, true),
        (IOCTL_RAND64_MMIO, true),
        (IOCTL_SEED_READ, true),
        (READ_MMIO_64K, true),
        (READ_BOUNCE_4K, true),
        (READ_BOUNCE_64K, true),
        (READ_BOUNCE_1M, true),
        (READ_ZEROCOPY_4K, true),
        (READ_ZEROCOPY_64K, true),
        (READ_ZEROCOPY_1M, true),
        (HWRNG_MY_RNG, true),
        (HWRNG_VIRTIO, false),
        (GETRANDOM_4B, false),
        (GETRANDOM_4K, false),
        (GETRANDOM_64K, false),
        (GETRANDOM_1M, false),
        (ZERO_4K, false),
        (ZERO_64K, false),
        (ZERO_1M, false),
        (READ_DMA_1M_GLIBC, true),
        (READ_DMA_1M_XOSHIRO, true),
        (READ_DMA_1M_CHACHA, true),
        (READ_DMA_1M_HOST, true),
    ];

    /// The rows of [`TABLE`] in order, all of them or `only_twins`; `N` is their number.
    const fn pick<const N: usize>(only_twins: bool) -> [&'static str; N] {
        let mut out = [""; N];
        let (mut i, mut n) = (0, 0);
        while i < TABLE.len() {
            if TABLE[i].1 || !only_twins {
                out[n] = TABLE[i].0;
                n += 1;
            }
            i += 1;
        }
        assert!(n == N, "N is not the number of rows picked");
        out
    }

    /// Every row, in output order.
    pub const ALL: [&str; 25] = pick(false);
    /// The device's rows, which the Rust twins measure too.
    pub const TWINS: [&str; 17] = pick(true);

    /// Id prefix of the rows measured with the Rust driver (on the C device).
    pub const RUST_DRIVER: &str = "rustdrv-";
    /// Id prefix of the rows measured on the Rust device (with the C driver).
    pub const RUST_DEVICE: &str = "rust-";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_are_distinct_and_twins_keep_the_order() {
        for (i, a) in row::ALL.iter().enumerate() {
            assert!(!row::ALL[i + 1..].contains(a), "{a} twice");
        }
        let pos = |id: &str| row::ALL.iter().position(|r| *r == id).unwrap();
        let order: Vec<usize> = row::TWINS.iter().map(|id| pos(id)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        // A prefixed id never reads as another row's.
        for p in [row::RUST_DRIVER, row::RUST_DEVICE] {
            assert!(row::ALL.iter().all(|r| !r.starts_with(p)), "{p}");
        }
    }

    #[test]
    fn round_trip() {
        let r = BenchReport {
            rows: vec![
                BenchRow {
                    id: "read-bounce-1m".into(),
                    label: "read() DMA bounce, 1 MiB".into(),
                    bytes_per_call: 1 << 20,
                    bytes: 800_000_000,
                    seconds: 1.0,
                    ..BenchRow::default()
                },
                BenchRow {
                    id: "ioctl-rand-mmio".into(),
                    skipped: Some("no ioctl_path".into()),
                    ..BenchRow::default()
                },
            ],
            kernel: "7.3.4".into(),
            hwrng_available: "my_rng".into(),
            pci: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            !text.contains("\"error\""),
            "absent fields stay out: {text}"
        );
        assert_eq!(serde_json::from_str::<BenchReport>(&text).unwrap(), r);
    }

    #[test]
    fn report_of_the_cli_before_this_crate() {
        // Keys in the order serde_json's json! wrote them (sorted), one row with an error.
        let text = r#"{"hwrng_available":"my_rng my_rng.1 virtio_rng.0","kernel":"7.3.4",
            "pci":"0000:00:03.0","rows":[{"bytes":0,"bytes_per_call":4096,
            "error":"no virtio source in rng_available","id":"hwrng-virtio",
            "label":"/dev/hwrng (virtio-rng), 4 KiB","seconds":0.0},{"bytes":50000000,
            "bytes_per_call":4096,"id":"hwrng-my_rng","label":"/dev/hwrng (my_rng), 4 KiB",
            "seconds":1.0}]}"#;
        let r: BenchReport = serde_json::from_str(text).unwrap();
        assert_eq!(r.pci.as_deref(), Some("0000:00:03.0"));
        assert_eq!(r.rows[0].mb_per_s(), None);
        assert_eq!(r.rows[1].mb_per_s(), Some(50.0));
        assert_eq!(r.rows[1].calls_per_s(), Some(50e6 / 4096.0));
        assert!(r.rows[0].error.is_some());
    }
}
