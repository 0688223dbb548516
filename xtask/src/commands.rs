//! One `run` per subcommand, built from the shared steps below.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::cli::{
    Build, Completions, DistTest, Doctor, Down, Logs, ProjectArg, SizeArgs, Status, Test, Up,
    UpdateReqs,
};
use crate::cluster::{self, Cluster, Size};
use crate::image;
use crate::interrupt;
use crate::project::Project;
use crate::report::{self, Phases, Summary};
use crate::reqs::{self, Upgrade};
use crate::tools::{self, Tools};
use crate::ui;
use crate::workspace::{Location, Workspace};

/// The exit code a command wants, after it has reported everything itself.
#[derive(Debug)]
pub struct ExitCode(pub i32);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitCode {}

/// Tools present and the engine up: everything that touches Docker starts here.
fn docker_ready(sh: &Shell) -> Result<Tools> {
    let tools = tools::detect(sh)?;
    tools.docker.check_engine(sh)?;
    Ok(tools)
}

fn size(ws: &Workspace, args: &SizeArgs) -> Size {
    Size {
        workers: args.workers.unwrap_or(ws.config.cluster.workers),
        engines: args.engines.unwrap_or(ws.config.cluster.engines),
        worker_cpus: ws.config.cluster.worker_cpus,
    }
}

/// `TESTDATA_BASE_PATH` when set (it must exist), else an empty folder.
fn data_dir(ws: &Workspace) -> Result<PathBuf> {
    match std::env::var_os("TESTDATA_BASE_PATH") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            match fs::canonicalize(&p) {
                Ok(real) if real.is_dir() => Ok(real),
                _ => bail!(
                    "TESTDATA_BASE_PATH={} is not a folder: point it at LiberTEM's test data, or unset it \
                     (the tests that need detector files are then skipped)",
                    p.display()
                ),
            }
        }
        _ => {
            let empty = ws.target.join("no-test-data");
            fs::create_dir_all(&empty).with_context(|| format!("creating {}", empty.display()))?;
            Ok(empty)
        }
    }
}

/// The project under test and its current requirements file. For the pinned
/// default a stale file is an error (it is committed); for a checkout it is
/// regenerated.
fn project_and_reqs(sh: &Shell, ws: &Workspace, arg: &ProjectArg) -> Result<(Project, PathBuf)> {
    let project = Project::resolve(sh, ws, arg.project.as_deref())?;
    if project.default {
        reqs::check(ws, &project)?;
    } else if reqs::check(ws, &project).is_err() {
        ui::say("requirements of the checkout changed: resolving them again");
        reqs::update(sh, ws, &project, &Upgrade::None)
            .context("resolving the checkout's requirements")?;
    }
    let path = reqs::requirements_path(ws, &project);
    Ok((project, path))
}

fn build_image(
    sh: &Shell,
    tools: &Tools,
    ws: &Workspace,
    project: &Project,
    reqs: &Path,
    log: &Path,
) -> Result<()> {
    let base = image::ensure_base(sh, tools, ws, &ui::say).context("preparing the base image")?;
    interrupt::check()?;
    image::build(sh, tools, ws, project, reqs, &base, log, ui::verbose())
}

/// The results folder is written by the tests container's user (uid 1000),
/// which need not be the host user.
fn results_dir(run_dir: &Path) -> Result<PathBuf> {
    let dir = run_dir.join("pytest");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
    }
    Ok(dir)
}

impl DistTest {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        tools.docker.builder()?;
        let ws = Workspace::load(loc)?;
        let data = data_dir(&ws)?;
        let size = size(&ws, &self.size);
        let (project, reqs) = project_and_reqs(sh, &ws, &self.project)?;

        let run = Run::new(&ws)?;
        ui::group(&format!("dist-test {}: {}", run.id, project.dir.display()));
        let mut phases = Phases::default();
        let quiet = ui::quiet();

        let built = phases.time("build", quiet, || {
            build_image(
                sh,
                &tools,
                &ws,
                &project,
                &reqs,
                &image::build_log(&run.dir),
            )
        });
        let cluster = Cluster::new(
            &ws,
            &tools,
            ws.run_project(&run.id),
            size,
            &data,
            &run.results,
            self.size.publish,
        )?;
        let mut pytest_code = None;
        let outcome = built.and_then(|()| {
            interrupt::check()?;
            phases.time("up", quiet, || cluster.up(sh, &run.dir.join("up.log")))?;
            let ready = Duration::from_secs(ws.config.timeouts.ready_s);
            phases.time("ready", quiet, || cluster.wait_ready(sh, ready))?;
            if self.size.publish {
                for p in cluster.published(sh)? {
                    ui::say(&format!("published: {p}"));
                }
            }
            interrupt::check()?;
            pytest_code = run.tests(sh, &ws, &cluster, &self.pytest_args, &mut phases)?;
            Ok(())
        });

        // Whatever happened: keep every service's log, see what died, tear down.
        let dead = run.collect(sh, &cluster);
        if self.keep {
            ui::say(&format!(
                "--keep: cluster {} left running",
                cluster.compose.project
            ));
        } else if let Err(e) = phases.time("teardown", quiet, || cluster.down(sh)) {
            eprintln!("error: tearing down: {e:#}");
        }
        ui::end_group();
        run.conclude(
            &project.dir.display().to_string(),
            &cluster,
            dead,
            &phases,
            outcome,
            pytest_code,
        )
    }
}

/// One run of the tests container: its folder under target/dist-test/runs,
/// and what `dist-test` and `test` do alike before and after the tests.
struct Run {
    id: String,
    dir: PathBuf,
    results: PathBuf,
}

impl Run {
    fn new(ws: &Workspace) -> Result<Run> {
        let id = report::new_run_id();
        let dir = report::new_run_dir(&ws.target, &id)?;
        let results = results_dir(&dir)?;
        Ok(Run { id, dir, results })
    }

    /// Run pytest, timed as the `tests` phase; its exit code. A timeout or a
    /// signal is an error.
    fn tests(
        &self,
        sh: &Shell,
        ws: &Workspace,
        cluster: &Cluster,
        pytest_args: &[String],
        phases: &mut Phases,
    ) -> Result<Option<i32>> {
        let limit = Duration::from_secs(ws.config.timeouts.tests_s);
        let log = self.dir.join("pytest.log");
        let code = phases.time_streaming("tests", ui::quiet(), || {
            cluster.run_tests(sh, pytest_args, &log, limit)
        })?;
        match code {
            None => bail!("the tests did not finish within {} s", limit.as_secs()),
            Some(_) => interrupt::check().map(|()| code),
        }
    }

    /// Every service's log, and the services that died.
    fn collect(&self, sh: &Shell, cluster: &Cluster) -> Vec<report::DeadService> {
        let dead = cluster.dead_services(sh).unwrap_or_default();
        let _ = cluster.save_logs(sh, &self.dir.join("logs"));
        dead
    }

    /// Write summary.json, print the result, and turn it into the exit code:
    /// pytest's, 1 when the run failed around it or a service died, 130
    /// after a signal.
    fn conclude(
        &self,
        project: &str,
        cluster: &Cluster,
        dead: Vec<report::DeadService>,
        phases: &Phases,
        outcome: Result<()>,
        pytest_code: Option<i32>,
    ) -> Result<()> {
        let junit = fs::read_to_string(self.results.join("junit.xml")).unwrap_or_default();
        let counts = report::parse_junit(&junit);
        let mut exit_code = match (&outcome, pytest_code) {
            _ if interrupt::interrupted() => 130,
            (Ok(()), Some(c)) => c,
            (Err(_), Some(c)) if c != 0 => c,
            _ => 1,
        };
        if !dead.is_empty() && exit_code == 0 {
            exit_code = 1;
        }
        let summary = Summary {
            run_id: self.id.clone(),
            project: project.to_string(),
            compose_project: cluster.compose.project.clone(),
            counts: counts.clone(),
            exit_code,
            phases: phases.clone(),
            dead_services: dead.clone(),
            error: outcome.as_ref().err().map(|e| format!("{e:#}")),
        };
        let path = self.dir.join("summary.json");
        fs::write(&path, summary.to_json())
            .with_context(|| format!("writing {}", path.display()))?;

        for d in &dead {
            eprintln!(
                "error: service {} died during the run ({}); last lines:\n{}",
                d.service, d.state, d.last_lines
            );
        }
        let line: Vec<String> = phases
            .0
            .iter()
            .map(|(n, s)| format!("{n} {s:.1}s"))
            .collect();
        eprintln!("phases: {}", line.join(", "));
        eprintln!(
            "result: {} passed, {} failed, {} skipped, {} errors; exit code {exit_code}",
            counts.passed, counts.failed, counts.skipped, counts.errors
        );
        for (reason, n) in &counts.skip_reasons {
            eprintln!("  skipped {n}x: {reason}");
        }
        eprintln!("results and logs: {}", self.dir.display());
        if let Err(e) = outcome {
            eprintln!("error: {e:#}");
        }
        if exit_code != 0 {
            return Err(ExitCode(exit_code).into());
        }
        Ok(())
    }
}

impl UpdateReqs {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let ws = Workspace::load(loc)?;
        if self.check {
            // Checking needs neither the sdist nor the network.
            let project = match &self.project.project {
                Some(p) => Project {
                    dir: crate::project::checkout(p)?,
                    default: false,
                },
                None => Project {
                    dir: PathBuf::new(),
                    default: true,
                },
            };
            reqs::check(&ws, &project)?;
            ui::say(&format!(
                "{} is up to date",
                reqs::requirements_path(&ws, &project).display()
            ));
            return Ok(());
        }
        let project = Project::resolve(sh, &ws, self.project.project.as_deref())?;
        let upgrade = if self.upgrade {
            Upgrade::All
        } else if !self.upgrade_package.is_empty() {
            Upgrade::Packages(self.upgrade_package.clone())
        } else {
            Upgrade::None
        };
        let start = Instant::now();
        let path = reqs::update(sh, &ws, &project, &upgrade)?;
        ui::say(&format!(
            "wrote {} in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

impl Build {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        tools.docker.builder()?;
        let ws = Workspace::load(loc)?;
        let (project, reqs) = project_and_reqs(sh, &ws, &self.project)?;
        let log = ws.target.join("build.log");
        let mut phases = Phases::default();
        phases.time("build", ui::quiet(), || {
            build_image(sh, &tools, &ws, &project, &reqs, &log)
        })?;
        Ok(())
    }
}

/// The long-lived cluster of this checkout, as `up`, `status`, `logs`,
/// `test` and `down` see it.
fn checkout_cluster(ws: &Workspace, tools: &Tools, size: Size, publish: bool) -> Result<Cluster> {
    let data = data_dir(ws)?;
    let results = results_dir(&ws.target.join("cluster"))?;
    Cluster::new(
        ws,
        tools,
        ws.cluster_project(),
        size,
        &data,
        &results,
        publish,
    )
}

/// A handle on an existing cluster for commands that only look at it or
/// remove it (status, logs, down): the data and results folders it was
/// started with do not matter to them, so a `TESTDATA_BASE_PATH` gone bad
/// since cannot get in the way.
fn existing_cluster(ws: &Workspace, tools: &Tools, project: String, size: Size) -> Result<Cluster> {
    Cluster::new(
        ws,
        tools,
        project,
        size,
        &ws.target,
        &ws.target,
        saved_publish(ws),
    )
}

/// Was the running cluster started with `--publish`? Later commands must
/// name the same compose files, or compose would see a changed service.
fn saved_publish(ws: &Workspace) -> bool {
    fs::read_to_string(ws.target.join("cluster").join("size"))
        .map(|t| t.contains("publish"))
        .unwrap_or(false)
}

/// The size the running cluster was started with, so that later commands
/// (status, test) wait for the right number of workers and engines.
fn saved_size(ws: &Workspace) -> Size {
    let default = size(ws, &SizeArgs::default());
    let text = fs::read_to_string(ws.target.join("cluster").join("size")).unwrap_or_default();
    let mut it = text.split_whitespace().filter_map(|v| v.parse().ok());
    match (it.next(), it.next()) {
        (Some(workers), Some(engines)) => Size {
            workers,
            engines,
            ..default
        },
        _ => default,
    }
}

impl Up {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        tools.docker.builder()?;
        let ws = Workspace::load(loc)?;
        let size = size(&ws, &self.size);
        let (project, reqs) = project_and_reqs(sh, &ws, &self.project)?;
        let cluster = checkout_cluster(&ws, &tools, size, self.size.publish)?;
        let dir = ws.target.join("cluster");
        let quiet = ui::quiet();
        let mut phases = Phases::default();
        phases.time("build", quiet, || {
            build_image(sh, &tools, &ws, &project, &reqs, &dir.join("build.log"))
        })?;
        fs::write(
            dir.join("size"),
            format!("{} {}\n", size.workers, size.engines),
        )?;
        phases.time("up", quiet, || cluster.up(sh, &dir.join("up.log")))?;
        let ready = Duration::from_secs(ws.config.timeouts.ready_s);
        phases.time("ready", quiet, || cluster.wait_ready(sh, ready))?;
        ui::say(&format!(
            "cluster {} is ready: {} workers, {} engines; `cargo xtask test` runs the suite against it",
            cluster.compose.project, size.workers, size.engines
        ));
        for p in cluster.published(sh)? {
            ui::say(&format!("published: {p}"));
        }
        Ok(())
    }
}

impl Status {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        let ws = Workspace::load(loc)?;
        let size = saved_size(&ws);
        let cluster = existing_cluster(&ws, &tools, ws.cluster_project(), size)?;
        let containers = cluster.containers(sh)?;
        if containers.is_empty() {
            println!(
                "cluster {}: not running (`cargo xtask up` starts it)",
                cluster.compose.project
            );
            return Err(ExitCode(3).into());
        }
        println!("cluster {}", cluster.compose.project);
        let order = size.services();
        let mut shown: Vec<&cluster::Container> = containers.iter().filter(|c| !c.oneoff).collect();
        shown.sort_by_key(|c| {
            order
                .iter()
                .position(|s| *s == c.service)
                .unwrap_or(usize::MAX)
        });
        for c in shown {
            println!("  {:<16} {:<9} {}", c.service, c.state, c.status);
        }
        let hosts = cluster.ready_dask_hosts(sh).unwrap_or_default();
        let engines = cluster.engine_count(sh).unwrap_or(0);
        let workers_ok = size.worker_hosts().iter().all(|h| hosts.contains(h));
        println!(
            "  dask workers     {}/{} hosts registered",
            hosts.len(),
            size.workers
        );
        println!(
            "  ipyparallel      {}/{} engines registered",
            engines, size.engines
        );
        let all_running = size.services().iter().all(|s| {
            containers
                .iter()
                .any(|c| &c.service == s && c.state == "running")
        });
        if workers_ok && engines >= size.engines && all_running {
            println!("ready");
            Ok(())
        } else {
            println!("not ready");
            Err(ExitCode(1).into())
        }
    }
}

impl Logs {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        let ws = Workspace::load(loc)?;
        let size = saved_size(&ws);
        let known = size.services();
        if let Some(bad) = self
            .services
            .iter()
            .find(|s| !known.contains(s) && s.as_str() != "tests")
        {
            bail!(
                "unknown service {bad:?}: the services are {}",
                known.join(", ")
            );
        }
        let cluster = existing_cluster(&ws, &tools, ws.cluster_project(), size)?;
        let mut args = vec!["logs", "--timestamps"];
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            args.push("--no-color");
        }
        if self.follow {
            args.push("--follow");
        }
        args.extend(self.services.iter().map(String::as_str));
        let mut command: std::process::Command = cluster.compose.cmd(sh, &args).into();
        let status = command.status().context("running compose logs")?;
        if !status.success() {
            return Err(ExitCode(status.code().unwrap_or(1)).into());
        }
        Ok(())
    }
}

impl Test {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        let ws = Workspace::load(loc)?;
        let size = saved_size(&ws);
        let data = data_dir(&ws)?;
        let project = ws.cluster_project();
        let probe = existing_cluster(&ws, &tools, project.clone(), size)?;
        if probe.containers(sh)?.is_empty() {
            bail!("no cluster is running for this checkout: start one with `cargo xtask up`");
        }
        let run = Run::new(&ws)?;
        let cluster = Cluster::new(
            &ws,
            &tools,
            project,
            size,
            &data,
            &run.results,
            saved_publish(&ws),
        )?;
        let mut phases = Phases::default();
        let mut pytest_code = None;
        let outcome = phases
            .time("ready", ui::quiet(), || {
                cluster.wait_ready(sh, Duration::from_secs(ws.config.timeouts.ready_s))
            })
            .and_then(|()| {
                pytest_code = run.tests(sh, &ws, &cluster, &self.pytest_args, &mut phases)?;
                Ok(())
            });
        let dead = run.collect(sh, &cluster);
        run.conclude(
            "the running cluster",
            &cluster,
            dead,
            &phases,
            outcome,
            pytest_code,
        )
    }
}

impl Down {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let tools = docker_ready(sh)?;
        let ws = Workspace::load(loc)?;
        let size = saved_size(&ws);
        let mut projects = vec![ws.cluster_project()];
        if self.all {
            for p in cluster::checkout_projects(sh, &tools.docker.cli, &ws.checkout_id)? {
                if !projects.contains(&p) {
                    projects.push(p);
                }
            }
        }
        let mut phases = Phases::default();
        for p in projects {
            let cluster = existing_cluster(&ws, &tools, p.clone(), size)?;
            phases.time("teardown", ui::quiet(), || {
                cluster.down(sh).with_context(|| format!("removing {p}"))
            })?;
        }
        if self.all {
            let left = cluster::sweep(
                sh,
                &tools.docker.cli,
                &format!("label={}={}", image::CHECKOUT_LABEL, ws.checkout_id),
            )?;
            if left > 0 {
                bail!("{left} objects of this checkout could not be removed; see `docker ps -a`");
            }
        }
        Ok(())
    }
}

impl Doctor {
    pub fn run(self, sh: &Shell, loc: &Location) -> Result<()> {
        let problems = crate::doctor::run(sh, loc);
        if problems > 0 {
            return Err(ExitCode(1).into());
        }
        Ok(())
    }
}

impl Completions {
    pub fn run(self) -> Result<()> {
        use clap::CommandFactory;
        let shell: clap_complete::Shell = self.shell.parse().map_err(|_| {
            anyhow::anyhow!(
                "unknown shell {:?}: use bash, zsh, fish, elvish or powershell",
                self.shell
            )
        })?;
        clap_complete::generate(
            shell,
            &mut crate::cli::Cli::command(),
            "cargo-xtask",
            &mut std::io::stdout(),
        );
        Ok(())
    }
}
