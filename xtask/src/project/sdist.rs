//! A release's sdist from PyPI: downloaded once into target/, checked
//! against its sha256 (the one dist-test.toml pins for the pinned release,
//! else the one PyPI publishes), unpacked. A file whose hash differs is
//! refused and removed before anything is built.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use super::pypi;
use crate::digest::sha256_file;
use crate::exec;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// What was unpacked, recorded beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// When PyPI got the sdist (RFC 3339), when it was asked.
    pub uploaded: Option<String>,
}

const STAMP: &str = ".dist-test-release.json";

/// Where a release's sdist is unpacked.
pub fn release_dir(ws: &Workspace, name: &str, version: &str) -> PathBuf {
    ws.target.join("sdist").join(format!("{name}-{version}"))
}

/// Where the pinned release's sdist is unpacked.
pub fn pinned_dir(ws: &Workspace) -> PathBuf {
    let p = &ws.config.project;
    release_dir(ws, &p.name, &p.version)
}

/// The release unpacked, with its record. `pinned` is the sha256 it must
/// have (the pinned release); without it, PyPI's is the one, and the
/// upload time is asked for too.
pub fn release(
    sh: &Shell,
    ws: &Workspace,
    ui: Ui,
    (name, version): (&str, &str),
    pinned: Option<&str>,
) -> Result<(PathBuf, Release)> {
    let unpacked = release_dir(ws, name, version);
    let stamp = read_stamp(&unpacked, pinned);
    if let Some(r) = &stamp {
        if pinned.is_none_or(|p| p == r.sha256) && (pinned.is_some() || r.uploaded.is_some()) {
            return Ok((unpacked, r.clone()));
        }
    }
    let cache = ws.target.join("sdist");
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let local = cache.join(format!("{name}-{version}.tar.gz"));
    let (archive, release) = match pinned {
        Some(sha) if local.is_file() => {
            refuse_if_tampered(&local, sha, "dist-test.toml pins")?;
            let r = Release {
                name: name.into(),
                version: version.into(),
                sha256: sha.into(),
                uploaded: None,
            };
            (local, r)
        }
        _ => download(sh, ui, &cache, (name, version), pinned)?,
    };
    // The same sdist unpacked before (only its upload time was not asked
    // for): keep the folder, which a running cluster may mount.
    if stamp.is_none_or(|s| s.sha256 != release.sha256) {
        unpack(sh, ui, &archive, &unpacked)?;
    }
    for needed in ["pyproject.toml", "tests", "conftest.py", "pytest.ini"] {
        if !unpacked.join(needed).exists() {
            bail!("the sdist of {name} {version} has no {needed}: it cannot run the dist suite");
        }
    }
    let text = serde_json::to_string_pretty(&release)?;
    fs::write(unpacked.join(STAMP), text)?;
    Ok((unpacked, release))
}

/// The record of what was unpacked in `dir`; for the pinned release, the
/// bare sha256 that earlier versions of the xtask wrote counts too (so
/// that an upgrade does not replace a folder a kept cluster mounts).
fn read_stamp(dir: &Path, pinned: Option<&str>) -> Option<Release> {
    if let Ok(text) = fs::read_to_string(dir.join(STAMP)) {
        return serde_json::from_str(&text).ok();
    }
    let old = fs::read_to_string(dir.join(".dist-test-sha256")).ok()?;
    let pinned = pinned.filter(|p| *p == old.trim())?;
    let (name, version) = dir.file_name()?.to_str()?.rsplit_once('-')?;
    Some(Release {
        name: name.into(),
        version: version.into(),
        sha256: pinned.into(),
        uploaded: None,
    })
}

/// Ask PyPI for the sdist, check what it publishes against `pinned`,
/// download it (a cached copy first checked), verify it.
fn download(
    sh: &Shell,
    ui: Ui,
    cache: &Path,
    (name, version): (&str, &str),
    pinned: Option<&str>,
) -> Result<(PathBuf, Release)> {
    let file = pypi::sdist(sh, ui, cache, name, version)?;
    if let Some(p) = pinned.filter(|p| *p != file.sha256) {
        bail!(
            "PyPI publishes sha256 {} for the sdist of {name} {version}, but dist-test.toml pins {p}: \
             if the release was replaced on purpose, update project.sdist_sha256",
            file.sha256
        );
    }
    let archive = cache.join(&file.filename);
    let who = "PyPI publishes";
    if archive.is_file() {
        refuse_if_tampered(&archive, &file.sha256, who)?;
    } else {
        let partial = cache.join(format!(".{}.partial-{}", file.filename, std::process::id()));
        ui.say(&format!("downloading {} from PyPI", file.filename));
        let got = crate::downloads::fetch_url(sh, ui, &file.url, &partial)
            .and_then(|()| refuse_if_tampered(&partial, &file.sha256, who))
            .and_then(|()| Ok(fs::rename(&partial, &archive)?));
        if got.is_err() {
            let _ = fs::remove_file(&partial);
        }
        got?;
    }
    let release = Release {
        name: name.into(),
        version: version.into(),
        sha256: file.sha256,
        uploaded: Some(file.uploaded),
    };
    Ok((archive, release))
}

/// A file whose sha256 is not `want` is removed, and the error says so.
fn refuse_if_tampered(file: &Path, want: &str, who: &str) -> Result<()> {
    let got = sha256_file(file)?;
    if got != want {
        let _ = fs::remove_file(file);
        bail!(
            "refused {}: its sha256 is {got}, but {who} {want}; removed it (a tampered download \
             or cache: run again to download it anew)",
            file.display()
        );
    }
    Ok(())
}

/// Unpack the archive's one folder into `unpacked` (replacing it).
fn unpack(sh: &Shell, ui: Ui, archive: &Path, unpacked: &Path) -> Result<()> {
    let cache = unpacked.parent().context("the sdist folder has a parent")?;
    let tmp = cache.join(format!(".unpack-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = (|| {
        exec::run(cmd!(sh, "tar -xzf {archive} -C {tmp}"), exec::QUERY, ui)
            .with_context(|| format!("unpacking {}", archive.display()))?;
        let top = fs::read_dir(&tmp)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.is_dir())
            .with_context(|| format!("{} holds no folder", archive.display()))?;
        let _ = fs::remove_dir_all(unpacked);
        fs::rename(&top, unpacked).with_context(|| format!("moving into {}", unpacked.display()))
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}
