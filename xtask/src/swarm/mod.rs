//! The cluster on a Docker Swarm: the same services as a stack, workers and
//! engines spread over the nodes, the tests as a one-off task that waits for
//! the cluster from inside its network, every service's log through the
//! manager, and the stack removed whatever happened. `DOCKER_HOST` points at
//! the swarm's manager (`cargo xtask swarm-lab up` makes one here).

pub mod stack;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::context::Ctx;
use crate::exec;
use crate::interrupt;
use crate::summary::DeadService;
use crate::swarm_lab::Lab;

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

/// One deployed stack.
pub struct Stack {
    pub name: String,
    pub docker: PathBuf,
    /// Every service, the one-off last.
    pub services: Vec<String>,
    /// The one-off service: `tests`, or `ready` (see [`StackSpec::one_off`]).
    pub one_off: String,
}

impl Stack {
    pub fn deploy(
        sh: &Shell,
        docker: &Path,
        name: &str,
        spec: &StackSpec,
        file: &Path,
    ) -> Result<Stack> {
        fs::write(file, spec.text()).with_context(|| format!("writing {}", file.display()))?;
        let mut services = spec.size.services();
        services.push(spec.one_off().into());
        cmd!(
            sh,
            "{docker} stack deploy --prune --resolve-image never --compose-file {file} {name}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .context("deploying the stack")?;
        Ok(Stack {
            name: name.to_string(),
            docker: docker.to_path_buf(),
            services,
            one_off: spec.one_off().into(),
        })
    }

    /// `docker stack deploy` again with `spec`: services whose definition
    /// did not change keep running; the one-off becomes `spec`'s.
    pub fn redeploy(&mut self, sh: &Shell, spec: &StackSpec, file: &Path) -> Result<()> {
        let name = self.name.clone();
        *self = Stack::deploy(sh, &self.docker, &name, spec, file)?;
        Ok(())
    }

    /// Remove the one-off service (its task has ended), so that the next
    /// deploy starts it afresh.
    pub fn remove_one_off(&self, sh: &Shell) -> Result<()> {
        let (docker, svc) = (&self.docker, self.service(&self.one_off));
        cmd!(sh, "{docker} service rm {svc}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("removing the service {svc}"))
    }

    /// The output of `probe.py WHAT` in `service`'s container, which runs
    /// on the manager (scheduler, controller): `None` when it does not answer.
    pub fn probe(&self, sh: &Shell, service: &str, what: &str) -> Option<String> {
        let docker = &self.docker;
        let filter = format!(
            "label=com.docker.swarm.service.name={}",
            self.service(service)
        );
        let id = cmd!(sh, "{docker} ps --quiet --filter {filter}")
            .quiet()
            .read()
            .ok()?;
        let id = id.lines().next()?.trim().to_string();
        cmd!(
            sh,
            "{docker} exec {id} python3 /opt/dist-test/probe.py {what}"
        )
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
    }

    /// Each service's replicas as `docker service ls` shows them
    /// (`1/1`), by service.
    pub fn replicas(&self, sh: &Shell) -> BTreeMap<String, String> {
        let docker = &self.docker;
        let filter = format!("label=com.docker.stack.namespace={}", self.name);
        let format = "{{.Name}} {{.Replicas}}";
        let out = cmd!(
            sh,
            "{docker} service ls --filter {filter} --format {format}"
        )
        .quiet()
        .read()
        .unwrap_or_default();
        let prefix = format!("{}_", self.name);
        out.lines()
            .filter_map(|l| {
                let (name, replicas) = l.split_once(' ')?;
                Some((
                    name.strip_prefix(&prefix)?.to_string(),
                    replicas.trim().to_string(),
                ))
            })
            .collect()
    }

    fn service(&self, s: &str) -> String {
        format!("{}_{s}", self.name)
    }

    /// The tests task's state and exit code, once it has ended.
    fn tests_ended(&self, sh: &Shell) -> Option<(String, Option<i32>)> {
        let docker = &self.docker;
        let svc = self.service(&self.one_off);
        let format = "{{.ID}} {{.CurrentState}}";
        let out = cmd!(sh, "{docker} service ps --no-trunc --format {format} {svc}")
            .quiet()
            .read()
            .ok()?;
        let line = out.lines().next()?;
        let (id, state) = line.split_once(' ')?;
        let word = state.split_whitespace().next().unwrap_or("");
        if !["Complete", "Failed", "Rejected", "Shutdown", "Orphaned"].contains(&word) {
            return None;
        }
        let format = "{{.Status.ContainerStatus.ExitCode}}";
        let code = cmd!(sh, "{docker} inspect --format {format} {id}")
            .quiet()
            .read()
            .ok()
            .and_then(|c| c.trim().parse().ok());
        Some((state.to_string(), code))
    }

    fn tests_log(&self, sh: &Shell) -> String {
        let docker = &self.docker;
        let svc = self.service(&self.one_off);
        cmd!(sh, "{docker} service logs --raw {svc}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default()
    }

    /// Until the tests task says the cluster is ready (its readiness wait
    /// passed), or it ended without.
    pub fn wait_ready(&self, sh: &Shell, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            interrupt::check()?;
            let log = self.tests_log(sh);
            if log.contains("dist-test: cluster ready") {
                return Ok(());
            }
            if let Some(last) = log.lines().rev().find(|l| l.starts_with("dist-test: ")) {
                crate::live::status(last.trim_start_matches("dist-test: ").to_string(), None);
            }
            if let Some((state, _)) = self.tests_ended(sh) {
                bail!(
                    "the cluster was not ready: the tests task ended ({state}); its log:\n{}",
                    exec::tail(&log, 20)
                );
            }
            if Instant::now() > deadline {
                bail!("the cluster was not ready after {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Until the tests task ends; its log into `log`, its exit code.
    pub fn wait_tests(&self, sh: &Shell, log: &Path, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        let ended = loop {
            interrupt::check()?;
            if let Some((_, code)) = self.tests_ended(sh) {
                break code;
            }
            if Instant::now() > deadline {
                bail!("the tests did not finish within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let text = self.tests_log(sh);
        fs::write(log, &text).with_context(|| format!("writing {}", log.display()))?;
        eprint!("{text}");
        if !text.is_empty() && !text.ends_with('\n') {
            eprintln!();
        }
        Ok(ended)
    }

    /// Every service's log, one file each, and the node each service's
    /// task ran on (`<node id> <address>`).
    pub fn collect(&self, sh: &Shell, dir: &Path) -> BTreeMap<String, String> {
        let docker = &self.docker;
        let _ = fs::create_dir_all(dir);
        let mut nodes = BTreeMap::new();
        // Each node looked up once, however many services ran on it.
        let mut named_nodes: BTreeMap<String, String> = BTreeMap::new();
        for s in &self.services {
            let svc = self.service(s);
            if let Ok(text) = cmd!(sh, "{docker} service logs --timestamps --raw {svc}")
                .quiet()
                .ignore_stderr()
                .read()
            {
                let _ = fs::write(dir.join(format!("{s}.log")), text);
            }
            // The newest task that was given a node (a task waiting to be
            // placed again, after its node died, has none).
            let id_format = "{{.ID}}";
            let tasks = cmd!(
                sh,
                "{docker} service ps --no-trunc --format {id_format} {svc}"
            )
            .quiet()
            .read()
            .unwrap_or_default();
            let node_format = "{{.NodeID}}";
            let node = tasks.lines().find_map(|task| {
                let node = cmd!(sh, "{docker} inspect --format {node_format} {task}")
                    .quiet()
                    .read()
                    .ok()?;
                let node = node.trim().to_string();
                (!node.is_empty()).then_some(node)
            });
            let Some(node) = node else {
                continue;
            };
            let named = named_nodes
                .entry(node.clone())
                .or_insert_with(|| self.node_named(sh, &node))
                .clone();
            nodes.insert(s.clone(), named);
        }
        nodes
    }

    /// `<node id> <address>`, as `summary.json` names a node.
    fn node_named(&self, sh: &Shell, id: &str) -> String {
        let docker = &self.docker;
        let format = "{{.Status.Addr}}";
        let addr = cmd!(sh, "{docker} node inspect --format {format} {id}")
            .quiet()
            .read()
            .unwrap_or_default();
        format!("{id} {}", addr.trim())
    }

    /// [`Stack::dead_nodes`], once the manager has had time to notice: it
    /// calls a node Down only after the node has missed its heartbeats for
    /// three heartbeat periods, and a run whose node died fails sooner than
    /// that. So after a failed run (`failed`) the node states are read again
    /// until one is not Ready or that window has passed; a run that passed
    /// reads them once.
    pub fn dead_nodes_settled(
        &self,
        sh: &Shell,
        nodes: &BTreeMap<String, String>,
        failed: bool,
    ) -> (Vec<String>, Vec<DeadService>) {
        let window = if failed {
            self.heartbeat_period(sh) * 3 + Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + window;
        loop {
            let found = self.dead_nodes(sh, nodes);
            if !found.0.is_empty() || Instant::now() >= deadline || interrupt::interrupted() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The swarm's dispatcher heartbeat period (Docker's default, 5 s, if
    /// the manager does not say).
    fn heartbeat_period(&self, sh: &Shell) -> Duration {
        let docker = &self.docker;
        // In nanoseconds through json; as text a Go duration reads "5s".
        let format = "{{json .Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}";
        cmd!(sh, "{docker} info --format {format}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .and_then(|ns| ns.trim().parse::<u64>().ok())
            .filter(|&ns| ns > 0)
            .map_or(Duration::from_secs(5), Duration::from_nanos)
    }

    /// Nodes of the swarm that are not Ready now (`<node id> <address>`),
    /// and which of this stack's services ran on them (from `nodes`, what
    /// [`Stack::collect`] found).
    pub fn dead_nodes(
        &self,
        sh: &Shell,
        nodes: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<DeadService>) {
        let docker = &self.docker;
        let format = "{{.ID}} {{.Status}}";
        let out = cmd!(sh, "{docker} node ls --format {format}")
            .quiet()
            .read()
            .unwrap_or_default();
        let mut dead_nodes = Vec::new();
        let mut dead_services = Vec::new();
        for line in out.lines() {
            let Some((id, status)) = line.split_once(' ') else {
                continue;
            };
            if status.trim() == "Ready" {
                continue;
            }
            let node = self.node_named(sh, id);
            for (service, on) in nodes {
                if on.split_whitespace().next() == Some(id) {
                    dead_services.push(DeadService {
                        service: service.clone(),
                        state: format!("its node {node} is {}", status.trim()),
                        exit_code: None,
                        last_lines: String::new(),
                    });
                }
            }
            dead_nodes.push(node);
        }
        (dead_nodes, dead_services)
    }

    /// `stack rm`, then wait until its services, tasks and network are gone.
    pub fn remove(&self, sh: &Shell) -> Result<()> {
        let (docker, name) = (&self.docker, &self.name);
        cmd!(sh, "{docker} stack rm {name}")
            .quiet()
            .ignore_stdout()
            .run()
            .context("removing the stack")?;
        let filter = format!("label=com.docker.stack.namespace={name}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let networks = cmd!(sh, "{docker} network ls --quiet --filter {filter}")
                .quiet()
                .read()
                .unwrap_or_default();
            let services = cmd!(sh, "{docker} service ls --quiet --filter {filter}")
                .quiet()
                .read()
                .unwrap_or_default();
            if networks.trim().is_empty() && services.trim().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the stack {name} was not gone 120 s after `stack rm`");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
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
