//! Tools the xtask gets for itself when the machine lacks them, each pinned
//! and verified by sha256 before it is used: uv and zizmor (wheels from
//! PyPI) and debootstrap (a package from Debian's archive). They live under
//! `target/dist-test/tools/`; nothing is installed into the system.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::exec;
use crate::ui::Ui;
use crate::workspace::Workspace;

mod debootstrap;
mod zizmor;

pub use debootstrap::{ar_member, debootstrap, debootstrap_url, Debootstrap};
pub use zizmor::{zizmor, ZIZMOR, ZIZMOR_VERSION};

/// The uv the xtask fetches when none is on PATH, and that the image's
/// dependency layer installs with.
pub const UV_VERSION: &str = "0.13.8";

/// sha256 of every uv 0.13.8 wheel we accept: Linux x86_64 and aarch64 (the
/// image; aarch64's is also the musl one), macOS on both, musl x86_64.
const UV_WHEEL_SHA256: &[&str] = &[
    "e18a57b8b352eb7c8feb317b9f6f533c8f0ad9673fd6cf34bbe3cf1a9f6a8984",
    "0b3e8b1a4f5e405e31e2ff33de8af4744831e9f7338539671efbd8c3c94e791d",
    "29451c60f5e8b07403e0a175d5229efc36b0289b34143ff4aaa499a5dd52553a",
    "62b6943c7fd64fac6854f780bea6e0359e5a5bc3241f83ee357bb38276afac49",
    "b7124ca1956ec2e476a1003ea5715a15f0266afaec37f4dc9c6972ba8183e6d1",
];

/// uv as a wheel from PyPI, pinned by version and hashes.
pub const UV: Wheel = Wheel {
    name: "uv",
    version: UV_VERSION,
    sha256: UV_WHEEL_SHA256,
    fix: "check the network, or install uv",
};

/// uv from PATH, else the pinned uv, installed once under target/ with pip
/// in hash-checking mode (never into the user's environment).
pub fn uv(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<PathBuf> {
    if let Ok(uv) = which::which("uv") {
        return Ok(uv);
    }
    let dir = ws.target.join("tools").join(format!("uv-{UV_VERSION}"));
    let uv = dir.join("bin").join("uv");
    if uv.is_file() {
        return Ok(uv);
    }
    let python = which::which("python3").context(
        "uv is not installed and python3 (with pip) is not there to fetch it: install uv",
    )?;
    pip_install(sh, ui, &python, &UV, &dir)?;
    Ok(uv)
}

/// A program that PyPI ships as a wheel, pinned to one version and the
/// sha256 of every wheel we accept (one per platform).
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static [&'static str],
    /// What to do when the download fails.
    pub fix: &'static str,
}

impl Wheel {
    /// `NAME==VERSION --hash=sha256:A --hash=sha256:B ...`: a requirements
    /// file that pip installs only if the wheel it downloads has one of
    /// these hashes.
    pub fn requirement(&self) -> String {
        let mut line = format!("{}=={}", self.name, self.version);
        for h in self.sha256 {
            line.push_str(&format!(" \\\n    --hash=sha256:{h}"));
        }
        line + "\n"
    }
}

/// Install `wheel` into `dir` (its programs land in `dir/bin`) with pip in
/// hash-checking mode: put together in `DIR.partial`, then moved into
/// place, so that `dir` is whole or absent.
pub fn pip_install(sh: &Shell, ui: Ui, python: &Path, wheel: &Wheel, dir: &Path) -> Result<()> {
    let Wheel { name, version, .. } = *wheel;
    ui.say(&format!(
        "installing {name} {version} into {}",
        dir.display()
    ));
    let tmp = partial(dir);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let reqs = tmp.join(format!("{name}-requirements.txt"));
    fs::write(&reqs, wheel.requirement()).with_context(|| format!("writing {}", reqs.display()))?;
    let install = cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-deps
         --only-binary :all: --require-hashes --target {tmp} --requirement {reqs}"
    )
    .env("PIP_ROOT_USER_ACTION", "ignore");
    let installed = exec::run(install, DOWNLOAD, ui).with_context(|| {
        format!(
            "installing {name} {version} (hash-checked) from PyPI into target/; {}",
            wheel.fix
        )
    });
    if let Err(e) = installed {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    move_into_place(&tmp, dir, name)
}

/// The pinned uv for the image's platform (`image.platform`), whatever the
/// host is: the wheel fetched hash-checked with pip, its `uv` program taken
/// out under target/. The image's build mounts it, so no layer holds it.
pub fn uv_for_image(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<PathBuf> {
    let platform = &ws.config.image.platform;
    let dir = ws
        .target
        .join("tools")
        .join(format!("uv-{UV_VERSION}-{platform}"));
    let uv = dir.join("uv");
    if uv.is_file() {
        return Ok(uv);
    }
    let python = which::which("python3").context(
        "python3 (with pip) is needed once, to fetch uv for the image from PyPI: install it",
    )?;
    let tmp = partial(&dir);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = (|| {
        let reqs = tmp.join("uv-requirements.txt");
        fs::write(&reqs, UV.requirement())?;
        let platforms = pip_platforms(platform)?;
        let wheels = tmp.join("wheels");
        let download = cmd!(
            sh,
            "{python} -m pip download --quiet --disable-pip-version-check --no-deps
             --only-binary :all: {platforms...} --require-hashes
             --requirement {reqs} --dest {wheels}"
        )
        .env("PIP_ROOT_USER_ACTION", "ignore");
        exec::run(download, DOWNLOAD, ui).with_context(|| {
            format!("fetching uv {UV_VERSION} for {platform} (hash-checked) from PyPI; check the network")
        })?;
        let wheel = fs::read_dir(&wheels)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .context("pip fetched no uv wheel")?;
        let unpacked = tmp.join("wheel");
        exec::run(
            cmd!(sh, "{python} -m zipfile -e {wheel} {unpacked}"),
            DOWNLOAD,
            ui,
        )
        .with_context(|| format!("unpacking {}", wheel.display()))?;
        let program = unpacked.join(format!("uv-{UV_VERSION}.data/scripts/uv"));
        fs::copy(&program, tmp.join("uv"))
            .with_context(|| format!("{} holds no uv program", wheel.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.join("uv"), fs::Permissions::from_mode(0o755))?;
        }
        fs::remove_dir_all(&unpacked)?;
        fs::remove_dir_all(&wheels)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    move_into_place(&tmp, &dir, "uv")?;
    Ok(uv)
}

/// `--platform` arguments for pip that match wheels for uv's platform
/// (`x86_64-manylinux_2_36`): pip does not widen a manylinux tag to the
/// older glibc versions it includes, so every one is named.
pub fn pip_platforms(uv_platform: &str) -> Result<Vec<String>> {
    let bad =
        || anyhow::anyhow!("image.platform {uv_platform:?} is not like \"x86_64-manylinux_2_36\"");
    let (arch, libc) = uv_platform.split_once('-').ok_or_else(bad)?;
    let glibc_minor: u32 = libc
        .strip_prefix("manylinux_2_")
        .and_then(|m| m.parse().ok())
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    for minor in (5..=glibc_minor).rev() {
        out.push("--platform".to_string());
        out.push(format!("manylinux_2_{minor}_{arch}"));
    }
    for legacy in ["manylinux2014", "manylinux2010", "manylinux1"] {
        out.push("--platform".to_string());
        out.push(format!("{legacy}_{arch}"));
    }
    Ok(out)
}

/// How long a download (and its unpacking) may take.
pub const DOWNLOAD: Duration = Duration::from_secs(900);

/// `url` into the file `dest`, with wget or else curl (whichever the
/// machine has); a failure says what to check.
pub fn fetch_url(sh: &Shell, ui: Ui, url: &str, dest: &Path) -> Result<()> {
    let download = if let Ok(wget) = which::which("wget") {
        cmd!(sh, "{wget} --quiet --output-document {dest} {url}")
    } else if let Ok(curl) = which::which("curl") {
        cmd!(
            sh,
            "{curl} --silent --show-error --fail --location --output {dest} {url}"
        )
    } else {
        bail!("neither wget nor curl is installed, and {url} must be downloaded: install one");
    };
    exec::run(download, DOWNLOAD, ui)
        .with_context(|| format!("downloading {url}; check the network"))
}

/// `DIR.partial-<pid>` beside `DIR`, where this process puts a download
/// together before it is moved into place: two processes never share it.
pub(crate) fn partial(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    dir.with_file_name(name)
}

/// Move a finished download from `tmp` to `dir`. Another process that
/// finished the same download first wins: its copy is as good as ours.
pub(crate) fn move_into_place(tmp: &Path, dir: &Path, what: &str) -> Result<()> {
    if dir.exists() {
        let _ = fs::remove_dir_all(tmp);
        return Ok(());
    }
    match fs::rename(tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.exists() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("moving {what} into {}", dir.display())),
    }
}

/// Refuse a download whose sha256 is not the pinned one.
pub fn verify_sha256(got: &str, want: &str, what: &str) -> Result<()> {
    if !got.eq_ignore_ascii_case(want) {
        bail!(
            "refusing {what}: its sha256 is {got}, but dist-test.toml pins {want} \
             (a tampered mirror or proxy, or a new package: check image.fallback_mirror and \
             image.debootstrap_sha256)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_different_hash_is_refused_with_the_fix() {
        let want = "63f354316e9bbe747b143b7b0d83e5f237c90314a17734fba9ff202c2ef02760";
        assert!(verify_sha256(&want.to_uppercase(), want, "x").is_ok());
        let err = verify_sha256(&"0".repeat(64), want, "http://m/x.deb")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("refusing http://m/x.deb"), "{err}");
        assert!(err.contains("image.debootstrap_sha256"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }

    #[test]
    fn platforms_for_pip() {
        let p = pip_platforms("x86_64-manylinux_2_36").unwrap();
        assert_eq!(p[..2], ["--platform", "manylinux_2_36_x86_64"]);
        assert!(p.contains(&"manylinux_2_17_x86_64".to_string()));
        assert!(p.contains(&"manylinux2014_x86_64".to_string()));
        assert!(!p.iter().any(|a| a.contains("2_37")));
        let a = pip_platforms("aarch64-manylinux_2_28").unwrap();
        assert!(a.contains(&"manylinux_2_17_aarch64".to_string()));
        assert!(pip_platforms("linux").is_err());
        assert!(pip_platforms("x86_64-musllinux_1_2").is_err());
    }

    #[test]
    fn partial_folders_sit_beside() {
        assert_eq!(
            partial(Path::new("/t/tools/debootstrap-1.0.128+nmu2")),
            Path::new(&format!(
                "/t/tools/debootstrap-1.0.128+nmu2.partial-{}",
                std::process::id()
            ))
        );
    }

    #[test]
    fn uv_requirement_pins_every_hash() {
        let r = UV.requirement();
        assert!(r.starts_with(&format!("uv=={UV_VERSION} \\\n")));
        assert_eq!(r.matches("--hash=sha256:").count(), UV_WHEEL_SHA256.len());
        assert!(UV_WHEEL_SHA256.iter().all(|h| h.len() == 64));
    }
}
