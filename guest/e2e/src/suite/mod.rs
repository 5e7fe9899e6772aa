//! The end-to-end tests. Each is independent: it opens its own handles, sets up the algorithm
//! and seed it needs, and puts the device back on glibc when done.

use std::path::{Path, PathBuf};
use std::time::Duration;

use my_rng::sysfs::Sysfs;
use my_rng::{Algorithm, Device};

use crate::util::*;

mod devices;
mod dma;
mod errors;
mod hwrng;
mod interleave;
mod ioctl_path;
mod ioctls;
mod kmsg;
mod module;
mod read;
mod seed_read;
mod stash;

/// What the tests run against.
pub struct Ctx {
    /// First device node (`/dev/my_rng_driver`).
    pub dev0: PathBuf,
    /// Second device node (`/dev/my_rng_driver1`).
    pub dev1: PathBuf,
    /// sysfs.
    pub sys: Sysfs,
    /// The device must be ABI 2.1 with DMA (`--expect-dma`).
    pub expect_dma: bool,
}

type TestFn = Box<dyn Fn(&Ctx) -> TestResult + Send + Sync>;

/// A named test.
pub struct Test {
    pub name: String,
    pub run: TestFn,
    /// Lower bound on the runner's per-test limit, for tests whose own internal time limits
    /// add up to more than the default.
    pub min_limit: Duration,
    /// Needs FEATURES.DMA (the runner does not run it on a device without).
    pub needs_dma: bool,
}

fn t(name: impl Into<String>, f: impl Fn(&Ctx) -> TestResult + Send + Sync + 'static) -> Test {
    Test {
        name: name.into(),
        run: Box::new(f),
        min_limit: Duration::ZERO,
        needs_dma: false,
    }
}

/// A test of the DMA read paths (see [`Test::needs_dma`]).
fn d(name: impl Into<String>, f: impl Fn(&Ctx) -> TestResult + Send + Sync + 'static) -> Test {
    Test {
        needs_dma: true,
        ..t(name, f)
    }
}

/// Every test, in run order. The unbind tests are the only destructive ones and run last but
/// for `kmsg-clean`, which then also sees anything the unbind/bind cycles logged.
pub fn all() -> Vec<Test> {
    let mut v = vec![
        t("classic-seed-0", |c| ioctls::classic_sequence(c, 0)),
        t("classic-seed-0x42", |c| ioctls::classic_sequence(c, 0x42)),
        t("classic-reseed-replays", ioctls::classic_reseed_replays),
    ];
    for alg in Algorithm::DETERMINISTIC {
        v.push(t(format!("algo-vectors-{alg}"), move |c| {
            ioctls::algo_vectors(c, alg)
        }));
    }
    v.extend([
        t(
            "algo-switch-reseeds-from-latch",
            ioctls::algo_switch_reseeds,
        ),
        t("algo-get-roundtrip", ioctls::algo_get_roundtrip),
        t("algo-set-invalid", ioctls::algo_set_invalid),
        t("info", ioctls::info),
        t("read-vectors", read::read_vectors),
        t("read-1mib", read::read_1mib),
        t("read-3-bytes", read::read_3_bytes),
        t("read-efault", read::read_efault),
        t("seed-read-vectors", seed_read::seed_read_vectors),
        t("seed-read-einval", seed_read::seed_read_einval),
        t("seed-read-efault", seed_read::seed_read_efault),
        t("seed-read-concurrent", seed_read::seed_read_concurrent),
        t("bad-pointers-efault", errors::bad_pointers_efault),
        t("unknown-ioctls-enotty", errors::unknown_ioctls),
        d("dma-read-path-attribute", dma::read_path_attribute),
        d("dma-read-vectors-bounce", |c| {
            dma::read_vectors_on(c, "bounce")
        }),
        d("dma-read-vectors-zerocopy", |c| {
            dma::read_vectors_on(c, "zerocopy")
        }),
        d("dma-read-vectors-mmio", |c| dma::read_vectors_on(c, "mmio")),
        d("dma-read-odd-sizes-offsets", dma::read_odd_sizes_offsets),
        d("dma-read-many-pages", dma::read_many_pages),
        d("dma-read-bound", dma::read_bound),
        d("dma-read-efault", dma::read_efault_paths),
        d("dma-read-partly-bad-buffers", dma::read_partly_bad_buffers),
        // Two read paths, each with its own 60 s limit.
        Test {
            min_limit: Duration::from_secs(150),
            ..d(
                "dma-seed-read-vs-dma-readers",
                dma::seed_read_vs_dma_readers,
            )
        },
    ]);
    // One sequence through every call, in any order (issue 18's RAND stash); ABI only.
    v.extend([
        t("stash-long-runs", stash::long_runs),
        t("stash-rand64-positions", stash::rand64_positions),
        t("stash-read-after-rands", stash::read_after_rands),
        t("stash-read-drains", stash::read_drains),
        t("stash-reseed-mid-stash", stash::reseed_mid_stash),
        t("stash-algo-switches", stash::algo_switches),
    ]);
    for alg in Algorithm::DETERMINISTIC {
        v.push(t(format!("stash-mix-{alg}"), move |c| {
            stash::random_mix(c, alg, 0x57a5_4000 + u64::from(alg.id()), 2000, &[])
        }));
    }
    v.extend([
        t("stash-interleave-shared-file", interleave::shared_file),
        t("stash-interleave-own-files", interleave::own_files),
        // The ioctl_path attribute (a driver with the stash).
        t("ioctl-path-attribute", ioctl_path::attribute),
        t("ioctl-path-root-only", ioctl_path::root_only),
        t("ioctl-path-mmio-vectors", ioctl_path::mmio_vectors),
        t(
            "ioctl-path-switch-keeps-sequence",
            ioctl_path::switch_keeps_sequence,
        ),
    ]);
    for alg in Algorithm::DETERMINISTIC {
        v.push(t(format!("ioctl-path-mix-{alg}"), move |c| {
            ioctl_path::mix(c, alg)
        }));
    }
    v.extend([
        t(
            "ioctl-path-interleave-switching",
            ioctl_path::interleave_switching,
        ),
        t("hwrng-present", hwrng::hwrng_present),
        t("hwrng-read", hwrng::hwrng_read),
        t("hwrng-does-not-disturb", hwrng::hwrng_does_not_disturb),
        t("two-devices-present", devices::two_devices_present),
        t("two-devices-independent", devices::two_devices_independent),
        // Its steps have their own limits (unbind 30 s, ENODEV 10 s, bind 30 s, node 10 s).
        Test {
            min_limit: Duration::from_secs(120),
            ..t("unbind-while-open", devices::unbind_while_open)
        },
        // Two unbind/bind cycles, each like unbind-while-open.
        Test {
            min_limit: Duration::from_secs(240),
            ..d("dma-unbind-while-reading", dma::unbind_while_dma_reading)
        },
        t("kmsg-clean", kmsg::kmsg_clean),
    ]);
    v
}

/// Tests that need the driver loaded as my_rng.ko (not built in): `my-rng-e2e --module`.
pub fn module_tests() -> Vec<Test> {
    vec![t("module-unload-reload", module::module_unload_reload)]
}

fn open(path: &Path) -> Result<Device, String> {
    Device::open(path).map_err(|e| e.to_string())
}

/// Expected `n`-value prefix, with the vector's length checked.
fn want(alg: Algorithm, seed: u32, bits: u32, n: usize) -> Result<Vec<u64>, String> {
    let v = expected(alg, seed, bits)?;
    if v.len() < n {
        return Err(format!(
            "{alg} seed {seed:#x} {bits}-bit vector has {} values, need {n}",
            v.len()
        ));
    }
    Ok(v[..n].to_vec())
}

/// Seeds glibc with `seed` and checks the first five RAND values against the vector.
fn glibc_starts(what: &str, dev: &Device, seed: u32) -> TestResult {
    start(dev, Algorithm::Glibc, seed)?;
    check_seq(
        what,
        &read_values(dev, 32, 5)?,
        &want(Algorithm::Glibc, seed, 32, 5)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_order_is_fixed() {
        let names: Vec<String> = all().into_iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.last().map(String::as_str), Some("kmsg-clean"));
        assert_eq!(names[names.len() - 3], "unbind-while-open");
        assert_eq!(names[names.len() - 2], "dma-unbind-while-reading");
        assert!(names.contains(&"algo-vectors-chacha20".to_string()));
    }

    #[test]
    fn info_struct_is_the_c_layout() {
        assert_eq!(std::mem::size_of::<my_rng::uapi::RawInfo>(), 16);
    }
}
