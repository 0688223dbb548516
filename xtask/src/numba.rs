//! LiberTEM's numba cache, kept between runs. LiberTEM asks numba to cache
//! what it compiles (`cache=True`, its `cached_njit`); by default that cache
//! lives in each container and dies with it, so every run paid the first-use
//! compilations again. The same goes for the byte-code of LiberTEM's own
//! modules and of its tests, which cannot be written beside the read-only
//! source mount (the image's /pyc/src points into this volume, see the
//! Dockerfile). Here it is a Docker volume mounted at `/numba-cache`
//! (`NUMBA_CACHE_DIR`) in every service, named for what fills it: the image
//! and the state of the project's source (every service mounts the live
//! source, see services.yml), `<checkout>-numba-<image>-<project>-<source
//! stamp>` (one image may run several projects, see image/mod.rs).
//! After a change of either (new requirements, a LiberTEM edit), the next
//! cluster starts on a new, empty volume, so edited LiberTEM never meets a
//! cache compiled from other code, and a cluster still running on the old
//! one keeps it. numba's own checks would not be enough: they look at a
//! function's own file or bytecode, not at the jitted functions it calls.
//! An image's older cache volumes (of source states before an edit), and
//! those of images that are gone, are removed once no container and no run
//! in progress uses them; each project's image keeps its own. Called with
//! the checkout lock held.

use std::path::Path;

use anyhow::{Context, Result};

use crate::checkout::{self, runs};
use crate::docker::{label_filter, short_id, Docker, OneShot, QUERY_LONG};
use crate::labels::{HOST_LABEL, NUMBA_CACHE_LABEL, ROOT_LABEL};
use crate::workspace::Workspace;

/// `<checkout>-numba-<image>-<project>-`: what the names of the cache
/// volumes of `image` running the project in `source` begin with (one
/// image may run several projects with the same build files, see
/// image/mod.rs; each keeps its own cache).
pub fn volume_prefix(checkout_id: &str, image_id: &str, source: &Path) -> String {
    let project = &crate::digest::sha256_bytes(source.to_string_lossy().as_bytes())[..8];
    format!("{checkout_id}-numba-{}-{project}-", short_id(image_id))
}

/// The cache volume for `image` running the source in `source`, made
/// (empty, owned by the services' user) if it is not there yet.
pub fn ensure(docker: &Docker, ws: &Workspace, image_id: &str, source: &Path) -> Result<String> {
    let stamp = crate::project::source_stamp(source)?;
    let this_project = volume_prefix(&ws.checkout_id, image_id, source);
    let name = format!("{this_project}{stamp}");
    if !docker.volume_exists(&name) {
        let checkout = format!("{NUMBA_CACHE_LABEL}={}", ws.checkout_id);
        // Where the checkout is: `clean` anywhere removes the cache of a
        // checkout whose folder is gone.
        let root = format!("{ROOT_LABEL}={}", ws.root.display());
        let host = format!("{HOST_LABEL}={}", crate::workspace::this_host());
        docker.volume_create(&name, &[checkout, root, host])?;
        // A new volume is root's; the services run as the image's user. The
        // byte-code folder is where the image's /venv/pyc/src points.
        let one = OneShot {
            image: image_id,
            user: "0",
            volumes: vec![format!("{name}:/numba-cache")],
            labels: checkout::helper_labels(ws),
            command: [
                "install",
                "-d",
                "-o",
                "libertem",
                "-g",
                "libertem",
                "/numba-cache",
                "/numba-cache/byte-code",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        };
        let made = docker.one_shot(&one, None, QUERY_LONG);
        if made.is_err() {
            docker.volume_rm(&name);
        }
        made.with_context(|| {
            format!("handing the numba cache volume {name} to the services' user")
        })?;
    }
    let images = image_ids(docker, ws);
    let (_, in_use) = runs::in_use(ws);
    let all = docker.volumes(&[label_filter(NUMBA_CACHE_LABEL, &ws.checkout_id)])?;
    let stale = |v: &str| {
        let of_image = images
            .iter()
            .any(|id| v.starts_with(&format!("{}-numba-{id}-", ws.checkout_id)));
        v != name && (!of_image || v.starts_with(&this_project))
    };
    for old in all.iter().filter(|v| stale(v) && !in_use.contains(*v)) {
        // Refused while a container still mounts it.
        docker.volume_rm(old);
    }
    Ok(name)
}

/// The short ids of the checkout's images (dangling ones too: a cluster may
/// still run one).
pub fn image_ids(docker: &Docker, ws: &Workspace) -> Vec<String> {
    let label = label_filter(crate::labels::CHECKOUT_LABEL, &ws.checkout_id);
    docker
        .images(&[label], true)
        .unwrap_or_default()
        .iter()
        .map(|r| short_id(&r.id).to_string())
        .collect()
}
