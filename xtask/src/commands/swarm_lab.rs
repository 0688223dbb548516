//! `cargo xtask swarm-lab up|down`: the test swarm on this machine (see
//! swarm_lab.rs).

use anyhow::Result;
use xshell::cmd;

use crate::cli::{LabAction, SwarmLab};
use crate::context::Invocation;
use crate::image;
use crate::swarm_lab::{self, Lab};
use crate::workspace::Workspace;

impl SwarmLab {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let ws = inv.workspace()?;
        match self.action {
            LabAction::Up { nodes } => {
                let seed = images_to_seed(inv, &ws);
                let lab = swarm_lab::up(&inv.sh, &ws.target, nodes, &seed, inv.ui)?;
                let env = Lab::dir(&ws.target).join("env");
                inv.ui.say(&format!(
                    "swarm lab up: {} nodes; for the cluster commands, `source {}`",
                    lab.nodes.len(),
                    env.display()
                ));
                print!("{}", swarm_lab::env_file(lab.manager()));
                Ok(())
            }
            LabAction::Down => swarm_lab::down(&inv.sh, &ws.target, inv.ui),
        }
    }
}

/// This checkout's images on the host's engine (the cluster's image, its
/// dependency image and the base built here), to load into the nodes.
fn images_to_seed(inv: &Invocation, ws: &Workspace) -> Vec<String> {
    let sh = &inv.sh;
    let format = "{{.Repository}}:{{.Tag}}";
    let all = cmd!(sh, "docker image ls --format {format}")
        .env_remove("DOCKER_HOST")
        .quiet()
        .read()
        .unwrap_or_default();
    let base = image::fallback_tag(ws);
    all.lines()
        .filter(|i| i.starts_with(&ws.checkout_id) || *i == base || *i == ws.config.image.base)
        .map(str::to_string)
        .collect()
}
