//! The handle on one cluster's compose project: bring it up, list its
//! containers, run the tests container, keep its logs, take it down.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{sweep, Size, Spec, PROJECT_LABEL};
use crate::compose::Compose;
use crate::context::Ctx;
use crate::exec::{self, tail};
use crate::summary::DeadService;
use crate::ui::Ui;

const PROBE: &str = "/opt/dist-test/probe.py";

/// Written into the results folder once the cluster is ready: the tests
/// container's harness runs no test before it exists.
const READY_FILE: &str = ".cluster-ready";
/// What the harness writes about pytest's run (see cluster/pytest.rs).
pub const TIMELINE_FILE: &str = "pytest-timeline.json";

/// Let the tests started by [`Cluster::start_tests`] run: the cluster whose
/// results folder is `results` is ready.
pub fn declare_ready(results: &Path) -> Result<()> {
    let path = results.join(READY_FILE);
    fs::write(&path, "ready\n").with_context(|| format!("writing {}", path.display()))
}

/// Host folders a cluster's containers mount: the project's source at
/// `/src` (read-only; the image holds an editable install of it), test data
/// at `/data`, and the tests container's results at `/results`. Not part of
/// the cluster's identity: commands that only look at a cluster or remove it
/// pass any.
#[derive(Debug, Clone)]
pub struct Mounts {
    pub source: PathBuf,
    pub data: PathBuf,
    pub results: PathBuf,
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

pub struct Cluster {
    pub compose: Compose,
    pub docker: PathBuf,
    pub size: Size,
    ui: Ui,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub service: String,
    pub state: String,
    pub status: String,
    pub oneoff: bool,
}

impl Cluster {
    /// Pure: the compose command line for `spec`; nothing is written (see
    /// [`Spec::write_files`]) or run.
    pub fn new(cx: &Ctx, spec: &Spec, mounts: &Mounts) -> Cluster {
        let ws = &cx.ws;
        let size = spec.size;
        let env = vec![
            ("LT_IMAGE".to_string(), ws.image_tag()),
            (
                "LT_SOURCE_DIR".to_string(),
                mounts.source.display().to_string(),
            ),
            ("LT_DATA_DIR".to_string(), mounts.data.display().to_string()),
            (
                "LT_RESULTS_DIR".to_string(),
                mounts.results.display().to_string(),
            ),
            ("LT_CHECKOUT".to_string(), ws.checkout_id.clone()),
            ("LT_WORKER_CPUS".to_string(), size.worker_cpus.to_string()),
            ("LT_ENGINES".to_string(), size.engines.to_string()),
            ("LT_LEGACY_TEMP".to_string(), legacy_temp(&mounts.data)),
            ("LT_NUMBA_VOLUME".to_string(), crate::numba::volume_name(ws)),
            // The image's real one is set by `use_runtime` before anything starts.
            ("LT_VENV_VOLUME".to_string(), crate::runtime::unset_name(ws)),
        ];
        Cluster {
            compose: Compose {
                flavour: cx.tools.compose.clone(),
                files: spec.compose_files.clone(),
                project: spec.compose_project.clone(),
                env,
            },
            docker: cx.tools.docker.cli.clone(),
            size,
            ui: cx.ui,
        }
    }

    /// Mount `volume` as the services' `/venv` (see runtime.rs): the one
    /// [`crate::runtime::ensure`] made for the image as it is now built.
    pub fn use_runtime(&mut self, volume: String) {
        for (k, v) in &mut self.compose.env {
            if k == "LT_VENV_VOLUME" {
                *v = volume.clone();
            }
        }
    }

    /// `up -d`: (re)create what changed, remove services the size no longer
    /// has; compose waits for the healthchecks that other services depend on.
    pub fn up(&self, sh: &Shell, log: &Path) -> Result<()> {
        let args = ["up", "--detach", "--remove-orphans"];
        let command: Command = self.compose.cmd(sh, &args).into();
        crate::live::status("starting services", Some(log));
        exec::run_logged(command, log, self.ui.verbose).context("starting the cluster")
    }

    /// Every container of this compose project, one-off ones included.
    pub fn containers(&self, sh: &Shell) -> Result<Vec<Container>> {
        let docker = &self.docker;
        let filter = format!("label={PROJECT_LABEL}={}", self.compose.project);
        let format = "{{.ID}}\t{{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}\t{{.Label \"com.docker.compose.oneoff\"}}";
        let out = exec::echo(
            self.ui,
            cmd!(
                sh,
                "{docker} ps --all --no-trunc --filter {filter} --format {format}"
            ),
        )
        .read()
        .context("listing the cluster's containers")?;
        Ok(parse_ps(&out))
    }

    /// The long-running containers: one-off ones (the tests) left out.
    pub fn long_running(&self, sh: &Shell) -> Result<Vec<Container>> {
        let mut all = self.containers(sh)?;
        all.retain(|c| !c.oneoff);
        Ok(all)
    }

    fn service_container(&self, sh: &Shell, service: &str) -> Result<Option<Container>> {
        Ok(self
            .containers(sh)?
            .into_iter()
            .find(|c| c.service == service && !c.oneoff))
    }

    /// The output of `probe.py WHAT` in `c`, when it is running and answers.
    pub(super) fn probe(&self, sh: &Shell, c: &Container, what: &str) -> Option<String> {
        if c.state != "running" {
            return None;
        }
        let docker = &self.docker;
        let id = &c.id;
        cmd!(sh, "{docker} exec {id} python3 {PROBE} {what}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
    }

    /// `probe.py watch` in the scheduler's container, given until `deadline`.
    pub(super) fn watch(&self, scheduler: &Container, deadline: Instant) -> Result<exec::Lines> {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs() + 1;
        let size = self.size;
        let mut command = Command::new(&self.docker);
        command.args(["exec", &scheduler.id, "python3", PROBE, "watch"]);
        command.args([size.workers, size.worker_cpus, size.engines].map(|n| n.to_string()));
        command.arg(left.to_string());
        exec::start_lines(command, self.ui).context("starting the readiness probe")
    }

    pub fn last_lines(&self, sh: &Shell, id: &str, n: usize) -> String {
        let docker = &self.docker;
        let n_s = n.to_string();
        match cmd!(sh, "{docker} logs --tail {n_s} {id}")
            .quiet()
            .ignore_status()
            .output()
        {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                tail(&text, n)
            }
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// Start `pytest` (see [`super::pytest_command`]) in the tests
    /// container, its output going to `log`; no test runs before
    /// [`declare_ready`] writes the ready file into `results` (the harness
    /// waits for it), so the container can start and collect while the
    /// cluster is still coming up. The harness writes its timeline there too.
    pub fn start_tests(
        &self,
        sh: &Shell,
        pytest: &[String],
        log: &Path,
    ) -> Result<exec::Background> {
        let ready = format!("DIST_TEST_READY_FILE=/results/{READY_FILE}");
        let timeline = format!("DIST_TEST_TIMELINE=/results/{TIMELINE_FILE}");
        let mut args: Vec<&str> = vec!["run", "--rm", "-T", "--no-deps"];
        args.extend(["-e", &ready, "-e", &timeline, "tests"]);
        args.extend(pytest.iter().map(String::as_str));
        let command: Command = self.compose.cmd(sh, &args).into();
        exec::start_logged(command, log, self.ui).context("starting the tests container")
    }

    /// The services among `containers` that are not running, with their
    /// exit codes and last lines.
    pub fn dead_services(&self, sh: &Shell, containers: &[Container]) -> Vec<DeadService> {
        let mut dead = Vec::new();
        for c in containers {
            if c.oneoff || c.state == "running" {
                continue;
            }
            dead.push(DeadService {
                service: c.service.clone(),
                state: c.status.clone(),
                exit_code: exit_code_of(&c.status),
                last_lines: self.last_lines(sh, &c.id, 20),
            });
        }
        dead
    }

    /// Host addresses of published ports, as `8786/tcp -> 127.0.0.1:49153`.
    pub fn published(&self, sh: &Shell) -> Result<Vec<String>> {
        let Some(c) = self.service_container(sh, "scheduler")? else {
            return Ok(vec![]);
        };
        let docker = &self.docker;
        let id = &c.id;
        let out = cmd!(sh, "{docker} port {id}")
            .quiet()
            .read()
            .context("reading published ports")?;
        Ok(out.lines().map(String::from).collect())
    }

    /// The log of each of `containers`, one file each, in `dir`, all read at once.
    pub fn save_logs(&self, containers: &[Container], dir: &Path) -> Result<usize> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let commands = containers
            .iter()
            .map(|c| {
                let name = if c.oneoff {
                    format!("{}-run", c.service)
                } else {
                    c.service.clone()
                };
                let mut logs = Command::new(&self.docker);
                logs.args(["logs", "--timestamps", &c.id]);
                (logs, dir.join(format!("{name}.log")))
            })
            .collect();
        exec::run_all_to_files(commands)
    }

    /// Remove every container, network and volume of this project. Safe to
    /// repeat; runs in its own process group so a second Ctrl-C cannot cut it.
    pub fn down(&self, sh: &Shell) -> Result<()> {
        let command: Command = self
            .compose
            .cmd(
                sh,
                &["down", "--volumes", "--remove-orphans", "--timeout", "5"],
            )
            .into();
        let out = exec::output_in_own_group(command, self.ui).context("running compose down")?;
        // Whatever compose missed (a one-off container, a half-created
        // network), remove by label.
        let leftovers = sweep(
            sh,
            &self.docker,
            &format!("label={PROJECT_LABEL}={}", self.compose.project),
        )?;
        if !out.status.success() && leftovers > 0 {
            bail!(
                "compose down failed: {}",
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            );
        }
        Ok(())
    }
}

pub fn parse_ps(out: &str) -> Vec<Container> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 || f[0].is_empty() {
                return None;
            }
            Some(Container {
                id: f[0].to_string(),
                service: f[1].to_string(),
                state: f[2].to_string(),
                status: f[3].to_string(),
                oneoff: f.get(4).is_some_and(|v| v.eq_ignore_ascii_case("true")),
            })
        })
        .collect()
}

/// `Exited (137) 5 seconds ago` -> 137.
pub fn exit_code_of(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::Flavour;
    use crate::tools::{Docker, Tools};

    #[test]
    fn a_cluster_is_its_spec_and_mounts_on_the_command_line() {
        let sh = Shell::new().unwrap();
        let ws = crate::workspace::for_tests();
        let tools = Tools {
            docker: Docker {
                cli: "/usr/bin/docker".into(),
                builder: None,
            },
            compose: Flavour::Standalone {
                bin: "/usr/bin/docker-compose".into(),
                version: "1.29.2".into(),
            },
        };
        let size = Size {
            workers: 3,
            engines: 1,
            worker_cpus: 2,
        };
        let spec = Spec::new(&ws, "ltdist-repo-0123abcd-r1".into(), size, true);
        let cx = Ctx {
            sh: &sh,
            ui: Ui::default(),
            tools,
            ws,
        };
        let mounts = Mounts {
            source: "/src/LiberTEM".into(),
            data: "/data/lt".into(),
            results: "/repo/target/dist-test/runs/1/pytest".into(),
        };
        let cluster = Cluster::new(&cx, &spec, &mounts);
        assert_eq!(
            cluster.compose.cmd(&sh, &["up", "--detach"]).to_string(),
            "/usr/bin/docker-compose --file /repo/packaging/docker/docker-compose.yml \
             --file /repo/target/dist-test/size-3x1.yml --file /repo/packaging/docker/publish.yml \
             --project-name ltdist-repo-0123abcd-r1 up --detach"
        );
        let env = &cluster.compose.env;
        for (k, v) in [
            ("LT_IMAGE", "ltdist-repo-0123abcd:latest"),
            ("LT_SOURCE_DIR", "/src/LiberTEM"),
            ("LT_DATA_DIR", "/data/lt"),
            ("LT_RESULTS_DIR", "/repo/target/dist-test/runs/1/pytest"),
            ("LT_CHECKOUT", "ltdist-repo-0123abcd"),
            ("LT_WORKER_CPUS", "2"),
            ("LT_ENGINES", "1"),
        ] {
            assert!(env.contains(&(k.into(), v.into())), "{k}={v} in {env:?}");
        }
    }

    #[test]
    fn ps_lines() {
        let out = "abc\tscheduler\trunning\tUp 5 seconds (healthy)\tFalse\n\
                   def\ttests\texited\tExited (1) 2 seconds ago\tTrue\n\n";
        let c = parse_ps(out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].service, "scheduler");
        assert!(!c[0].oneoff);
        assert!(c[1].oneoff);
        assert_eq!(exit_code_of(&c[1].status), Some(1));
        assert_eq!(exit_code_of("Up 3 minutes"), None);
    }
}
