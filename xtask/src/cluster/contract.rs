//! The operations the flow needs of a cluster, on either backend: what
//! `compose_cluster` and `swarm_stack` implement and the flow calls.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::spec::{
    Backend, Collected, Definition, Observation, ServiceSpan, ServiceState, TestLimits,
};
use crate::exec;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// The tests started on a cluster ([`Cluster::start_tests`]), followed to
/// their end.
pub trait Tests {
    /// Show pytest's output (unless `--quiet`) and wait for it until
    /// `deadline`, calling `tick` every moment meanwhile (it may stop the
    /// tests by returning `true`); pytest's exit code, `None` when the
    /// deadline or `tick` stopped it.
    fn finish(
        self: Box<Self>,
        ui: Ui,
        deadline: Instant,
        tick: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<Option<i32>>;
}

/// Tests that are one process of ours (`docker exec` of pytest in a
/// compose cluster's tests container, `docker run` of the attached
/// backend's), followed to their end.
pub struct FollowedTests(pub exec::Background);

impl Tests for FollowedTests {
    fn finish(
        self: Box<Self>,
        ui: Ui,
        deadline: Instant,
        tick: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<Option<i32>> {
        let status = self.0.follow(ui, deadline, tick)?;
        Ok(status.map(|s| s.code().unwrap_or(128 + 2)))
    }
}

/// The operations the flow needs of a cluster, on either backend.
pub trait Cluster {
    fn definition(&self) -> &Definition;

    /// After the build, with the checkout lock held: make what the services
    /// need besides the image (compose: the runtime and numba volumes;
    /// swarm: the image on every node, the shared folders). Returns the
    /// volumes it uses.
    fn prepare(&mut self, ws: &Workspace) -> Result<Vec<String>>;

    /// What [`Cluster::prepare`] made, to address the cluster again.
    fn backend(&self) -> Backend;

    /// Start every long-running service.
    fn up(&self, log: &Path) -> Result<()>;

    /// Wait, bounded by `timeout`, until the cluster is ready for tests
    /// (`first`: what was seen already); the services' spans. The
    /// harness's own clusters go by one rule (`readiness::wait_ready`).
    fn ready(&self, timeout: Duration, first: Option<Observation>) -> Result<Vec<ServiceSpan>> {
        super::readiness::wait_ready(self, timeout, first)
    }

    /// Why the cluster cannot run the next test (after one that timed
    /// out), if it cannot: by the same rule as readiness on the harness's
    /// own clusters.
    fn unusable(&self) -> Option<String> {
        super::readiness::unusable(self)
    }

    /// Start pytest (`command`) in the tests container, output to `log`.
    /// It runs no test before the results folder holds the ready file
    /// (`readiness::declare_ready`), so it may start and collect while
    /// the cluster still comes up.
    fn start_tests(
        &self,
        command: &[String],
        limits: &TestLimits,
        log: &Path,
    ) -> Result<Box<dyn Tests + '_>>;

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

    /// `command` run in the running container of `service` (one of the
    /// size's services, or `tests`), as a command to start; `None` when
    /// this engine runs none (a swarm's service on another node).
    fn exec_in(&self, service: &str, command: &[&str]) -> Option<std::process::Command>;

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
