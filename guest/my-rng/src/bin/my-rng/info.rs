//! `my-rng info`.

use std::io::{self, Write};

use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Device, Error};

use crate::CmdResult;

pub fn run(dev: &Device) -> CmdResult {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let row = |out: &mut dyn Write, k: &str, v: &str| writeln!(out, "{k:<12} {v}");

    row(&mut out, "device", &dev.path().display().to_string())?;

    // sysfs problems only cost the PCI lines: the ioctl information is still useful.
    let sys = Sysfs::default();
    let misc_dir = sys.misc_dir_for_node(dev.path());
    match sys.pci_device(&misc_dir) {
        Ok(pci) => {
            row(&mut out, "pci address", &pci.address)?;
            row(
                &mut out,
                "driver",
                pci.driver.as_deref().unwrap_or("(none)"),
            )?;
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
            row(&mut out, "bar0", &bar0)?;
        }
        Err(e) => row(&mut out, "pci", &format!("unknown ({e})"))?,
    }

    match dev.info() {
        Ok(info) => {
            let abi = match info.abi_version {
                Some((1, 0)) if info.id == 0 => "1.0 (seed exercise device, no ID register)".into(),
                Some((maj, min)) => format!("{maj}.{min}"),
                None => "unknown (no magic in ID)".into(),
            };
            row(&mut out, "abi version", &abi)?;
            row(&mut out, "id", &format!("{:#010x}", info.id))?;
            row(
                &mut out,
                "features",
                &format!(
                    "{:#010x} ({})",
                    info.features,
                    info.feature_names().join(", ")
                ),
            )?;
            row(&mut out, "algorithm", &algo_name(info.algo))?;
            let algos: Vec<String> = (0..32)
                .filter(|b| info.algos & (1u32 << b) != 0)
                .map(algo_name)
                .collect();
            row(
                &mut out,
                "algorithms",
                &format!("{:#010x} ({})", info.algos, algos.join(", ")),
            )?;
        }
        Err(e @ Error::NotSupported { .. }) => {
            row(&mut out, "abi version", &format!("unknown: {e}"))?;
        }
        Err(e) => return Err(e.into()),
    }
    out.flush()?;
    Ok(())
}

fn algo_name(id: u32) -> String {
    match Algorithm::from_id(id) {
        Some(a) => format!("{id} {}", a.name()),
        None => format!("{id} (unknown)"),
    }
}
