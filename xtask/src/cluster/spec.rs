//! What a cluster is, the plain data every layer shares: its size and the
//! names of its services, the image it runs, the backend that runs it,
//! what a service's state looks like and what a run keeps of it. Nothing
//! here runs anything; it imports nothing of the cluster's own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ClusterCfg;
use crate::docker::ClusterObject;

/// The Dask scheduler's service (and host) name.
pub const SCHEDULER: &str = "scheduler";
/// The ipyparallel controller's service (and host) name.
pub const CONTROLLER: &str = "ipy-controller";

/// The readiness probe, in the image (the Dockerfile's project stage).
pub const PROBE: &str = "/opt/dist-test/probe.py";

/// Written into the results folder once the cluster is ready: the tests
/// container's harness (dist_test_ready.py) runs no test before it exists.
pub const READY_FILE: &str = ".cluster-ready";

/// The folder of the results where the harness asks for snapshots
/// (run/snapshot.rs).
pub const DEADLINES_DIR: &str = "deadlines";

/// How long the harness waits for the snapshot it asked for: above the
/// longest a snapshot may take (run/snapshot.rs), with room to spare.
pub const SNAPSHOT_WAIT_S: u64 = 120;

/// How long a test stopped at its deadline has to end before pytest is
/// ended (exit code 124).
pub const GRACE_S: u64 = 30;

/// The deadlines the tests container's harness keeps
/// (dist_test_harness.py), passed as its environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestLimits {
    /// Each test's.
    pub test_s: u64,
    /// The wait for ipyparallel engines that LiberTEM's fixture leaves unbounded.
    pub engines_s: u64,
    /// How long the harness waits for a snapshot it asked for.
    pub snapshot_s: u64,
    /// How long a stopped test has to end before pytest is ended.
    pub grace_s: u64,
}

impl TestLimits {
    /// From dist-test.toml's `[timeouts]`, each test's deadline `test_s`
    /// when given (`--test-timeout`).
    pub fn of(t: &crate::config::Timeouts, test_s: Option<u64>) -> TestLimits {
        TestLimits {
            test_s: test_s.unwrap_or(t.test_s),
            engines_s: t.ready_s,
            snapshot_s: SNAPSHOT_WAIT_S,
            grace_s: GRACE_S,
        }
    }

    /// The variables, with `results` the results folder as the tests
    /// container sees it.
    pub fn env(&self, results: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DIST_TEST_TEST_TIMEOUT_S", self.test_s.to_string()),
            ("DIST_TEST_ENGINES_TIMEOUT_S", self.engines_s.to_string()),
            ("DIST_TEST_SNAPSHOT_S", self.snapshot_s.to_string()),
            ("DIST_TEST_GRACE_S", self.grace_s.to_string()),
            ("DIST_TEST_DEADLINES", format!("{results}/{DEADLINES_DIR}")),
        ]
    }
}

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
    /// Where the user's cluster is, for the attached backend.
    pub attach: Option<super::attached::AttachTo>,
}

/// Which backend runs a cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Compose,
    Swarm,
    /// A cluster the user runs (`dist-test --attach`): only the tests are ours.
    Attached,
}

impl Kind {
    /// The backend a command's `--swarm` or `--attach` asks for: the one
    /// place that chooses it.
    pub fn chosen(swarm: bool, attach: bool) -> Kind {
        match (swarm, attach) {
            (_, true) => Kind::Attached,
            (true, false) => Kind::Swarm,
            (false, false) => Kind::Compose,
        }
    }

    /// The backend that made a container or network of the harness's, by
    /// its labels.
    pub fn of_object(o: &ClusterObject) -> Kind {
        if o.project.is_empty() && !o.stack.is_empty() {
            Kind::Swarm
        } else {
            Kind::Compose
        }
    }

    /// `compose`, `swarm` or `attached`, as the selection key and messages name it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Compose => "compose",
            Kind::Swarm => "swarm",
            Kind::Attached => "attached",
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
    /// The swarm's nodes (the manager first), the controller's folder on
    /// the manager, and what the services see in the shared folder: the
    /// scratch folder and the detector data (absent in a state saved before
    /// the data was copied there: the checkout's own).
    Swarm {
        nodes: Vec<String>,
        ipython: PathBuf,
        temp: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<PathBuf>,
    },
    /// The user's cluster, by its scheduler's address (never kept).
    Attached { scheduler: String },
}

impl Backend {
    pub fn kind(&self) -> Kind {
        match self {
            Backend::Compose { .. } => Kind::Compose,
            Backend::Swarm { .. } => Kind::Swarm,
            Backend::Attached { .. } => Kind::Attached,
        }
    }

    /// The volumes a cluster of this backend mounts, that of `image` (its
    /// runtime) included: what a run registers as in use.
    pub fn volumes(&self, image: &Image) -> Vec<String> {
        match self {
            Backend::Compose { runtime, numba } => vec![runtime.clone(), numba.clone()],
            Backend::Swarm { .. } | Backend::Attached { .. } => vec![image.runtime.clone()],
        }
    }

    /// `compose`, or `a swarm of 3 nodes`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Compose { .. } => "compose".into(),
            Backend::Swarm { nodes, .. } => format!("a swarm of {} nodes", nodes.len()),
            Backend::Attached { scheduler } => format!("the cluster at {scheduler}"),
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
    /// Every container of the cluster, as the engine had it.
    pub containers: Vec<ContainerState>,
}

/// One line of `probe.py`: what has registered so far.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Observation {
    /// `{host: [cpu workers, service workers]}`
    pub hosts: BTreeMap<String, [u32; 2]>,
    pub engines: u32,
}

impl Observation {
    /// The hosts with all their CPU workers and a service worker.
    pub fn ready_hosts(&self, cpus: u32) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, &[cpu, service])| cpu >= cpus && service >= 1)
            .map(|(h, _)| h.clone())
            .collect()
    }
}

/// When a service was first seen running and, for those that register
/// (worker hosts, engines; the scheduler and controller once the probe
/// first answered through them), first seen ready (Unix times): the
/// report's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpan {
    pub service: String,
    #[serde(default)]
    pub running: Option<f64>,
    #[serde(default)]
    pub ready: Option<f64>,
}

/// A service that was not running when the tests ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadService {
    pub service: String,
    /// docker's status line, like `Exited (137) 3 seconds ago`.
    pub state: String,
    pub exit_code: Option<i64>,
    pub last_lines: String,
    /// Whether the kernel killed it for memory (Docker's `OOMKilled`).
    #[serde(default)]
    pub oom_killed: bool,
    /// When it ended (Unix seconds), when the engine says.
    #[serde(default)]
    pub ended: Option<f64>,
    /// The pass whose cluster it was (`--repeat`, `--fresh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<u32>,
}

impl DeadService {
    /// `exit code 137, killed by the kernel for memory`, or docker's
    /// status when there is no exit code.
    fn end(&self) -> String {
        let oom = if self.oom_killed {
            ", killed by the kernel for memory"
        } else {
            ""
        };
        match self.exit_code {
            Some(c) => format!("exit code {c}{oom}"),
            None => format!("{}{oom}", self.state),
        }
    }

    /// `worker-1 (exit code 137, killed by the kernel for memory)`
    pub fn describe(&self) -> String {
        format!("{} ({})", self.service, self.end())
    }

    /// `exit code 137; Exited (137) 3 seconds ago`, or the state alone
    /// when there is no exit code.
    pub fn details(&self) -> String {
        match self.exit_code {
            Some(_) => format!("{}; {}", self.end(), self.state),
            None => self.end(),
        }
    }
}

/// A service's container as the engine had it when the run ended (`docker
/// inspect`): kept with every run, and what tells a dead service apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub service: String,
    pub container: String,
    /// `running`, `exited`, ...
    pub status: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restarts: u32,
    /// Unix seconds; `null` while it runs.
    pub started: Option<f64>,
    pub ended: Option<f64>,
}
