//! The loadable module: unload refused while open, then unload and reload.

use std::time::Duration;

use super::{glibc_starts, open, Ctx};
use crate::util::*;

/// Where the guest's initramfs keeps the out-of-tree build of the driver.
pub(crate) const MODULE_PATH: &str = "/lib/modules/my_rng.ko";
const MODULE_SYSFS: &str = "module/my_rng";

/// Runs a busybox module tool; Ok(true) if it exited 0.
pub(super) fn modtool(args: &[&str]) -> Result<bool, String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    Ok(out.status.success())
}

/// An open file pins the module; once closed, rmmod removes every node, and a new insmod
/// brings the devices back with their v1 behaviour.
pub(super) fn module_unload_reload(c: &Ctx) -> TestResult {
    let refcnt = c.sys.root().join(MODULE_SYSFS).join("refcnt");
    if !refcnt.exists() {
        return Err(format!(
            "{} missing: my_rng is not a loaded module",
            refcnt.display()
        ));
    }
    let dev = open(&c.dev0)?;
    if modtool(&["rmmod", "my_rng"])? {
        return Err("rmmod succeeded while a file was open".into());
    }
    glibc_starts("open file after refused rmmod", &dev, 0)?;
    drop(dev);
    if !modtool(&["rmmod", "my_rng"])? {
        return Err("rmmod failed with no file open".into());
    }
    let gone = wait_for(Duration::from_secs(10), || {
        !c.dev0.exists() && !c.dev1.exists() && !refcnt.exists()
    });
    if !gone {
        return Err("device nodes or the module still present 10 s after rmmod".into());
    }
    if !modtool(&["insmod", MODULE_PATH])? {
        return Err(format!("insmod {MODULE_PATH} failed after rmmod"));
    }
    if !wait_for(Duration::from_secs(10), || {
        c.dev0.exists() && c.dev1.exists()
    }) {
        return Err("device nodes not back 10 s after insmod".into());
    }
    for p in [&c.dev0, &c.dev1] {
        glibc_starts(&format!("{} after reload", p.display()), &open(p)?, 0x42)?;
    }
    Ok(())
}
