//! A test swarm on this one machine, made from the machine's own Docker
//! engine binaries: one extra `dockerd` per node, each in a network
//! namespace of its own (its own address, as separate hosts have), all on
//! one bridge, joined into one swarm whose manager is node 1. Nothing is
//! pulled or installed: it needs `dockerd`, `ip` and `nsenter`, Linux and
//! root. One lab per machine; its names all start with `ltlab`.
//!
//! Where things are: the nodes' engine state under `/var/lib/ltlab/<n>`,
//! their sockets and pid files under `/run/ltlab/<n>`, their logs and the
//! `env` file (`export DOCKER_HOST=…`, the manager) under
//! `target/dist-test/swarm-lab/`. The nodes reach each other on the bridge
//! and the outside through the host (masqueraded), as hosts on a LAN do.
//!
//! Strict, as separate machines are: each engine runs in a mount namespace
//! of its own, where the host engine's data root and the other nodes' are
//! empty, and (on every node but the manager, where the xtask runs) the
//! checkout and its `target/` too. What the nodes share is one folder,
//! `/var/lib/ltlab/shared` (`DIST_TEST_SWARM_SHARED` in the env file): a
//! path that leaks from the manager to a node fails here as it would on
//! real machines.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use crate::cluster::swarm_stack::{ENGINES_VAR, SHARED_VAR};
use crate::docker::Docker;
use crate::exec::{self, QUERY};
use crate::fsx::write_atomic;

mod engine;
mod net;

use engine::{
    engine_answers, hidden_from, join_swarm, mounts_under, node_log, seed_images, seed_volumes,
    start_engine, stop_engine,
};
use net::{existing_indices, iptables, rules, wire};

/// The bridge every node's network namespace is wired to.
pub const BRIDGE: &str = "ltlab0";
/// The nodes' subnet: the bridge is `.1`, node `n` is `.(10 + n)`.
pub(crate) const SUBNET: &str = "192.168.231";
const STATE_ROOT: &str = "/var/lib/ltlab";
/// The one folder every node sees (swarm_stack/shared.rs).
pub const SHARED: &str = "/var/lib/ltlab/shared";
const RUN_ROOT: &str = "/run/ltlab";

/// One node of the lab, as named and addressed: pure, nothing is looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub index: u32,
    /// The network namespace and the host side of its veth pair.
    pub name: String,
    pub address: String,
    pub socket: PathBuf,
}

impl Node {
    pub fn new(index: u32) -> Node {
        Node {
            index,
            name: format!("ltlab-{index}"),
            address: format!("{SUBNET}.{}", 10 + index),
            socket: Path::new(RUN_ROOT)
                .join(index.to_string())
                .join("docker.sock"),
        }
    }

    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn run_dir(&self) -> PathBuf {
        Path::new(RUN_ROOT).join(self.index.to_string())
    }

    fn data_root(&self) -> PathBuf {
        Path::new(STATE_ROOT).join(self.index.to_string())
    }

    fn pid_file(&self) -> PathBuf {
        self.run_dir().join("docker.pid")
    }
}

/// The lab as `up` made it, saved so that `down` and `dist-test --swarm`
/// find its nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lab {
    pub schema: u32,
    pub nodes: Vec<Node>,
}

impl Lab {
    pub fn new(nodes: u32) -> Lab {
        Lab {
            schema: 1,
            nodes: (1..=nodes).map(Node::new).collect(),
        }
    }

    pub fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    /// `target/dist-test/swarm-lab/`
    pub fn dir(target: &Path) -> PathBuf {
        target.join("swarm-lab")
    }

    pub fn load(target: &Path) -> Result<Option<Lab>> {
        let path = Lab::dir(target).join("lab.json");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a lab this xtask wrote; remove it with `cargo xtask swarm-lab down`",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self, target: &Path) -> Result<()> {
        let dir = Lab::dir(target);
        let json = serde_json::to_string_pretty(self).expect("the lab serialises") + "\n";
        write_atomic(&dir.join("lab.json"), json.as_bytes())?;
        write_atomic(&dir.join("env"), env_file(self).as_bytes())
    }
}

/// What `source target/dist-test/swarm-lab/env` sets: the manager, the
/// other nodes' engines that the image is loaded into, the shared folder.
pub fn env_file(lab: &Lab) -> String {
    let others: Vec<String> = lab.nodes[1..].iter().map(Node::docker_host).collect();
    format!(
        "export DOCKER_HOST={}\nexport {ENGINES_VAR}='{}'\nexport {SHARED_VAR}={SHARED}\n",
        lab.manager().docker_host(),
        others.join(" ")
    )
}

/// Linux, root, and the machine's own `dockerd`, `ip` and `nsenter`.
fn check_host() -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!("swarm-lab needs Linux (network namespaces); on another system, point DOCKER_HOST at a real swarm's manager instead");
    }
    if crate::workspace::uid() != Some(0) {
        bail!("swarm-lab needs root (it makes network namespaces and runs Docker engines): run it with sudo");
    }
    for tool in ["dockerd", "ip", "nsenter", "unshare"] {
        if which::which(tool).is_err() {
            bail!("swarm-lab needs `{tool}` on PATH (Debian: docker.io for dockerd, iproute2 for ip, util-linux for nsenter and unshare)");
        }
    }
    Ok(())
}

/// What of the host's engine a new lab starts with, so that the cluster's
/// image and runtime are not made again on the swarm: images loaded into
/// every node, runtime volumes copied to the manager (whose copy every
/// node mounts).
pub struct Seed {
    pub images: Vec<String>,
    pub volumes: Vec<String>,
    /// What only the manager's machine has (the checkout, its `target/`):
    /// hidden from the other nodes.
    pub manager_only: Vec<PathBuf>,
}

/// Bring a lab of `nodes` up, or find it up already, seeded with `seed`.
pub fn up(docker: &Docker, target: &Path, nodes: u32, seed: &Seed) -> Result<Lab> {
    check_host()?;
    let ui = docker.ui();
    if let Some(lab) = Lab::load(target)? {
        if lab.nodes.len() as u32 == nodes && lab.nodes.iter().all(|n| engine_answers(docker, n)) {
            ui.say("the swarm lab is already up");
            return Ok(lab);
        }
        bail!(
            "a swarm lab of {} nodes is already here: remove it first with `cargo xtask swarm-lab down`",
            lab.nodes.len()
        );
    }
    let lab = Lab::new(nodes);
    // Saved first: whatever fails from here on, `down` finds every piece.
    lab.save(target)?;
    let made = make(docker, target, &lab, &seed.manager_only)
        .and_then(|()| seed_images(docker, &lab, &seed.images))
        .and_then(|()| seed_volumes(docker, &lab, &seed.volumes, seed.images.first()));
    if let Err(e) = made {
        ui.say("bringing the swarm lab up failed: removing what was made");
        if let Err(d) = down(docker, target) {
            eprintln!("error: removing the half-made lab: {d:#}");
        }
        return Err(e);
    }
    Ok(lab)
}

fn make(docker: &Docker, target: &Path, lab: &Lab, manager_only: &[PathBuf]) -> Result<()> {
    let (sh, ui) = (docker.shell(), docker.ui());
    // Every node's state first: each engine hides the others'.
    for node in &lab.nodes {
        fs::create_dir_all(node.data_root())?;
    }
    crate::fsx::writable_dir(Path::new(SHARED))?;
    let host_root = docker.local().root_dir()?;
    let bridge_addr = format!("{SUBNET}.1/24");
    exec::run(cmd!(sh, "ip link add {BRIDGE} type bridge"), QUERY, ui)
        .context("making the lab's bridge")?;
    exec::run(
        cmd!(sh, "ip addr add {bridge_addr} dev {BRIDGE}"),
        QUERY,
        ui,
    )?;
    exec::run(cmd!(sh, "ip link set {BRIDGE} up"), QUERY, ui)?;
    // The host's Docker sets FORWARD's policy to DROP, and bridged packets
    // pass through it: let the nodes talk to each other on the bridge, and
    // out (a node builds images as a host does), masqueraded.
    for rule in rules() {
        iptables(sh, ui, "-I", &rule)?;
    }
    for node in &lab.nodes {
        wire(sh, ui, node).with_context(|| format!("wiring {}", node.name))?;
        let hidden = hidden_from(lab, node, &host_root, manager_only);
        start_engine(node, &Lab::dir(target), &hidden)?;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for node in &lab.nodes {
        while !engine_answers(docker, node) {
            if Instant::now() > deadline {
                bail!(
                    "the Docker engine of {} did not answer within 90 s; see {}",
                    node.name,
                    node_log(&Lab::dir(target), node).display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    ui.say(&format!(
        "{} Docker engines answer; making the swarm",
        lab.nodes.len()
    ));
    join_swarm(docker, lab)
}

/// Remove the lab: every node's engine (its containers with it), state,
/// namespace and veth, the bridge, the rule and the files. Safe to repeat;
/// finds the pieces by name even without the saved lab.
pub fn down(docker: &Docker, target: &Path) -> Result<()> {
    let (sh, ui) = (docker.shell(), docker.ui());
    let saved = Lab::load(target).unwrap_or(None);
    let mut nodes: Vec<Node> = saved.map(|l| l.nodes).unwrap_or_default();
    for index in existing_indices(sh, ui) {
        if !nodes.iter().any(|n| n.index == index) {
            nodes.push(Node::new(index));
        }
    }
    let mut problems = Vec::new();
    for node in &nodes {
        if let Err(e) = remove_node(docker, node) {
            problems.push(format!("{}: {e:#}", node.name));
        }
    }
    if exec::succeeds(cmd!(sh, "ip link show {BRIDGE}"), QUERY, ui) {
        let _ = exec::run(cmd!(sh, "ip link del {BRIDGE}"), QUERY, ui);
    }
    for rule in rules() {
        while iptables(sh, ui, "-D", &rule).is_ok() {}
    }
    if let Err(e) = crate::fsx::remove_dir(Path::new(SHARED)) {
        problems.push(format!("the shared folder: {e:#}"));
    }
    let _ = fs::remove_dir(STATE_ROOT);
    let _ = fs::remove_file(Lab::dir(target).join("lab.json"));
    let _ = fs::remove_file(Lab::dir(target).join("env"));
    if !problems.is_empty() {
        bail!("the swarm lab is not all gone: {}", problems.join("; "));
    }
    ui.say(&format!("swarm lab removed ({} nodes)", nodes.len()));
    Ok(())
}

fn remove_node(docker: &Docker, node: &Node) -> Result<()> {
    let (sh, ui) = (docker.shell(), docker.ui());
    if engine_answers(docker, node) {
        docker.on(&node.docker_host()).swarm_leave();
    }
    stop_engine(node, ui)?;
    // What a killed engine may have left mounted beneath its state.
    for dir in [node.data_root(), node.run_dir()] {
        for mount in mounts_under(&dir) {
            let _ = exec::run(cmd!(sh, "umount -l {mount}"), QUERY, ui);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    let ns = &node.name;
    // The host's end of the veth first: deleting it takes its peer along at
    // once, where the namespace, once deleted, may linger (and its veth with
    // it) until the last process in it has gone.
    if exec::succeeds(cmd!(sh, "ip link show {ns}"), QUERY, ui) {
        exec::run(cmd!(sh, "ip link del {ns}"), QUERY, ui)?;
    }
    if existing_indices(sh, ui).contains(&node.index) {
        exec::run(cmd!(sh, "ip netns del {ns}"), QUERY, ui)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_and_addressed_by_number() {
        let lab = Lab::new(3);
        let names: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["ltlab-1", "ltlab-2", "ltlab-3"]);
        assert_eq!(lab.manager().address, "192.168.231.11");
        assert_eq!(lab.nodes[2].address, "192.168.231.13");
        assert_eq!(
            lab.manager().docker_host(),
            "unix:///run/ltlab/1/docker.sock"
        );
        // veth names must fit in Linux's 15 characters.
        assert!(lab.nodes.iter().all(|n| n.name.len() <= 15));
    }

    #[test]
    fn the_env_file_points_at_the_manager() {
        let lab = Lab::new(2);
        assert_eq!(
            env_file(&lab),
            "export DOCKER_HOST=unix:///run/ltlab/1/docker.sock\n\
             export DIST_TEST_SWARM_ENGINES='unix:///run/ltlab/2/docker.sock'\n\
             export DIST_TEST_SWARM_SHARED=/var/lib/ltlab/shared\n"
        );
        let json = serde_json::to_string(&lab).unwrap();
        let back: Lab = serde_json::from_str(&json).unwrap();
        assert_eq!(back, lab);
    }
}
