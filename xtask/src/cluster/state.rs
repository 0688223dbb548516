//! The saved state of the checkout's kept cluster: what `up` started, so
//! that `status`, `logs`, `test` and `down` address the same cluster, on
//! the same backend, with the same image, volumes and mounts. Owned by the
//! kept cluster's lock (`up`, `test` and `down` hold it).

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cluster::spec::{Backend, Image, Size};
use crate::fsx;
use crate::testdata::TestData;
use crate::workspace::Workspace;

/// The version of the state file's layout; another version is not read.
pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub schema: u32,
    /// The project the cluster runs (its source is mounted at `/src`).
    pub project: PathBuf,
    /// The compose project or stack.
    pub name: String,
    pub size: Size,
    #[serde(default)]
    pub publish: bool,
    pub image: Image,
    /// The Python the image runs (absent in states saved before it was).
    #[serde(default)]
    pub python: Option<String>,
    /// The detector data mounted at `/data` (`test` mounts the same).
    pub data: TestData,
    /// What its backend made for it (volumes, or the swarm's nodes).
    pub backend: Backend,
}

impl ClusterState {
    /// `target/dist-test/cluster/state.json`
    pub fn path(ws: &Workspace) -> PathBuf {
        ws.cluster_dir().join("state.json")
    }

    pub fn save(&self, ws: &Workspace) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("serialising the cluster state")?;
        fsx::write_atomic(&Self::path(ws), (text + "\n").as_bytes())
    }

    /// The state `up` saved; `None` when no cluster was started (or it was
    /// taken down).
    pub fn load(ws: &Workspace) -> Result<Option<ClusterState>> {
        Self::load_in(&ws.target)
    }

    /// The state under `target` (a checkout's `target/dist-test`).
    pub fn load_in(target: &std::path::Path) -> Result<Option<ClusterState>> {
        let path = target.join("cluster").join("state.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::parse(&text).map(Some).with_context(|| {
            format!(
                "{} is not a cluster state this xtask can read: run `cargo xtask down` \
                 (which removes it), then `cargo xtask up`",
                path.display()
            )
        })
    }

    fn parse(text: &str) -> Result<ClusterState> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let schema = v.get("schema").and_then(|s| s.as_u64());
        if schema != Some(u64::from(SCHEMA)) {
            bail!(
                "schema {}, expected {SCHEMA}",
                schema.map_or("none".into(), |s| s.to_string())
            );
        }
        Ok(serde_json::from_value(v)?)
    }

    /// After `down`: nothing is running any more.
    pub fn remove(ws: &Workspace) -> Result<()> {
        fsx::remove_file(&Self::path(ws))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(backend: Backend) -> ClusterState {
        ClusterState {
            schema: SCHEMA,
            project: "/src/LiberTEM".into(),
            name: "ltdist-x-0123abcd".into(),
            size: Size {
                workers: 1,
                engines: 3,
                worker_cpus: 2,
            },
            publish: true,
            python: Some("3.14".into()),
            image: Image {
                id: "sha256:0123".into(),
                tag: "ltdist-x-0123abcd:p0123".into(),
                runtime: "ltdist-x-runtime-0123".into(),
                preload: vec!["numpy".into()],
            },
            data: TestData {
                source: crate::testdata::Source::Generated,
                path: "/x/target/dist-test/testdata/0123456789ab".into(),
            },
            backend,
        }
    }

    #[test]
    fn both_backends_round_trip_everything_later_commands_need() {
        for backend in [
            Backend::Compose {
                runtime: "v-venv".into(),
                numba: "v-numba".into(),
            },
            Backend::Swarm {
                nodes: vec!["m".into(), "a".into()],
                ipython: "/x/cluster/ipython".into(),
                temp: "/shared/x/temp_data".into(),
                data: Some("/shared/x/data".into()),
            },
        ] {
            let s = state(backend);
            let text = serde_json::to_string_pretty(&s).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["schema"], 2);
            assert_eq!(v["publish"], true);
            assert_eq!(v["size"]["engines"], 3);
            assert_eq!(v["data"]["source"], "generated");
            assert_eq!(ClusterState::parse(&text).unwrap(), s);
        }
    }

    #[test]
    fn another_schema_or_garbage_is_an_error() {
        let text = serde_json::to_string(&state(Backend::Compose {
            runtime: "r".into(),
            numba: "n".into(),
        }))
        .unwrap()
        .replace("\"schema\":2", "\"schema\":1");
        let err = format!("{:#}", ClusterState::parse(&text).unwrap_err());
        assert!(err.contains("schema 1"), "{err}");
        assert!(ClusterState::parse("2 2\n").is_err());
    }
}
