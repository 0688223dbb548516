//! The base image: the configured one if present or pullable, else an
//! equivalent one built once from Debian's packages with debootstrap (the
//! installed one, or the project's own, fetched pinned and hash-checked).

use std::fs;
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::context::Ctx;
use crate::digest::sha256_bytes;
use crate::docker::{Docker, OneShot, LONG, QUERY_LONG};
use crate::downloads;
use crate::exec::{self, run_logged};
use crate::live;
use crate::workspace::{Workspace, CHECKOUT_LABEL};

const BASE_REPO: &str = "libertem-dist-base";
/// Python alone: uv makes the virtual environment and fetches over the CA
/// bundle the build is given.
const FALLBACK_PACKAGES: &str = "python3";

/// The base image to build on: the configured one if present or pullable,
/// else an equivalent one built from Debian's packages (cached by recipe).
pub fn ensure_base(cx: &Ctx) -> Result<String> {
    let (docker, ws) = (&cx.docker, &cx.ws);
    let cfg = &ws.config.image;
    if docker.image_exists(&cfg.base) {
        check_python(docker, &cfg.base, &cfg.python)?;
        return Ok(cfg.base.clone());
    }
    let fallback = fallback_tag(ws);
    if docker.image_exists(&fallback) {
        return Ok(fallback);
    }
    let base = &cfg.base;
    if docker.pull(base) {
        check_python(docker, base, &cfg.python)?;
        return Ok(base.clone());
    }
    cx.ui.say(&format!(
        "{base} cannot be pulled; building {fallback} from Debian's packages"
    ));
    build_fallback(cx, &fallback)?;
    check_python(docker, &fallback, &cfg.python)?;
    Ok(fallback)
}

/// `libertem-dist-base:bookworm-py3.11-<recipe hash>`: a new recipe, a new tag.
pub fn fallback_tag(ws: &Workspace) -> String {
    let cfg = &ws.config.image;
    let recipe = format!(
        "debootstrap --variant=minbase --include={FALLBACK_PACKAGES} {} {}\npython {}\nwithout docs\n",
        cfg.fallback_suite, cfg.fallback_mirror, cfg.python
    );
    format!(
        "{BASE_REPO}:{}-py{}-{}",
        cfg.fallback_suite,
        cfg.python,
        &sha256_bytes(recipe.as_bytes())[..10]
    )
}

fn check_python(docker: &Docker, image: &str, want: &str) -> Result<()> {
    let code = "import sys; print('%d.%d' % sys.version_info[:2])";
    let one = OneShot {
        image,
        user: "0",
        volumes: vec![],
        labels: vec![],
        command: ["python3", "-c", code].map(String::from).to_vec(),
    };
    let got = docker
        .one_shot(&one, None, QUERY_LONG)
        .with_context(|| format!("running python3 in the base image {image}"))?;
    if got.trim() != want {
        bail!(
            "the base image {image} has Python {}, but image.python is {want}: \
             pick a base with Python {want} or change image.python and run `cargo xtask update-reqs`",
            got.trim()
        );
    }
    Ok(())
}

fn build_fallback(cx: &Ctx, tag: &str) -> Result<()> {
    let (sh, ws) = (cx.sh, &cx.ws);
    let cfg = &ws.config.image;
    let uid = exec::read(cmd!(sh, "id -u"), exec::QUERY, cx.ui).unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "the base image {} cannot be pulled, and building one with debootstrap needs root: \
             run `sudo cargo xtask build` once, or make {} available (`docker pull` / `docker load`)",
            cfg.base,
            cfg.base
        );
    }
    live::status("base image: getting debootstrap", None);
    let debootstrap = downloads::debootstrap(sh, ws, cx.ui)?;
    let program = &debootstrap.program;
    let rootfs = ws.target.join("base-rootfs");
    let _ = fs::remove_dir_all(&rootfs);
    let (suite, mirror) = (&cfg.fallback_suite, &cfg.fallback_mirror);
    let include = format!("--include={FALLBACK_PACKAGES}");
    let log = ws.target.join("base-debootstrap.log");
    live::status("base image: Debian's packages (debootstrap)", Some(&log));
    let mut debootstrap_cmd = cmd!(
        sh,
        "{program} --variant=minbase {include} {suite} {rootfs} {mirror}"
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
            let label = format!("LABEL {CHECKOUT_LABEL}.base={suite}");
            let path_env = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
            let mut tar = Command::new("tar");
            tar.arg("-C").arg(&rootfs).args(["-c", "."]);
            live::status("base image: importing the root file system", None);
            cx.docker
                .import(tar, &[path_env, "CMD [\"python3\"]", &label], tag, LONG)
        })
        .with_context(|| format!("building the base image {tag} (log: {})", log.display()));
    let _ = fs::remove_dir_all(&rootfs);
    result
}
