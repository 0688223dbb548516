//! How the swarm cluster comes up: the same services as a stack on the
//! Docker Swarm whose manager `DOCKER_HOST` points at, workers and engines
//! spread over its nodes, the image brought to every node without a
//! registry, the tests as a one-off service on the manager that waits for
//! the same ready file as the compose cluster's tests, every service's log
//! through the manager. `cargo xtask swarm-lab up` makes a test swarm here.

mod connection;
mod file;
mod nodes;
mod shared;
mod staging;
mod tasks;
mod tests_service;

pub use file::StackSpec;
pub use nodes::{check_manager, parse_engines, ready_nodes, send_runtime, ENGINES_VAR};
pub use shared::SHARED_VAR;

use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{Cluster, Tests};
use crate::cluster::spec::{
    Backend, Collected, DeadService, Definition, Observation, Phase, ServiceState, TestLimits,
    PROBE,
};
use crate::docker::{label_filter, Docker};
use crate::exec::{self, tail};
use crate::fsx;
use crate::labels::{CHECKOUT_LABEL, SERVICE_NAME_LABEL, STACK_LABEL};
use crate::ui::Ui;
use crate::workspace::Workspace;
use tests_service::{SwarmTests, TestsSpec};

/// How long `docker stack rm` may take to remove everything on every node.
const REMOVAL: Duration = Duration::from_secs(120);

pub struct SwarmStack<'a> {
    def: Definition,
    docker: Docker<'a>,
    /// The nodes (the manager first), once chosen.
    nodes: Vec<String>,
    /// The controller's connection folder, on the manager.
    ipython: PathBuf,
    /// The scratch folder and the data, in the shared folder (shared.rs)
    /// when there is one.
    temp: PathBuf,
    data: PathBuf,
    shared: Option<PathBuf>,
    /// Whether the source (and the data) reached the nodes in this process.
    staged: Cell<bool>,
    /// The engines of the nodes besides the manager, once asked.
    others: OnceCell<Vec<String>>,
    harness: PathBuf,
    /// `target/dist-test`, under which the checkout's own data is.
    target: PathBuf,
    checkout: String,
    /// pytest's cache for the project, bound at /pytest-cache in the tests.
    pytest_cache: PathBuf,
    label: String,
    /// timeouts.ready_s, which the tests' pytest honours too.
    ready_s: u64,
    ui: Ui,
}

impl<'a> SwarmStack<'a> {
    /// A stack for `def`, on the swarm `DOCKER_HOST`'s engine manages (one
    /// line if it manages none); `saved`, for the kept cluster.
    pub fn new(
        ws: &Workspace,
        docker: &Docker<'a>,
        def: Definition,
        saved: Option<Backend>,
    ) -> Result<SwarmStack<'a>> {
        check_manager(docker)
            .with_context(|| format!("the cluster {} is a swarm stack", def.name))?;
        let others = OnceCell::new();
        let mut fresh_nodes = None;
        if saved.is_none() {
            // What a new stack needs of the environment, before any build:
            // its nodes, their engines (asked once), the shared folder.
            let nodes = ready_nodes(docker)?;
            shared::root(std::env::var(SHARED_VAR).ok().as_deref(), nodes.len())?;
            let _ = others.set(nodes::other_engines(docker, &nodes)?);
            fresh_nodes = Some(nodes);
        }
        // A new stack's shared folders sit beside its results.
        let beside = def
            .mounts
            .results
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        // Until `prepare` has chosen them in the shared folder.
        let (nodes, ipython, temp, data) = match saved {
            Some(Backend::Swarm {
                nodes,
                ipython,
                temp,
                data,
            }) => (nodes, ipython, temp, data),
            _ => (
                fresh_nodes.unwrap_or_default(),
                beside.join("ipython"),
                beside.join("temp_data"),
                None,
            ),
        };
        Ok(SwarmStack {
            pytest_cache: ws.pytest_cache(&def.mounts.source),
            data: data.unwrap_or_else(|| def.mounts.data.clone()),
            def,
            docker: docker.clone(),
            nodes,
            ipython,
            temp,
            staged: Cell::new(false),
            others,
            shared: None,
            harness: ws.docker_dir(),
            target: ws.target.clone(),
            checkout: ws.checkout_id.clone(),
            label: format!("{CHECKOUT_LABEL}={}", ws.checkout_id),
            ready_s: ws.config.timeouts.ready_s,
            ui: docker.ui(),
        })
    }

    fn service(&self, s: &str) -> String {
        format!("{}_{s}", self.def.name)
    }

    fn spec(&self, tests: Option<TestsSpec>) -> Result<StackSpec> {
        let (pytest, tests_env) = match tests {
            Some((command, env)) => (Some(command), env),
            None => (None, Vec::new()),
        };
        let m = &self.def.mounts;
        let runtime = self.def.image.runtime.clone();
        Ok(StackSpec {
            preload: self.def.image.preload.clone(),
            warm: self.def.warm,
            ready_s: self.ready_s,
            image: self.def.image.tag.clone(),
            size: self.def.size,
            nodes: self.nodes.clone(),
            source: m.source.clone(),
            source_volume: self.source_volume(),
            data: self.data.clone(),
            legacy_temp: m.data.join(crate::testdata::LEGACY_TEMP).is_dir(),
            ipython: self.ipython.clone(),
            temp: self.temp.clone(),
            results: m.results.clone(),
            pytest_cache: self.pytest_cache.clone(),
            harness: self.harness.clone(),
            runtime,
            pytest,
            tests_env,
            label: self.label.clone(),
        })
    }

    /// `docker stack deploy` of the stack, with the tests when given:
    /// services whose definition did not change keep running.
    fn deploy(&self, tests: Option<TestsSpec>) -> Result<()> {
        if self.nodes.is_empty() {
            bail!(
                "the stack {} has no nodes: it was not prepared",
                self.def.name
            );
        }
        let dir = self.def.mounts.results.parent().unwrap_or(Path::new("."));
        let file = dir.join("stack.yml");
        fsx::write_atomic(&file, self.spec(tests)?.text().as_bytes())?;
        self.docker.stack_deploy(&file, &self.def.name)
    }

    /// The scheduler's container: it runs on the manager, this engine.
    fn scheduler(&self) -> Option<String> {
        let filter = label_filter(SERVICE_NAME_LABEL, &self.service("scheduler"));
        self.docker
            .containers(&[filter])
            .ok()?
            .into_iter()
            .find(|c| c.running())
            .map(|c| c.id)
    }

    /// Every service, the tests last when they exist.
    fn all_services(&self) -> Vec<String> {
        let mut all = self.def.size.services();
        let tests = self.service("tests");
        if !self.docker.service_tasks(&tests).is_empty() {
            all.push("tests".into());
        }
        all
    }
}

impl Cluster for SwarmStack<'_> {
    fn definition(&self) -> &Definition {
        &self.def
    }

    fn prepare(&mut self, ws: &Workspace) -> Result<Vec<String>> {
        let value = std::env::var(SHARED_VAR).ok();
        let root = shared::root(value.as_deref(), self.nodes.len())?;
        let ids = (self.checkout.as_str(), self.def.name.as_str());
        let beside = self.ipython.parent().unwrap_or(&ws.target).to_path_buf();
        let data = (self.def.mounts.data.as_path(), self.target.as_path());
        (self.data, self.temp) = shared::layout(root.as_deref(), ids, data, &beside);
        self.shared = root;
        let others = self.others()?.to_vec();
        nodes::distribute_image(&self.docker, &self.def.image.tag, &others)?;
        let (runtime, image) = (&self.def.image.runtime, &self.def.image.tag);
        nodes::distribute_runtime(&self.docker, runtime, image, &others)?;
        fsx::writable_dir(&self.ipython)?;
        fsx::writable_dir(&self.temp)?;
        Ok(vec![self.def.image.runtime.clone()])
    }

    fn backend(&self) -> Backend {
        Backend::Swarm {
            nodes: self.nodes.clone(),
            ipython: self.ipython.clone(),
            temp: self.temp.clone(),
            data: Some(self.data.clone()),
        }
    }

    fn up(&self, _log: &Path) -> Result<()> {
        self.stage()?;
        connection::forget(&self.ipython)?;
        crate::live::status("deploying the stack", None);
        self.deploy(None)?;
        crate::live::status("handing the engines the controller's file", None);
        self.connect_engines()
    }

    fn start_tests(
        &self,
        command: &[String],
        limits: &TestLimits,
        log: &Path,
    ) -> Result<Box<dyn Tests + '_>> {
        fsx::writable_dir(&self.pytest_cache)?;
        // A kept stack's nodes get the source as it is now (and its
        // engines, were they replaced, the controller's file).
        let kept = !self.staged.get();
        self.stage()?;
        // The tests service binds the run's results folder at /results.
        let command = super::pytest::with_results(command, "/results");
        self.deploy(Some((command, limits.env("/results"))))?;
        if kept {
            self.connect_engines()?;
        }
        Ok(Box::new(SwarmTests {
            stack: self,
            log: log.to_path_buf(),
        }))
    }

    fn services(&self) -> Result<Vec<ServiceState>> {
        let tasks = self.docker.stack_tasks(&self.def.name);
        let mut states = tasks::service_states(&tasks, &self.def.name);
        states.retain(|s| s.service != "tests");
        Ok(states)
    }

    fn watch(&self, lifetime: Duration) -> Result<Option<exec::Lines>> {
        let Some(id) = self.scheduler() else {
            return Ok(None);
        };
        let secs = lifetime.as_secs().to_string();
        self.docker
            .exec_lines(&id, &["python3", PROBE, "watch", &secs])
            .map(Some)
            .context("starting the readiness probe")
    }

    fn probe(&self, args: &[&str]) -> Result<String> {
        let id = self
            .scheduler()
            .context("the scheduler's task is not running")?;
        let mut command = vec!["python3", PROBE];
        command.extend(args);
        self.docker.exec_read(&id, &command)
    }

    fn observe(&self) -> Option<Observation> {
        let id = self.scheduler()?;
        let out = self
            .docker
            .exec_read(&id, &["python3", PROBE, "observe"])
            .ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    fn exec_in(&self, service: &str, command: &[&str]) -> Option<std::process::Command> {
        // Only a container on this engine: the manager's own node.
        let filter = label_filter(SERVICE_NAME_LABEL, &self.service(service));
        let c = self.docker.containers(&[filter]).ok()?;
        let c = c.into_iter().find(|c| c.running())?;
        Some(self.docker.exec_command(&c.id, command))
    }

    fn last_lines(&self, service: &str, n: usize) -> String {
        tail(&self.docker.service_log(&self.service(service)), n)
    }

    fn collect(&self, dir: &Path, failed: bool) -> Collected {
        let services = self.all_services();
        let _ = std::fs::create_dir_all(dir);
        let logs: Vec<(String, PathBuf)> = services
            .iter()
            .map(|s| (self.service(s), dir.join(format!("{s}.log"))))
            .collect();
        // Both streams: Dask and ipyparallel log to stderr. All at once.
        if let Err(e) = self.docker.save_service_logs(&logs, true) {
            eprintln!("warning: saving the services' logs: {e:#}");
        }
        let nodes = tasks::nodes_of(&self.docker, &self.def.name, &services);
        let (dead_nodes, mut dead) = tasks::dead_nodes_settled(&self.docker, &nodes, failed);
        for s in self.services().unwrap_or_default() {
            if s.phase == Phase::Ended && !dead.iter().any(|d| d.service == s.service) {
                dead.push(DeadService {
                    last_lines: self.last_lines(&s.service, 20),
                    oom_killed: false,
                    ended: None,
                    pass: None,
                    service: s.service,
                    state: s.status,
                    exit_code: s.exit_code,
                });
            }
        }
        Collected {
            dead,
            nodes,
            dead_nodes,
            // A swarm's tasks are told by their own state (above).
            containers: Vec::new(),
        }
    }

    fn published(&self) -> Vec<String> {
        Vec::new()
    }

    fn logs(&self, services: &[String], follow: bool) -> Result<ExitStatus> {
        let services = if services.is_empty() {
            self.def.size.services()
        } else {
            services.to_vec()
        };
        if follow && services.len() > 1 {
            bail!("on a swarm, --follow shows one service: name it (`cargo xtask logs --follow worker-1`)");
        }
        let mut last = None;
        for s in &services {
            if services.len() > 1 {
                println!("==> {s} <==");
            }
            let command = self.docker.service_logs_command(&self.service(s), follow);
            let status = exec::status_on_terminal(command, self.ui)
                .with_context(|| format!("running docker service logs for {s}"))?;
            if !status.success() {
                return Ok(status);
            }
            last = Some(status);
        }
        last.context("no service to show")
    }

    /// `stack rm`, then wait until its services, tasks and network are gone
    /// on every node; the folders its services shared go too.
    fn down(&self) -> Result<()> {
        let name = &self.def.name;
        let filter = label_filter(STACK_LABEL, name);
        if self.docker.swarm_objects_left(&filter) {
            self.docker.stack_rm(name)?;
        }
        let deadline = Instant::now() + REMOVAL;
        while self.docker.swarm_objects_left(&filter) {
            if Instant::now() > deadline {
                bail!(
                    "the stack {name} was not gone {} s after `stack rm`",
                    REMOVAL.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        self.remove_staged()
    }
}
