//! Containers: listed with the labels the harness reads, their logs, their
//! published ports, a command run inside one, and one-shot helper
//! containers (`docker run --rm`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Docker;
use crate::exec::{self, tail, QUERY};

/// A container as `docker ps` lists it, with its compose service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Container {
    #[serde(rename = "ID")]
    pub id: String,
    /// The compose service (`com.docker.compose.service`), or empty.
    #[serde(rename = "Service")]
    pub service: String,
    /// `running`, `exited`, `created`, …
    #[serde(rename = "State")]
    pub state: String,
    /// `Up 5 seconds`, `Exited (137) 2 seconds ago`
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "OneOff", deserialize_with = "truthy")]
    pub oneoff: bool,
}

fn truthy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.eq_ignore_ascii_case("true"))
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == "running"
    }

    /// `Exited (137) 5 seconds ago` -> 137.
    pub fn exit_code(&self) -> Option<i64> {
        let rest = self.status.strip_prefix("Exited (")?;
        rest[..rest.find(')')?].parse().ok()
    }
}

/// What `docker inspect` says of a container's state (see [`Docker::inspect_states`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Inspected {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Service")]
    pub service: Option<String>,
    #[serde(rename = "OneOff")]
    pub oneoff: Option<String>,
    #[serde(rename = "RestartCount")]
    pub restarts: u32,
    #[serde(rename = "State")]
    pub state: InspectedState,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InspectedState {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(rename = "StartedAt")]
    pub started_at: String,
    #[serde(rename = "FinishedAt")]
    pub finished_at: String,
}

impl InspectedState {
    /// Docker's dates as Unix seconds; its zero date (`0001-01-01T...`) is none.
    pub fn started(&self) -> Option<f64> {
        crate::clock::rfc3339_secs(&self.started_at).filter(|t| *t > 0.0)
    }

    pub fn ended(&self) -> Option<f64> {
        crate::clock::rfc3339_secs(&self.finished_at).filter(|t| *t > 0.0)
    }
}

const INSPECT_FORMAT: &str = r#"{"Id":{{json .Id}},"Service":{{json (index .Config.Labels "com.docker.compose.service")}},"OneOff":{{json (index .Config.Labels "com.docker.compose.oneoff")}},"RestartCount":{{.RestartCount}},"State":{{json .State}}}"#;

/// The fields of [`Container`], each printed as JSON by Docker's template.
const PS_FORMAT: &str = r#"{"ID":{{json .ID}},"Service":{{json (.Label "com.docker.compose.service")}},"State":{{json .State}},"Status":{{json .Status}},"OneOff":{{json (.Label "com.docker.compose.oneoff")}}}"#;

/// A container or network of a cluster of the harness's: which cluster
/// (compose project or stack) and checkout, and for a container its state,
/// image and the volumes it mounts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterObject {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Project")]
    pub project: String,
    #[serde(rename = "Stack")]
    pub stack: String,
    #[serde(rename = "Checkout")]
    pub checkout: String,
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "Image", default)]
    pub image: String,
    /// `a,b` (volume names and bind paths).
    #[serde(rename = "Mounts", default)]
    pub mounts: String,
}

impl ClusterObject {
    /// Its compose project or stack.
    pub fn cluster(&self) -> &str {
        if self.project.is_empty() {
            &self.stack
        } else {
            &self.project
        }
    }
}

const CLUSTER_LABELS: &str = r#""Project":{{json (.Label "com.docker.compose.project")}},"Stack":{{json (.Label "com.docker.stack.namespace")}},"Checkout":{{json (.Label "org.libertem.dist-test.checkout")}}"#;

/// A helper container run once and removed: no network unless `online`
/// (the runtime's install from PyPI), as `user`, with `volumes`
/// (`name:/path` or `/host:/path:ro`), `env` (`K=V`), `labels` on it so
/// that a run that took over from a dead one can find and stop it.
#[derive(Default, Clone)]
pub struct OneShot<'s> {
    /// A container name: only one container of that name can exist on the
    /// engine, which makes the name a lock across checkouts.
    pub name: Option<&'s str>,
    pub image: &'s str,
    pub user: &'s str,
    pub volumes: Vec<String>,
    pub env: Vec<String>,
    pub labels: Vec<String>,
    pub command: Vec<String>,
    pub online: bool,
    /// Its input is ours (`--interactive`): a stream piped into it.
    pub interactive: bool,
    /// A network of the engine's to join (a cluster's the user runs), in
    /// place of none or the default one.
    pub network: Option<&'s str>,
    /// Its working folder.
    pub workdir: Option<&'s str>,
}

impl OneShot<'_> {
    fn args(&self) -> Vec<&str> {
        let mut args = vec!["run", "--rm"];
        if self.interactive {
            args.push("--interactive");
        }
        if let Some(name) = self.name {
            args.extend(["--name", name]);
        }
        match (self.network, self.online) {
            (Some(network), _) => args.extend(["--network", network]),
            (None, false) => args.extend(["--network", "none"]),
            (None, true) => {}
        }
        if let Some(dir) = self.workdir {
            args.extend(["--workdir", dir]);
        }
        args.extend(["--user", self.user]);
        for v in &self.volumes {
            args.extend(["--volume", v]);
        }
        for e in &self.env {
            args.extend(["--env", e]);
        }
        for l in &self.labels {
            args.extend(["--label", l]);
        }
        args.push(self.image);
        args.extend(self.command.iter().map(String::as_str));
        args
    }
}

impl Docker<'_> {
    /// Every container matching `filters` (`label=…`), stopped ones too.
    pub fn containers(&self, filters: &[String]) -> Result<Vec<Container>> {
        let mut args = vec!["ps", "--all", "--no-trunc", "--format", PS_FORMAT];
        for f in filters {
            args.extend(["--filter", f]);
        }
        self.rows(&args).context("listing containers")
    }

    /// The containers and networks labelled with `label` (a key), each with
    /// its cluster and checkout.
    pub fn cluster_objects(&self, label: &str) -> Result<Vec<ClusterObject>> {
        let filter = format!("label={label}");
        let ps = format!(
            r#"{{"ID":{{{{json .ID}}}},{CLUSTER_LABELS},"State":{{{{json .State}}}},"Image":{{{{json .Image}}}},"Mounts":{{{{json .Mounts}}}}}}"#
        );
        let mut rows: Vec<ClusterObject> = self
            .rows(&[
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                &ps,
            ])
            .context("listing containers")?;
        let net = format!(r#"{{"ID":{{{{json .Name}}}},{CLUSTER_LABELS}}}"#);
        rows.extend(
            self.rows::<ClusterObject>(&["network", "ls", "--filter", &filter, "--format", &net])
                .context("listing networks")?,
        );
        Ok(rows)
    }

    /// The last `n` lines a container wrote, both streams.
    pub fn last_lines(&self, id: &str, n: usize) -> String {
        let n_s = n.to_string();
        match exec::output(self.cmd(&["logs", "--tail", &n_s, id]), QUERY, self.ui) {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                tail(&text, n)
            }
            Err(e) => format!("(no logs: {e:#})"),
        }
    }

    /// Each container's whole log (`--timestamps`) into its file, all at
    /// once; how many were saved.
    pub fn save_logs(&self, logs: &[(String, PathBuf)]) -> Result<usize> {
        let commands = logs
            .iter()
            .map(|(id, path)| (self.command(&["logs", "--timestamps", id]), path.clone()))
            .collect();
        exec::run_all_to_files(commands, QUERY)
    }

    /// Host addresses of a container's published ports, as
    /// `8786/tcp -> 127.0.0.1:49153`.
    pub fn published_ports(&self, id: &str) -> Result<Vec<String>> {
        let out = self
            .read(&["port", id])
            .context("reading published ports")?;
        Ok(out.lines().map(String::from).collect())
    }

    /// The state of each container of `ids` (one `docker inspect`).
    pub fn inspect_states(&self, ids: &[String]) -> Result<Vec<Inspected>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["container", "inspect", "--format", INSPECT_FORMAT];
        args.extend(ids.iter().map(String::as_str));
        self.rows(&args)
    }

    /// `docker exec ID COMMAND...` as a command, for a caller that runs
    /// several at once ([`exec::run_all_to_files`]).
    pub fn exec_command(&self, id: &str, command: &[&str]) -> std::process::Command {
        let mut args = vec!["exec", id];
        args.extend(command);
        self.command(&args)
    }

    /// Run `command` in container `id`; its output.
    pub fn exec_read(&self, id: &str, command: &[&str]) -> Result<String> {
        let mut args = vec!["exec", id];
        args.extend(command);
        self.read(&args)
    }

    /// Run `command` in container `id` with `input` on its standard input;
    /// its output.
    pub fn exec_fed(&self, id: &str, command: &[&str], input: &[u8]) -> Result<String> {
        let mut args = vec!["exec", "--interactive", id];
        args.extend(command);
        exec::read_fed(self.cmd(&args), input, QUERY, self.ui)
    }

    /// Run `command` in container `id` with our pipe as its input and its
    /// output lines read as they come: it sees its input end when the
    /// returned [`exec::Lines`] is dropped.
    pub fn exec_lines(&self, id: &str, command: &[&str]) -> Result<exec::Lines> {
        let mut args = vec!["exec", "--interactive", id];
        args.extend(command);
        exec::start_lines(self.command(&args), self.ui)
    }

    /// Start `command` in container `id` in the background (working in
    /// `dir`, with `env` as `K=V`), its output to `log`, tethered to its
    /// input (see [`exec::start_logged_tethered`]).
    pub fn exec_logged(
        &self,
        id: &str,
        (dir, env): (&str, &[String]),
        command: &[String],
        log: &Path,
    ) -> Result<exec::Background> {
        let mut args = vec!["exec", "--interactive", "--workdir", dir];
        for e in env {
            args.extend(["--env", e]);
        }
        args.push(id);
        args.extend(command.iter().map(String::as_str));
        exec::start_logged_tethered(self.command(&args), log, self.ui)
    }

    /// Whether a container of this id or name exists, whatever its state.
    pub fn container_exists(&self, name: &str) -> bool {
        self.succeeds(&["container", "inspect", "--format", "{{.Id}}", name])
    }

    /// Block until the container has stopped (at once when it is gone).
    pub fn wait_for_exit(&self, name: &str, limit: Duration) {
        let _ = exec::read(self.cmd(&["wait", name]), limit, self.ui);
    }

    /// Stop and remove containers at once.
    pub fn rm_force(&self, ids: &[String]) -> bool {
        if ids.is_empty() {
            return true;
        }
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(ids.iter().map(String::as_str));
        self.succeeds(&args)
    }

    /// A one-shot container as a command to start, for a caller that pipes
    /// one into another ([`exec::pipe`]).
    pub fn one_shot_command(&self, one: &OneShot) -> std::process::Command {
        self.command(&one.args())
    }

    /// Run a one-shot container to its end within `limit`: its output
    /// into `log` when given, else returned.
    pub fn one_shot(&self, one: &OneShot, log: Option<&Path>, limit: Duration) -> Result<String> {
        let args = one.args();
        match log {
            Some(log) => exec::run_logged(self.command(&args), log, self.ui.verbose, limit)
                .map(|()| String::new()),
            None => exec::read(self.cmd(&args), limit, self.ui),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_read_with_their_service_and_kind() {
        let out = r#"{"ID":"abc","Service":"scheduler","State":"running","Status":"Up 5 seconds","OneOff":"False"}
{"ID":"def","Service":"tests","State":"exited","Status":"Exited (1) 2 seconds ago","OneOff":"True"}
"#;
        let c: Vec<Container> = super::super::parse_rows(out).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].running() && !c[0].oneoff);
        assert!(c[1].oneoff);
        assert_eq!(c[1].exit_code(), Some(1));
        assert_eq!(c[0].exit_code(), None);
    }

    #[test]
    fn a_one_shot_is_closed_and_labelled() {
        let one = OneShot {
            image: "img",
            user: "0",
            volumes: vec!["v:/target".into()],
            labels: vec!["k=v".into()],
            command: vec!["cp".into(), "-a".into()],
            ..Default::default()
        };
        assert_eq!(
            one.args().join(" "),
            "run --rm --network none --user 0 --volume v:/target --label k=v img cp -a"
        );
    }
}
