//! Debian packages: the host's build dependencies, and a private apt configuration for the
//! suites this bookworm host must not install binaries from (sources and arch-all packages only).

use crate::util::{cache_dir, note, run, step};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Host packages from bookworm itself.
const HOST_PACKAGES: &[&str] = &[
    "build-essential",
    "flex",
    "bison",
    "bc",
    "libssl-dev",
    "libelf-dev",
    "python3-venv",
    "ninja-build",
    "pkg-config",
    "libglib2.0-dev",
    "busybox-static",
    "seabios",
    "qemu-system-data",
    "clang-19",
    "lld-19",
    "llvm-19",
    "libclang-19-dev",
    "dpkg-dev",
    "cpio",
    "xz-utils",
    "patch",
    "diffutils",
    "perl",
    // qemu-img, for the qtest's savevm/loadvm image (our QEMU build has no tools).
    "qemu-utils",
    // iPXE option ROMs (arch all, in /usr/lib/ipxe/qemu): QEMU's generic qtests start
    // machines with their default NICs, whose ROMs the +ds source does not ship.
    "ipxe-qemu",
    // BTF of modules built against Debian's 6.12 headers.
    "pahole",
    // Reading target/my-rng/manifest.json from scripts (README).
    "jq",
    // The text of the benchmark's chart (docs/bench/bench.png).
    "fonts-dejavu-core",
    // pdfinfo: the suite checks the report's page count (rendering it needs more:
    // report::PACKAGES, installed by `cargo xtask report`).
    "poppler-utils",
];

/// Host packages only `cargo xtask stats` (and `setup`) needs, from bookworm itself: kept out of
/// [`HOST_PACKAGES`] so that builds and the test suite do not install them.
const STATS_PACKAGES: &[&str] = &[
    // The statistical test battery, on the host and packed into the stats guest's initramfs.
    "dieharder",
];

/// Packages built for bookworm but published in bookworm-backports: safe to install.
const BACKPORTS_PACKAGES: &[&str] = &["meson"];

/// Suites for downloads only (sources, arch-all packages): never used to install.
const FETCH_SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
";

/// Suites installs may resolve from: bookworm and its backports, nothing newer, so no
/// dependency can pull a trixie/sid binary (and its libc) onto this bookworm host.
const INSTALL_SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
";

#[derive(Clone, Copy)]
enum Conf {
    Fetch,
    Install,
}

impl Conf {
    fn name(self) -> &'static str {
        match self {
            Conf::Fetch => "fetch",
            Conf::Install => "install",
        }
    }
    fn sources(self) -> &'static str {
        match self {
            Conf::Fetch => FETCH_SOURCES,
            Conf::Install => INSTALL_SOURCES,
        }
    }
}

fn apt_dir(conf: Conf) -> PathBuf {
    cache_dir().join("apt").join(conf.name())
}

/// `apt-get`/`apt-cache` options that confine apt to the private configuration.
fn private_opts(conf: Conf) -> Vec<String> {
    let d = apt_dir(conf);
    let o = |k: &str, v: &Path| format!("-o{k}={}", v.display());
    vec![
        o("Dir::Etc::SourceList", &d.join("sources.list")),
        "-oDir::Etc::SourceParts=-".into(),
        o("Dir::State::Lists", &d.join("lists")),
        o("Dir::Cache::Archives", &d.join("archives")),
        o("Dir::Etc::Preferences", &d.join("preferences")),
        o("Dir::Etc::PreferencesParts", &d.join("preferences.d")),
        "-oAPT::Get::List-Cleanup=0".into(),
        "-oAPT::Sandbox::User=root".into(),
    ]
}

fn private_apt_get(conf: Conf) -> Command {
    let mut c = Command::new("apt-get");
    c.args(private_opts(conf))
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn stale(path: &Path, max_age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > max_age)
        .unwrap_or(true)
}

/// Creates a private configuration and refreshes its lists at most once a day.
fn private_update(conf: Conf) -> Result<()> {
    let d = apt_dir(conf);
    for sub in ["lists/partial", "archives/partial", "preferences.d"] {
        fs::create_dir_all(d.join(sub))?;
    }
    let list = d.join("sources.list");
    crate::util::write_if_changed(&list, conf.sources().as_bytes())?;
    let stamp = d.join("updated");
    if stale(&stamp, Duration::from_secs(86400))
        || fs::metadata(&list)?.modified()? > fs::metadata(&stamp)?.modified()?
    {
        step(&format!(
            "Refreshing the private apt lists ({})",
            conf.name()
        ));
        run(private_apt_get(conf).arg("-qq").arg("update"))?;
        fs::write(&stamp, "")?;
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs whatever the project needs on the host and is missing.
pub fn ensure_host_packages() -> Result<()> {
    let missing: Vec<&str> = HOST_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        step(&format!("Installing host packages: {}", missing.join(" ")));
        run(Command::new("apt-get").args(["-qq", "update"]))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing))?;
    }
    let missing: Vec<&str> = BACKPORTS_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        private_update(Conf::Install)?;
        step(&format!(
            "Installing from bookworm-backports: {}",
            missing.join(" ")
        ));
        // `pkg/suite` takes only the named packages from backports; `-t` would also move
        // every upgradable dependency (systemd, ...) to backports.
        run(private_apt_get(Conf::Install)
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(missing.iter().map(|p| format!("{p}/bookworm-backports"))))?;
    }
    Ok(())
}

/// Installs the packages of `cargo xtask stats` that are missing.
pub fn ensure_stats_packages() -> Result<()> {
    ensure_extra_packages(STATS_PACKAGES)
}

/// Downloads a source package (`apt-get source --download-only`), trying versions newest
/// first because the mirror lists versions whose files are gone. Returns the .dsc path.
pub fn fetch_source(pkg: &str, versions: &[&str], into: &Path) -> Result<PathBuf> {
    fs::create_dir_all(into)?;
    for v in versions {
        let dsc = into.join(format!(
            "{pkg}_{}.dsc",
            v.split(':').next_back().unwrap_or(v)
        ));
        if dsc.exists() {
            return Ok(dsc);
        }
    }
    private_update(Conf::Fetch)?;
    for v in versions {
        step(&format!("Downloading source package {pkg} {v}"));
        let ok = private_apt_get(Conf::Fetch)
            .current_dir(into)
            .args(["-qq", "source", "--download-only"])
            .arg(format!("{pkg}={v}"))
            .status()?
            .success();
        let dsc = into.join(format!(
            "{pkg}_{}.dsc",
            v.split(':').next_back().unwrap_or(v)
        ));
        if ok && dsc.exists() {
            return Ok(dsc);
        }
        note(&format!(
            "{pkg} {v} did not download; trying an older version"
        ));
    }
    bail!("none of {pkg} {versions:?} could be downloaded from the Debian archive")
}

/// Downloads one binary package file (never installed) into `into`; returns its path.
pub fn download(pkg: &str, version: &str, into: &Path) -> Result<PathBuf> {
    fs::create_dir_all(into)?;
    let ver = version.split(':').next_back().unwrap_or(version);
    let prefix = format!("{pkg}_{ver}_");
    let file = |d: &Path| -> Option<PathBuf> {
        fs::read_dir(d).ok()?.filter_map(|e| e.ok()).find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with(&prefix) && n.ends_with(".deb")).then(|| e.path())
        })
    };
    if let Some(f) = file(into) {
        return Ok(f);
    }
    private_update(Conf::Fetch)?;
    step(&format!("Downloading {pkg} {version}"));
    run(private_apt_get(Conf::Fetch)
        .current_dir(into)
        .args(["-qq", "download"])
        .arg(format!("{pkg}={version}")))
    .with_context(|| {
        format!("{pkg} {version} is no longer downloadable from the Debian archive: update the version constant")
    })?;
    file(into).with_context(|| format!("{pkg} {version}: downloaded file not found"))
}

/// One package record of `apt-cache show`: its version and its Depends field.
pub struct Record {
    pub version: String,
    pub depends: String,
}

/// The records of `pkg` that bookworm and its backports publish (binaries that run on this
/// host), newest first.
pub fn bookworm_records(pkg: &str) -> Result<Vec<Record>> {
    private_update(Conf::Install)?;
    let mut c = Command::new("apt-cache");
    c.args(private_opts(Conf::Install)).args(["show", pkg]);
    let text = crate::util::output(&mut c)?;
    Ok(parse_records(&text))
}

/// The newest record of `pkg` (or `pkg=version`) in bookworm and its backports.
pub fn bookworm_newest(pkg: &str) -> Result<Record> {
    bookworm_records(pkg)?
        .into_iter()
        .next()
        .with_context(|| format!("bookworm has no {pkg}"))
}

fn parse_records(text: &str) -> Vec<Record> {
    text.split("\n\n")
        .filter_map(|rec| {
            let field = |name: &str| {
                rec.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            Some(Record {
                version: field("Version:")?,
                depends: field("Depends:").unwrap_or_default(),
            })
        })
        .collect()
}

/// Entries of a Depends field whose name starts with one of `prefixes`, as (name, version to
/// download): the version of `(= v)` or `(>= v)`, else `default`.
pub fn depends_named(depends: &str, prefixes: &[&str], default: &str) -> Vec<(String, String)> {
    depends
        .split([',', '|'])
        .filter_map(|d| {
            let d = d.trim();
            let (name, rel) = d.split_once(' ').unwrap_or((d, ""));
            if !prefixes.iter().any(|p| name.starts_with(p)) {
                return None;
            }
            let rel = rel
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let ver = rel
                .strip_prefix(">=")
                .or_else(|| rel.strip_prefix('='))
                .map_or(default, str::trim);
            Some((name.to_string(), ver.to_string()))
        })
        .collect()
}

/// Bookworm packages only one command needs (the statistics' dieharder, the fuzzer's sanitizer
/// runtimes, the report's renderer), installed when that command runs rather than for every
/// build. Resolved in the private install configuration (bookworm and its backports only)
/// with each package pinned to bookworm itself, so that neither it nor a dependency can come
/// from a newer suite whatever the host's own sources list.
pub fn ensure_extra_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    private_update(Conf::Install)?;
    step(&format!("Installing host packages: {}", missing.join(" ")));
    run(private_apt_get(Conf::Install)
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(missing.iter().map(|p| format!("{p}/bookworm"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_depends() {
        let text = "Package: linux-headers-amd64\nVersion: 6.12.95-1~bpo12+1\n\
                    Depends: linux-headers-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)\n\n\
                    Package: linux-headers-amd64\nVersion: 6.1.192-2\n\
                    Depends: linux-headers-6.1.0-56-amd64 (= 6.1.192-2)\n";
        let r = parse_records(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].version, "6.1.192-2");
        let d = "linux-base (>= 4.12~), linux-headers-6.12.95+deb12-common (= 6.12.95-1~bpo12+1), \
                 linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1) | \
                 linux-image-6.12.95+deb12-amd64-unsigned (= 6.12.95-1~bpo12+1), \
                 linux-kbuild-6.12.95+deb12, gcc-12";
        let want = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            depends_named(d, &["linux-headers-", "linux-kbuild-"], "dflt"),
            vec![
                want("linux-headers-6.12.95+deb12-common", "6.12.95-1~bpo12+1"),
                want("linux-kbuild-6.12.95+deb12", "dflt"),
            ]
        );
        let d = "linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (>= 6.1.192-2)";
        assert_eq!(
            depends_named(d, &["linux-kbuild-"], "dflt"),
            vec![want("linux-kbuild-6.1", "6.1.192-2")]
        );
    }
}
