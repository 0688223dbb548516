//! `cargo xtask dist-test`: build, up, ready, tests, logs, teardown — one
//! outcome chain, then logs always kept, teardown always run, the result
//! concluded.

use std::time::Duration;

use anyhow::Result;

use super::{build_image, project_and_reqs};
use crate::cli::DistTest;
use crate::cluster::{Cluster, Mounts, Size, Spec};
use crate::context::{Invocation, Needs};
use crate::image;
use crate::interrupt;
use crate::run::Run;
use crate::swarm::{self, StackSpec};
use crate::testdata::Plan;
use crate::ui;

impl DistTest {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        if self.swarm {
            return self.on_swarm(inv);
        }
        let cx = inv.docker(Needs::Builder)?;
        let plan = Plan::from_env(self.data.no_testdata)?;
        let data = plan.data(&cx.ws)?;
        let size = Size::from_config(&cx.ws.config.cluster, self.size.workers, self.size.engines);
        let (project, reqs) = project_and_reqs(&cx, &self.project)?;

        let mut run = Run::new(&cx.ws)?;
        ui::group(&format!("dist-test {}: {}", run.id, project.dir.display()));
        let build_log = image::build_log(&run.dir);
        // The image, and its /venv copied into a volume (runtime.rs; once
        // per image).
        let built = run.phases.time("build", cx.ui, || {
            build_image(&cx, &project, &reqs, &build_log)?;
            crate::runtime::ensure(&cx)
        });
        let spec = Spec::new(&cx.ws, cx.ws.run_project(&run.id), size, self.size.publish);
        let mounts = Mounts {
            source: project.dir.clone(),
            data: data.path.clone(),
            results: run.results.clone(),
        };
        run.data = Some(data);
        let data_log = run.dir.join("testdata.log");
        let mut cluster = Cluster::new(&cx, &spec, &mounts);
        let up_log = run.dir.join("up.log");
        let outcome = built.and_then(|runtime| {
            cluster.use_runtime(runtime);
            interrupt::check()?;
            run.phases.time("testdata", cx.ui, || {
                plan.prepare(&cx, &cx.ws.image_tag(), Some(&data_log))
            })?;
            crate::numba::ensure(&cx, &project.dir)?;
            spec.write_files(&cx.ws)?;
            run.phases
                .time("up", cx.ui, || cluster.up(cx.sh, &up_log))?;
            // pytest starts and collects while the workers and engines
            // register; it runs no test before `run.tests` says ready.
            let pytest = run.start_tests(&cx, &cluster, &mounts, &self.pytest_args)?;
            let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
            run.phases
                .time("ready", cx.ui, || cluster.wait_ready(cx.sh, ready))?;
            if self.size.publish {
                for p in cluster.published(cx.sh)? {
                    cx.ui.say(&format!("published: {p}"));
                }
            }
            interrupt::check()?;
            run.tests(&cx, pytest)
        });

        // Whatever happened: keep every service's log, see what died, tear down.
        let dead = run.collect(cx.sh, &cluster);
        if self.keep {
            cx.ui.say(&format!(
                "--keep: cluster {} left running",
                cluster.compose.project
            ));
        } else if let Err(e) = run.phases.time("teardown", cx.ui, || cluster.down(cx.sh)) {
            eprintln!("error: tearing down: {e:#}");
        }
        ui::end_group();
        run.conclude(&project.dir.display().to_string(), &cluster, dead, outcome)
    }
}

impl DistTest {
    /// The same run on a Docker Swarm (see swarm/mod.rs): build on the
    /// manager, the image to every node, the stack deployed, the tests task
    /// waiting for the cluster from inside it, logs and nodes kept, the
    /// stack removed whatever happened.
    fn on_swarm(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let docker = cx.tools.docker.cli.clone();
        swarm::check_manager(cx.sh, &docker)?;
        let plan = Plan::from_env(self.data.no_testdata)?;
        let data = plan.data(&cx.ws)?;
        let size = Size::from_config(&cx.ws.config.cluster, self.size.workers, self.size.engines);
        let (project, reqs) = project_and_reqs(&cx, &self.project)?;
        let nodes = swarm::nodes(cx.sh, &docker)?;

        let mut run = Run::new(&cx.ws)?;
        ui::group(&format!(
            "dist-test {} on a swarm of {} nodes: {}",
            run.id,
            nodes.len(),
            project.dir.display()
        ));
        let build_log = image::build_log(&run.dir);
        let image = cx.ws.image_tag();
        let built = run.phases.time("build", cx.ui, || {
            build_image(&cx, &project, &reqs, &build_log)?;
            swarm::distribute_image(&cx, &image, &nodes)
        });
        let name = cx.ws.run_project(&run.id);
        let ipython = run.dir.join("ipython");
        let temp = run.dir.join("temp_data");
        let spec = StackSpec {
            image: image.clone(),
            size,
            nodes,
            source: project.dir.clone(),
            data: data.path.clone(),
            ipython: ipython.clone(),
            temp: temp.clone(),
            results: run.results.clone(),
            harness: cx.ws.docker_dir(),
            pytest: Some(crate::cluster::pytest_command(&self.pytest_args)),
            ready_timeout_s: cx.ws.config.timeouts.ready_s,
            label: format!("{}={}", crate::workspace::CHECKOUT_LABEL, cx.ws.checkout_id),
        };
        run.data = Some(data);
        let mut stack = None;
        let outcome = built.and_then(|()| {
            interrupt::check()?;
            run.phases.time("testdata", cx.ui, || {
                plan.prepare(&cx, &image, Some(&run.dir.join("testdata.log")))
            })?;
            crate::fsx::writable_dir(&ipython)?;
            crate::fsx::writable_dir(&temp)?;
            let file = run.dir.join("stack.yml");
            stack = Some(run.phases.time("up", cx.ui, || {
                swarm::Stack::deploy(cx.sh, &docker, &name, &spec, &file)
            })?);
            let s = stack.as_ref().expect("deployed");
            let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
            run.phases
                .time("ready", cx.ui, || s.wait_ready(cx.sh, ready))?;
            let limit = Duration::from_secs(cx.ws.config.timeouts.tests_s);
            let log = run.dir.join("pytest.log");
            let code = run
                .phases
                .time_streaming("tests", cx.ui, || s.wait_tests(cx.sh, &log, limit))?;
            run.pytest_code = code;
            interrupt::check()
        });
        let mut dead = Vec::new();
        if let Some(s) = &stack {
            run.nodes = s.collect(cx.sh, &run.dir.join("logs"));
            let failed = outcome.is_err() || run.pytest_code != Some(0);
            let (nodes, services) = s.dead_nodes_settled(cx.sh, &run.nodes, failed);
            run.dead_nodes = nodes;
            dead = services;
            if let Err(e) = run.phases.time("teardown", cx.ui, || s.remove(cx.sh)) {
                eprintln!("error: tearing down: {e:#}");
            }
        }
        // The scratch data is the run's, not a result.
        let _ = std::fs::remove_dir_all(&temp);
        ui::end_group();
        run.conclude_as(&project.dir.display().to_string(), &name, dead, outcome)
    }
}
