//! Clusters a command knows by name only: the checkout's kept cluster when
//! `up` saved no state (or it cannot be read), and the clusters that runs
//! killed before their teardown, or `dist-test --keep`, left on the engine,
//! found by their labels. Their image, volumes and mounts are unknown: they
//! can be looked at and removed, never run.

use std::path::Path;

use anyhow::{bail, Result};

use super::compose_cluster::ComposeCluster;
use super::swarm_stack::SwarmStack;
use super::{select, Cluster};
use crate::cluster::spec::{Backend, Definition, Image, Kind, Mounts, Size};
use crate::cluster::state::ClusterState;
use crate::docker::compose::Flavour;
use crate::docker::{label_filter, Docker};
use crate::labels::{CHECKOUT_LABEL, COMPOSE_PROJECT_LABEL, STACK_LABEL};
use crate::workspace::Workspace;

/// A cluster on the engine, by its name and backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub name: String,
    kind: Kind,
}

impl Named {
    pub fn new(name: String, kind: Kind) -> Named {
        Named { name, kind }
    }

    /// Remove it through its backend: every service, its network and its
    /// own volumes. When the backend cannot (a stack on an engine that no
    /// longer manages a swarm), what its label finds on this engine goes
    /// anyway, and the error says why.
    pub fn take_down(&self, ws: &Workspace, docker: &Docker, compose: &Flavour) -> Result<()> {
        let size = Size::from_config(&ws.config.cluster, None, None);
        let def = by_name(&self.name, size, ws);
        let down = select(ws, docker, compose, self.kind, def).and_then(|c| c.down());
        if down.is_err() {
            let label = match self.kind {
                Kind::Compose | Kind::Attached => COMPOSE_PROJECT_LABEL,
                Kind::Swarm => STACK_LABEL,
            };
            let _ = docker.sweep(&label_filter(label, &self.name));
        }
        down
    }
}

/// The clusters of this checkout on the engine: its compose projects, and
/// its stacks when this engine manages a swarm.
pub fn of_checkout(ws: &Workspace, docker: &Docker) -> Result<Vec<Named>> {
    let mine = label_filter(CHECKOUT_LABEL, &ws.checkout_id);
    let mut found = Vec::new();
    let mut add = |label: &str, kind: Kind| -> Result<()> {
        for name in docker.label_values(&mine, label)? {
            found.push(Named { name, kind });
        }
        Ok(())
    };
    add(COMPOSE_PROJECT_LABEL, Kind::Compose)?;
    if docker.swarm_info().is_manager() {
        add(STACK_LABEL, Kind::Swarm)?;
    }
    Ok(found)
}

/// A cluster known by name only, at `size`, addressed as the kept
/// cluster is (a stack's shared folders in the kept cluster's folder).
fn by_name(name: &str, size: Size, ws: &Workspace) -> Definition {
    let unknown = format!("{}-unknown", ws.checkout_id);
    Definition {
        name: name.to_string(),
        size,
        publish: false,
        image: Image {
            id: unknown.clone(),
            tag: unknown.clone(),
            runtime: unknown,
            preload: Vec::new(),
        },
        mounts: Mounts {
            source: ws.target.clone(),
            data: ws.target.clone(),
            results: ws.cluster_dir().join("pytest"),
        },
        warm: false,
        attach: None,
    }
}

/// The checkout's kept cluster, to look at, test on or remove.
pub struct Kept<'a> {
    pub name: String,
    pub size: Size,
    /// `compose`, or `a swarm of 3 nodes`.
    pub describe: String,
    pub cluster: Box<dyn Cluster + 'a>,
}

/// The kept cluster as `up` saved it in `state`; else the cluster of the
/// checkout's kept name as the engine has it (a stack whose state was lost
/// is still found), or its compose project, at the configured size.
/// `wanted_swarm` (a command's `--swarm`) makes anything but a saved stack
/// an error. Its results go to the kept cluster's folder.
pub fn kept<'a>(
    ws: &Workspace,
    docker: &Docker<'a>,
    compose: &Flavour,
    state: Option<ClusterState>,
    wanted_swarm: bool,
) -> Result<Kept<'a>> {
    let saved = state.as_ref().map(|s| s.backend.kind());
    if wanted_swarm && saved != Some(Kind::Swarm) {
        bail!("no swarm cluster of this checkout is up: `cargo xtask up --swarm` deploys one");
    }
    let Some(state) = state else {
        let size = Size::from_config(&ws.config.cluster, None, None);
        let name = ws.cluster_project();
        let kind = of_checkout(ws, docker)
            .unwrap_or_default()
            .into_iter()
            .find(|n| n.name == name)
            .map_or(Kind::Compose, |n| n.kind);
        return Ok(Kept {
            size,
            describe: kind.word().to_string(),
            cluster: select(ws, docker, compose, kind, by_name(&name, size, ws))?,
            name,
        });
    };
    Ok(Kept {
        name: state.name.clone(),
        size: state.size,
        describe: state.backend.describe(),
        cluster: from_state(
            ws,
            docker,
            compose,
            &state,
            &ws.cluster_dir().join("pytest"),
        )?,
    })
}

/// The definition of the cluster `state` describes, its results to `results`.
fn definition_of(state: &ClusterState, results: &Path) -> Definition {
    Definition {
        name: state.name.clone(),
        size: state.size,
        publish: state.publish,
        image: state.image.clone(),
        mounts: Mounts {
            source: state.project.clone(),
            data: state.data.path.clone(),
            results: results.to_path_buf(),
        },
        warm: true,
        attach: None,
    }
}

/// The kept cluster as `up` saved it, with `results` for a `test` run.
pub fn from_state<'a>(
    ws: &Workspace,
    docker: &Docker<'a>,
    compose: &Flavour,
    state: &ClusterState,
    results: &Path,
) -> Result<Box<dyn Cluster + 'a>> {
    let def = definition_of(state, results);
    Ok(match &state.backend {
        b @ Backend::Compose { .. } => Box::new(ComposeCluster::new(
            ws,
            docker,
            compose,
            def,
            Some(b.clone()),
        )),
        b @ Backend::Swarm { .. } => Box::new(SwarmStack::new(ws, docker, def, Some(b.clone()))?),
        Backend::Attached { scheduler } => {
            bail!(
                "the saved cluster is the one attached at {scheduler}, and an attached cluster \
                 is never kept: remove {}",
                ClusterState::path(ws).display()
            )
        }
    })
}
