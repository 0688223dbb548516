//! The pinned release's sdist from PyPI: downloaded once into target/,
//! checked against its sha256, unpacked.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::digest::sha256_file;
use crate::exec;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// Download the sdist once into target/, check its sha256, unpack it.
/// Where the pinned release's sdist is unpacked.
pub fn pinned_dir(ws: &Workspace) -> PathBuf {
    let p = &ws.config.project;
    ws.target
        .join("sdist")
        .join(format!("{}-{}", p.name, p.version))
}

pub(super) fn pinned_sdist(sh: &Shell, ws: &Workspace, ui: Ui) -> Result<PathBuf> {
    let cfg = &ws.config;
    let name = &cfg.project.name;
    let version = &cfg.project.version;
    let cache = ws.target.join("sdist");
    let unpacked = pinned_dir(ws);
    let stamp = unpacked.join(".dist-test-sha256");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(cfg.project.sdist_sha256.as_str()) {
        return Ok(unpacked);
    }
    let archive = cache.join(format!(
        "{}-{version}.tar.gz",
        name.replace('-', "_").to_lowercase()
    ));
    let archive_alt = cache.join(format!("{name}-{version}.tar.gz"));
    let have = [&archive, &archive_alt]
        .into_iter()
        .find(|p| p.is_file())
        .cloned();
    let archive = match have {
        Some(a) if sha256_file(&a)? == cfg.project.sdist_sha256 => a,
        _ => download_sdist(sh, ui, &cache, name, version)?,
    };
    let got = sha256_file(&archive)?;
    if got != cfg.project.sdist_sha256 {
        bail!(
            "{} has sha256 {got}, but {} pins {}; if the new release is intended, update \
             project.sdist_sha256, else delete {} and retry",
            archive.display(),
            crate::config::FILE_NAME,
            cfg.project.sdist_sha256,
            archive.display()
        );
    }
    let tmp = cache.join(format!(".unpack-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    exec::run(cmd!(sh, "tar -xzf {archive} -C {tmp}"), exec::QUERY, ui)
        .with_context(|| format!("unpacking {}", archive.display()))?;
    let top = fs::read_dir(&tmp)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .with_context(|| format!("{} holds no folder", archive.display()))?;
    let _ = fs::remove_dir_all(&unpacked);
    fs::rename(&top, &unpacked).with_context(|| format!("moving into {}", unpacked.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    for needed in ["pyproject.toml", "tests", "conftest.py", "pytest.ini"] {
        if !unpacked.join(needed).exists() {
            bail!("the sdist of {name} {version} has no {needed}: it cannot run the dist suite");
        }
    }
    fs::write(&stamp, &cfg.project.sdist_sha256)?;
    Ok(unpacked)
}

fn download_sdist(sh: &Shell, ui: Ui, cache: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let python = which::which("python3").context(
        "python3 (with pip) is needed once, to download the pinned sdist from PyPI: install it",
    )?;
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let spec = format!("{name}=={version}");
    eprintln!("    downloading {spec} (sdist) from PyPI");
    let download = cmd!(
        sh,
        "{python} -m pip download --quiet --no-deps --no-binary :all: --dest {cache} {spec}"
    )
    .env("PIP_ROOT_USER_ACTION", "ignore");
    exec::run(download, crate::downloads::DOWNLOAD, ui).with_context(|| {
        format!("downloading the sdist of {spec}; check your network and proxy")
    })?;
    let prefix_a = format!("{name}-{version}.");
    let prefix_b = format!("{}-{version}.", name.replace('-', "_").to_lowercase());
    fs::read_dir(cache)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            let f = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_lowercase();
            (f.starts_with(&prefix_a.to_lowercase()) || f.starts_with(&prefix_b))
                && f.ends_with(".tar.gz")
        })
        .with_context(|| format!("pip downloaded no .tar.gz for {spec}"))
}
