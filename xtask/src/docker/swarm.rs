//! Docker Swarm, as its manager answers: the swarm and its nodes, stacks
//! and their services and tasks, and (for the test swarm) making one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Docker;
use crate::exec::{self, QUERY};

/// What `docker info` says of the engine's swarm.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(default)]
    pub local_node_state: String,
    #[serde(default)]
    pub control_available: bool,
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    #[serde(default)]
    cluster: Option<ClusterInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ClusterInfo {
    spec: Option<serde_json::Value>,
}

impl SwarmInfo {
    /// This engine is an active manager of its swarm.
    pub fn is_manager(&self) -> bool {
        self.local_node_state == "active" && self.control_available
    }

    /// The dispatcher's heartbeat period, when the manager says.
    pub fn heartbeat(&self) -> Option<Duration> {
        let ns = self.cluster.as_ref()?.spec.as_ref()?;
        let ns = ns.pointer("/Dispatcher/HeartbeatPeriod")?.as_u64()?;
        (ns > 0).then(|| Duration::from_nanos(ns))
    }
}

/// A line of `docker node ls --format '{{json .}}'`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeRow {
    #[serde(rename = "ID")]
    pub id: String,
    pub status: String,
    pub availability: String,
    #[serde(rename = "Self", default)]
    pub is_self: bool,
}

/// A line of `docker stack ps` / `docker service ps --format '{{json .}}'`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskRow {
    #[serde(rename = "ID")]
    pub id: String,
    /// `stack_service.1`, or ` \_ stack_service.1` for an older task of the slot.
    pub name: String,
    pub current_state: String,
    #[serde(default)]
    pub error: String,
}

impl TaskRow {
    /// The first word of its state: `Running`, `Complete`, `Failed`, …
    pub fn state_word(&self) -> &str {
        self.current_state.split_whitespace().next().unwrap_or("")
    }

    /// Whether the task has ended, one way or another.
    pub fn ended(&self) -> bool {
        ["Complete", "Failed", "Rejected", "Shutdown", "Orphaned"].contains(&self.state_word())
    }
}

/// What the manager knows of one task: its node and its container's end.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskDetail {
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    #[serde(rename = "ExitCode", default)]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceRow {
    name: String,
    replicas: String,
}

impl Docker<'_> {
    /// What this engine knows of its swarm (nothing, if it is in none).
    pub fn swarm_info(&self) -> SwarmInfo {
        self.read(&["info", "--format", "{{json .Swarm}}"])
            .ok()
            .and_then(|out| serde_json::from_str(out.trim()).ok())
            .unwrap_or_default()
    }

    pub fn nodes(&self) -> Result<Vec<NodeRow>> {
        self.rows(&["node", "ls", "--format", "{{json .}}"])
            .context("listing the swarm's nodes")
    }

    /// The node's address as the manager knows it.
    pub fn node_addr(&self, id: &str) -> String {
        self.read(&["node", "inspect", "--format", "{{.Status.Addr}}", id])
            .map(|a| a.trim().to_string())
            .unwrap_or_default()
    }

    pub fn stack_deploy(&self, file: &Path, name: &str) -> Result<()> {
        let file = file.to_string_lossy();
        self.run(&[
            "stack",
            "deploy",
            "--prune",
            "--resolve-image",
            "never",
            "--compose-file",
            &file,
            name,
        ])
        .context("deploying the stack")
    }

    pub fn stack_rm(&self, name: &str) -> Result<()> {
        self.run(&["stack", "rm", name])
            .context("removing the stack")
    }

    /// Every task of the stack, each service's newest first.
    pub fn stack_tasks(&self, name: &str) -> Vec<TaskRow> {
        self.rows(&["stack", "ps", "--no-trunc", "--format", "{{json .}}", name])
            .unwrap_or_default()
    }

    /// The tasks of one service, newest first.
    pub fn service_tasks(&self, service: &str) -> Vec<TaskRow> {
        self.rows(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{json .}}",
            service,
        ])
        .unwrap_or_default()
    }

    pub fn task_detail(&self, task: &str) -> Option<TaskDetail> {
        let format = r#"{"NodeID":{{json .NodeID}},"ExitCode":{{with .Status.ContainerStatus}}{{json .ExitCode}}{{else}}null{{end}}}"#;
        let out = self.read(&["inspect", "--format", format, task]).ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    /// Each service matching `filter` with its replicas as Docker shows
    /// them (`1/1`).
    pub fn service_replicas(&self, filter: &str) -> Vec<(String, String)> {
        self.rows::<ServiceRow>(&[
            "service",
            "ls",
            "--filter",
            filter,
            "--format",
            "{{json .}}",
        ])
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, s.replicas))
        .collect()
    }

    /// Whether any service or network still matches `filter`.
    pub fn swarm_objects_left(&self, filter: &str) -> bool {
        let left = |args: &[&str]| {
            self.read(args)
                .map(|out| !out.trim().is_empty())
                .unwrap_or(true)
        };
        left(&["service", "ls", "--quiet", "--filter", filter])
            || left(&["network", "ls", "--quiet", "--filter", filter])
    }

    pub fn service_rm(&self, service: &str) -> Result<()> {
        self.run(&["service", "rm", service])
            .with_context(|| format!("removing the service {service}"))
    }

    /// A service's log, both streams as they came.
    pub fn service_log(&self, service: &str) -> String {
        exec::output(
            self.cmd(&["service", "logs", "--raw", service]),
            QUERY,
            self.ui,
        )
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text
        })
        .unwrap_or_default()
    }

    /// Each service's log into its file, both streams, all at once.
    pub fn save_service_logs(&self, logs: &[(String, PathBuf)], timestamps: bool) -> Result<usize> {
        let commands = logs
            .iter()
            .map(|(svc, path)| {
                let mut args = vec!["service", "logs", "--raw"];
                if timestamps {
                    args.push("--timestamps");
                }
                args.push(svc);
                (self.command(&args), path.clone())
            })
            .collect();
        exec::run_all_to_files(commands, QUERY)
    }

    /// `docker service logs --timestamps [--follow] SERVICE`, for the terminal.
    pub fn service_logs_command(&self, service: &str, follow: bool) -> Command {
        let mut args = vec!["service", "logs", "--timestamps"];
        if follow {
            args.push("--follow");
        }
        args.push(service);
        self.command(&args)
    }

    pub fn swarm_init(&self, addr: &str, listen: &str) -> Result<()> {
        self.run(&[
            "swarm",
            "init",
            "--advertise-addr",
            addr,
            "--listen-addr",
            listen,
        ])
    }

    pub fn swarm_join_token(&self) -> Result<String> {
        Ok(self
            .read(&["swarm", "join-token", "--quiet", "worker"])?
            .trim()
            .to_string())
    }

    pub fn swarm_join(&self, token: &str, addr: &str, manager: &str) -> Result<()> {
        self.run(&[
            "swarm",
            "join",
            "--token",
            token,
            "--advertise-addr",
            addr,
            manager,
        ])
    }

    pub fn swarm_leave(&self) -> bool {
        self.succeeds(&["swarm", "leave", "--force"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_rows_read_as_docker_prints_them() {
        let info: SwarmInfo = serde_json::from_str(
            r#"{"NodeID":"n1","LocalNodeState":"active","ControlAvailable":true,"Cluster":{"Spec":{"Dispatcher":{"HeartbeatPeriod":5000000000}}}}"#,
        )
        .unwrap();
        assert!(info.is_manager());
        assert_eq!(info.heartbeat(), Some(Duration::from_secs(5)));
        let worker: SwarmInfo = serde_json::from_str(
            r#"{"NodeID":"","LocalNodeState":"inactive","ControlAvailable":false}"#,
        )
        .unwrap();
        assert!(!worker.is_manager());
        assert_eq!(worker.heartbeat(), None);
        let nodes: Vec<NodeRow> = super::super::parse_rows(
            r#"{"Availability":"Active","EngineVersion":"20.10.24","Hostname":"h","ID":"a","ManagerStatus":"Leader","Self":true,"Status":"Ready","TLSStatus":"Ready"}"#,
        )
        .unwrap();
        assert!(nodes[0].is_self && nodes[0].status == "Ready");
        let t: TaskDetail = serde_json::from_str(r#"{"NodeID":"n2","ExitCode":null}"#).unwrap();
        assert_eq!((t.node_id.as_str(), t.exit_code), ("n2", None));
    }
}
