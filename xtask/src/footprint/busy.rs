//! What must not be removed now: the harness's clusters on the engine with a
//! service running, each known checkout's runs in progress (registered in
//! its `target/dist-test/live/`) and its kept cluster (`up`), with the
//! images and volumes they use.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::plan::{Busy, Cluster};
use crate::checkout::runs;
use crate::cluster::spec::Kind;
use crate::cluster::state::ClusterState;
use crate::docker::{short_id, Docker};
use crate::labels::CHECKOUT_LABEL;

/// The clusters of the harness's on the engine and what is busy.
pub fn read(docker: &Docker, roots: &[(String, PathBuf)]) -> Result<(Vec<Cluster>, Busy)> {
    let objects = docker.cluster_objects(CHECKOUT_LABEL)?;
    let mut busy = Busy::default();
    let mut clusters: Vec<Cluster> = Vec::new();
    for o in &objects {
        if o.cluster().is_empty() || clusters.iter().any(|c| c.name == o.cluster()) {
            continue;
        }
        clusters.push(Cluster {
            name: o.cluster().to_string(),
            backend: Kind::of_object(o),
            checkout: o.checkout.clone(),
            busy: None,
        });
    }
    // A stack's services would start its tasks again: `down --swarm` it.
    for o in objects.iter().filter(|o| !o.stack.is_empty()) {
        mark(
            &mut clusters,
            o.cluster(),
            "a swarm stack: `cargo xtask down --swarm` removes it",
        );
    }
    for o in objects.iter().filter(|o| o.state == "running") {
        let why = format!("its service {} is running", short_id(&o.id));
        mark(&mut clusters, o.cluster(), &why);
        let image = docker.image_id(&o.image).unwrap_or_else(|| o.image.clone());
        let why = format!("cluster {} runs it", o.cluster());
        busy.images.push((image, why.clone()));
        for m in o.mounts.split(',').filter(|m| !m.is_empty()) {
            busy.volumes.push((m.to_string(), why.clone()));
        }
    }
    for (checkout, root) in roots {
        let target = root.join("target").join("dist-test");
        registered(&target, checkout, &mut clusters, &mut busy);
    }
    Ok((clusters, busy))
}

/// A checkout's runs in progress and kept cluster.
fn registered(target: &Path, checkout: &str, clusters: &mut [Cluster], busy: &mut Busy) {
    for run in runs::in_progress_in(target, false) {
        let why = format!(
            "{checkout}'s {} (run {}) is in progress",
            run.command, run.run_id
        );
        if let Some(c) = &run.cluster {
            mark(clusters, c, &why);
        }
        busy.images
            .extend(run.images.iter().map(|i| (i.clone(), why.clone())));
        busy.volumes
            .extend(run.volumes.iter().map(|v| (v.clone(), why.clone())));
    }
    if let Ok(Some(state)) = ClusterState::load_in(target) {
        let why = format!("{checkout}'s kept cluster (`cargo xtask up`) uses it");
        mark(clusters, &state.name, &why);
        busy.images.push((state.image.id.clone(), why.clone()));
        for v in state.backend.volumes(&state.image) {
            busy.volumes.push((v, why.clone()));
        }
        if !state.image.runtime.is_empty() {
            busy.volumes.push((state.image.runtime.clone(), why));
        }
    }
}

fn mark(clusters: &mut [Cluster], name: &str, why: &str) {
    if let Some(c) = clusters.iter_mut().find(|c| c.name == name) {
        c.busy.get_or_insert_with(|| why.to_string());
    }
}
