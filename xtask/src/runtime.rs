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
//! rebuilt image gets a new one, so a cluster of the old image keeps its own
//! until it is gone, and each project's image (a checkout may hold several)
//! keeps its own. A volume whose image is gone is removed once no container
//! and no run in progress uses it. A copy counts only once it has finished,
//! as recorded in `target/dist-test/runtime.json`: an interrupted copy is
//! made again. Called with the checkout lock held.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkout::{self, runs};
use crate::cluster::Image;
use crate::context::Ctx;
use crate::docker::{label_filter, OneShot, LONG};
use crate::fsx;
use crate::workspace::Workspace;

/// Which checkout a runtime volume belongs to.
pub const RUNTIME_LABEL: &str = "org.libertem.dist-test.runtime";

/// The first 12 hex digits of an image id.
pub fn short_id(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}

fn name_for(ws: &Workspace, image: &Image) -> String {
    format!("{}-venv-{}", ws.checkout_id, short_id(&image.id))
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
    let text = serde_json::to_string_pretty(record)? + "\n";
    fsx::write_atomic(&record_path(ws), text.as_bytes())
}

/// Make sure `image`'s runtime volume exists and is complete, and name it;
/// remove the checkout's other ones that nothing uses.
pub fn ensure(cx: &Ctx, image: &Image) -> Result<String> {
    let docker = &cx.docker;
    let name = name_for(&cx.ws, image);
    let mut record = read_record(&cx.ws);
    let exists = docker.volume_exists(&name);
    if !(exists && record.complete.contains(&name)) {
        record.complete.retain(|n| n != &name);
        write_record(&cx.ws, &record)?;
        if exists {
            // A copy that did not finish.
            docker.volume_rm(&name);
        }
        crate::live::status(
            format!("copying the image's /venv into volume {name}"),
            None,
        );
        copy(cx, image, &name).inspect_err(|_| {
            docker.volume_rm(&name);
        })?;
        record.complete.push(name.clone());
    }
    let images = image_ids(cx);
    let (_, in_use) = runs::in_use(&cx.ws);
    let all = docker.volumes(&[label_filter(RUNTIME_LABEL, &cx.ws.checkout_id)])?;
    let gone = |v: &str| !images.iter().any(|id| v.ends_with(&format!("-{id}")));
    for old in all.iter().filter(|v| gone(v) && !in_use.contains(*v)) {
        // Refused while a container (a kept cluster) still mounts it.
        if docker.volume_rm(old) {
            record.complete.retain(|n| n != old);
        }
    }
    write_record(&cx.ws, &record)?;
    Ok(name)
}

/// The short ids of the checkout's images (dangling ones too: a cluster may
/// still run one).
pub fn image_ids(cx: &Ctx) -> Vec<String> {
    let label = label_filter(crate::workspace::CHECKOUT_LABEL, &cx.ws.checkout_id);
    cx.docker
        .images(&[label], true)
        .unwrap_or_default()
        .iter()
        .map(|r| short_id(&r.id).to_string())
        .collect()
}

fn copy(cx: &Ctx, image: &Image, name: &str) -> Result<()> {
    let label = format!("{RUNTIME_LABEL}={}", cx.ws.checkout_id);
    cx.docker.volume_create(name, &[label])?;
    let one = OneShot {
        image: &image.id,
        user: "0",
        volumes: vec![format!("{name}:/target")],
        labels: checkout::helper_labels(cx),
        command: ["cp", "-a", "/venv/.", "/target/"]
            .map(String::from)
            .to_vec(),
    };
    cx.docker
        .one_shot(&one, None, LONG)
        .with_context(|| format!("copying the image's /venv into the runtime volume {name}"))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_volume_per_checkout_and_image() {
        let ws = crate::workspace::for_tests();
        let image = |id: &str| Image {
            id: id.into(),
            tag: "t".into(),
        };
        let a = name_for(&ws, &image("sha256:0123456789abcdef"));
        assert_eq!(a, format!("{}-venv-0123456789ab", ws.checkout_id));
        assert_ne!(name_for(&ws, &image("sha256:fedcba9876543210")), a);
    }
}
