//! debootstrap, for the base image when none can be pulled: the one on PATH,
//! else the pinned package from Debian's archive, hash-checked and unpacked
//! under `target/dist-test/tools/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{move_into_place, partial, verify_sha256, DOWNLOAD};
use crate::digest::sha256_file;
use crate::exec;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// How to run debootstrap: the program, and `DEBOOTSTRAP_DIR` for a copy
/// unpacked under target/ (its scripts are not in /usr/share there).
#[derive(Debug, Clone)]
pub struct Debootstrap {
    pub program: PathBuf,
    pub scripts: Option<PathBuf>,
}

impl Debootstrap {
    /// One that is here without a download: on PATH, else fetched before.
    pub fn at_hand(ws: &Workspace) -> Option<Debootstrap> {
        Debootstrap::installed().or_else(|| Debootstrap::fetched(ws))
    }

    /// The `debootstrap` on PATH, if any.
    fn installed() -> Option<Debootstrap> {
        which::which("debootstrap").ok().map(|program| Debootstrap {
            program,
            scripts: None,
        })
    }

    /// The copy under target/ when it was fetched and verified before.
    fn fetched(ws: &Workspace) -> Option<Debootstrap> {
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

    /// The script argument for `suite`: none when this debootstrap knows
    /// the suite, else `sid`'s (a debootstrap older than the suite, like
    /// bookworm's for forky, still makes it with the unstable script).
    pub fn script_for(&self, suite: &str) -> Vec<String> {
        let scripts = match &self.scripts {
            Some(dir) => dir.join("scripts"),
            None => PathBuf::from("/usr/share/debootstrap/scripts"),
        };
        if scripts.join(suite).exists() || !scripts.join("sid").exists() {
            vec![]
        } else {
            vec![scripts.join("sid").display().to_string()]
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
pub fn debootstrap(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<Debootstrap> {
    if let Some(d) = Debootstrap::at_hand(ws) {
        return Ok(d);
    }
    let cfg = &ws.config.image;
    if !cfg!(target_os = "linux") {
        bail!(
            "the base image cannot be pulled, and building one from Debian's packages needs Linux: \
             `docker pull` {} (with the Python) on a machine with registry access and \
             `docker save`/`docker load` it here",
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
    if let Err(e) = fetch_debootstrap(sh, ws, ui, &wget, &tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let _ = fs::remove_dir_all(&dir);
    move_into_place(&tmp, &dir, "debootstrap")?;
    Ok(Debootstrap::at(&dir))
}

fn fetch_debootstrap(sh: &Shell, ws: &Workspace, ui: Ui, wget: &Path, into: &Path) -> Result<()> {
    let cfg = &ws.config.image;
    let url = debootstrap_url(&cfg.fallback_mirror, &cfg.debootstrap_version);
    ui.say(&format!(
        "fetching debootstrap {} from {url}",
        cfg.debootstrap_version
    ));
    let deb = into.join("debootstrap.deb");
    exec::run(
        cmd!(sh, "{wget} --quiet --output-document {deb} {url}"),
        DOWNLOAD,
        ui,
    )
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
    exec::run(cmd!(sh, "tar -xf {tarball} -C {into}"), DOWNLOAD, ui)
        .with_context(|| format!("unpacking {name} of {url}"))?;
    fs::remove_file(&tarball)?;
    fs::remove_file(&deb)?;
    if !into.join("usr/sbin/debootstrap").is_file() {
        bail!("{url} holds no usr/sbin/debootstrap");
    }
    fs::write(into.join(STAMP), &cfg.debootstrap_sha256)?;
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
    fn package_address() {
        assert_eq!(
            debootstrap_url("http://deb.debian.org/debian/", "1.0.128+nmu2+deb12u2"),
            "http://deb.debian.org/debian/pool/main/d/debootstrap/debootstrap_1.0.128+nmu2+deb12u2_all.deb"
        );
    }
}
