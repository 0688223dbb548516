//! The checkout's kept cluster, for debugging: `build`, `up`, `status`,
//! `logs`, `test` and `down`, on whichever backend `up` started it (its
//! saved state says which; flow.rs does the work).

use anyhow::{bail, Context, Result};

use crate::checkout::{self, runs};
use crate::cli::{Build, Down, Logs, Status, Test, Up};
use crate::cluster;
use crate::cluster::spec::Phase;
use crate::cluster::state::ClusterState;
use crate::cluster::{Kept, Readiness, Verdict};
use crate::context::{Ctx, Invocation, Needs};
use crate::flow::{self, Request};
use crate::phases::Phases;
use crate::run::repeat::Plan;
use crate::run::ExitCode;

impl Build {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let image = flow::build(&cx, &self.project, &cx.ws.target.join("build.log"))?;
        cx.ui.say(&format!(
            "image {} ({})",
            image.tag,
            crate::docker::short_id(&image.id)
        ));
        Ok(())
    }
}

impl Up {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let req = Request::from_args(&cx, &self.project, &self.size, &self.data, self.swarm)?;
        flow::up(&cx, req)
    }
}

/// The kept cluster as `up` saved it, else the one by the kept name (to
/// look at or remove); `wanted_swarm` (a command's `--swarm`) makes
/// anything else an error.
fn kept<'a>(cx: &Ctx<'a>, wanted_swarm: bool) -> Result<Kept<'a>> {
    let state = ClusterState::load(&cx.ws)?;
    cluster::kept(&cx.ws, &cx.docker, &cx.compose, state, wanted_swarm)
}

impl Status {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        let Kept {
            name,
            size,
            describe,
            cluster,
            ..
        } = kept(&cx, self.swarm)?;
        let services = cluster.services()?;
        if services.is_empty() {
            println!("cluster {name}: not running (`cargo xtask up` starts it)");
            return Err(ExitCode(3).into());
        }
        println!("cluster {name} on {describe}");
        let now = Readiness {
            size,
            services,
            seen: cluster.observe().unwrap_or_default(),
        };
        for name in size.services() {
            let (phase, status) = match now.service(&name) {
                Some(s) => (phase_word(s.phase), s.status.as_str()),
                None => ("missing", ""),
            };
            println!("  {name:<16} {phase:<9} {status}");
        }
        println!("  {}", now.counts());
        for p in cluster.published() {
            println!("  published: {p}");
        }
        if now.verdict() == Verdict::Ready {
            println!("ready");
            Ok(())
        } else {
            println!("not ready");
            Err(ExitCode(1).into())
        }
    }
}

fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Running => "running",
        Phase::Starting => "starting",
        Phase::Ended => "ended",
    }
}

impl Logs {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        let Kept { size, cluster, .. } = kept(&cx, self.swarm)?;
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
        let status = cluster.logs(&self.services, self.follow)?;
        if !status.success() {
            return Err(ExitCode(status.code().unwrap_or(1)).into());
        }
        Ok(())
    }
}

impl Test {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        if self.swarm {
            kept(&cx, true)?;
        }
        if self.watch {
            flow::test_watch(&cx, &self.pytest_args, self.test_timeout)
        } else {
            let plan = Plan::of(&self.repeat, false);
            flow::test(&cx, &self.pytest_args, plan, self.test_timeout)
        }
    }
}

impl Down {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        let _kept = checkout::lock_kept(&cx.ws, "taking the kept cluster down", cx.wait, cx.ui)?;
        // A state it cannot read must not stop `down`: compose's
        // --remove-orphans and the removal by label take what it described.
        let state = match ClusterState::load(&cx.ws) {
            Ok(state) => state,
            Err(e) if !self.swarm => {
                cx.ui
                    .say(&format!("{e:#}; taking the cluster down without it"));
                None
            }
            Err(e) => return Err(e),
        };
        let Kept { name, cluster, .. } =
            cluster::kept(&cx.ws, &cx.docker, &cx.compose, state, self.swarm)?;
        let mut phases = Phases::default();
        phases.time("teardown", cx.ui, || {
            cluster.down().with_context(|| format!("removing {name}"))
        })?;
        ClusterState::remove(&cx.ws)?;
        if self.all {
            down_all(&cx)?;
        }
        Ok(())
    }
}

/// Every other cluster this checkout started (runs killed before their
/// teardown, `--keep`), but those of runs still in progress, which are
/// left alone and named.
fn down_all(cx: &Ctx) -> Result<()> {
    let live = runs::in_progress(&cx.ws);
    let running: Vec<&str> = live.iter().filter_map(|r| r.cluster.as_deref()).collect();
    for r in live.iter().filter(|r| r.cluster.is_some()) {
        cx.ui.say(&format!(
            "left alone: {} of `{}` (pid {}), a run still in progress",
            r.cluster.as_deref().unwrap_or_default(),
            r.command,
            r.pid
        ));
    }
    for found in cluster::of_checkout(&cx.ws, &cx.docker)? {
        let name = found.name.as_str();
        if running.contains(&name) || name == cx.ws.cluster_project() {
            continue;
        }
        found
            .take_down(&cx.ws, &cx.docker, &cx.compose)
            .with_context(|| format!("removing {name}"))?;
        cx.ui.say(&format!("removed {name}"));
    }
    Ok(())
}
