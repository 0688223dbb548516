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
use crate::testdata::Plan;
use crate::ui;

impl DistTest {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let plan = Plan::from_env(self.data.no_testdata)?;
        let data = plan.data(&cx.ws)?;
        let size = Size::from_config(&cx.ws.config.cluster, self.size.workers, self.size.engines);
        let (project, reqs) = project_and_reqs(&cx, &self.project)?;

        let mut run = Run::new(&cx.ws)?;
        ui::group(&format!("dist-test {}: {}", run.id, project.dir.display()));
        let build_log = image::build_log(&run.dir);
        let built = run.phases.time("build", cx.ui, || {
            build_image(&cx, &project, &reqs, &build_log)
        });
        let spec = Spec::new(&cx.ws, cx.ws.run_project(&run.id), size, self.size.publish);
        let mounts = Mounts {
            source: project.dir.clone(),
            data: data.path.clone(),
            results: run.results.clone(),
        };
        run.data = Some(data);
        let data_log = run.dir.join("testdata.log");
        let cluster = Cluster::new(&cx, &spec, &mounts);
        let up_log = run.dir.join("up.log");
        let outcome = built.and_then(|()| {
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
            let pytest = run.start_tests(&cx, &cluster, &self.pytest_args)?;
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
