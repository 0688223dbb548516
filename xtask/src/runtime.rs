//! The image's Python runtime (`/venv`: the packages, the editable install
//! and the byte-code), served to every service from a volume copied once
//! from the image, read-only. On fuse-overlayfs (this project's CI machines)
//! a directory listing can come back incomplete when many processes start at
//! once: one Dask worker's Python saw 286 of site-packages' 287 entries, so
//! `import sparseconverter` failed in that process for good (Python lists a
//! directory once and looks again only when its mtime changes), and the test
//! hung. A volume is a plain directory of the host's file system: no FUSE
//! between Python and its files, which also makes each import cheaper.
//!
//! One volume per checkout and image, `<checkout>-venv-<image id>`: a
//! rebuilt image gets a new one, so a kept cluster of the old image keeps
//! its own until it is gone. Older ones of the checkout are removed once
//! nothing uses them. A copy counts only once it has finished, as recorded
//! in `target/dist-test/runtime.json`: an interrupted copy is made again.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use crate::context::Ctx;
use crate::numba::remove_volume;
use crate::workspace::Workspace;

/// Which checkout a runtime volume belongs to.
pub const RUNTIME_LABEL: &str = "org.libertem.dist-test.runtime";

/// What a cluster handle names until [`ensure`] has named the real one:
/// enough for the commands that start nothing (compose only reads the name).
pub fn unset_name(ws: &Workspace) -> String {
    name_for(ws, None)
}

/// The volume for the checkout's image as it is now.
fn volume_name(cx: &Ctx) -> String {
    let image = cx.ws.image_tag();
    let id = crate::image::image_id(cx.sh, &cx.tools.docker.cli, &image);
    name_for(&cx.ws, id.as_deref())
}

fn name_for(ws: &Workspace, image_id: Option<&str>) -> String {
    let id = image_id
        .map(|id| id.trim_start_matches("sha256:"))
        .map(|id| id[..id.len().min(12)].to_string())
        .unwrap_or_else(|| "none".into());
    format!("{}-venv-{id}", ws.checkout_id)
}

/// The volumes whose copy finished.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    complete: Vec<String>,
}

fn record_path(ws: &Workspace) -> PathBuf {
    ws.target.join("runtime.json")
}

fn read_record(ws: &Workspace) -> Record {
    fs::read_to_string(record_path(ws))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_record(ws: &Workspace, record: &Record) -> Result<()> {
    let path = record_path(ws);
    let text = serde_json::to_string_pretty(record)?;
    fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Make sure the current image's runtime volume exists and is complete, and
/// name it; remove the checkout's older ones that nothing uses.
pub fn ensure(cx: &Ctx) -> Result<String> {
    let (sh, docker) = (cx.sh, &cx.tools.docker.cli);
    let name = volume_name(cx);
    let mut record = read_record(&cx.ws);
    let exists = cmd!(sh, "{docker} volume inspect {name}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !(exists && record.complete.contains(&name)) {
        record.complete.retain(|n| n != &name);
        write_record(&cx.ws, &record)?;
        if exists {
            // A copy that did not finish.
            remove_volume(cx, &name);
        }
        crate::live::status(
            format!("copying the image's /venv into volume {name}"),
            None,
        );
        copy(cx, &name).inspect_err(|_| {
            remove_volume(cx, &name);
        })?;
        record.complete.push(name.clone());
        write_record(&cx.ws, &record)?;
    }
    // The checkout's older runtimes, unless a kept cluster still uses one.
    let filter = format!("label={RUNTIME_LABEL}={}", cx.ws.checkout_id);
    let all = cmd!(sh, "{docker} volume ls --quiet --filter {filter}")
        .quiet()
        .read()
        .unwrap_or_default();
    for old in all
        .lines()
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != name)
    {
        if remove_volume(cx, old) {
            record.complete.retain(|n| n != old);
        }
    }
    write_record(&cx.ws, &record)?;
    Ok(name)
}

fn copy(cx: &Ctx, name: &str) -> Result<()> {
    let (sh, docker) = (cx.sh, &cx.tools.docker.cli);
    let label = format!("{RUNTIME_LABEL}={}", cx.ws.checkout_id);
    cmd!(sh, "{docker} volume create --label {label} {name}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("creating the runtime volume {name}"))?;
    let image = cx.ws.image_tag();
    let mount = format!("{name}:/target");
    cmd!(
        sh,
        "{docker} run --rm --network none --user 0 --volume {mount} {image} cp -a /venv/. /target/"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("copying the image's /venv into the runtime volume {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_volume_per_checkout_and_image() {
        let ws = crate::workspace::for_tests();
        let a = name_for(&ws, Some("sha256:0123456789abcdef"));
        assert_eq!(a, format!("{}-venv-0123456789ab", ws.checkout_id));
        assert_ne!(name_for(&ws, Some("sha256:fedcba9876543210")), a);
        assert_eq!(name_for(&ws, None), format!("{}-venv-none", ws.checkout_id));
    }
}
