//! The nodes' Docker engines: started detached in their network
//! namespaces, asked whether they answer, stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{Lab, Node};
use crate::exec;
use crate::ui::Ui;

pub(super) fn node_log(dir: &Path, node: &Node) -> PathBuf {
    dir.join(format!("{}.log", node.name))
}

/// `dockerd` inside the node's network namespace only (`nsenter --net`:
/// `ip netns exec` would also hide the host's cgroup mounts, which dockerd
/// needs), with its own state, socket and config, detached from this
/// process (it outlives it).
pub(super) fn start_engine(node: &Node, dir: &Path) -> Result<()> {
    fs::create_dir_all(node.run_dir())?;
    fs::create_dir_all(node.data_root())?;
    fs::create_dir_all(dir)?;
    // An empty config file: the host's /etc/docker/daemon.json names the
    // host engine's data-root.
    let config = node.run_dir().join("daemon.json");
    fs::write(&config, "{}\n")?;
    let netns = format!("--net=/var/run/netns/{}", node.name);
    let mut command = Command::new("nsenter");
    command
        .args([netns.as_str(), "dockerd", "--config-file"])
        .arg(&config)
        .arg("--data-root")
        .arg(node.data_root())
        .arg("--exec-root")
        .arg(node.run_dir().join("exec"))
        .arg("--pidfile")
        .arg(node.pid_file())
        .arg("--host")
        .arg(node.docker_host())
        .args(["--storage-driver", "fuse-overlayfs"])
        .arg("--cgroup-parent")
        .arg(&node.name)
        // A node's engine otherwise tries to pull a task's image from its
        // registry before every start, even with the image at hand: here
        // that is a lookup of Docker Hub off this machine, and a task
        // waits in Preparing for as long as the network takes to refuse.
        // The cluster's image reaches the nodes by `docker load`.
        .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1");
    exec::spawn_detached(command, &node_log(dir, node))
        .with_context(|| format!("starting the Docker engine of {}", node.name))
}

pub(super) fn engine_answers(sh: &Shell, node: &Node) -> bool {
    let host = node.docker_host();
    let format = "{{.Server.Version}}";
    cmd!(sh, "docker -H {host} version --format {format}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// SIGTERM (dockerd stops its containers), then SIGKILL after 30 s.
pub(super) fn stop_engine(node: &Node) -> Result<()> {
    let Some(pid) = fs::read_to_string(node.pid_file())
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            std::thread::sleep(Duration::from_millis(500));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        bail!("its Docker engine (pid {pid}) did not stop");
    }
    Ok(())
}

/// Mount points at or beneath `dir`, deepest first.
pub(super) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// `docker save` from the host's engine, `docker load` into every node,
/// the nodes side by side.
pub(super) fn seed_images(lab: &Lab, images: &[String], ui: Ui) -> Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    ui.say(&format!(
        "loading {} into the {} nodes",
        images.join(", "),
        lab.nodes.len()
    ));
    let loads: Vec<_> = lab
        .nodes
        .iter()
        .map(|node| {
            let mut save = Command::new("docker");
            save.env_remove("DOCKER_HOST").arg("save").args(images);
            let mut load = Command::new("docker");
            load.args(["-H", &node.docker_host(), "load", "--quiet"]);
            let name = node.name.clone();
            std::thread::spawn(move || {
                exec::pipe(save, load).with_context(|| format!("loading the images into {name}"))
            })
        })
        .collect();
    for l in loads {
        l.join()
            .map_err(|_| anyhow::anyhow!("loading the images panicked"))??;
    }
    Ok(())
}

pub(super) fn join_swarm(sh: &Shell, lab: &Lab) -> Result<()> {
    let manager = lab.manager();
    let host = manager.docker_host();
    let addr = &manager.address;
    let listen = format!("{addr}:2377");
    cmd!(
        sh,
        "docker -H {host} swarm init --advertise-addr {addr} --listen-addr {listen}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .context("making node 1 the swarm's manager")?;
    let token = cmd!(sh, "docker -H {host} swarm join-token --quiet worker")
        .quiet()
        .read()?;
    for node in &lab.nodes[1..] {
        let h = node.docker_host();
        let a = &node.address;
        cmd!(
            sh,
            "docker -H {h} swarm join --token {token} --advertise-addr {a} {listen}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("joining {} to the swarm", node.name))?;
    }
    // Every node ready in the manager's view.
    let deadline = Instant::now() + Duration::from_secs(60);
    let format = "{{.Status}}";
    loop {
        let ready = cmd!(sh, "docker -H {host} node ls --format {format}")
            .quiet()
            .read()
            .unwrap_or_default()
            .lines()
            .filter(|s| s.trim() == "Ready")
            .count();
        if ready == lab.nodes.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {} swarm nodes became ready within 60 s",
                lab.nodes.len()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
