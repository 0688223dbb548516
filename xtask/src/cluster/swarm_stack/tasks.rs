//! What the manager knows of a deployed stack's tasks: where each service
//! is in its life, the node its task ran on, and the nodes that died under
//! them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::spec::{DeadService, Phase, ServiceState};
use crate::docker::{Docker, TaskRow};
use crate::interrupt;

/// Each service of `stack` (named without the stack's prefix) by its newest
/// task: running, starting (new, pending, preparing, …) or ended, with the
/// task's error if it has one. `docker stack ps` lists a service's newest
/// task first.
pub fn service_states(tasks: &[TaskRow], stack: &str) -> Vec<ServiceState> {
    let prefix = format!("{stack}_");
    let mut out: Vec<ServiceState> = Vec::new();
    for task in tasks {
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
        if out.iter().any(|s| s.service == service) {
            continue;
        }
        let phase = match task.state_word() {
            "Running" => Phase::Running,
            _ if task.ended() => Phase::Ended,
            _ => Phase::Starting,
        };
        let mut status = task.current_state.trim().to_string();
        if !task.error.trim().is_empty() {
            status.push_str(&format!(" ({})", task.error.trim()));
        }
        out.push(ServiceState {
            service: service.to_string(),
            phase,
            status,
            exit_code: None,
        });
    }
    out
}

/// The node each of `services` ran on (`<node id> <address>`): the newest
/// task that was given a node (a task waiting to be placed again, after its
/// node died, has none). Each node is looked up once.
pub fn nodes_of(docker: &Docker, stack: &str, services: &[String]) -> BTreeMap<String, String> {
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for s in services {
        let tasks = docker.service_tasks(&format!("{stack}_{s}"));
        let node = tasks.iter().find_map(|t| {
            let id = docker.task_detail(&t.id)?.node_id;
            (!id.is_empty()).then_some(id)
        });
        if let Some(node) = node {
            let name = named
                .entry(node.clone())
                .or_insert_with(|| format!("{node} {}", docker.node_addr(&node)))
                .clone();
            nodes.insert(s.clone(), name);
        }
    }
    nodes
}

/// Nodes of the swarm that are not Ready now (`<node id> <address>`), and
/// which services ran on them (from `nodes`, what [`nodes_of`] found).
pub fn dead_nodes(
    docker: &Docker,
    nodes: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<DeadService>) {
    let mut dead_nodes = Vec::new();
    let mut dead_services = Vec::new();
    for node in docker.nodes().unwrap_or_default() {
        if node.status == "Ready" {
            continue;
        }
        let named = format!("{} {}", node.id, docker.node_addr(&node.id));
        for (service, on) in nodes {
            if on.split_whitespace().next() == Some(node.id.as_str()) {
                dead_services.push(DeadService {
                    service: service.clone(),
                    state: format!("its node {named} is {}", node.status),
                    exit_code: None,
                    last_lines: String::new(),
                    oom_killed: false,
                    ended: None,
                    pass: None,
                });
            }
        }
        dead_nodes.push(named);
    }
    (dead_nodes, dead_services)
}

/// [`dead_nodes`], once the manager has had time to notice: it calls a node
/// Down only after the node has missed its heartbeats for three heartbeat
/// periods, and a run whose node died fails sooner than that. So after a
/// failed run the node states are read again until one is not Ready or that
/// window has passed; a run that passed reads them once.
pub fn dead_nodes_settled(
    docker: &Docker,
    nodes: &BTreeMap<String, String>,
    failed: bool,
) -> (Vec<String>, Vec<DeadService>) {
    let window = if failed {
        let beat = docker
            .swarm_info()
            .heartbeat()
            .unwrap_or(Duration::from_secs(5));
        beat * 3 + Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + window;
    loop {
        let found = dead_nodes(docker, nodes);
        if !found.0.is_empty() || Instant::now() >= deadline || interrupt::interrupted() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(500));
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
{"CurrentState":"Pending 1 second ago","DesiredState":"Running","Error":"","ID":"g","Image":"i","Name":"other_worker-1.1","Node":"","Ports":""}
"#;

    #[test]
    fn each_service_by_its_newest_task() {
        let tasks: Vec<TaskRow> = crate::docker::parse_rows(PS).unwrap();
        let s = service_states(&tasks, "st");
        let seen: Vec<(&str, Phase, &str)> = s
            .iter()
            .map(|s| (s.service.as_str(), s.phase, s.status.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("scheduler", Phase::Running, "Running 20 seconds ago"),
                ("worker-2", Phase::Starting, "Preparing 3 minutes ago"),
                ("ipy-worker-1", Phase::Running, "Running 5 seconds ago"),
                (
                    "worker-1",
                    Phase::Ended,
                    "Failed 1 second ago (task: non-zero exit (2))"
                ),
            ]
        );
        let other = service_states(&tasks, "other");
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].phase, Phase::Starting);
    }
}
