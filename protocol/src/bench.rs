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

#[cfg(test)]
mod tests {
    use super::*;

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
