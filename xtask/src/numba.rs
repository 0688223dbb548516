//! LiberTEM's numba cache, kept between runs. LiberTEM asks numba to cache
//! what it compiles (`cache=True`, its `cached_njit`); by default that cache
//! lives in each container and dies with it, so every run paid the first-use
//! compilations again. The same goes for the byte-code of LiberTEM's own
//! modules and of its tests, which cannot be written beside the read-only
//! source mount (the image's /pyc/src points into this volume, see the
//! Dockerfile). Here it is one Docker volume per checkout,
//! `<checkout>-numba`, mounted at `/numba-cache` (`NUMBA_CACHE_DIR`) in every
//! service, and tied to what filled it: the image and the project's source
//! (every service mounts the live source, see services.yml). When either
//! changes (new requirements, a LiberTEM edit), the volume is emptied before
//! the next cluster starts, so edited LiberTEM never meets a cache compiled
//! from other code. numba's own checks would not be enough: they look at a
//! function's own file or bytecode, not at the jitted functions it calls.
//! The volume is not a cluster's: `down` keeps it; it goes with the image.

use std::path::Path;

use anyhow::{Context, Result};
use xshell::cmd;

use crate::context::Ctx;
use crate::workspace::Workspace;

/// Which checkout a cache volume belongs to (not the cluster label: removing
/// a cluster keeps its cache).
pub const CACHE_LABEL: &str = "org.libertem.dist-test.numba-cache";
/// The image and source state whose LiberTEM filled the volume.
pub const COMPILED_FOR_LABEL: &str = "org.libertem.dist-test.compiled-for";

pub fn volume_name(ws: &Workspace) -> String {
    format!("{}-numba", ws.checkout_id)
}

/// Make sure the checkout's cache volume exists and belongs to the current
/// image and `source`; one that belongs to another is replaced by an empty one.
pub fn ensure(cx: &Ctx, source: &Path) -> Result<()> {
    let (sh, docker) = (cx.sh, &cx.tools.docker.cli);
    let name = volume_name(&cx.ws);
    let image = cx.ws.image_tag();
    let image_id = crate::image::image_id(sh, docker, &image)
        .with_context(|| format!("no image {image} to fill the numba cache for"))?;
    let image_id = image_id.trim_start_matches("sha256:");
    let stamp = crate::project::source_stamp(source)?;
    let compiled_for = format!("{}-{stamp}", &image_id[..image_id.len().min(12)]);
    let format = format!("{{{{index .Labels \"{COMPILED_FOR_LABEL}\"}}}}");
    let owner = cmd!(sh, "{docker} volume inspect --format {format} {name}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok();
    match owner.as_deref().map(str::trim) {
        Some(id) if id == compiled_for => return Ok(()),
        // Another image's or source's cache. In use by a kept cluster, it
        // stays (numba's own checks still catch most edits).
        Some(_) if !remove_volume(cx, &name) => {
            cx.ui.say(&format!(
                "numba cache {name} is in use by a running cluster; kept"
            ));
            return Ok(());
        }
        _ => {}
    }
    let checkout = format!("{CACHE_LABEL}={}", cx.ws.checkout_id);
    let owner = format!("{COMPILED_FOR_LABEL}={compiled_for}");
    cmd!(
        sh,
        "{docker} volume create --label {checkout} --label {owner} {name}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("creating the numba cache volume {name}"))?;
    // A new volume is root's; the services run as the image's user. The
    // byte-code folder is where the image's /pyc/src points (Dockerfile).
    let mount = format!("{name}:/numba-cache");
    cmd!(
        sh,
        "{docker} run --rm --network none --user 0 --volume {mount} {image} install -d -o libertem -g libertem /numba-cache /numba-cache/byte-code"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("handing the numba cache volume {name} to the services' user"))?;
    Ok(())
}

/// `docker volume rm`; `true` when it is gone (`false`: in use, or absent).
pub(crate) fn remove_volume(cx: &Ctx, name: &str) -> bool {
    let docker = &cx.tools.docker.cli;
    cmd!(cx.sh, "{docker} volume rm {name}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}
