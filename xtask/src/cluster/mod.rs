//! The cluster, whatever runs it: what it is ([`Definition`], [`Size`]),
//! the operations the flow needs of it ([`Cluster`]), and the choice of
//! backend, the one place that knows there are two:
//!
//! - [`compose_cluster`]: the services as a compose project on this engine;
//! - [`swarm_stack`]: the same services as a stack on the Docker Swarm
//!   whose manager `DOCKER_HOST` points at, workers and engines spread over
//!   its nodes.
//!
//! When a cluster is ready is decided once, for both, in [`readiness`].

pub mod compose_cluster;
pub mod freshness;
mod pytest;
pub mod readiness;
pub mod swarm_stack;

pub use pytest::{
    pytest_command, pytest_command_naming, PytestTimes, TestSpan, Timeline, PYTEST_CACHE,
    TIMELINE_FILE,
};
pub use readiness::{wait_ready, Observation, Readiness, ServiceSpan, Verdict};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::checkout::kept::ClusterState;
use crate::config::ClusterCfg;
use crate::context::Ctx;
use crate::exec;
use crate::summary::DeadService;
use crate::ui::Ui;

/// The Dask scheduler's service (and host) name.
pub const SCHEDULER: &str = "scheduler";
/// The ipyparallel controller's service (and host) name.
pub const CONTROLLER: &str = "ipy-controller";

/// How big a cluster is: the one place that knows how many workers and
/// engines there are, and what they are called.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub workers: u32,
    pub engines: u32,
    pub worker_cpus: u32,
}

impl Size {
    /// The configured size, with `--workers` / `--engines` when given.
    pub fn from_config(cfg: &ClusterCfg, workers: Option<u32>, engines: Option<u32>) -> Size {
        Size {
            workers: workers.unwrap_or(cfg.workers),
            engines: engines.unwrap_or(cfg.engines),
            worker_cpus: cfg.worker_cpus,
        }
    }

    pub fn worker_hosts(&self) -> Vec<String> {
        (1..=self.workers).map(|i| format!("worker-{i}")).collect()
    }

    pub fn engine_services(&self) -> Vec<String> {
        (1..=self.engines)
            .map(|i| format!("ipy-worker-{i}"))
            .collect()
    }

    /// Every long-running service, in the order `status` shows them.
    pub fn services(&self) -> Vec<String> {
        let mut s = vec![SCHEDULER.to_string(), CONTROLLER.to_string()];
        s.extend(self.worker_hosts());
        s.extend(self.engine_services());
        s
    }
}

/// The image every service runs: its id (what the cluster runs, whatever
/// the tag points at later), the tag it was built as, and the runtime
/// volume (`/venv`) it runs with (see runtime.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub tag: String,
    /// Empty in the state of a cluster kept before the runtime was a volume
    /// of its own.
    #[serde(default)]
    pub runtime: String,
    /// What its workers' and engines' fork servers import first
    /// (image/preload.rs); empty for a cluster kept before there was one.
    #[serde(default)]
    pub preload: Vec<String>,
}

/// Host folders the services mount: the project's source at `/src`
/// (read-only; the image holds an editable install of it), test data at
/// `/data`, and the tests' results at `/results`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mounts {
    pub source: PathBuf,
    pub data: PathBuf,
    pub results: PathBuf,
}

/// Everything a cluster is, on either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The compose project or stack: unique per run, or the checkout's kept one.
    pub name: String,
    pub size: Size,
    /// Publish the scheduler and its dashboard on 127.0.0.1 (compose only).
    pub publish: bool,
    pub image: Image,
    pub mounts: Mounts,
    /// Its workers, engines and pytest start warm (config.rs, `WarmStart`).
    pub warm: bool,
}

/// Which backend runs a cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Compose,
    Swarm,
}

impl Kind {
    /// The backend a command's `--swarm` asks for: the one place that
    /// chooses it.
    pub fn chosen(swarm: bool) -> Kind {
        if swarm {
            Kind::Swarm
        } else {
            Kind::Compose
        }
    }

    /// `compose` or `swarm`, as the selection key and messages name it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Compose => "compose",
            Kind::Swarm => "swarm",
        }
    }
}

/// What a backend made for its cluster besides the image: what later
/// commands need to address it again (saved with the kept cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// The runtime (`/venv`) and numba cache volumes it mounts.
    Compose { runtime: String, numba: String },
    /// The swarm's nodes (the manager first) and the shared folders every
    /// service mounts.
    Swarm {
        nodes: Vec<String>,
        ipython: PathBuf,
        temp: PathBuf,
    },
}

impl Backend {
    pub fn kind(&self) -> Kind {
        match self {
            Backend::Compose { .. } => Kind::Compose,
            Backend::Swarm { .. } => Kind::Swarm,
        }
    }

    /// The volumes a cluster of this backend mounts, that of `image` (its
    /// runtime) included: what a run registers as in use.
    pub fn volumes(&self, image: &Image) -> Vec<String> {
        match self {
            Backend::Compose { runtime, numba } => vec![runtime.clone(), numba.clone()],
            Backend::Swarm { .. } => vec![image.runtime.clone()],
        }
    }

    /// `compose`, or `a swarm of 3 nodes`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Compose { .. } => "compose".into(),
            Backend::Swarm { nodes, .. } => format!("a swarm of {} nodes", nodes.len()),
        }
    }
}

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Created or scheduled, not running yet (a swarm task being prepared).
    Starting,
    Running,
    /// Exited, failed or gone: waiting will not bring it back.
    Ended,
}

/// One long-running service as its backend sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    pub service: String,
    pub phase: Phase,
    /// Docker's words: `Up 5 seconds`, `Exited (137) 2 seconds ago`,
    /// `Failed 3 seconds ago (task: non-zero exit (1))`.
    pub status: String,
    pub exit_code: Option<i64>,
}

/// What a finished run keeps of its cluster.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub dead: Vec<DeadService>,
    /// On a swarm: the node each service ran on, and the nodes that were
    /// not Ready at the end.
    pub nodes: BTreeMap<String, String>,
    pub dead_nodes: Vec<String>,
}

/// The tests started on a cluster ([`Cluster::start_tests`]), followed to
/// their end.
pub trait Tests {
    /// Show pytest's output (unless `--quiet`) and wait for it until
    /// `deadline`; its exit code, `None` when the deadline stopped it.
    fn finish(self: Box<Self>, ui: Ui, deadline: Instant) -> Result<Option<i32>>;
}

/// The operations the flow needs of a cluster, on either backend.
pub trait Cluster {
    fn definition(&self) -> &Definition;

    /// After the build, with the checkout lock held: make what the services
    /// need besides the image (compose: the runtime and numba volumes;
    /// swarm: the image on every node, the shared folders). Returns the
    /// volumes it uses.
    fn prepare(&mut self, cx: &Ctx) -> Result<Vec<String>>;

    /// What [`Cluster::prepare`] made, to address the cluster again.
    fn backend(&self) -> Backend;

    /// Start every long-running service.
    fn up(&self, log: &Path) -> Result<()>;

    /// Start pytest (`command`) in the tests container, output to `log`.
    /// It runs no test before the results folder holds the ready file
    /// ([`readiness::declare_ready`]), so it may start and collect while
    /// the cluster still comes up.
    fn start_tests(&self, command: &[String], log: &Path) -> Result<Box<dyn Tests + '_>>;

    /// Every long-running service that exists, and where it is.
    fn services(&self) -> Result<Vec<ServiceState>>;

    /// What has registered, seen from inside the cluster: `probe.py watch`
    /// in the scheduler's container, a JSON [`Observation`] at every change
    /// until it is dropped (or `lifetime` passed). `None` while the
    /// scheduler does not run.
    fn watch(&self, lifetime: Duration) -> Result<Option<exec::Lines>>;

    /// One look at what has registered (`probe.py observe`).
    fn observe(&self) -> Option<Observation>;

    /// `probe.py` with `args` in the scheduler's container: its output.
    fn probe(&self, args: &[&str]) -> Result<String>;

    /// The last lines a service wrote.
    fn last_lines(&self, service: &str, n: usize) -> String;

    /// Every service's log into `dir`, and what died (after a failed run,
    /// `failed`, a swarm gives its manager time to notice a dead node).
    fn collect(&self, dir: &Path, failed: bool) -> Collected;

    /// Host addresses of published ports (`8786/tcp -> 127.0.0.1:49153`).
    fn published(&self) -> Vec<String>;

    /// Show logs on the terminal.
    fn logs(&self, services: &[String], follow: bool) -> Result<ExitStatus>;

    /// Remove the cluster: every service, the tests', its network and its
    /// own volumes. Safe to repeat.
    fn down(&self) -> Result<()>;
}

/// A new cluster on the backend `kind`: the one place that chooses.
pub fn select<'a>(cx: &Ctx<'a>, kind: Kind, def: Definition) -> Result<Box<dyn Cluster + 'a>> {
    Ok(match kind {
        Kind::Compose => Box::new(compose_cluster::ComposeCluster::new(cx, def, None)),
        Kind::Swarm => Box::new(swarm_stack::SwarmStack::new(cx, def, None)?),
    })
}

/// The definition of the cluster `state` describes, its results to `results`.
pub fn definition_of(state: &ClusterState, results: &Path) -> Definition {
    Definition {
        name: state.name.clone(),
        size: state.size,
        publish: state.publish,
        image: state.image.clone(),
        mounts: Mounts {
            source: state.project.clone(),
            data: state.data.path.clone(),
            results: results.to_path_buf(),
        },
        warm: true,
    }
}

/// The kept cluster as `up` saved it, with `results` for a `test` run.
pub fn from_state<'a>(
    cx: &Ctx<'a>,
    state: &ClusterState,
    results: &Path,
) -> Result<Box<dyn Cluster + 'a>> {
    let def = definition_of(state, results);
    Ok(match &state.backend {
        b @ Backend::Compose { .. } => Box::new(compose_cluster::ComposeCluster::new(
            cx,
            def,
            Some(b.clone()),
        )),
        b @ Backend::Swarm { .. } => {
            Box::new(swarm_stack::SwarmStack::new(cx, def, Some(b.clone()))?)
        }
    })
}
