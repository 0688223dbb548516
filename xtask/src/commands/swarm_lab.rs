//! `cargo xtask swarm-lab up|down`: the test swarm on this machine (see
//! swarm_lab.rs).

use anyhow::{Context, Result};

use crate::cli::{LabAction, SwarmLab};
use crate::context::Invocation;
use crate::docker::{self, Docker};
use crate::image;
use crate::project;
use crate::swarm_lab::{self, Lab};
use crate::workspace::Workspace;

impl SwarmLab {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let ws = inv.workspace()?;
        let clients = docker::find_clients(&inv.sh)
            .context("swarm-lab needs a docker client: install Docker Engine")?;
        // The lab's own engines are addressed with -H; this machine's engine
        // (whose images seed the nodes) whatever DOCKER_HOST says.
        let docker = Docker::new(&inv.sh, clients, inv.ui).local();
        match self.action {
            LabAction::Up { nodes } => {
                let seed = swarm_lab::Seed {
                    images: images_to_seed(&docker, &ws),
                    volumes: runtimes_to_seed(&docker, &ws),
                    manager_only: vec![ws.root.clone(), ws.target.clone()],
                };
                let lab = swarm_lab::up(&docker, &ws.target, nodes, &seed)?;
                let env = Lab::dir(&ws.target).join("env");
                inv.ui.say(&format!(
                    "swarm lab up: {} nodes; for the cluster commands, `source {}`",
                    lab.nodes.len(),
                    env.display()
                ));
                print!("{}", swarm_lab::env_file(&lab));
                Ok(())
            }
            LabAction::Down => swarm_lab::down(&docker, &ws.target),
        }
    }
}

/// This checkout's runtime volumes: the lab's manager gets a copy, so that
/// a build there finds its runtime made (the nodes mount the manager's).
fn runtimes_to_seed(docker: &Docker, ws: &Workspace) -> Vec<String> {
    let mut volumes = crate::runtime::of_checkout(docker, &ws.checkout_id);
    volumes.sort();
    volumes.dedup();
    volumes
}

/// What a build on the lab's manager would otherwise make again, as it is
/// on the host's engine: the base and the pinned release's image (not
/// those of other projects).
fn images_to_seed(docker: &Docker, ws: &Workspace) -> Vec<String> {
    let cfg = &ws.config.image;
    let mut wanted = Vec::new();
    for python in cfg.suites.keys() {
        wanted.extend(image::fallback_tag(ws, python));
        wanted.push(cfg.base_for(python));
        wanted.push(image::project_tag(
            &ws.checkout_id,
            &project::pinned_dir(ws),
            python,
        ));
    }
    docker
        .images(&[], false)
        .unwrap_or_default()
        .iter()
        .filter(|r| wanted.contains(&r.reference()))
        .map(|r| r.reference())
        .collect()
}
