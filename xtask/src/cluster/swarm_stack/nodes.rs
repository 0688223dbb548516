//! The swarm's nodes as its manager sees them, and the image brought to
//! every one of them without a registry.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::docker::{Docker, OneShot, LONG};
use crate::exec;

/// Is the engine `DOCKER_HOST` points at a swarm manager? One clear line if not.
pub fn check_manager(docker: &Docker) -> Result<()> {
    let info = docker.swarm_info();
    if !info.is_manager() {
        bail!(
            "--swarm needs DOCKER_HOST to point at a swarm manager, and this engine is not one \
             (its swarm state: {}): `cargo xtask swarm-lab up` makes a test swarm here",
            if info.local_node_state.is_empty() {
                "none"
            } else {
                &info.local_node_state
            }
        );
    }
    Ok(())
}

/// The swarm's ready, active nodes by id, the manager (this engine) first.
pub fn ready_nodes(docker: &Docker) -> Result<Vec<String>> {
    let mut ids: Vec<(bool, String)> = docker
        .nodes()?
        .into_iter()
        .filter(|n| n.status == "Ready" && n.availability == "Active")
        .map(|n| (!n.is_self, n.id))
        .collect();
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

/// The variable that names the Docker engines of a swarm's other nodes
/// (`ssh://user@host`, `tcp://host:2376` with TLS, …), separated by spaces
/// or commas: how the image reaches them without a registry. `cargo xtask
/// swarm-lab up` sets it for its nodes in the file it writes.
pub const ENGINES_VAR: &str = "DIST_TEST_SWARM_ENGINES";

/// The engine addresses in `ENGINES_VAR`'s value.
pub fn parse_engines(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The engines of the swarm's nodes besides the manager, from
/// [`ENGINES_VAR`], each checked to be a node of this swarm, together
/// covering every one (`nodes`: the manager first). None for a swarm of
/// one node. Asked once per stack (`SwarmStack::others`).
pub fn other_engines(docker: &Docker, nodes: &[String]) -> Result<Vec<String>> {
    let others = &nodes[1..];
    let value = std::env::var(ENGINES_VAR).unwrap_or_default();
    let hosts = parse_engines(&value);
    if hosts.is_empty() {
        if others.is_empty() {
            return Ok(hosts);
        }
        bail!(
            "--swarm: the image and the runtime have to reach the swarm's {} other nodes: set \
             {ENGINES_VAR} to their Docker engines (e.g. ssh://user@host), see docs/swarm.md",
            others.len()
        );
    }
    let mut covered = Vec::new();
    for host in &hosts {
        let node = docker.on(host);
        let id = node.swarm_info().node_id;
        if !others.contains(&id) {
            bail!(
                "{ENGINES_VAR}: the engine at {host} is not one of this swarm's other nodes \
                 (its node id is {id:?}); list the engines of the nodes besides the manager"
            );
        }
        covered.push(id);
    }
    let missing = others.iter().filter(|n| !covered.contains(n)).count();
    if missing > 0 {
        bail!(
            "{ENGINES_VAR} names no engine for {missing} of the swarm's {} other nodes: \
             the image must reach every node (see docs/swarm.md)",
            others.len()
        );
    }
    Ok(hosts)
}

/// A node's engine, by the address it was named with (`the manager` on a
/// swarm of one node), for messages.
pub type NodeEngine<'a> = (String, Docker<'a>);

/// The engines of the nodes that run workers and engines: every node but
/// the manager, or the manager alone on a swarm of one node.
pub fn worker_engines<'a>(docker: &Docker<'a>, others: &[String]) -> Vec<NodeEngine<'a>> {
    if others.is_empty() {
        return vec![("the manager".into(), docker.clone())];
    }
    (others.iter())
        .map(|host| (host.clone(), docker.on(host)))
        .collect()
}

/// Unpack the tar stream on the input into /to, over what is there (a
/// running worker never finds a file missing), then remove what the
/// stream did not hold (a deleted module must not stay importable).
const TAKE_IN_PLACE: &str = "tar -C /to --no-same-owner -xvf - | sort > /tmp/got \
    && (cd /to && find . -type f) | sort > /tmp/have \
    && comm -23 /tmp/have /tmp/got | (cd /to && tr '\\n' '\\0' | xargs -0 -r rm -f)";

/// A container of `image` that takes a tar stream on its input into
/// `volume` ([`TAKE_IN_PLACE`]): a copy cut short leaves nothing behind
/// on the next.
fn take_into<'s>(volume: &str, image: &'s str) -> OneShot<'s> {
    OneShot {
        image,
        user: "0",
        interactive: true,
        volumes: vec![format!("{volume}:/to")],
        command: ["sh", "-c", TAKE_IN_PLACE].map(String::from).to_vec(),
        ..Default::default()
    }
}

/// The project's source (`dir` on the manager) into the volume `volume` on
/// each of `engines`, which the workers and engines mount at /src: made
/// with `labels` when missing, then updated in place by `tar` streamed
/// through the node's engine into a container of `image`. What the
/// project's own tree skips (version control, environments, caches) stays
/// here. Files keep their times, which numba's cache and the restart after
/// an edit go by.
pub fn send_source(
    engines: &[NodeEngine],
    (dir, volume, image): (&Path, &str, &str),
    labels: &[String],
) -> Result<()> {
    let excludes: Vec<String> = (crate::project::tree::SKIP.iter())
        .chain(&["*.egg-info", "*.pyc"])
        .map(|e| format!("--exclude={e}"))
        .collect();
    for (host, node) in engines {
        if !node.volume_exists(volume) {
            node.volume_create(volume, labels)?;
        }
        let take = take_into(volume, image);
        let (sh, excludes) = (node.shell(), &excludes);
        let send = cmd!(sh, "tar -C {dir} {excludes...} -cf - .");
        exec::pipe(send.into(), node.one_shot_command(&take), LONG)
            .with_context(|| format!("copying the source {} to {host}", dir.display()))?;
    }
    Ok(())
}

/// Every node of `engines` sees the stack's folder `dir` in the shared
/// one (its [`shared::MARK`] file): one line naming the first that does not.
pub fn check_shared(engines: &[NodeEngine], dir: &Path, image: &str, var: &str) -> Result<()> {
    let mark = format!("/check/{}", super::shared::MARK);
    for (host, node) in engines {
        let look = OneShot {
            image,
            user: "0",
            volumes: vec![format!("{}:/check:ro", dir.display())],
            command: ["test", "-f", &mark].map(String::from).to_vec(),
            ..Default::default()
        };
        if let Err(e) = node.one_shot(&look, None, LONG) {
            bail!(
                "the node at {host} does not see the shared folder {var}: mount it at the same \
                 path on every node ({})",
                exec::tail(&format!("{e:#}"), 1)
            );
        }
    }
    Ok(())
}

/// Remove the source volume from each of `engines`, waiting (up to 60 s)
/// for a node to remove the containers of the stack's removed tasks.
pub fn remove_source(engines: &[NodeEngine], volume: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (host, node) in engines {
        while node.volume_exists(volume) && !node.volume_rm(volume) {
            if std::time::Instant::now() > deadline {
                bail!(
                    "the volume {volume} stays on {host}, still in use: remove it there with \
                     `docker volume rm {volume}`"
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    Ok(())
}

/// The file that marks a runtime volume complete (runtime.sh writes it last).
const RUNTIME_MARK: &str = ".dist-test-runtime";

/// The runtime volume reaches every other node as the image does, through
/// that node's engine, so that nothing under the manager's Docker data
/// root has to be shared: a volume of the same name on each node, its
/// content streamed from the manager's (`tar` in a container of `image` on
/// either side), its mark written last; a node whose volume is complete
/// already is left alone. Every service then mounts the volume by name.
pub fn distribute_runtime(
    docker: &Docker,
    volume: &str,
    image: &str,
    others: &[String],
) -> Result<()> {
    for host in others {
        let node = docker.on(host);
        if node.volume_exists(volume)
            && node.one_shot(&read_mark(volume, image), None, LONG).is_ok()
        {
            continue;
        }
        crate::live::status(format!("copying the runtime {volume} to {host}"), None);
        send_runtime(docker, &node, (volume, image))
            .with_context(|| format!("copying the runtime {volume} to the node at {host}"))?;
    }
    Ok(())
}

/// A one-shot that prints the runtime's mark, failing when there is none
/// or it is empty (a copy that is missing or was cut short).
fn read_mark<'s>(volume: &str, image: &'s str) -> OneShot<'s> {
    let script = format!("test -s /v/{RUNTIME_MARK} && cat /v/{RUNTIME_MARK}");
    OneShot {
        image,
        user: "0",
        volumes: vec![format!("{volume}:/v:ro")],
        command: vec!["sh".into(), "-c".into(), script],
        ..Default::default()
    }
}

/// The manager's runtime `volume` into `node`'s volume of the same name
/// (made first, with the same labels; what a copy cut short left goes),
/// its mark last.
pub fn send_runtime(docker: &Docker, node: &Docker, (volume, image): (&str, &str)) -> Result<()> {
    let labels: Vec<String> = (docker.volume_labels(volume).unwrap_or_default().iter())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    node.volume_create(volume, &labels)?;
    let exclude = format!("--exclude=./{RUNTIME_MARK}");
    let send = OneShot {
        image,
        user: "0",
        volumes: vec![format!("{volume}:/from:ro")],
        command: ["tar", "-C", "/from", &exclude, "-cf", "-", "."]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    let take = take_into(volume, image);
    exec::pipe(
        docker.one_shot_command(&send),
        node.one_shot_command(&take),
        LONG,
    )?;
    let mark = docker
        .one_shot(&read_mark(volume, image), None, LONG)
        .context("reading the runtime's mark on the manager")?;
    let write = format!("printf '%s\\n' \"$0\" > /to/{RUNTIME_MARK}");
    let marked = OneShot {
        image,
        user: "0",
        volumes: vec![format!("{volume}:/to")],
        command: ["sh", "-c", &write, mark.trim()].map(String::from).to_vec(),
        ..Default::default()
    };
    node.one_shot(&marked, None, LONG)
        .context("marking the copy complete")?;
    Ok(())
}

/// Images reach the nodes without a registry: `docker save` on the manager
/// piped into `docker load` on every other node whose copy differs, through
/// that node's engine. The engines are [`ENGINES_VAR`]'s, each checked to
/// be a node of this swarm, together covering every node besides the
/// manager (`others`, from [`other_engines`]); a swarm of one node needs nothing.
pub fn distribute_image(docker: &Docker, image: &str, others: &[String]) -> Result<()> {
    let want = docker.image_id(image);
    for host in others {
        let node = docker.on(host);
        if node.image_id(image).is_some() && node.image_id(image) == want {
            continue;
        }
        crate::live::status(format!("loading {image} into {host}"), None);
        docker
            .send_image(&[image.to_string()], &node, LONG)
            .with_context(|| format!("loading {image} into the node at {host}"))?;
    }
    Ok(())
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
