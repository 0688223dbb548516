//! The checkout's kept cluster, for debugging: `build`, `up`, `status`,
//! `logs`, `test` and `down`, on whichever backend `up` started it (its
//! saved state says which; flow.rs does the work).

use anyhow::{bail, Context, Result};

use crate::checkout::kept::{ClusterState, SCHEMA};
use crate::checkout::{self, runs};
use crate::cli::{Build, Down, Logs, Status, Test, Up};
use crate::cluster::{self, Backend, Cluster, Image, Kind, Phase, Readiness, Size, Verdict};
use crate::context::{Ctx, Invocation, Needs};
use crate::docker::label_filter;
use crate::flow::{self, Request};
use crate::labels::{CHECKOUT_LABEL, COMPOSE_PROJECT_LABEL, STACK_LABEL};
use crate::phases::Phases;
use crate::run::ExitCode;
use crate::testdata::{Source, TestData};

impl Build {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Builder)?;
        let image = flow::build(&cx, &self.project, &cx.ws.target.join("build.log"))?;
        cx.ui.say(&format!(
            "image {} ({})",
            image.tag,
            crate::runtime::short_id(&image.id)
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

/// The state a checkout without a kept cluster would have: the default
/// size on compose, for the commands that only look or remove.
fn default_state(cx: &Ctx, name: String) -> ClusterState {
    let placeholder = format!("{}-none", cx.ws.checkout_id);
    ClusterState {
        schema: SCHEMA,
        project: cx.ws.target.clone(),
        name,
        size: Size::from_config(&cx.ws.config.cluster, None, None),
        publish: false,
        python: None,
        image: Image {
            id: placeholder.clone(),
            tag: placeholder.clone(),
            runtime: placeholder.clone(),
            preload: Vec::new(),
        },
        data: TestData {
            source: Source::None,
            path: cx.ws.target.clone(),
        },
        backend: Backend::Compose {
            runtime: placeholder.clone(),
            numba: placeholder,
        },
    }
}

/// The kept cluster as `up` saved it, else the default one (to look at or
/// remove); `wanted_swarm` (a command's `--swarm`) makes anything else an error.
fn kept<'a>(cx: &Ctx<'a>, wanted_swarm: bool) -> Result<(ClusterState, Box<dyn Cluster + 'a>)> {
    let state = ClusterState::load(&cx.ws)?;
    let swarm = matches!(&state, Some(s) if matches!(s.backend, Backend::Swarm { .. }));
    if wanted_swarm && !swarm {
        bail!("no swarm cluster of this checkout is up: `cargo xtask up --swarm` deploys one");
    }
    let state = state.unwrap_or_else(|| default_state(cx, cx.ws.cluster_project()));
    let cluster = cluster::from_state(cx, &state, &cx.ws.cluster_dir().join("pytest"))?;
    Ok((state, cluster))
}

impl Status {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        let (state, cluster) = kept(&cx, self.swarm)?;
        let services = cluster.services()?;
        if services.is_empty() {
            println!(
                "cluster {}: not running (`cargo xtask up` starts it)",
                state.name
            );
            return Err(ExitCode(3).into());
        }
        println!("cluster {} on {}", state.name, state.backend.describe());
        let now = Readiness {
            size: state.size,
            services,
            seen: cluster.observe().unwrap_or_default(),
        };
        for name in state.size.services() {
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
        let (state, cluster) = kept(&cx, self.swarm)?;
        let known = state.size.services();
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
            flow::test_watch(&cx, &self.pytest_args)
        } else {
            flow::test(&cx, &self.pytest_args, self.repeat.plan(false))
        }
    }
}

impl Down {
    pub fn run(self, inv: &Invocation) -> Result<()> {
        let cx = inv.docker(Needs::Engine)?;
        let _kept = checkout::lock_kept(&cx, "taking the kept cluster down")?;
        // A state it cannot read must not stop `down`: compose's
        // --remove-orphans and the removal by label take what it described.
        let (state, cluster) = match kept(&cx, self.swarm) {
            Ok(k) => k,
            Err(e) if !self.swarm => {
                cx.ui
                    .say(&format!("{e:#}; taking the cluster down without it"));
                let state = default_state(&cx, cx.ws.cluster_project());
                let cluster = cluster::from_state(&cx, &state, &cx.ws.cluster_dir())?;
                (state, cluster)
            }
            Err(e) => return Err(e),
        };
        let mut phases = Phases::default();
        phases.time("teardown", cx.ui, || {
            cluster
                .down()
                .with_context(|| format!("removing {}", state.name))
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
    let mine = label_filter(CHECKOUT_LABEL, &cx.ws.checkout_id);
    let swarm = cx.docker.swarm_info().is_manager();
    let mut found: Vec<(String, Kind)> = Vec::new();
    for p in cx.docker.label_values(&mine, COMPOSE_PROJECT_LABEL)? {
        found.push((p, Kind::Compose));
    }
    if swarm {
        for s in cx.docker.label_values(&mine, STACK_LABEL)? {
            found.push((s, Kind::Swarm));
        }
    }
    for (name, kind) in found {
        if running.contains(&name.as_str()) || name == cx.ws.cluster_project() {
            continue;
        }
        let state = default_state(cx, name.clone());
        let def = cluster::definition_of(&state, &cx.ws.cluster_dir());
        let cluster = cluster::select(cx, kind, def)?;
        cluster.down().with_context(|| format!("removing {name}"))?;
        cx.ui.say(&format!("removed {name}"));
    }
    Ok(())
}
