//! The checkout's long-lived cluster as a swarm stack: `up --swarm` deploys
//! it and saves a [`SwarmState`]; `status`, `logs`, `test` and `down` then
//! address that stack (see swarm/mod.rs). The stack's one-off service is
//! `ready` for `up` (it only waits for the cluster) and `tests` for `test`;
//! each is removed once its task has ended, so the next deploy starts it
//! afresh while the other services, defined the same, keep running.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{build_image, project_and_reqs};
use crate::cli::Up;
use crate::cluster::{ready_hosts, Size, Spec};
use crate::context::Ctx;
use crate::exec;
use crate::fsx::writable_dir;
use crate::interrupt;
use crate::phases::Phases;
use crate::run::{results_dir, ExitCode, Run};
use crate::state::{ClusterState, SwarmState};
use crate::swarm::{self, Stack, StackSpec};
use crate::testdata::Plan;

/// The stack as `up --swarm` defined it, with `pytest` as its one-off
/// (`None`: only the readiness wait) and `results` for the tests.
fn stack_spec(
    cx: &Ctx,
    state: &ClusterState,
    sw: &SwarmState,
    pytest: Option<Vec<String>>,
    results: PathBuf,
) -> StackSpec {
    StackSpec {
        image: cx.ws.image_tag(),
        size: state.spec.size,
        nodes: sw.nodes.clone(),
        source: state.project.clone(),
        data: state.data.path.clone(),
        ipython: sw.ipython.clone(),
        temp: sw.temp.clone(),
        results,
        harness: cx.ws.docker_dir(),
        pytest,
        ready_timeout_s: cx.ws.config.timeouts.ready_s,
        label: format!("{}={}", crate::workspace::CHECKOUT_LABEL, cx.ws.checkout_id),
    }
}

fn stack_of(cx: &Ctx, state: &ClusterState, sw: &SwarmState) -> Stack {
    let mut services = state.spec.size.services();
    services.push("tests".into());
    Stack {
        name: sw.stack.clone(),
        docker: cx.tools.docker.cli.clone(),
        services,
        one_off: "tests".into(),
    }
}

/// The saved state when it is a swarm stack's, checking that DOCKER_HOST
/// points at a manager; `wanted` (the command's `--swarm`) makes a missing
/// or compose cluster an error.
pub(super) fn saved(cx: &Ctx, wanted: bool) -> Result<Option<(ClusterState, SwarmState)>> {
    let state = ClusterState::load(&cx.ws)?;
    match state {
        Some(ClusterState {
            swarm: Some(ref sw),
            ..
        }) => {
            let sw = sw.clone();
            swarm::check_manager(cx.sh, &cx.tools.docker.cli).with_context(|| {
                format!("the checkout's cluster is the swarm stack {}", sw.stack)
            })?;
            Ok(state.map(|s| (s, sw)))
        }
        _ if wanted => {
            bail!("no swarm cluster of this checkout is up: `cargo xtask up --swarm` deploys one")
        }
        _ => Ok(None),
    }
}

pub(super) fn up(cx: &Ctx, up: &Up) -> Result<()> {
    let (sh, docker) = (cx.sh, cx.tools.docker.cli.clone());
    swarm::check_manager(sh, &docker)?;
    if let Some(state) = ClusterState::load(&cx.ws)? {
        if state.swarm.is_none() {
            bail!(
                "this checkout's cluster runs on compose ({}): `cargo xtask down` it before `up --swarm`",
                state.spec.compose_project
            );
        }
    }
    let size = Size::from_config(&cx.ws.config.cluster, up.size.workers, up.size.engines);
    let (project, reqs) = project_and_reqs(cx, &up.project)?;
    let plan = Plan::from_env(up.data.no_testdata)?;
    let data = plan.data(&cx.ws)?;
    let nodes = swarm::nodes(sh, &docker)?;
    let dir = cx.ws.cluster_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = cx.ws.image_tag();
    let mut phases = Phases::default();
    phases.time("build", cx.ui, || {
        build_image(cx, &project, &reqs, &dir.join("build.log"))?;
        swarm::distribute_image(cx, &image, &nodes)
    })?;
    phases.time("testdata", cx.ui, || {
        plan.prepare(cx, &image, Some(&dir.join("testdata.log")))
    })?;
    let sw = SwarmState {
        stack: cx.ws.cluster_project(),
        nodes,
        ipython: dir.join("ipython"),
        temp: dir.join("temp_data"),
    };
    writable_dir(&sw.ipython)?;
    writable_dir(&sw.temp)?;
    let mut state = ClusterState::new(
        project.dir.clone(),
        Spec::new(&cx.ws, sw.stack.clone(), size, false),
        data,
    );
    state.swarm = Some(sw.clone());
    state.save(&cx.ws)?;
    let spec = stack_spec(cx, &state, &sw, None, results_dir(&dir)?);
    let file = dir.join("stack.yml");
    let stack = phases.time("up", cx.ui, || {
        Stack::deploy(sh, &docker, &sw.stack, &spec, &file)
    })?;
    let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
    phases.time("ready", cx.ui, || stack.wait_ready(sh, ready))?;
    stack.remove_one_off(sh)?;
    cx.ui.say(&format!(
        "stack {} is ready on {} nodes: {} workers, {} engines; `cargo xtask test` runs the suite against it",
        sw.stack,
        sw.nodes.len(),
        size.workers,
        size.engines
    ));
    Ok(())
}

pub(super) fn status(cx: &Ctx, state: &ClusterState, sw: &SwarmState) -> Result<()> {
    let sh = cx.sh;
    let stack = stack_of(cx, state, sw);
    let replicas = stack.replicas(sh);
    if replicas.is_empty() {
        println!(
            "stack {}: not running (`cargo xtask up --swarm` deploys it)",
            sw.stack
        );
        return Err(ExitCode(3).into());
    }
    println!("stack {} on {} nodes", sw.stack, sw.nodes.len());
    let size = state.spec.size;
    let mut running = true;
    for s in size.services() {
        let r = replicas.get(&s).map(String::as_str).unwrap_or("missing");
        running &= r == "1/1";
        println!("  {s:<16} {r}");
    }
    let hosts = stack
        .probe(sh, "scheduler", "dask-hosts")
        .map(|out| ready_hosts(&out, size.worker_cpus))
        .unwrap_or_default();
    let engines: u32 = stack
        .probe(sh, "ipy-controller", "engines")
        .and_then(|out| out.trim().parse().ok())
        .unwrap_or(0);
    let want_hosts = size.worker_hosts();
    let hosts_in = want_hosts.iter().filter(|h| hosts.contains(h)).count();
    println!(
        "  dask workers     {hosts_in}/{} hosts registered",
        size.workers
    );
    println!(
        "  ipyparallel      {engines}/{} engines registered",
        size.engines
    );
    if running && hosts_in == want_hosts.len() && engines >= size.engines {
        println!("ready");
        Ok(())
    } else {
        println!("not ready");
        Err(ExitCode(1).into())
    }
}

pub(super) fn logs(
    cx: &Ctx,
    state: &ClusterState,
    sw: &SwarmState,
    services: &[String],
    follow: bool,
) -> Result<()> {
    let known = state.spec.size.services();
    if let Some(bad) = services.iter().find(|s| !known.contains(s)) {
        bail!(
            "unknown service {bad:?}: the services are {}",
            known.join(", ")
        );
    }
    let services = if services.is_empty() {
        known
    } else {
        services.to_vec()
    };
    if follow && services.len() > 1 {
        bail!("on a swarm, --follow shows one service: name it (`cargo xtask logs --follow worker-1`)");
    }
    for s in &services {
        let mut command = std::process::Command::new(&cx.tools.docker.cli);
        command.args(["service", "logs", "--timestamps"]);
        if follow {
            command.arg("--follow");
        }
        command.arg(format!("{}_{s}", sw.stack));
        if services.len() > 1 {
            println!("==> {s} <==");
        }
        let status = exec::status_on_terminal(command, cx.ui)
            .with_context(|| format!("running docker service logs for {s}"))?;
        if !status.success() {
            return Err(ExitCode(status.code().unwrap_or(1)).into());
        }
    }
    Ok(())
}

pub(super) fn test(
    cx: &Ctx,
    state: &ClusterState,
    sw: &SwarmState,
    pytest_args: &[String],
) -> Result<()> {
    let sh = cx.sh;
    let stack = stack_of(cx, state, sw);
    if stack.replicas(sh).is_empty() {
        bail!(
            "the stack {} is not running: deploy it with `cargo xtask up --swarm`",
            sw.stack
        );
    }
    let mut run = Run::new(&cx.ws)?;
    run.data = Some(state.data.clone());
    let pytest = crate::cluster::pytest_command(pytest_args);
    let spec = stack_spec(cx, state, sw, Some(pytest), run.results.clone());
    let file = run.dir.join("stack.yml");
    let mut stack = stack;
    let outcome = stack.redeploy(sh, &spec, &file).and_then(|()| {
        let ready = Duration::from_secs(cx.ws.config.timeouts.ready_s);
        run.phases
            .time("ready", cx.ui, || stack.wait_ready(sh, ready))?;
        let limit = Duration::from_secs(cx.ws.config.timeouts.tests_s);
        let log = run.dir.join("pytest.log");
        run.pytest_code = run
            .phases
            .time_streaming("tests", cx.ui, || stack.wait_tests(sh, &log, limit))?;
        interrupt::check()
    });
    run.nodes = stack.collect(sh, &run.dir.join("logs"));
    let failed = outcome.is_err() || run.pytest_code != Some(0);
    let (nodes, dead) = stack.dead_nodes_settled(sh, &run.nodes, failed);
    run.dead_nodes = nodes;
    if let Err(e) = stack.remove_one_off(sh) {
        eprintln!("error: {e:#}");
    }
    let project = state.project.display().to_string();
    run.conclude_as(&project, &sw.stack, dead, outcome)
}

/// Remove the stack (every service, task and its network, on every node)
/// and the folders its services shared.
pub(super) fn down(cx: &Ctx, state: &ClusterState, sw: &SwarmState) -> Result<()> {
    let stack = stack_of(cx, state, sw);
    let mut phases = Phases::default();
    phases.time("teardown", cx.ui, || stack.remove(cx.sh))?;
    for dir in [&sw.ipython, &sw.temp] {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", dir.display()))
            }
            _ => {}
        }
    }
    Ok(())
}
