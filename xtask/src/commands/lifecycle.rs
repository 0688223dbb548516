//! The long-lived cluster of this checkout, for debugging: `build`, `up`,
//! `status`, `logs`, `test` and `down`. `up` saves what it started
//! ([`ClusterState`]); the others address that same cluster.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{build_image, project_and_reqs, swarm_cluster};
use crate::cli::{Build, Down, Logs, Status, Test, Up};
use crate::cluster::{self, Cluster, Mounts, Readiness, Size, Spec, Verdict};
use crate::context::{Ctx, Invocation, Needs};
use crate::exec;
use crate::phases::Phases;
use crate::project::Project;
use crate::run::{results_dir, ExitCode, Run};
use crate::state::ClusterState;
use crate::testdata::Plan;
use crate::workspace::CHECKOUT_LABEL;

impl Build {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let (project, reqs) = project_and_reqs(&cx, &self.project)?;
        let log = cx.ws.target.join("build.log");
        let mut phases = Phases::default();
        phases.time("build", cx.ui, || build_image(&cx, &project, &reqs, &log))?;
        Ok(())
    }
}

/// The checkout's cluster as `up` started it; without a saved state, as
/// `up` would start it by default. The project, when known.
fn saved(cx: &Ctx) -> Result<(Spec, Option<String>)> {
    Ok(match ClusterState::load(&cx.ws)? {
        Some(state) => (state.spec, Some(state.project.display().to_string())),
        None => (default_spec(cx), None),
    })
}

fn default_spec(cx: &Ctx) -> Spec {
    let size = Size::from_config(&cx.ws.config.cluster, None, None);
    Spec::new(&cx.ws, cx.ws.cluster_project(), size, false)
}

/// A handle for commands that only look at a cluster or remove it (status,
/// logs, down): the data and results folders it was started with do not
/// matter to them, so a `TESTDATA_BASE_PATH` gone bad since cannot get in
/// the way.
fn existing(cx: &Ctx, spec: &Spec) -> Cluster {
    let mounts = Mounts {
        source: cx.ws.target.clone(),
        data: cx.ws.target.clone(),
        results: cx.ws.target.clone(),
    };
    Cluster::new(cx, spec, &mounts)
}

impl Up {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        if self.swarm {
            return swarm_cluster::up(&cx, &self);
        }
        if let Some(s) = ClusterState::load(&cx.ws)?.and_then(|s| s.swarm) {
            bail!(
                "this checkout's cluster is the swarm stack {}: `cargo xtask down` it before `up` on compose",
                s.stack
            );
        }
        let size = Size::from_config(&cx.ws.config.cluster, self.size.workers, self.size.engines);
        let (project, reqs) = project_and_reqs(&cx, &self.project)?;
        let dir = cx.ws.cluster_dir();
        let plan = Plan::from_env(self.data.no_testdata)?;
        let data = plan.data(&cx.ws)?;
        let mounts = Mounts {
            source: project.dir.clone(),
            data: data.path.clone(),
            results: results_dir(&dir)?,
        };
        let spec = Spec::new(&cx.ws, cx.ws.cluster_project(), size, self.size.publish);
        let mut cluster = Cluster::new(&cx, &spec, &mounts);
        let mut phases = Phases::default();
        let runtime = phases.time("build", cx.ui, || {
            build_image(&cx, &project, &reqs, &dir.join("build.log"))?;
            crate::runtime::ensure(&cx)
        })?;
        cluster.use_runtime(runtime);
        phases.time("testdata", cx.ui, || {
            plan.prepare(&cx, &cx.ws.image_tag(), Some(&dir.join("testdata.log")))
        })?;
        crate::numba::ensure(&cx, &project.dir)?;
        spec.write_files(&cx.ws)?;
        ClusterState::new(project.dir.clone(), spec.clone(), data).save(&cx.ws)?;
        phases.time("up", cx.ui, || cluster.up(cx.sh, &dir.join("up.log")))?;
        let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
        phases.time("ready", cx.ui, || cluster.wait_ready(cx.sh, ready))?;
        cx.ui.say(&format!(
            "cluster {} is ready: {} workers, {} engines; `cargo xtask test` runs the suite against it",
            cluster.compose.project, size.workers, size.engines
        ));
        for p in cluster.published(cx.sh)? {
            cx.ui.say(&format!("published: {p}"));
        }
        Ok(())
    }
}

impl Status {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        if let Some((state, sw)) = swarm_cluster::saved(&cx, self.swarm)? {
            return swarm_cluster::status(&cx, &state, &sw);
        }
        let (spec, _) = saved(&cx)?;
        let cluster = existing(&cx, &spec);
        let now = Readiness::probe(&cluster, cx.sh)?;
        if now.containers.is_empty() {
            println!(
                "cluster {}: not running (`cargo xtask up` starts it)",
                cluster.compose.project
            );
            return Err(ExitCode(3).into());
        }
        println!("cluster {}", cluster.compose.project);
        let order = spec.size.services();
        let mut shown: Vec<&cluster::Container> = now.containers.iter().collect();
        shown.sort_by_key(|c| {
            order
                .iter()
                .position(|s| *s == c.service)
                .unwrap_or(usize::MAX)
        });
        for c in shown {
            println!("  {:<16} {:<9} {}", c.service, c.state, c.status);
        }
        println!(
            "  dask workers     {}/{} hosts registered",
            now.hosts.len(),
            spec.size.workers
        );
        println!(
            "  ipyparallel      {}/{} engines registered",
            now.engines, spec.size.engines
        );
        if now.verdict() == Verdict::Ready {
            println!("ready");
            Ok(())
        } else {
            println!("not ready");
            Err(ExitCode(1).into())
        }
    }
}

impl Logs {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        if let Some((state, sw)) = swarm_cluster::saved(&cx, self.swarm)? {
            return swarm_cluster::logs(&cx, &state, &sw, &self.services, self.follow);
        }
        let (spec, _) = saved(&cx)?;
        let known = spec.size.services();
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
        spec.write_files(&cx.ws)?;
        let cluster = existing(&cx, &spec);
        let mut args = vec!["logs", "--timestamps"];
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            args.push("--no-color");
        }
        if self.follow {
            args.push("--follow");
        }
        args.extend(self.services.iter().map(String::as_str));
        let command = cluster.compose.cmd(cx.sh, &args).into();
        let status = exec::status_on_terminal(command, cx.ui).context("running compose logs")?;
        if !status.success() {
            return Err(ExitCode(status.code().unwrap_or(1)).into());
        }
        Ok(())
    }
}

impl Test {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        if let Some((state, sw)) = swarm_cluster::saved(&cx, self.swarm)? {
            return swarm_cluster::test(&cx, &state, &sw, &self.pytest_args);
        }
        let state = ClusterState::load(&cx.ws)?;
        let (spec, project) = saved(&cx)?;
        if existing(&cx, &spec).containers(cx.sh)?.is_empty() {
            bail!("no cluster is running for this checkout: start one with `cargo xtask up`");
        }
        // The tests container mounts the source and data the cluster was
        // started with (without a saved state: the defaults).
        let (source, data) = match state {
            Some(s) => (s.project, s.data),
            None => (
                Project::resolve(cx.sh, &cx.ws, cx.ui, None)?.dir,
                Plan::from_env(false)?.data(&cx.ws)?,
            ),
        };
        let mut run = Run::new(&cx.ws)?;
        spec.write_files(&cx.ws)?;
        let mounts = Mounts {
            source,
            data: data.path.clone(),
            results: run.results.clone(),
        };
        run.data = Some(data);
        let mut cluster = Cluster::new(&cx, &spec, &mounts);
        cluster.use_runtime(crate::runtime::ensure(&cx)?);
        let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
        let outcome = run
            .start_tests(&cx, &cluster, &mounts, &self.pytest_args)
            .and_then(|pytest| {
                run.phases
                    .time("ready", cx.ui, || cluster.wait_ready(cx.sh, ready))?;
                run.tests(&cx, pytest)
            });
        let dead = run.collect(cx.sh, &cluster);
        let project = project.unwrap_or_else(|| "the running cluster".into());
        run.conclude(&project, &cluster, dead, outcome)
    }
}

impl Down {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        // The swarm stack first (its state is removed with the rest below).
        // Not reaching its manager keeps the state, so that a `down` with
        // DOCKER_HOST set can still find it. `down` is safe to repeat:
        // `--swarm` without a stack is no error.
        if matches!(
            ClusterState::load(&cx.ws),
            Ok(Some(ClusterState { swarm: Some(_), .. }))
        ) {
            if let Some((state, sw)) = swarm_cluster::saved(&cx, false)? {
                swarm_cluster::down(&cx, &state, &sw)
                    .with_context(|| format!("removing the stack {}", sw.stack))?;
            }
        }
        // A state it cannot read must not stop `down`: compose's
        // --remove-orphans and the sweep by label remove what it described.
        let spec = match saved(&cx) {
            Ok((spec, _)) => spec,
            Err(e) => {
                cx.ui
                    .say(&format!("{e:#}; taking the cluster down without it"));
                default_spec(&cx)
            }
        };
        let mut projects = vec![cx.ws.cluster_project()];
        if self.all {
            for p in cluster::checkout_projects(cx.sh, &cx.tools.docker.cli, &cx.ws.checkout_id)? {
                if !projects.contains(&p) {
                    projects.push(p);
                }
            }
        }
        spec.write_files(&cx.ws)?;
        let mut phases = Phases::default();
        for p in projects {
            let cluster = existing(
                &cx,
                &Spec {
                    compose_project: p.clone(),
                    ..spec.clone()
                },
            );
            phases.time("teardown", cx.ui, || {
                cluster.down(cx.sh).with_context(|| format!("removing {p}"))
            })?;
        }
        ClusterState::remove(&cx.ws)?;
        if self.all {
            let left = cluster::sweep(
                cx.sh,
                &cx.tools.docker.cli,
                &format!("label={CHECKOUT_LABEL}={}", cx.ws.checkout_id),
            )?;
            if left > 0 {
                bail!("{left} objects of this checkout could not be removed; see `docker ps -a`");
            }
        }
        Ok(())
    }
}
