//! The round-trip benchmark (`my-rng-vfio-user-rtt`) runs the real server, gets the right
//! RNG values and DMA bytes through it and reports every figure; no timing is asserted.

use std::process::Command;

#[test]
fn rtt_reports_floor_and_region_read() {
    let out = Command::new(env!("CARGO_BIN_EXE_my-rng-vfio-user-rtt"))
        .args(["--calls", "300", "--rounds", "3", "--json"])
        .arg("--server")
        .arg(env!("CARGO_BIN_EXE_my-rng-vfio-user"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in [
        "floor_us",
        "region_read_us",
        "ratio",
        "dma_us",
        "dma_to_msi_us",
    ] {
        let v = j[key].as_f64().unwrap_or_else(|| panic!("{key}: {text}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    assert_eq!(j["calls"], 300);
    assert_eq!(j["rounds"]["floor_us"].as_array().unwrap().len(), 3);
    assert_eq!(j["rounds"]["region_read_us"].as_array().unwrap().len(), 3);
    assert_eq!(j["rounds"]["dma_us"].as_array().unwrap().len(), 3);
    assert_eq!(j["dma_bytes"], 4096);
    // The server's own account of the commands the run made.
    let timing = j["server_timing"].as_str().unwrap();
    assert!(timing.contains("first chunk→end signalled"), "{timing}");
}

#[test]
fn rtt_fails_without_a_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_my-rng-vfio-user-rtt"))
        .args(["--calls", "10", "--server", "/nonexistent/my-rng-vfio-user"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/my-rng-vfio-user"));
}
