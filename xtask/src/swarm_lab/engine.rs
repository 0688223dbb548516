//! The nodes' Docker engines: started detached in their network
//! namespaces, asked whether they answer, stopped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{Lab, Node};
use crate::cluster::swarm_stack::send_runtime;
use crate::docker::{Docker, LONG};
use crate::exec;
use crate::ui::Ui;

pub(super) fn node_log(dir: &Path, node: &Node) -> PathBuf {
    dir.join(format!("{}.log", node.name))
}

/// Hides a folder from a node: an empty file system mounted over it in the
/// node's own mount namespace, then the engine. Room for a little: the
/// engine writes its containers' network files under /var/lib/docker
/// whatever its data root (Docker 20.10), here into the node's own.
const HIDE_THEN_RUN: &str = "for d in \"$@\"; do [ \"$d\" = -- ] && break; \
                             mount -t tmpfs -o size=64m,mode=755 ltlab-hidden \"$d\" || exit 1; \
                             shift; done; shift; exec \"$@\"";

/// `dockerd` inside the node's network namespace (`nsenter --net`: `ip
/// netns exec` would also hide the host's cgroup mounts, which dockerd
/// needs) and a mount namespace of its own (`unshare --mount`, private)
/// in which `hidden` (the folders a separate machine would not have) are
/// empty; with its own state, socket and config, detached from this
/// process (it outlives it).
pub(super) fn start_engine(node: &Node, dir: &Path, hidden: &[PathBuf]) -> Result<()> {
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
        .args([
            netns.as_str(),
            "unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", HIDE_THEN_RUN, "sh"])
        .args(hidden.iter().filter(|d| d.is_dir()))
        .args(["--", "dockerd", "--config-file"])
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

/// What `node` must not see: the host engine's state and the other nodes',
/// and, unless it is the manager, what only the manager's machine has.
pub(super) fn hidden_from(
    lab: &Lab,
    node: &Node,
    host_root: &Path,
    manager_only: &[PathBuf],
) -> Vec<PathBuf> {
    let mut hidden = vec![host_root.to_path_buf()];
    hidden.extend(
        (lab.nodes.iter())
            .filter(|n| n.index != node.index)
            .map(Node::data_root),
    );
    if node.index != lab.manager().index {
        hidden.extend(manager_only.iter().cloned());
    }
    // A folder inside one already hidden is gone with it.
    let all = hidden.clone();
    hidden.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    hidden
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
    // A zombie has stopped: the engine of a lab whose `up` failed is this
    // process's child until it exits.
    let alive = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .map(str::trim_start)
                .is_some_and(|s| !s.starts_with('Z'))
        })
    };
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

/// A copy of each of the host engine's runtime `volumes` (with its labels)
/// on the lab's manager, streamed between containers of `image` (one the
/// nodes were seeded with) through both engines, as to any node: the
/// manager does not see the host engine's data root.
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
        send_runtime(&host, &manager, (name, image))
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

#[cfg(test)]
mod tests {
    use super::super::SHARED;
    use super::*;

    #[test]
    fn only_the_manager_sees_the_checkout() {
        let lab = Lab::new(3);
        let checkout = [
            PathBuf::from("/repo"),
            PathBuf::from("/repo/target/dist-test"),
        ];
        let of =
            |n: usize| hidden_from(&lab, &lab.nodes[n], Path::new("/var/lib/docker"), &checkout);
        let shown = |h: Vec<PathBuf>| {
            h.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(of(0)),
            ["/var/lib/docker", "/var/lib/ltlab/2", "/var/lib/ltlab/3"]
        );
        assert_eq!(
            shown(of(2)),
            [
                "/var/lib/docker",
                "/var/lib/ltlab/1",
                "/var/lib/ltlab/2",
                "/repo"
            ]
        );
        assert!(!of(1).iter().any(|p| Path::new(SHARED).starts_with(p)));
    }
}
