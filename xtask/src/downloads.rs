//! Tools the xtask gets for itself when the machine lacks them, each pinned
//! and verified by sha256 before it is used: uv (a wheel from PyPI) and
//! debootstrap (a package from Debian's archive). They live under
//! `target/dist-test/tools/`; nothing is installed into the system.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::project::sha256_file;
use crate::ui;
use crate::workspace::Workspace;

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

/// `uv==X --hash=sha256:A --hash=sha256:B ...`: a requirements file that pip
/// installs only if the wheel it downloads has one of these hashes.
pub fn uv_requirement() -> String {
    let mut line = format!("uv=={UV_VERSION}");
    for h in UV_WHEEL_SHA256 {
        line.push_str(&format!(" \\\n    --hash=sha256:{h}"));
    }
    line + "\n"
}

/// uv from PATH, else the pinned uv, installed once under target/ with pip
/// in hash-checking mode (never into the user's environment).
pub fn uv(sh: &Shell, ws: &Workspace) -> Result<PathBuf> {
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
    ui::say(&format!(
        "installing uv {UV_VERSION} into {}",
        dir.display()
    ));
    let tmp = partial(&dir);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let reqs = tmp.join("uv-requirements.txt");
    fs::write(&reqs, uv_requirement())?;
    let installed = ui::echo(cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-deps
         --only-binary :all: --require-hashes --target {tmp} --requirement {reqs}"
    ))
    .run()
    .with_context(|| {
        format!("installing uv {UV_VERSION} (hash-checked) from PyPI into target/; check the network, or install uv")
    });
    if let Err(e) = installed {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).with_context(|| format!("moving uv into {}", dir.display()))?;
    Ok(uv)
}

/// The pinned uv for the image's platform (`image.platform`), whatever the
/// host is: the wheel fetched hash-checked with pip, its `uv` program taken
/// out under target/. The image's build mounts it, so no layer holds it.
pub fn uv_for_image(sh: &Shell, ws: &Workspace) -> Result<PathBuf> {
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
        fs::write(&reqs, uv_requirement())?;
        let platforms = pip_platforms(platform)?;
        let wheels = tmp.join("wheels");
        ui::echo(cmd!(
            sh,
            "{python} -m pip download --quiet --disable-pip-version-check --no-deps
             --only-binary :all: {platforms...} --require-hashes
             --requirement {reqs} --dest {wheels}"
        ))
        .run()
        .with_context(|| {
            format!("fetching uv {UV_VERSION} for {platform} (hash-checked) from PyPI; check the network")
        })?;
        let wheel = fs::read_dir(&wheels)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .context("pip fetched no uv wheel")?;
        let unpacked = tmp.join("wheel");
        ui::echo(cmd!(sh, "{python} -m zipfile -e {wheel} {unpacked}"))
            .run()
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
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).with_context(|| format!("moving uv into {}", dir.display()))?;
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

/// `DIR.partial` beside `DIR`, where a download is put together before it
/// is moved into place.
fn partial(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dir.with_file_name(name)
}

/// How to run debootstrap: the program, and `DEBOOTSTRAP_DIR` for a copy
/// unpacked under target/ (its scripts are not in /usr/share there).
#[derive(Debug, Clone)]
pub struct Debootstrap {
    pub program: PathBuf,
    pub scripts: Option<PathBuf>,
}

impl Debootstrap {
    /// The `debootstrap` on PATH, if any.
    pub fn installed() -> Option<Debootstrap> {
        which::which("debootstrap").ok().map(|program| Debootstrap {
            program,
            scripts: None,
        })
    }

    /// The copy under target/ when it was fetched and verified before.
    pub fn fetched(ws: &Workspace) -> Option<Debootstrap> {
        let dir = debootstrap_dir(ws);
        let stamp = fs::read_to_string(dir.join(STAMP)).ok()?;
        (stamp.trim() == ws.config.image.debootstrap_sha256).then(|| Debootstrap::at(&dir))
    }

    fn at(dir: &Path) -> Debootstrap {
        Debootstrap {
            program: dir.join("usr/sbin/debootstrap"),
            scripts: Some(dir.join("usr/share/debootstrap")),
        }
    }

    pub fn describe(&self) -> String {
        match self.scripts {
            None => format!("{} (installed)", self.program.display()),
            Some(_) => format!("{} (fetched, verified)", self.program.display()),
        }
    }
}

const STAMP: &str = ".dist-test-sha256";

fn debootstrap_dir(ws: &Workspace) -> PathBuf {
    let version = &ws.config.image.debootstrap_version;
    ws.target
        .join("tools")
        .join(format!("debootstrap-{version}"))
}

/// The package's address in the configured Debian mirror.
pub fn debootstrap_url(mirror: &str, version: &str) -> String {
    format!(
        "{}/pool/main/d/debootstrap/debootstrap_{version}_all.deb",
        mirror.trim_end_matches('/')
    )
}

/// debootstrap from PATH, else the pinned package from Debian's archive,
/// checked against `image.debootstrap_sha256` and unpacked under target/. A
/// download whose hash differs is refused and removed; a failed unpack
/// leaves nothing.
pub fn debootstrap(sh: &Shell, ws: &Workspace) -> Result<Debootstrap> {
    if let Some(d) = Debootstrap::installed().or_else(|| Debootstrap::fetched(ws)) {
        return Ok(d);
    }
    let cfg = &ws.config.image;
    if !cfg!(target_os = "linux") {
        bail!(
            "the base image {} cannot be pulled, and building one from Debian's packages needs Linux: \
             `docker pull {}` on a machine with registry access and `docker save`/`docker load` it here",
            cfg.base,
            cfg.base
        );
    }
    let wget = which::which("wget").context(
        "debootstrap needs wget to fetch Debian's packages, and wget is not installed: install it",
    )?;
    let dir = debootstrap_dir(ws);
    let tmp = partial(&dir);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    if let Err(e) = fetch_debootstrap(sh, ws, &wget, &tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).with_context(|| format!("moving debootstrap into {}", dir.display()))?;
    Ok(Debootstrap::at(&dir))
}

fn fetch_debootstrap(sh: &Shell, ws: &Workspace, wget: &Path, into: &Path) -> Result<()> {
    let cfg = &ws.config.image;
    let url = debootstrap_url(&cfg.fallback_mirror, &cfg.debootstrap_version);
    ui::say(&format!(
        "fetching debootstrap {} from {url}",
        cfg.debootstrap_version
    ));
    let deb = into.join("debootstrap.deb");
    ui::echo(cmd!(sh, "{wget} --quiet --output-document {deb} {url}"))
        .run()
        .with_context(|| {
            format!(
                "downloading {url}: check the network and image.fallback_mirror; if the archive has \
                 a newer debootstrap, set image.debootstrap_version and image.debootstrap_sha256 \
                 (`apt-cache show debootstrap` prints both)"
            )
        })?;
    let got = sha256_file(&deb)?;
    verify_sha256(&got, &cfg.debootstrap_sha256, &url)?;
    let bytes = fs::read(&deb).with_context(|| format!("reading {}", deb.display()))?;
    let (name, data) =
        ar_member(&bytes, "data.tar").with_context(|| format!("{url} is not a Debian package"))?;
    let tarball = into.join(&name);
    fs::write(&tarball, data).with_context(|| format!("writing {}", tarball.display()))?;
    ui::echo(cmd!(sh, "tar -xf {tarball} -C {into}"))
        .run()
        .with_context(|| format!("unpacking {name} of {url}"))?;
    fs::remove_file(&tarball)?;
    fs::remove_file(&deb)?;
    if !into.join("usr/sbin/debootstrap").is_file() {
        bail!("{url} holds no usr/sbin/debootstrap");
    }
    fs::write(into.join(STAMP), &cfg.debootstrap_sha256)?;
    Ok(())
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

/// The first member of an `ar` archive (a .deb) whose name starts with
/// `prefix`: its name and contents.
pub fn ar_member<'a>(archive: &'a [u8], prefix: &str) -> Result<(String, &'a [u8])> {
    const MAGIC: &[u8] = b"!<arch>\n";
    const HEADER: usize = 60;
    if !archive.starts_with(MAGIC) {
        bail!("not an ar archive");
    }
    let mut at = MAGIC.len();
    while at + HEADER <= archive.len() {
        let header = &archive[at..at + HEADER];
        if &header[58..60] != b"`\n" {
            bail!("a damaged ar member header at byte {at}");
        }
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: usize = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .with_context(|| format!("a damaged ar member size at byte {at}"))?;
        let start = at + HEADER;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= archive.len())
            .with_context(|| format!("ar member {name} runs past the end (truncated?)"))?;
        if name.starts_with(prefix) {
            return Ok((name, &archive[start..end]));
        }
        at = end + (size % 2);
    }
    bail!("no {prefix}* member")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}",
            0,
            0,
            0,
            100644,
            data.len()
        )
        .into_bytes();
        h.extend_from_slice(b"`\n");
        h.extend_from_slice(data);
        if data.len() % 2 == 1 {
            h.push(b'\n');
        }
        h
    }

    fn deb() -> Vec<u8> {
        let mut a = b"!<arch>\n".to_vec();
        a.extend(member("debian-binary", b"2.0\n"));
        a.extend(member("control.tar.xz/", b"odd"));
        a.extend(member("data.tar.xz", b"payload"));
        a
    }

    #[test]
    fn finds_the_data_member() {
        let a = deb();
        let (name, data) = ar_member(&a, "data.tar").unwrap();
        assert_eq!(name, "data.tar.xz");
        assert_eq!(data, b"payload");
        let (name, data) = ar_member(&a, "control.tar").unwrap();
        assert_eq!((name.as_str(), data), ("control.tar.xz", &b"odd"[..]));
    }

    #[test]
    fn truncated_or_foreign_archives_are_refused() {
        let a = deb();
        let cut = &a[..a.len() - 3];
        let err = ar_member(cut, "data.tar").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert!(ar_member(b"PK\x03\x04", "data.tar").is_err());
        assert!(ar_member(&a, "nothing").is_err());
    }

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
            Path::new("/t/tools/debootstrap-1.0.128+nmu2.partial")
        );
    }

    #[test]
    fn package_address() {
        assert_eq!(
            debootstrap_url("http://deb.debian.org/debian/", "1.0.128+nmu2+deb12u2"),
            "http://deb.debian.org/debian/pool/main/d/debootstrap/debootstrap_1.0.128+nmu2+deb12u2_all.deb"
        );
    }

    #[test]
    fn uv_requirement_pins_every_hash() {
        let r = uv_requirement();
        assert!(r.starts_with(&format!("uv=={UV_VERSION} \\\n")));
        assert_eq!(r.matches("--hash=sha256:").count(), UV_WHEEL_SHA256.len());
        assert!(UV_WHEEL_SHA256.iter().all(|h| h.len() == 64));
    }
}
