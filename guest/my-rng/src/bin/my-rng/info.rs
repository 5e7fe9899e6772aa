//! `my-rng info`.

use std::io::{self, Write};

use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Error, Info};

use crate::dev::RngDevice;
use crate::CmdResult;

fn row(out: &mut dyn Write, k: &str, v: &str) -> io::Result<()> {
    writeln!(out, "{k:<12} {v}")
}

pub fn run(dev: &dyn RngDevice, sys: &Sysfs, out: &mut dyn Write) -> CmdResult {
    row(out, "device", &dev.path().display().to_string())?;
    // sysfs problems only cost the PCI lines: the ioctl information is still useful.
    pci_rows(dev, sys, out)?;
    match dev.info() {
        Ok(info) => info_rows(&info, out)?,
        Err(e @ Error::NotSupported { .. }) => {
            row(out, "abi version", &format!("unknown: {e}"))?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn pci_rows(dev: &dyn RngDevice, sys: &Sysfs, out: &mut dyn Write) -> io::Result<()> {
    let pci = match sys.pci_device(&sys.misc_dir_for_node(dev.path())) {
        Ok(pci) => pci,
        Err(e) => return row(out, "pci", &format!("unknown ({e})")),
    };
    row(out, "pci address", &pci.address)?;
    row(out, "driver", pci.driver.as_deref().unwrap_or("(none)"))?;
    let bar0 = match pci.bar0 {
        Some(r) if r.size() > 0 => format!(
            "{:#x}-{:#x} ({} bytes, {})",
            r.start,
            r.end,
            r.size(),
            r.kind()
        ),
        Some(_) => "unassigned".to_string(),
        None => "unknown (resource file unreadable)".to_string(),
    };
    row(out, "bar0", &bar0)
}

fn info_rows(info: &Info, out: &mut dyn Write) -> io::Result<()> {
    let abi = match info.abi_version {
        Some((1, 0)) if info.id == 0 => "1.0 (seed exercise device, no ID register)".into(),
        Some((maj, min)) => format!("{maj}.{min}"),
        None => "unknown (no magic in ID)".into(),
    };
    row(out, "abi version", &abi)?;
    row(out, "id", &format!("{:#010x}", info.id))?;
    let features = info.feature_names().join(", ");
    row(
        out,
        "features",
        &format!("{:#010x} ({features})", info.features),
    )?;
    row(out, "algorithm", &algo_name(info.algo))?;
    let algos: Vec<String> = (0..32)
        .filter(|b| info.algos & (1u32 << b) != 0)
        .map(algo_name)
        .collect();
    row(
        out,
        "algorithms",
        &format!("{:#010x} ({})", info.algos, algos.join(", ")),
    )
}

fn algo_name(id: u32) -> String {
    match Algorithm::from_id(id) {
        Some(a) => format!("{id} {}", a.name()),
        None => format!("{id} (unknown)"),
    }
}
