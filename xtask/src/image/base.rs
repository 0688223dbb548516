//! The base image: the configured one if present or pullable, else an
//! equivalent one built once from Debian's packages with debootstrap (the
//! installed one, or the project's own, fetched pinned and hash-checked).

use std::fs;
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::digest::sha256_bytes;
use crate::docker::{Docker, OneShot, LONG, QUERY_LONG};
use crate::downloads;
use crate::exec::{self, run_logged};
use crate::labels::BASE_SUITE_LABEL;
use crate::live;
use crate::workspace::Workspace;

pub(super) use crate::footprint::BASE_REPO;
/// Python alone: uv makes the virtual environment and fetches over the CA
/// bundle the build is given.
const FALLBACK_PACKAGES: &str = "python3";

/// The base image of `python` to build on: the configured one if present
/// or pullable, else an equivalent one built from the packages of the
/// Debian suite that ships that Python (cached by recipe).
pub fn ensure_base(docker: &Docker, ws: &Workspace, python: &str) -> Result<String> {
    let base = ws.config.image.base_for(python);
    if docker.image_exists(&base) {
        check_python(docker, &base, python)?;
        return Ok(base);
    }
    let fallback = fallback_tag(ws, python);
    if let Some(f) = fallback.as_ref().filter(|f| docker.image_exists(f)) {
        return Ok(f.clone());
    }
    if docker.pull(&base) {
        check_python(docker, &base, python)?;
        return Ok(base);
    }
    let Some(fallback) = fallback else {
        bail!("{}", no_route(ws, python));
    };
    docker.ui().say(&format!(
        "{base} cannot be pulled; building {fallback} from Debian's packages"
    ));
    build_fallback(docker, ws, python, &fallback)?;
    check_python(docker, &fallback, python)?;
    Ok(fallback)
}

/// Fail early, before anything is built, when there is no way to a base
/// for `python`: no Debian suite ships it, it is not on the engine, and it
/// cannot be pulled (the pull is what a build would do first anyway).
pub fn check_route(docker: &Docker, ws: &Workspace, python: &str) -> Result<()> {
    let base = ws.config.image.base_for(python);
    if ws.config.image.suite_for(python).is_some()
        || docker.image_exists(&base)
        || docker.pull(&base)
    {
        return Ok(());
    }
    bail!("{}", no_route(ws, python))
}

fn no_route(ws: &Workspace, python: &str) -> String {
    let have: Vec<&str> = ws.config.image.suites.keys().map(String::as_str).collect();
    format!(
        "no base image for Python {python}: {} is neither on this engine nor pullable, and no \
         Debian suite in dist-test.toml [image.suites] ships it; use --python with one of {}",
        ws.config.image.base_for(python),
        have.join(", ")
    )
}

/// `libertem-dist-base:forky-py3.14-<recipe hash>` (a new recipe, a new
/// tag), for a Python that a Debian suite ships.
pub fn fallback_tag(ws: &Workspace, python: &str) -> Option<String> {
    let cfg = &ws.config.image;
    let suite = cfg.suite_for(python)?;
    let recipe = format!(
        "debootstrap --variant=minbase --include={FALLBACK_PACKAGES} {suite} {}\npython {python}\nwithout docs\n",
        cfg.fallback_mirror
    );
    Some(format!(
        "{BASE_REPO}:{suite}-py{python}-{}",
        &sha256_bytes(recipe.as_bytes())[..10]
    ))
}

fn check_python(docker: &Docker, image: &str, want: &str) -> Result<()> {
    let code = "import sys; print('%d.%d' % sys.version_info[:2])";
    let one = OneShot {
        image,
        user: "0",
        volumes: vec![],
        labels: vec![],
        command: ["python3", "-c", code].map(String::from).to_vec(),
        ..Default::default()
    };
    let got = docker
        .one_shot(&one, None, QUERY_LONG)
        .with_context(|| format!("running python3 in the base image {image}"))?;
    if got.trim() != want {
        bail!(
            "the base image {image} has Python {}, not {want}: fix image.base (or \
             [image.suites]) in dist-test.toml, or remove that image",
            got.trim()
        );
    }
    Ok(())
}

fn build_fallback(docker: &Docker, ws: &Workspace, python: &str, tag: &str) -> Result<()> {
    let sh = docker.shell();
    let cfg = &ws.config.image;
    let base = cfg.base_for(python);
    let suite = cfg
        .suite_for(python)
        .context("a Debian suite for the Python")?;
    let uid = exec::read(cmd!(sh, "id -u"), exec::QUERY, docker.ui()).unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "the base image {} cannot be pulled, and building one with debootstrap needs root: \
             run `sudo cargo xtask build` once, or make {base} available (`docker pull` / `docker load`)",
            base
        );
    }
    live::status("base image: getting debootstrap", None);
    let debootstrap = downloads::debootstrap(sh, ws, docker.ui())?;
    let program = &debootstrap.program;
    let rootfs = ws.target.join("base-rootfs");
    let _ = fs::remove_dir_all(&rootfs);
    let mirror = &cfg.fallback_mirror;
    let include = format!("--include={FALLBACK_PACKAGES}");
    let log = ws.target.join(format!("base-debootstrap-{suite}.log"));
    live::status(
        format!("base image: Debian {suite}'s packages (debootstrap)"),
        Some(&log),
    );
    let script = debootstrap.script_for(suite);
    let mut debootstrap_cmd = cmd!(
        sh,
        "{program} --variant=minbase {include} {suite} {rootfs} {mirror} {script...}"
    );
    if let Some(scripts) = &debootstrap.scripts {
        debootstrap_cmd = debootstrap_cmd.env("DEBOOTSTRAP_DIR", scripts);
    }
    let result = run_logged(debootstrap_cmd.into(), &log, false, LONG)
        .and_then(|()| {
            // Drop documentation, as slim images do, and apt's caches.
            for sub in [
                "usr/share/doc",
                "usr/share/man",
                "usr/share/info",
                "usr/share/locale",
            ] {
                let _ = fs::remove_dir_all(rootfs.join(sub));
            }
            for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
                let dir = rootfs.join(sub);
                if let Ok(entries) = fs::read_dir(&dir) {
                    for e in entries.flatten() {
                        if e.path().is_file() {
                            let _ = fs::remove_file(e.path());
                        }
                    }
                }
            }
            let label = format!("LABEL {BASE_SUITE_LABEL}={suite}");
            let path_env = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
            let mut tar = Command::new("tar");
            tar.arg("-C").arg(&rootfs).args(["-c", "."]);
            live::status("base image: importing the root file system", None);
            docker.import(tar, &[path_env, "CMD [\"python3\"]", &label], tag, LONG)
        })
        .with_context(|| format!("building the base image {tag} (log: {})", log.display()));
    let _ = fs::remove_dir_all(&rootfs);
    result
}
