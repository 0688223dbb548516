//! The saved state of the checkout's long-lived cluster: what `up` started,
//! so that `status`, `logs`, `test` and `down` address the same compose
//! project with the same files (size, `--publish`) and know what it tests.

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cluster::Spec;
use crate::fsx::write_atomic;
use crate::testdata::TestData;
use crate::workspace::Workspace;

/// The version of the state file's layout; another version is not read.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub schema: u32,
    /// The project the cluster's image was built from.
    pub project: PathBuf,
    /// Compose project, size, `--publish` and the compose files used.
    #[serde(flatten)]
    pub spec: Spec,
    /// The detector data mounted at `/data` (`test` mounts the same).
    pub data: TestData,
    /// Set when `up --swarm` deployed the cluster as a stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmState>,
}

/// What `test`, `status`, `logs` and `down` need of a stack `up --swarm`
/// deployed: its name, the nodes it was spread over, and the shared folders
/// every service mounts (the same paths make the same service definitions,
/// so a redeploy for `test` leaves the running services alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmState {
    pub stack: String,
    pub nodes: Vec<String>,
    pub ipython: PathBuf,
    pub temp: PathBuf,
}

impl ClusterState {
    pub fn new(project: PathBuf, spec: Spec, data: TestData) -> ClusterState {
        ClusterState {
            schema: SCHEMA,
            project,
            spec,
            data,
            swarm: None,
        }
    }

    /// `target/dist-test/cluster/state.json`
    pub fn path(ws: &Workspace) -> PathBuf {
        ws.cluster_dir().join("state.json")
    }

    pub fn save(&self, ws: &Workspace) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("serialising the cluster state")?;
        write_atomic(&Self::path(ws), (text + "\n").as_bytes())
    }

    /// The state `up` saved; `None` when no cluster was started (or it was
    /// taken down).
    pub fn load(ws: &Workspace) -> Result<Option<ClusterState>> {
        let path = Self::path(ws);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::parse(&text).with_context(|| {
            format!(
                "{} is not a cluster state this xtask can read: run `cargo xtask down` \
                 (which removes it), then `cargo xtask up`",
                path.display()
            )
        })
    }

    fn parse(text: &str) -> Result<Option<ClusterState>> {
        let state: ClusterState = serde_json::from_str(text)?;
        if state.schema != SCHEMA {
            bail!("schema {}, expected {SCHEMA}", state.schema);
        }
        Ok(Some(state))
    }

    /// After `down`: nothing is running any more.
    pub fn remove(ws: &Workspace) -> Result<()> {
        let path = Self::path(ws);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Size;

    fn state() -> ClusterState {
        ClusterState::new(
            "/src/LiberTEM".into(),
            Spec {
                compose_project: "ltdist-x-0123abcd".into(),
                size: Size {
                    workers: 1,
                    engines: 3,
                    worker_cpus: 2,
                },
                publish: true,
                compose_files: vec![
                    "/x/packaging/docker/docker-compose.yml".into(),
                    "/x/target/dist-test/size-1x3.yml".into(),
                    "/x/packaging/docker/publish.yml".into(),
                ],
            },
            TestData {
                source: crate::testdata::Source::Generated,
                path: "/x/target/dist-test/testdata/0123456789ab".into(),
            },
        )
    }

    #[test]
    fn a_swarm_cluster_round_trips_and_older_files_read_as_compose() {
        let mut s = state();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("swarm"), "{text}");
        s.swarm = Some(SwarmState {
            stack: "ltdist-x-0123abcd".into(),
            nodes: vec!["m".into(), "a".into()],
            ipython: "/x/target/dist-test/cluster/ipython".into(),
            temp: "/x/target/dist-test/cluster/temp_data".into(),
        });
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(ClusterState::parse(&text).unwrap(), Some(s));
    }

    #[test]
    fn state_round_trips_everything_later_commands_need() {
        let s = state();
        let text = serde_json::to_string_pretty(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["publish"], true);
        assert_eq!(v["size"]["engines"], 3);
        assert_eq!(v["compose_project"], "ltdist-x-0123abcd");
        assert_eq!(v["project"], "/src/LiberTEM");
        assert_eq!(v["compose_files"].as_array().unwrap().len(), 3);
        assert_eq!(v["data"]["source"], "generated");
        assert_eq!(ClusterState::parse(&text).unwrap(), Some(s));
    }

    #[test]
    fn another_schema_or_garbage_is_an_error() {
        let text = serde_json::to_string(&state())
            .unwrap()
            .replace("\"schema\":1", "\"schema\":2");
        let err = format!("{:#}", ClusterState::parse(&text).unwrap_err());
        assert!(err.contains("schema 2"), "{err}");
        assert!(ClusterState::parse("2 2\n").is_err());
    }
}
