//! What the engine says of a compose cluster's containers: each one's
//! phase for `status` and readiness, and at a run's end the dead ones and
//! every one's state (`docker inspect`: exit code, OOM, restarts, times).

use crate::cluster::spec::{ContainerState, DeadService, Phase, ServiceState};
use crate::docker::{Container, Docker};

pub(super) fn service_state(c: &Container) -> ServiceState {
    let phase = match c.state.as_str() {
        "running" => Phase::Running,
        "created" | "restarting" => Phase::Starting,
        _ => Phase::Ended,
    };
    ServiceState {
        service: c.service.clone(),
        phase,
        status: format!("{} ({})", c.state, c.status),
        exit_code: c.exit_code(),
    }
}

/// The services that are not running, and every container's state.
pub(super) fn dead_and_states(
    docker: &Docker,
    containers: &[Container],
) -> (Vec<DeadService>, Vec<ContainerState>) {
    let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
    let states = match docker.inspect_states(&ids) {
        Ok(states) => states,
        Err(e) => {
            eprintln!("warning: inspecting the cluster's containers: {e:#}");
            Vec::new()
        }
    };
    let state_of = |id: &str| {
        states
            .iter()
            .find(|s| s.id.starts_with(id) || id.starts_with(&s.id))
    };
    let dead = containers
        .iter()
        .filter(|c| !c.oneoff && !c.running())
        .map(|c| {
            let s = state_of(&c.id);
            DeadService {
                service: c.service.clone(),
                state: c.status.clone(),
                exit_code: c.exit_code().or(s.map(|s| s.state.exit_code)),
                last_lines: docker.last_lines(&c.id, 20),
                oom_killed: s.is_some_and(|s| s.state.oom_killed),
                ended: s.and_then(|s| s.state.ended()),
                pass: None,
            }
        })
        .collect();
    let states = containers
        .iter()
        .filter_map(|c| {
            let s = state_of(&c.id)?;
            Some(ContainerState {
                service: c.service.clone(),
                container: crate::docker::short_id(&s.id).to_string(),
                status: s.state.status.clone(),
                exit_code: (s.state.status != "running").then_some(s.state.exit_code),
                oom_killed: s.state.oom_killed,
                restarts: s.restarts,
                started: s.state.started(),
                ended: s.state.ended(),
            })
        })
        .collect();
    (dead, states)
}
