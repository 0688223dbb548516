//! How the compose cluster comes up: the services as one compose project
//! on this engine (`packaging/docker/docker-compose.yml`, the generated
//! size file, and `publish.yml` with `--publish`), its `/venv` and numba
//! cache from volumes, the tests as a one-off `compose run`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{bail, Context, Result};

mod size_file;

pub use size_file::size_file_text;

use super::{Cluster, Tests};
use crate::cluster::pytest::TIMELINE_FILE;
use crate::cluster::spec::{
    Backend, Collected, Definition, Observation, ServiceState, TestLimits, PROBE, READY_FILE,
};
use crate::docker::compose::{Compose, Flavour};
use crate::docker::{label_filter, Container, Docker};
use crate::exec::{self, tail};
use crate::fsx;
use crate::labels::COMPOSE_PROJECT_LABEL;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// What runs pytest in the tests container (docker-compose.yml mounts it).
const PYTEST_CLIENT: &str = "/opt/dist-test-harness/pytest_client.py";
const PYTHON: &str = "python3";

/// How long `compose up` and `compose down` may take.
const COMPOSE_LIMIT: Duration = Duration::from_secs(600);

pub struct ComposeCluster<'a> {
    def: Definition,
    /// The checkout's runs folder, which the tests container mounts at /runs.
    runs: PathBuf,
    /// pytest's cache for the project, mounted at /pytest-cache.
    pytest_cache: PathBuf,
    docker: Docker<'a>,
    compose: Compose,
    /// The runtime and numba volumes, once made or as saved.
    volumes: Option<(String, String)>,
    /// The generated size file, written before the first compose call.
    size_file: (PathBuf, String),
    /// timeouts.ready_s, which the tests' pytest honours too.
    ready_s: u64,
    ui: Ui,
}

/// Where the temp volume goes a second time: over `/data/temp_data` when
/// the data folder has it (LiberTEM before 0.16 writes there), else to a
/// path nothing reads.
fn legacy_temp(data: &Path) -> String {
    if data.join(crate::testdata::LEGACY_TEMP).is_dir() {
        format!("/data/{}", crate::testdata::LEGACY_TEMP)
    } else {
        "/opt/dist-test/unused-temp".to_string()
    }
}

impl<'a> ComposeCluster<'a> {
    /// Pure: the compose command line for `def`; nothing is written or run.
    pub fn new(
        ws: &Workspace,
        docker: &Docker<'a>,
        compose: &Flavour,
        def: Definition,
        saved: Option<Backend>,
    ) -> ComposeCluster<'a> {
        let volumes = match saved {
            Some(Backend::Compose { runtime, numba }) => Some((runtime, numba)),
            _ => None,
        };
        let size_path = ws.target.join(format!(
            "size-{}x{}.yml",
            def.size.workers, def.size.engines
        ));
        let size_text = size_file_text(def.size, &ws.docker_dir().join("services.yml"));
        let mut files = vec![ws.compose_file(), size_path.clone()];
        if def.publish {
            files.push(ws.docker_dir().join("publish.yml"));
        }
        let (runtime, numba) = volumes.clone().unwrap_or_else(|| {
            let unset = format!("{}-unset", ws.checkout_id);
            (unset.clone(), unset)
        });
        let m = &def.mounts;
        let env = [
            ("LT_IMAGE", def.image.id.clone()),
            ("LT_SOURCE_DIR", m.source.display().to_string()),
            ("LT_DATA_DIR", m.data.display().to_string()),
            ("LT_RUNS_DIR", ws.runs_dir().display().to_string()),
            (
                "LT_PYTEST_CACHE",
                ws.pytest_cache(&m.source).display().to_string(),
            ),
            ("LT_CHECKOUT", ws.checkout_id.clone()),
            ("LT_ROOT", ws.root.display().to_string()),
            ("LT_HOST", crate::workspace::this_host()),
            ("LT_WORKER_CPUS", def.size.worker_cpus.to_string()),
            ("LT_ENGINES", def.size.engines.to_string()),
            ("LT_LEGACY_TEMP", legacy_temp(&m.data)),
            ("LT_VENV_VOLUME", runtime),
            ("LT_NUMBA_VOLUME", numba),
            ("LT_PRELOAD", def.image.preload.join(",")),
            ("LT_WARM", if def.warm { "1" } else { "0" }.into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        ComposeCluster {
            runs: ws.runs_dir(),
            pytest_cache: ws.pytest_cache(&def.mounts.source),
            compose: Compose {
                flavour: compose.clone(),
                files,
                project: def.name.clone(),
                env,
            },
            def,
            docker: docker.clone(),
            volumes,
            size_file: (size_path, size_text),
            ready_s: ws.config.timeouts.ready_s,
            ui: docker.ui(),
        }
    }

    pub fn compose(&self) -> &Compose {
        &self.compose
    }

    fn set_env(&mut self, key: &str, value: &str) {
        for (k, v) in &mut self.compose.env {
            if k == key {
                *v = value.to_string();
            }
        }
    }

    /// `compose ARGS...` as a command to run; the size file is written first.
    fn command(&self, args: &[&str]) -> Result<Command> {
        let (path, text) = &self.size_file;
        fsx::write_if_changed(path, text.as_bytes())?;
        Ok(self.compose.cmd(self.docker_shell(), args).into())
    }

    fn docker_shell(&self) -> &xshell::Shell {
        self.docker.shell()
    }

    fn containers(&self) -> Result<Vec<Container>> {
        self.docker
            .containers(&[label_filter(COMPOSE_PROJECT_LABEL, &self.def.name)])
    }

    /// The running long-lived container of `service`.
    fn container_of(&self, service: &str) -> Option<Container> {
        self.containers()
            .ok()?
            .into_iter()
            .find(|c| c.service == service && !c.oneoff)
    }

    fn scheduler(&self) -> Option<Container> {
        self.container_of("scheduler").filter(Container::running)
    }
}

/// Where the tests container sees a run's results folder `results` (under
/// the checkout's runs folder `runs`, which it mounts at /runs).
fn results_in_container(runs: &Path, results: &Path) -> Result<String> {
    let rel = results.strip_prefix(runs).with_context(|| {
        format!(
            "the results folder {} is not under {}",
            results.display(),
            runs.display()
        )
    })?;
    Ok(Path::new("/runs").join(rel).display().to_string())
}

impl Cluster for ComposeCluster<'_> {
    fn definition(&self) -> &Definition {
        &self.def
    }

    fn prepare(&mut self, ws: &Workspace) -> Result<Vec<String>> {
        // Written by the tests container's user (uid 1000).
        fsx::writable_dir(&self.pytest_cache)?;
        fs::create_dir_all(&self.runs)
            .with_context(|| format!("creating {}", self.runs.display()))?;
        let runtime = self.def.image.runtime.clone();
        let numba = crate::numba::ensure(
            &self.docker,
            ws,
            &self.def.image.id,
            &self.def.mounts.source,
        )?;
        self.set_env("LT_VENV_VOLUME", &runtime);
        self.set_env("LT_NUMBA_VOLUME", &numba);
        self.volumes = Some((runtime.clone(), numba.clone()));
        Ok(vec![runtime, numba])
    }

    fn backend(&self) -> Backend {
        let (runtime, numba) = self.volumes.clone().unwrap_or_default();
        Backend::Compose { runtime, numba }
    }

    fn up(&self, log: &Path) -> Result<()> {
        let command = self.command(&["up", "--detach", "--remove-orphans"])?;
        crate::live::status("starting services", Some(log));
        exec::run_logged(command, log, self.ui.verbose, COMPOSE_LIMIT)
            .context("starting the cluster")
    }

    fn start_tests(
        &self,
        command: &[String],
        limits: &TestLimits,
        log: &Path,
    ) -> Result<Box<dyn Tests + '_>> {
        let tests = self
            .container_of("tests")
            .filter(Container::running)
            .context("the cluster's tests container is not running (`cargo xtask down` then `up` starts it again)")?;
        let results = results_in_container(&self.runs, &self.def.mounts.results)?;
        let mut env = vec![
            format!("DIST_TEST_READY_FILE={results}/{READY_FILE}"),
            format!("DIST_TEST_TIMELINE={results}/{TIMELINE_FILE}"),
            format!("DIST_TEST_READY_TIMEOUT_S={}", self.ready_s),
            // pytest ends when this exec's input does (dist_test_ready.py).
            "DIST_TEST_TETHER=1".to_string(),
        ];
        env.extend(
            limits
                .env(&results)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        // pytest_client.py in place of pytest: its pytest is forked from the
        // tests container's warm server (pytest_server.py).
        let mut command = super::pytest::with_results(command, &results);
        command.splice(0..1, [PYTHON.to_string(), PYTEST_CLIENT.to_string()]);
        let bg = self
            .docker
            .exec_logged(&tests.id, ("/src", &env), &command, log)
            .context("starting the tests in the tests container")?;
        Ok(Box::new(super::FollowedTests(bg)))
    }

    fn services(&self) -> Result<Vec<ServiceState>> {
        Ok(self
            .containers()?
            .iter()
            .filter(|c| !c.oneoff)
            .map(states::service_state)
            .collect())
    }

    fn watch(&self, lifetime: Duration) -> Result<Option<exec::Lines>> {
        let Some(s) = self.scheduler() else {
            return Ok(None);
        };
        let secs = lifetime.as_secs().to_string();
        self.docker
            .exec_lines(&s.id, &["python3", PROBE, "watch", &secs])
            .map(Some)
            .context("starting the readiness probe")
    }

    fn probe(&self, args: &[&str]) -> Result<String> {
        let s = self
            .scheduler()
            .context("the scheduler's container is not running")?;
        let mut command = vec!["python3", PROBE];
        command.extend(args);
        self.docker.exec_read(&s.id, &command)
    }

    fn observe(&self) -> Option<Observation> {
        let s = self.scheduler()?;
        let out = self
            .docker
            .exec_read(&s.id, &["python3", PROBE, "observe"])
            .ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    fn exec_in(&self, service: &str, command: &[&str]) -> Option<std::process::Command> {
        let c = self.container_of(service).filter(Container::running)?;
        Some(self.docker.exec_command(&c.id, command))
    }

    fn last_lines(&self, service: &str, n: usize) -> String {
        match self.container_of(service) {
            Some(c) => self.docker.last_lines(&c.id, n),
            None => String::new(),
        }
    }

    fn collect(&self, dir: &Path, _failed: bool) -> Collected {
        let containers = self.containers().unwrap_or_default();
        let (dead, states) = states::dead_and_states(&self.docker, &containers);
        let logs: Vec<(String, PathBuf)> = containers
            .iter()
            .map(|c| {
                let name = if c.oneoff {
                    format!("{}-run", c.service)
                } else {
                    c.service.clone()
                };
                (c.id.clone(), dir.join(format!("{name}.log")))
            })
            .collect();
        let saved = std::fs::create_dir_all(dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| self.docker.save_logs(&logs));
        if let Err(e) = saved {
            eprintln!("warning: saving the services' logs: {e:#}");
        }
        Collected {
            dead,
            containers: states,
            ..Collected::default()
        }
    }

    fn published(&self) -> Vec<String> {
        match self.container_of("scheduler") {
            Some(c) => self.docker.published_ports(&c.id).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn logs(&self, services: &[String], follow: bool) -> Result<ExitStatus> {
        let mut args = vec!["logs", "--timestamps"];
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            args.push("--no-color");
        }
        if follow {
            args.push("--follow");
        }
        args.extend(services.iter().map(String::as_str));
        exec::status_on_terminal(self.command(&args)?, self.ui).context("running compose logs")
    }

    fn down(&self) -> Result<()> {
        // Everything of the project goes by its label, the containers
        // killed (nothing in them is worth a graceful close once the
        // results and logs are kept): a few docker calls, where compose's
        // own down stops each service in turn (2 s for a 2x2 cluster).
        // Compose's down then gets whatever the label missed.
        let filter = label_filter(COMPOSE_PROJECT_LABEL, &self.def.name);
        if self.docker.sweep(&filter)? == 0 {
            return Ok(());
        }
        let command = self.command(&["down", "--volumes", "--remove-orphans", "--timeout", "5"])?;
        let out = exec::output_in_own_group(command, COMPOSE_LIMIT, self.ui)
            .context("running compose down")?;
        let left = self.docker.sweep(&filter)?;
        if left > 0 {
            bail!(
                "{left} objects of {} are left after compose down: {}",
                self.def.name,
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            );
        }
        Ok(())
    }
}

mod states;
#[cfg(test)]
mod tests;
