//! The cluster on a Docker Swarm: the same services as a stack, workers and
//! engines spread over the nodes, the tests as a one-off task that waits for
//! the cluster from inside its network, every service's log through the
//! manager, and the stack removed whatever happened. `DOCKER_HOST` points at
//! the swarm's manager (`cargo xtask swarm-lab up` makes one here).

mod deployed;
pub mod stack;
mod tasks;

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::context::Ctx;
use crate::exec;
use crate::swarm_lab::Lab;

pub use deployed::Stack;
pub use stack::StackSpec;

/// The manager's view: is this engine a swarm manager? One clear line if not.
pub fn check_manager(sh: &Shell, docker: &Path) -> Result<()> {
    let format = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}";
    let state = cmd!(sh, "{docker} info --format {format}")
        .quiet()
        .read()
        .unwrap_or_default();
    if state.trim() != "active true" {
        bail!(
            "--swarm needs DOCKER_HOST to point at a swarm manager, and this engine is not one ({}): \
             `cargo xtask swarm-lab up` makes a test swarm here",
            state.trim()
        );
    }
    Ok(())
}

/// The swarm's ready nodes by id, the manager (this engine) first.
pub fn nodes(sh: &Shell, docker: &Path) -> Result<Vec<String>> {
    let format = "{{.ID}} {{.Status}} {{.Availability}} {{.Self}}";
    let out = cmd!(sh, "{docker} node ls --format {format}")
        .quiet()
        .read()
        .context("listing the swarm's nodes")?;
    let mut ids: Vec<(bool, String)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[1] == "Ready" && f[2] == "Active")
                .then(|| (f[3] != "true", f[0].to_string()))
        })
        .collect();
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// The variable that names the Docker engines of a swarm's other nodes
/// (`ssh://user@host`, `tcp://host:2376` with TLS, ...), separated by spaces
/// or commas: how the image reaches them without a registry.
pub const ENGINES_VAR: &str = "DIST_TEST_SWARM_ENGINES";

/// The engine addresses in `ENGINES_VAR`'s value.
pub fn parse_engines(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Images reach the nodes without a registry: `docker save` on the manager
/// piped into `docker load` on every other node whose copy differs,
/// through that node's engine. The engines are [`ENGINES_VAR`]'s, each
/// checked to be a node of this swarm, together covering every node
/// besides the manager; without it, the swarm lab's own nodes; a swarm of
/// one node needs nothing. `nodes` are the swarm's node ids, the manager
/// first.
pub fn distribute_image(cx: &Ctx, image: &str, nodes: &[String]) -> Result<()> {
    let docker = &cx.tools.docker.cli;
    let manager_host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let engines: Vec<(String, String)> = match std::env::var(ENGINES_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let mut engines = Vec::new();
            for host in parse_engines(&v) {
                let id = node_id_of(cx.sh, docker, &host)?;
                if !nodes[1..].contains(&id) {
                    bail!(
                        "{ENGINES_VAR}: the engine at {host} is not one of this swarm's other nodes \
                         (its node id is {:?}); list the engines of the nodes besides the manager",
                        id
                    );
                }
                engines.push((host, id));
            }
            let missing = nodes[1..]
                .iter()
                .filter(|n| !engines.iter().any(|(_, id)| id == *n))
                .count();
            if missing > 0 {
                bail!(
                    "{ENGINES_VAR} names no engine for {missing} of the swarm's {} other nodes: \
                     the image must reach every node (see docs/swarm.md)",
                    nodes.len() - 1
                );
            }
            engines
        }
        _ => {
            match Lab::load(&cx.ws.target)?.filter(|l| l.manager().docker_host() == manager_host) {
                Some(lab) => lab.nodes[1..]
                    .iter()
                    .map(|n| (n.docker_host(), n.name.clone()))
                    .collect(),
                None if nodes.len() > 1 => bail!(
                "--swarm: the image has to reach the swarm's {} other nodes: set {ENGINES_VAR} to \
                 their Docker engines (e.g. ssh://user@host), see docs/swarm.md",
                nodes.len() - 1
            ),
                None => Vec::new(),
            }
        }
    };
    let id_on = |host: &str| {
        let format = "{{.Id}}";
        cmd!(
            cx.sh,
            "{docker} -H {host} image inspect --format {format} {image}"
        )
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
    };
    let want = crate::image::image_id(cx.sh, docker, image);
    for (host, name) in &engines {
        if id_on(host).map(|s| s.trim().to_string()) == want {
            continue;
        }
        crate::live::status(format!("loading {image} into {name}"), None);
        let mut save = Command::new(docker);
        save.args(["save", image]);
        let mut load = Command::new(docker);
        load.args(["-H", host, "load", "--quiet"]);
        exec::pipe(save, load).with_context(|| format!("loading {image} into {name} ({host})"))?;
    }
    Ok(())
}

/// The swarm node id of the engine at `host`.
fn node_id_of(sh: &Shell, docker: &Path, host: &str) -> Result<String> {
    let format = "{{.Swarm.NodeID}}";
    let id = cmd!(sh, "{docker} -H {host} info --format {format}")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("{ENGINES_VAR}: cannot reach the Docker engine at {host}"))?;
    Ok(id.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_separated_by_spaces_or_commas() {
        assert_eq!(
            parse_engines(" ssh://a@n2, ssh://a@n3\ttcp://n4:2376,,"),
            ["ssh://a@n2", "ssh://a@n3", "tcp://n4:2376"]
        );
        assert!(parse_engines(" , ").is_empty());
    }
}
