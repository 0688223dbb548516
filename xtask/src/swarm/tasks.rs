//! What the manager knows of a deployed stack's tasks: each service's log
//! and the node its task ran on, which services are not running (and why),
//! and which nodes died under them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use xshell::{cmd, Shell};

use super::Stack;
use crate::exec;
use crate::interrupt;
use crate::summary::DeadService;

/// A task as `docker stack ps --format '{{json .}}'` prints it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskLine {
    name: String,
    current_state: String,
    #[serde(default)]
    error: String,
}

/// The services of `stack` (named without the stack's prefix) whose
/// newest task is not running: `service: state`, with the task's error if
/// it has one. `docker stack ps` lists a service's newest task first.
fn not_running(json_lines: &str, stack: &str) -> Vec<String> {
    let prefix = format!("{stack}_");
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for line in json_lines.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(task) = serde_json::from_str::<TaskLine>(line) else {
            continue;
        };
        // `svc.1`, or ` \_ svc.1` for an older task of the same slot.
        let name = task
            .name
            .trim_start()
            .trim_start_matches("\\_")
            .trim_start();
        let Some(service) = name
            .strip_prefix(&prefix)
            .map(|n| n.rsplit_once('.').map_or(n, |(svc, _slot)| svc))
        else {
            continue;
        };
        if seen.iter().any(|s| s == service) {
            continue;
        }
        seen.push(service.to_string());
        if task.current_state.split_whitespace().next() == Some("Running") {
            continue;
        }
        let mut said = format!("{service}: {}", task.current_state.trim());
        if !task.error.trim().is_empty() {
            let _ = write!(said, " ({})", task.error.trim());
        }
        found.push(said);
    }
    found
}

impl Stack {
    /// The services whose task is not running, with its state (see
    /// [`not_running`]); empty if the manager cannot be asked.
    pub fn not_running(&self, sh: &Shell) -> Vec<String> {
        let (docker, name) = (&self.docker, &self.name);
        let format = "{{json .}}";
        let out = cmd!(sh, "{docker} stack ps --no-trunc --format {format} {name}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        not_running(&out, name)
    }

    /// Every service's log, one file each, and the node each service's
    /// task ran on (`<node id> <address>`).
    pub fn collect(&self, sh: &Shell, dir: &Path) -> BTreeMap<String, String> {
        let docker = &self.docker;
        let _ = fs::create_dir_all(dir);
        // Both streams: Dask and ipyparallel log to stderr. All at once.
        let logs = self
            .services
            .iter()
            .map(|s| {
                let mut logs = Command::new(docker);
                logs.args(["service", "logs", "--timestamps", "--raw"])
                    .arg(self.service(s));
                (logs, dir.join(format!("{s}.log")))
            })
            .collect();
        if let Err(e) = exec::run_all_to_files(logs) {
            eprintln!("warning: saving the services' logs: {e:#}");
        }
        let mut nodes = BTreeMap::new();
        // Each node looked up once, however many services ran on it.
        let mut named_nodes: BTreeMap<String, String> = BTreeMap::new();
        for s in &self.services {
            let svc = self.service(s);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = r#"{"CurrentState":"Running 20 seconds ago","DesiredState":"Running","Error":"","ID":"a","Image":"i","Name":"st_scheduler.1","Node":"n1","Ports":""}
{"CurrentState":"Preparing 3 minutes ago","DesiredState":"Running","Error":"","ID":"b","Image":"i","Name":"st_worker-2.1","Node":"n2","Ports":""}
{"CurrentState":"Running 5 seconds ago","DesiredState":"Running","Error":"","ID":"c","Image":"i","Name":"st_ipy-worker-1.1","Node":"n2","Ports":""}
{"CurrentState":"Failed 9 seconds ago","DesiredState":"Shutdown","Error":"task: non-zero exit (1)","ID":"d","Image":"i","Name":" \\_ st_ipy-worker-1.1","Node":"n2","Ports":""}
{"CurrentState":"Failed 1 second ago","DesiredState":"Shutdown","Error":"task: non-zero exit (2)","ID":"e","Image":"i","Name":"st_worker-1.1","Node":"n3","Ports":""}
{"CurrentState":"Preparing 3 minutes ago","DesiredState":"Running","Error":"","ID":"f","Image":"i","Name":"st_tests.1","Node":"n1","Ports":""}
{"CurrentState":"Pending 1 second ago","DesiredState":"Running","Error":"","ID":"g","Image":"i","Name":"other_worker-1.1","Node":"","Ports":""}
not json
"#;

    #[test]
    fn services_whose_newest_task_is_not_running_are_named_with_state_and_error() {
        assert_eq!(
            not_running(PS, "st"),
            [
                "worker-2: Preparing 3 minutes ago",
                "worker-1: Failed 1 second ago (task: non-zero exit (2))",
                "tests: Preparing 3 minutes ago",
            ]
        );
        // An engine that failed once and runs again is running; another
        // stack's tasks are not this one's.
        assert_eq!(not_running(PS, "other"), ["worker-1: Pending 1 second ago"]);
        assert!(not_running("", "st").is_empty());
    }
}
