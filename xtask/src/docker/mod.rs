//! The one module that speaks to the docker CLI: every `docker …` command
//! of the crate is built here and its output read here, as JSON through
//! serde wherever Docker can print it (`--format '{{json .}}'`, `inspect`).
//! Everything runs through `exec`, each wait bounded. Compose, the other
//! CLI of Docker's, has its submodule ([`compose`]); what a command means
//! for the cluster is the caller's business.

pub mod compose;
mod containers;
mod detect;
mod disk;
mod images;
mod swarm;
mod volumes;

pub use containers::{ClusterObject, Container, OneShot};
pub use detect::{client_has_native_buildkit, compose_flavour, find_clients};
pub use disk::{human, CacheEntry, DfImage, DfVolume, DiskUse};
pub use images::ImageRow;
pub use swarm::{NodeRow, SwarmInfo, TaskRow};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use xshell::{cmd, Cmd, Shell};

use crate::exec::{self, QUERY};
use crate::ui::Ui;

/// The first 12 hex digits of an image id.
pub fn short_id(id: &str) -> &str {
    let id = id.trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}

/// The docker clients to use, as found on this machine (see [`find_clients`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clients {
    /// The client for everything but builds: the first `docker` on PATH.
    pub cli: PathBuf,
    /// The client that builds with BuildKit (buildx, or a pre-23 client with
    /// BuildKit built in). `None`: only the legacy builder is available.
    pub builder: Option<PathBuf>,
}

impl Clients {
    pub fn builder(&self) -> Result<&Path> {
        self.builder.as_deref().context(
            "no docker client here can build with BuildKit: install the buildx plugin \
             (docker-buildx-plugin) for your docker client",
        )
    }
}

/// The docker CLI, pointed at one engine: `DOCKER_HOST`'s (the default),
/// another one's (`-H`, a swarm node's), or the host's own (`DOCKER_HOST`
/// removed, where the swarm lab runs).
#[derive(Clone)]
pub struct Docker<'a> {
    sh: &'a Shell,
    pub clients: Clients,
    ui: Ui,
    engine: Engine,
}

#[derive(Debug, Clone, PartialEq)]
enum Engine {
    Default,
    Host(String),
    Local,
}

impl<'a> Docker<'a> {
    pub fn new(sh: &'a Shell, clients: Clients, ui: Ui) -> Docker<'a> {
        Docker {
            sh,
            clients,
            ui,
            engine: Engine::Default,
        }
    }

    /// The same CLI for the engine at `host` (`unix://…`, `ssh://…`, `tcp://…`).
    pub fn on(&self, host: &str) -> Docker<'a> {
        Docker {
            engine: Engine::Host(host.to_string()),
            ..self.clone()
        }
    }

    /// The same CLI for this machine's own engine, whatever `DOCKER_HOST` says.
    pub fn local(&self) -> Docker<'a> {
        Docker {
            engine: Engine::Local,
            ..self.clone()
        }
    }

    /// The shell commands are built with (for compose's, which go beside these).
    pub fn shell(&self) -> &'a Shell {
        self.sh
    }

    pub fn ui(&self) -> Ui {
        self.ui
    }

    pub fn cli(&self) -> &Path {
        &self.clients.cli
    }

    /// `docker [-H HOST] ARGS...`
    fn cmd(&self, args: &[&str]) -> Cmd<'a> {
        let docker = &self.clients.cli;
        let host: Vec<&str> = match &self.engine {
            Engine::Host(h) => vec!["-H", h],
            _ => vec![],
        };
        let c = cmd!(self.sh, "{docker} {host...} {args...}");
        match self.engine {
            Engine::Local => c.env_remove("DOCKER_HOST"),
            _ => c,
        }
    }

    /// A command for `exec`'s other runners (logs to files, pipes, lines).
    fn command(&self, args: &[&str]) -> Command {
        self.cmd(args).into()
    }

    fn read(&self, args: &[&str]) -> Result<String> {
        exec::read(self.cmd(args), QUERY, self.ui)
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        exec::run(self.cmd(args), QUERY, self.ui)
    }

    fn succeeds(&self, args: &[&str]) -> bool {
        exec::succeeds(self.cmd(args), QUERY, self.ui)
    }

    /// Rows of `--format '{{json .}}'`-style output, one JSON object a line.
    fn rows<T: DeserializeOwned>(&self, args: &[&str]) -> Result<Vec<T>> {
        let out = self.read(args)?;
        parse_rows(&out).with_context(|| format!("reading `docker {}`", args.join(" ")))
    }

    /// Whether the engine answers; one line with the fix when not.
    pub fn check_engine(&self) -> Result<()> {
        match self.server_version() {
            Some(_) => Ok(()),
            None => bail!(
                "the Docker engine is not reachable from {}: start it (e.g. `sudo systemctl \
                 start docker`) or check DOCKER_HOST and your permission on the socket",
                self.clients.cli.display()
            ),
        }
    }

    /// `20.10.24+dfsg1 (linux/amd64)`, when the engine answers.
    pub fn server_version(&self) -> Option<String> {
        let format = "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})";
        let v = self.read(&["version", "--format", format]).ok()?;
        let v = v.trim();
        (!v.is_empty() && !v.starts_with(' ')).then(|| v.to_string())
    }

    /// A builder command: `docker [buildx --builder B] build ARGS...` with
    /// BuildKit on, for the image module to run with its own log and bound.
    pub fn build_command(&self, buildx: &[String], args: &[String]) -> Result<Command> {
        let builder = self.clients.builder()?;
        let c = cmd!(self.sh, "{builder} {buildx...} build {args...}").env("DOCKER_BUILDKIT", "1");
        Ok(c.into())
    }
}

/// One JSON object per line; blank lines skipped.
pub fn parse_rows<T: DeserializeOwned>(out: &str) -> Result<Vec<T>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("an unexpected line {l:?}")))
        .collect()
}

/// `a=b,c=d` as `docker … --format '{{json .}}'` prints labels.
pub fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `label=KEY=VALUE`, a filter for listings.
pub fn label_filter(key: &str, value: &str) -> String {
    format!("label={key}={value}")
}

/// How long a long step may take before it is stopped: a build, an image
/// copied to a node, a runtime copied into a volume.
pub const LONG: Duration = Duration::from_secs(1800);

/// A one-shot container that does little (a folder made, a Python asked
/// its version): starting it is most of its time.
pub const QUERY_LONG: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_labels_read_as_docker_prints_them() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Row {
            #[serde(rename = "ID")]
            id: String,
        }
        let rows: Vec<Row> = parse_rows("{\"ID\":\"a\",\"X\":1}\n\n{\"ID\":\"b\"}\n").unwrap();
        assert_eq!(rows, [Row { id: "a".into() }, Row { id: "b".into() }]);
        assert!(parse_rows::<Row>("not json").is_err());
        let l = parse_labels("a=1,b=x=y");
        assert_eq!(l["a"], "1");
        assert_eq!(l["b"], "x=y");
    }

    #[test]
    fn commands_point_at_the_engine_asked_for() {
        let sh = Shell::new().unwrap();
        let clients = Clients {
            cli: "/usr/bin/docker".into(),
            builder: None,
        };
        let d = Docker::new(&sh, clients, Ui::default());
        assert_eq!(d.cmd(&["ps"]).to_string(), "/usr/bin/docker ps");
        assert_eq!(
            d.on("unix:///run/n/docker.sock")
                .cmd(&["ps", "-q"])
                .to_string(),
            "/usr/bin/docker -H unix:///run/n/docker.sock ps -q"
        );
        assert!(
            d.build_command(&[], &[]).is_err(),
            "no builder, one clear error"
        );
    }
}
