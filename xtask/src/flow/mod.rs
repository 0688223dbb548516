//! The one flow, over either backend: what `dist-test`, `up`, `test` and
//! `build` do, step by step, with the checkout lock held exactly while they
//! change what the checkout's commands share (see checkout/mod.rs). Nothing
//! here asks which backend a cluster runs on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::checkout::lock::Lock;
use crate::checkout::runs::Registration;
use crate::checkout::{self};
use crate::cli::{DataArgs, ProjectArg, SizeArgs};
use crate::cluster;
use crate::cluster::attached::AttachTo;
use crate::cluster::spec::{Definition, Image, Kind, Mounts, Size};
use crate::cluster::state::{ClusterState, SCHEMA};
use crate::cluster::{freshness, Cluster};
use crate::config::WarmStart;
use crate::context::Ctx;
use crate::image;
use crate::interrupt;
use crate::phases::Phases;
use crate::project::Project;
use crate::python;
use crate::reqs::{self, Upgrade};
use crate::run::{repeat, results_dir, Run};
use crate::testdata::{Plan, TestData};
mod dist_test;

use dist_test::one_pass;
pub use dist_test::{dist_test, Keep};

/// What a command asks of the flow.
pub struct Request<'r> {
    pub project: &'r ProjectArg,
    pub size: Size,
    pub publish: bool,
    pub kind: Kind,
    /// Where the user's cluster is (`dist-test --attach`).
    pub attach: Option<AttachTo>,
    pub data: Plan,
    /// Each test's deadline (`--test-timeout`), when not the configured one.
    pub test_s: Option<u64>,
}

impl<'r> Request<'r> {
    /// What `dist-test` and `up` ask for, from their arguments.
    pub fn from_args(
        cx: &Ctx,
        project: &'r ProjectArg,
        size: &SizeArgs,
        data: &DataArgs,
        swarm: bool,
    ) -> Result<Request<'r>> {
        Ok(Request {
            project,
            size: Size::from_config(&cx.ws.config.cluster, size.workers, size.engines),
            publish: size.publish,
            kind: Kind::chosen(swarm, false),
            attach: None,
            data: Plan::from_env(data.no_testdata)?,
            test_s: None,
        })
    }
}

/// The project under test, its Python and its current requirements file.
/// For the pinned release a stale file is an error (it is committed); for
/// another release or a checkout it is resolved again. A Python with no
/// route to a base fails here, before anything is built. With the checkout
/// lock held.
pub fn project_and_reqs(cx: &Ctx, arg: &ProjectArg) -> Result<(Project, PathBuf)> {
    let (sh, ws) = (cx.sh, &cx.ws);
    // One listing of the engine's images, not an inspect per Python.
    let present: Vec<String> = (cx.docker.images(&[], false).unwrap_or_default())
        .iter()
        .map(|r| r.reference())
        .collect();
    let routes = python::routes(ws, &present);
    let project = Project::resolve(sh, ws, cx.ui, arg, &routes)?;
    image::check_route(&cx.docker, &cx.ws, &project.python.version)?;
    if project.is_pinned() {
        reqs::check(ws, &project)?;
    } else if reqs::check(ws, &project).is_err() {
        cx.ui.say(&format!(
            "requirements of {} for Python {} changed or are new: resolving them",
            project.dir.display(),
            project.python.version
        ));
        reqs::update(sh, ws, cx.ui, &project, &Upgrade::None)
            .context("resolving the project's requirements")?;
    }
    let path = reqs::requirements_path(ws, &project);
    Ok((project, path))
}

/// A waited-for lock shows in the run's phases, so that no phase hides it.
fn note_wait(phases: &mut Phases, lock: &Lock) {
    if lock.waited > Duration::from_millis(100) {
        phases.0.push(("wait".into(), lock.waited.as_secs_f64()));
    }
}

/// The steps that need the checkout lock, for one request.
struct Flow<'c, 'a> {
    cx: &'c Ctx<'a>,
    req: Request<'c>,
    project: Project,
    reqs: PathBuf,
    data: TestData,
}

impl<'c, 'a> Flow<'c, 'a> {
    /// Decided before anything is built: the project, its requirements,
    /// the data (a bad `--project` or `TESTDATA_BASE_PATH` fails here).
    fn start(cx: &'c Ctx<'a>, req: Request<'c>) -> Result<Flow<'c, 'a>> {
        let (project, reqs) = project_and_reqs(cx, req.project)?;
        let data = req.data.data(&cx.ws)?;
        Ok(Flow {
            cx,
            req,
            project,
            reqs,
            data,
        })
    }

    /// The `build` phase (the image, then what the backend needs besides
    /// it) and the `testdata` phase, for the cluster `name` whose results
    /// go to `results`; logs in `dir`. What the cluster uses is registered
    /// with the run in progress before the caller lets the lock go.
    fn build(
        &self,
        phases: &mut Phases,
        (name, results): (String, PathBuf),
        dir: &Path,
        registration: &mut Registration,
    ) -> Result<Box<dyn Cluster + 'a>> {
        let cx = self.cx;
        let (cluster, volumes) = phases.time("build", cx.ui, || {
            let image = image::build(
                &cx.docker,
                &cx.ws,
                &self.project,
                &self.reqs,
                &dir.join("build.log"),
            )?;
            let mut cluster = cluster::select(
                &cx.ws,
                &cx.docker,
                &cx.compose,
                self.req.kind,
                self.definition(name, image, results),
            )?;
            interrupt::check()?;
            let volumes = cluster.prepare(&cx.ws)?;
            Ok((cluster, volumes))
        })?;
        let def = cluster.definition();
        registration.uses(&def.name, std::slice::from_ref(&def.image.id), &volumes)?;
        phases.time("testdata", cx.ui, || {
            self.req.data.prepare(
                &cx.docker,
                &cx.ws,
                crate::testdata::RunsOn {
                    image: &def.image.id,
                    runtime: &def.image.runtime,
                },
                Some(&dir.join("testdata.log")),
            )
        })?;
        Ok(cluster)
    }

    /// Another cluster of `image` for the run (a `--fresh` pass), made
    /// ready to start with the checkout lock held, and registered.
    fn another(&self, name: String, image: Image, run: &mut Run) -> Result<Box<dyn Cluster + 'a>> {
        let cx = self.cx;
        let _lock = checkout::lock(&cx.ws, &cx.docker, "preparing a fresh cluster", cx.wait)?;
        let id = image.id.clone();
        let def = self.definition(name, image, run.results.clone());
        let mut cluster = cluster::select(&cx.ws, &cx.docker, &cx.compose, self.req.kind, def)?;
        let volumes = cluster.prepare(&cx.ws)?;
        let name = cluster.definition().name.clone();
        run.registration.uses(&name, &[id], &volumes)?;
        Ok(cluster)
    }

    /// What the checkout saves of `cluster` when it keeps it (`up`, or a
    /// run's `--keep`), for `status`, `logs`, `test` and `down`.
    fn kept_state(&self, cluster: &dyn Cluster) -> ClusterState {
        let def = cluster.definition();
        ClusterState {
            schema: SCHEMA,
            project: self.project.dir.clone(),
            name: def.name.clone(),
            size: def.size,
            publish: def.publish,
            image: def.image.clone(),
            python: Some(self.project.python.version.clone()),
            data: self.data.clone(),
            backend: cluster.backend(),
        }
    }

    fn definition(&self, name: String, image: Image, results: PathBuf) -> Definition {
        let ws = &self.cx.ws;
        let warm =
            name == ws.cluster_project() || ws.config.cluster.warm_start == WarmStart::Always;
        Definition {
            warm,
            attach: self.req.attach.clone(),
            name,
            size: self.req.size,
            publish: self.req.publish,
            image,
            mounts: Mounts {
                source: self.project.dir.clone(),
                data: self.data.path.clone(),
                results,
            },
        }
    }
}

/// The `up` and `ready` phases; the published addresses said.
fn up_and_ready(cx: &Ctx, cluster: &dyn Cluster, phases: &mut Phases, dir: &Path) -> Result<()> {
    phases.time("up", cx.ui, || cluster.up(&dir.join("up.log")))?;
    let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
    phases.time("ready", cx.ui, || cluster.ready(ready, None))?;
    for p in cluster.published() {
        cx.ui.say(&format!("published: {p}"));
    }
    Ok(())
}

/// `up`: the checkout's kept cluster, built, started and ready; its state
/// saved for `status`, `logs`, `test` and `down`.
pub fn up(cx: &Ctx, req: Request) -> Result<()> {
    let _kept = checkout::lock_kept(&cx.ws, "bringing the kept cluster up", cx.wait, cx.ui)?;
    if let Some(state) = ClusterState::load(&cx.ws)? {
        if state.backend.kind() != req.kind {
            bail!(
                "this checkout's kept cluster {} runs on {}: `cargo xtask down` it first",
                state.name,
                state.backend.describe()
            );
        }
    }
    // A bad `--project` is one line, before any wait for the lock.
    crate::project::check_arg(req.project)?;
    let lock = checkout::lock(&cx.ws, &cx.docker, "building", cx.wait)?;
    let flow = Flow::start(cx, req)?;
    cx.ui.say(&flow.project.python.describe());
    let dir = cx.ws.cluster_dir();
    let target = (cx.ws.cluster_project(), results_dir(&dir)?);
    let mut registration = Registration::new(&cx.ws, &crate::run::new_run_id())?;
    let mut phases = Phases::default();
    note_wait(&mut phases, &lock);
    let cluster = flow.build(&mut phases, target, &dir, &mut registration)?;
    let def = cluster.definition();
    // Before the services start: an edit from here on is newer than what
    // they import, and restarts them on the next `test`.
    let imported = freshness::Imported::of(&flow.project.dir)?;
    imported.save(&cx.ws)?;
    flow.kept_state(cluster.as_ref()).save(&cx.ws)?;
    drop(lock);
    up_and_ready(cx, cluster.as_ref(), &mut phases, &dir)?;
    let size = def.size;
    cx.ui.say(&format!(
        "cluster {} is ready on {}: {} workers, {} engines; `cargo xtask test` runs the suite against it",
        def.name,
        cluster.backend().describe(),
        size.workers,
        size.engines
    ));
    Ok(())
}

/// `test --watch`: [`test`], then again after each change to the project's
/// source, until Ctrl-C; a failed run does not end the loop.
pub fn test_watch(cx: &Ctx, pytest_args: &[String], test_s: Option<u64>) -> Result<()> {
    loop {
        match test(cx, pytest_args, repeat::Plan::default(), test_s) {
            Err(e) if e.downcast_ref::<crate::run::ExitCode>().is_none() => return Err(e),
            _ => {}
        }
        let state = ClusterState::load(&cx.ws)?.context("the kept cluster is gone")?;
        let stamp = freshness::Imported::load(&cx.ws)
            .map(|imported| imported.stamp())
            .unwrap_or_default();
        cx.ui.say(&format!(
            "--watch: waiting for a change under {} (Ctrl-C ends)",
            state.project.display()
        ));
        freshness::wait_for_change(&state, &stamp)?;
    }
}

/// `test`: the suite against the kept cluster, as a run of its own; its
/// workers and engines restarted first when the project's source changed
/// since they started (see [`freshness`]).
pub fn test(
    cx: &Ctx,
    pytest_args: &[String],
    plan: repeat::Plan,
    test_s: Option<u64>,
) -> Result<()> {
    let _kept = checkout::lock_kept(&cx.ws, "testing on the kept cluster", cx.wait, cx.ui)?;
    let state = ClusterState::load(&cx.ws)?
        .context("no cluster is running for this checkout: start one with `cargo xtask up`")?;
    let looking = cluster::from_state(
        &cx.ws,
        &cx.docker,
        &cx.compose,
        &state,
        &cx.ws.cluster_dir().join("pytest"),
    )?;
    if looking.services()?.is_empty() {
        bail!(
            "the cluster {} is not running: start it with `cargo xtask up`",
            state.name
        );
    }
    let mut run = Run::new(&cx.ws, cx.ui, cx.wait)?;
    run.plan = plan;
    run.limits = crate::cluster::spec::TestLimits::of(&cx.ws.config.timeouts, test_s);
    run.data = Some(state.data.clone());
    run.image = Some(state.image.tag.clone());
    run.python = state.python.clone();
    let cluster = cluster::from_state(&cx.ws, &cx.docker, &cx.compose, &state, &run.results)?;
    let volumes = state.backend.volumes(&state.image);
    run.registration
        .uses(&state.name, std::slice::from_ref(&state.image.id), &volumes)?;
    // pytest starts and collects while the workers and engines restart (if
    // they must); it runs no test before the cluster is ready again.
    let outcome = run
        .start_tests(&cx.ws, cluster.as_ref(), pytest_args)
        .and_then(|tests| {
            let start = std::time::Instant::now();
            let seen = freshness::refresh(&cx.ws, cx.ui, cluster.as_ref(), &state)?;
            if seen.is_some() {
                run.phases.record("restart", start.elapsed().as_secs_f64());
            }
            let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
            run.services = run
                .phases
                .time("ready", cx.ui, || cluster.ready(ready, seen))?;
            run.tests(&cx.ws, cluster.as_ref(), tests)?;
            // Further passes on the same cluster, each a new pytest.
            while run.end_pass()? {
                run.pass += 1;
                one_pass(cx, &mut run, cluster.as_ref(), pytest_args, false)?;
            }
            Ok(())
        });
    run.collect(cluster.as_ref(), &outcome);
    let project = state.project.display().to_string();
    run.conclude(&cx.ws, &cx.docker, (&project, &state.name), outcome)
}

/// `build`: the image only (and the test data generated in it, for
/// `testdata`), with the checkout lock held.
pub fn build(cx: &Ctx, project: &ProjectArg, log: &Path) -> Result<Image> {
    // A bad `--project` is one line, before any wait for the lock.
    crate::project::check_arg(project)?;
    let _lock = checkout::lock(&cx.ws, &cx.docker, "building", cx.wait)?;
    let (project, reqs) = project_and_reqs(cx, project)?;
    let mut phases = Phases::default();
    phases.time("build", cx.ui, || {
        image::build(&cx.docker, &cx.ws, &project, &reqs, log)
    })
}
