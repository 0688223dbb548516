//! The nodes' Docker engines: started detached in their network
//! namespaces, asked whether they answer, stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{Lab, Node};
use crate::docker::{Docker, LONG};
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

pub(super) fn engine_answers(docker: &Docker, node: &Node) -> bool {
    docker.on(&node.docker_host()).server_version().is_some()
}

/// SIGTERM (dockerd stops its containers), then SIGKILL after 30 s.
pub(super) fn stop_engine(node: &Node, ui: Ui) -> Result<()> {
    let Some(pid) = fs::read_to_string(node.pid_file())
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    exec::kill(pid, "TERM", ui);
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        if Instant::now() > deadline {
            exec::kill(pid, "KILL", ui);
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
pub(super) fn seed_images(docker: &Docker, lab: &Lab, images: &[String]) -> Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    docker.ui().say(&format!(
        "loading {} into the {} nodes",
        images.join(", "),
        lab.nodes.len()
    ));
    let host = docker.local();
    let loads: Vec<_> = lab
        .nodes
        .iter()
        .map(|node| {
            let (save, load) = host.send_commands(images, &docker.on(&node.docker_host()));
            let name = node.name.clone();
            std::thread::spawn(move || {
                exec::pipe(save, load, LONG)
                    .with_context(|| format!("loading the images into {name}"))
            })
        })
        .collect();
    for l in loads {
        l.join()
            .map_err(|_| anyhow::anyhow!("loading the images panicked"))??;
    }
    Ok(())
}

/// A copy of each of the host engine's `volumes` (with its labels) on the
/// lab's manager, made by a container of `image` (one the nodes were
/// seeded with) that reads the host's copy where the host engine keeps it:
/// the lab's engines share this machine's file system.
pub(super) fn seed_volumes(
    docker: &Docker,
    lab: &Lab,
    volumes: &[String],
    image: Option<&String>,
) -> Result<()> {
    let (Some(image), false) = (image, volumes.is_empty()) else {
        return Ok(());
    };
    let host = docker.local();
    let manager = docker.on(&lab.manager().docker_host());
    for name in volumes {
        docker
            .ui()
            .say(&format!("copying the volume {name} to the lab's manager"));
        let from = host.volume_mountpoint(name)?;
        let labels: Vec<String> = host
            .volume_labels(name)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        manager.volume_create(name, &labels)?;
        let one = crate::docker::OneShot {
            image,
            user: "0",
            volumes: vec![
                format!("{}:/from:ro", from.display()),
                format!("{name}:/to"),
            ],
            command: ["cp", "-a", "/from/.", "/to/"].map(String::from).to_vec(),
            ..Default::default()
        };
        manager
            .one_shot(&one, None, LONG)
            .with_context(|| format!("copying the volume {name} to the lab's manager"))?;
    }
    Ok(())
}

pub(super) fn join_swarm(docker: &Docker, lab: &Lab) -> Result<()> {
    let manager = lab.manager();
    let on_manager = docker.on(&manager.docker_host());
    let addr = &manager.address;
    let listen = format!("{addr}:2377");
    on_manager
        .swarm_init(addr, &listen)
        .context("making node 1 the swarm's manager")?;
    let token = on_manager.swarm_join_token()?;
    for node in &lab.nodes[1..] {
        docker
            .on(&node.docker_host())
            .swarm_join(&token, &node.address, &listen)
            .with_context(|| format!("joining {} to the swarm", node.name))?;
    }
    // Every node ready in the manager's view.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = on_manager
            .nodes()
            .unwrap_or_default()
            .iter()
            .filter(|n| n.status == "Ready")
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
