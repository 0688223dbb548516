//! `dist-test`'s flow: build, then one pass of the selection or several
//! (`--repeat`), on one cluster or a fresh one each (`--fresh`), then logs
//! kept and teardown, whatever happened.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{note_wait, Flow, Request};
use crate::checkout;
use crate::cluster::spec::TestLimits;
use crate::cluster::state::ClusterState;
use crate::cluster::{freshness, Cluster};
use crate::context::Ctx;
use crate::interrupt;
use crate::run::{repeat, Run};
use crate::ui;

/// `dist-test`: build, test data, up, ready, tests, logs, teardown — one
/// outcome chain, then logs always kept, teardown always run, the result
/// concluded. With `--repeat` the selection passes several times: on the
/// one cluster, or (`--fresh`) each pass on a new cluster of the same image,
/// the one before it torn down with its logs kept.
pub fn dist_test(
    cx: &Ctx,
    req: Request,
    pytest_args: &[String],
    keep: Keep,
    plan: repeat::Plan,
) -> Result<()> {
    // A bad `--project` is one line, before any wait for the lock.
    crate::project::check_arg(req.project)?;
    keep.check(&cx.ws)?;
    let test_s = req.test_s;
    let lock = checkout::lock(&cx.ws, &cx.docker, "building", cx.wait)?;
    let flow = Flow::start(cx, req)?;
    let mut run = Run::new(&cx.ws, cx.ui, cx.wait)?;
    run.limits = TestLimits::of(&cx.ws.config.timeouts, test_s);
    run.data = Some(flow.data.clone());
    run.plan = plan;
    // Before any service starts: what a kept cluster's `test` compares the
    // source with (see freshness.rs).
    let imported = match keep {
        Keep::Never => None,
        _ => Some(freshness::Imported::of(&flow.project.dir)?),
    };
    note_wait(&mut run.phases, &lock);
    ui::group(&format!(
        "dist-test {}: {}",
        run.id,
        flow.project.dir.display()
    ));
    cx.ui.say(&flow.project.python.describe());
    run.python = Some(flow.project.python.version.clone());
    let name = cx.ws.run_project(&run.id);
    let mut slot: Option<Box<dyn Cluster>> = None;
    let outcome = (|| {
        let target = (name.clone(), run.results.clone());
        let first = flow.build(&mut run.phases, target, &run.dir, &mut run.registration)?;
        let image = first.definition().image.clone();
        run.image = Some(image.tag.clone());
        slot = Some(first);
        drop(lock);
        loop {
            let cluster = slot.as_deref().context("the run's cluster is gone")?;
            let start = run.pass == 1 || run.plan.fresh;
            one_pass(cx, &mut run, cluster, pytest_args, start)?;
            if !run.end_pass()? {
                return Ok(());
            }
            if run.plan.fresh {
                if let Some(done) = slot.take() {
                    retire(cx, &mut run, done.as_ref(), &Ok(()));
                }
            }
            run.pass += 1;
            if run.plan.fresh {
                let next = format!("{name}-{}", run.pass);
                slot = Some(flow.another(next, image.clone(), &mut run)?);
            }
        }
    })();
    // Whatever happened: keep every service's log, see what died, tear down.
    if let Some(cluster) = &slot {
        // Any pass that failed, not only the last.
        let failed =
            outcome.is_err() || run.pytest_code != Some(0) || run.passes.iter().any(|p| p.failed());
        if keep == Keep::Always || (keep == Keep::OnFailure && failed) {
            let kept = (cluster.as_ref(), imported.as_ref());
            keep_or_retire(cx, (&flow, &mut run), kept, &outcome);
        } else {
            retire(cx, &mut run, cluster.as_ref(), &outcome);
        }
    }
    ui::end_group();
    let project = flow.project.dir.display().to_string();
    run.conclude(&cx.ws, &cx.docker, (&project, &name), outcome)
}

/// One pass of the selection on `cluster`; with `start`, the cluster is
/// brought up first (pytest starts and collects while the workers and
/// engines register; it runs no test before the cluster is declared ready).
pub(super) fn one_pass(
    cx: &Ctx,
    run: &mut Run,
    cluster: &dyn Cluster,
    pytest_args: &[String],
    start: bool,
) -> Result<()> {
    interrupt::check()?;
    if start {
        let (phase, log) = (run.phase("up"), run.dir.join("up.log"));
        run.phases.time(&phase, cx.ui, || cluster.up(&log))?;
    }
    let tests = run.start_tests(&cx.ws, cluster, pytest_args)?;
    if start {
        let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
        let phase = run.phase("ready");
        let spans = run
            .phases
            .time(&phase, cx.ui, || cluster.ready(ready, None))?;
        let pass = run.pass;
        run.services.extend(spans.into_iter().map(|mut s| {
            if pass > 1 {
                s.service = format!("{} (pass {pass})", s.service);
            }
            s
        }));
        for p in cluster.published() {
            cx.ui.say(&format!("published: {p}"));
        }
    }
    interrupt::check()?;
    run.tests(&cx.ws, cluster, tests)
}

/// A cluster asked to be kept: its logs kept, then it becomes the
/// checkout's kept cluster, unless a service died or a signal came.
fn keep_or_retire(
    cx: &Ctx,
    (flow, run): (&Flow, &mut Run),
    (cluster, imported): (&dyn Cluster, Option<&freshness::Imported>),
    outcome: &Result<()>,
) {
    run.collect(cluster, outcome);
    if run.collected.dead.is_empty() && interrupt::check().is_ok() {
        adopt(cx, flow, cluster, imported);
    } else {
        eprintln!("the cluster is not kept: a service of it died, or the run was interrupted");
        teardown(cx, run, cluster);
    }
}

/// Whether `dist-test` keeps its cluster: never, always (`--keep`), or
/// when the run did not pass (`--keep-on-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Never,
    Always,
    OnFailure,
}

impl Keep {
    /// A cluster to keep needs the checkout's kept slot free.
    fn check(self, ws: &crate::workspace::Workspace) -> Result<()> {
        if self == Keep::Never {
            return Ok(());
        }
        if let Some(kept) = ClusterState::load(ws)? {
            bail!(
                "this checkout already keeps cluster {} (from `up` or an earlier --keep): \
                 `cargo xtask down` it first, or run without --keep/--keep-on-failure",
                kept.name
            );
        }
        Ok(())
    }

    pub fn of(keep: bool, on_failure: bool) -> Keep {
        match (keep, on_failure) {
            (true, _) => Keep::Always,
            (false, true) => Keep::OnFailure,
            (false, false) => Keep::Never,
        }
    }
}

/// The run's cluster becomes the checkout's kept one, as `up` makes it:
/// `status`, `logs`, `test` and `down` address it. Said; a failure to save
/// its state leaves it to `down --all`.
fn adopt(cx: &Ctx, flow: &Flow, cluster: &dyn Cluster, imported: Option<&freshness::Imported>) {
    let def = cluster.definition();
    let saved = (|| -> Result<()> {
        let _kept = checkout::lock_kept(&cx.ws, "keeping the run's cluster", cx.wait, cx.ui)?;
        if let Some(other) = ClusterState::load(&cx.ws)? {
            bail!("this checkout keeps cluster {} already", other.name);
        }
        if let Some(imported) = imported {
            imported.save(&cx.ws)?;
        }
        flow.kept_state(cluster).save(&cx.ws)
    })();
    match saved {
        Ok(()) => cx.ui.say(&format!(
            "kept: cluster {} is this checkout's kept cluster now: `cargo xtask status`, \
             `logs`, `test -- <test>` and `down` address it",
            def.name
        )),
        Err(e) => eprintln!(
            "kept: cluster {} left running, not as the checkout's kept cluster ({e:#}): \
             `cargo xtask down --all` removes it",
            def.name
        ),
    }
}

/// A cluster's last step: its logs kept, then torn down.
fn retire(cx: &Ctx, run: &mut Run, cluster: &dyn Cluster, outcome: &Result<()>) {
    run.collect(cluster, outcome);
    teardown(cx, run, cluster);
}

/// A cluster torn down, timed.
fn teardown(cx: &Ctx, run: &mut Run, cluster: &dyn Cluster) {
    // One teardown per cluster: numbered only when each pass had its own.
    let phase = if run.plan.fresh {
        run.phase("teardown")
    } else {
        "teardown".to_string()
    };
    if let Err(e) = run.phases.time(&phase, cx.ui, || cluster.down()) {
        eprintln!("error: tearing down: {e:#}");
    }
}
