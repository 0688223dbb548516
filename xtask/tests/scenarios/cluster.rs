//! End-to-end on real clusters: the main job, and one kept cluster that
//! every scenario needing only a running cluster shares (a failing test's
//! result on a GitHub Actions page among them). The two run side
//! by side, each checking only its own compose projects. These need Docker;
//! on a machine without an engine they skip, loudly, unless CI is set,
//! where a missing engine is a failure.

use crate::common::*;

#[path = "cluster/gha.rs"]
mod gha;
use gha::a_failing_test_fails_the_run;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use xtask::checkout::kept::ClusterState;
use xtask::cluster::freshness::Imported;
use xtask::workspace::{Location, Workspace};

#[test]
fn requirements_are_current() {
    let o = xtask(&["update-reqs", "--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_input_is_one_clear_line() {
    let o = xtask(&["dist-test", "--project", "/nonexistent/libertem"]);
    let stderr = stderr(&o);
    assert!(!o.status.success());
    if stderr.contains("engine is not reachable") {
        return; // the engine check comes first
    }
    assert!(
        stderr.contains("--project /nonexistent/libertem: no such directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// The main job on the default cluster (2 workers, 2 engines), two tests:
/// one through the Dask scheduler and both workers, one through the
/// ipyparallel controller and its engines; at the same time, a second
/// checkout runs its own (smallest) cluster. Both pass, neither meets the
/// other, and nothing of either is left.
#[test]
fn dist_test_runs_a_real_cluster_beside_another_checkout() {
    if !engine_available() {
        return;
    }
    let other = other_checkout("second-checkout");
    let mut main = spawn(&[
        "dist-test",
        "--",
        "tests/io/datasets/test_raw.py::test_sum_on_dist",
        "tests/test_ipython.py",
    ]);
    let args = smallest_dist_test(&[
        "--",
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut second = spawn_in(&other, &args);
    let main_project = main.run_project(&root());
    let second_project = second.run_project(&other);
    // While its tests run, the cluster is closed: the services and the
    // tests container.
    main.wait_for("  ready", Duration::from_secs(600));
    closed_by_default(&main_project, 6);
    let (code, _, err) = main.finish(Duration::from_secs(900));
    let (code2, _, err2) = second.finish(Duration::from_secs(900));
    assert_eq!(code, 0, "dist-test failed:\n{err}");
    assert_eq!(code2, 0, "the second checkout's dist-test failed:\n{err2}");

    let s = summary(&err);
    assert_eq!((s.counts.passed, s.counts.failed), (2, 0), "{s:?}");
    assert_eq!(s.compose_project, main_project);
    assert_eq!(s.schema, xtask::summary::SCHEMA);
    for phase in ["build", "up", "ready", "tests", "teardown"] {
        assert!(s.phases.get(phase).is_some(), "no {phase} phase: {s:?}");
    }
    for svc in [
        "scheduler",
        "worker-1",
        "worker-2",
        "ipy-controller",
        "ipy-worker-1",
        "ipy-worker-2",
    ] {
        let log = run_dir(&err).join(format!("logs/{svc}.log"));
        assert!(log.is_file(), "no log for {svc}");
    }
    let s2 = summary(&err2);
    assert_eq!((s2.counts.passed, s2.counts.failed), (1, 0), "{s2:?}");
    assert_eq!(s2.compose_project, second_project);
    assert_ne!(s.compose_project, s2.compose_project);
    assert_ne!(run_dir(&err), run_dir(&err2), "two result folders");
    assert!(run_dir(&err2).starts_with(&other), "{err2}");
    assert!(
        leftovers_of_project(&main_project).is_empty(),
        "left behind: {:?}",
        leftovers_of_project(&main_project)
    );
    assert!(
        leftovers_of_checkout(&other).is_empty(),
        "left behind: {:?}",
        leftovers_of_checkout(&other)
    );
}

/// Takes the checkout's kept cluster down when a step panics.
struct DownOnDrop;

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = xtask(&["down"]);
        }
    }
}

fn saved_state() -> Option<ClusterState> {
    let loc = Location::new(None).unwrap();
    let ws = Workspace::load(&loc).unwrap();
    ClusterState::load(&ws).unwrap()
}

/// Every scenario that only needs a running cluster, on the checkout's kept
/// cluster at its smallest, started with `--publish`: the ports, and
/// `status`, `logs` and `test` working on that same cluster; a failing
/// test, rejected pytest arguments and a service killed while the tests
/// run, through `test`; `down` leaves nothing.
#[test]
fn a_kept_cluster_serves_every_command() {
    if !engine_available() {
        return;
    }
    let _kept = main_kept_cluster();
    let project = checkout_id(&root());
    let _ = xtask(&["down"]); // what an interrupted test run may have left
    let _down = DownOnDrop;
    let start = std::time::Instant::now();
    let step = |name: &str| eprintln!("kept cluster: {name} at {:?}", start.elapsed());

    let config = small_config();
    let copy = release_copy("kept", true);
    fs::write(copy.join("tests").join(FRESH_MODULE), FRESH_TEST).unwrap();
    fs::write(copy.join("tests/dist_test_kept_caller.py"), FRESH_CALLER).unwrap();
    let o = xtask(&[
        "--config",
        config.to_str().unwrap(),
        "up",
        "--project",
        copy.to_str().unwrap(),
        "--publish",
        "--workers",
        "1",
        "--engines",
        "1",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "up --publish: {err}");
    step("up --publish");
    publish_is_remembered(&project, &err);
    step("status and test on the published cluster");
    logs_name_the_services();
    a_failing_test_fails_the_run(&project);
    step("a failing test");
    // pytest rejecting its arguments: pytest's own exit code (4).
    let o = xtask(&["test", "-q", "--", "--no-such-pytest-option"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    step("rejected arguments");
    an_edit_restarts_the_workers_and_engines_once(&copy);
    step("an edit, then no edit");
    a_service_killed_during_the_tests_fails_the_run(&project);
    step("a killed worker");
    down_leaves_nothing(&project);
    step("down");
}

fn down_leaves_nothing(project: &str) {
    let o = xtask(&["down"]);
    assert!(o.status.success(), "down: {}", stderr(&o));
    let left = leftovers_of_project(project);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(saved_state().is_none(), "down removes the saved state");
    let o = xtask(&["status"]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("not running"), "{}", stdout(&o));
}

/// No port on the host, `/data` read-only, no Docker socket, a non-root
/// user: in every container of the cluster (at least `services` of them).
fn closed_by_default(project: &str, services: usize) {
    let label = format!("label=com.docker.compose.project={project}");
    let ids: Vec<String> = docker(&["ps", "-q", "--filter", &label])
        .lines()
        .map(String::from)
        .collect();
    assert!(ids.len() >= services, "the cluster's containers: {ids:?}");
    for id in &ids {
        let f = "{{json .HostConfig.PortBindings}}|{{json .NetworkSettings.Ports}}|{{.Config.User}}|{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}";
        let info = docker(&["inspect", "--format", f, id]);
        let parts: Vec<&str> = info.trim().split('|').collect();
        assert!(
            parts[0] == "{}" || parts[0] == "null",
            "ports bound on the host: {info}"
        );
        assert!(!parts[1].contains("HostIp"), "published: {info}");
        assert_eq!(parts[2], "libertem", "runs as {:?}: {info}", parts[2]);
        assert!(
            parts[3].contains(":/data:false"),
            "/data must be read-only: {info}"
        );
        assert!(
            !parts[3].contains("docker.sock"),
            "docker socket mounted: {info}"
        );
    }
}

/// `status` on the published cluster: every service running, every host
/// and engine registered, and the addresses `up` printed.
fn status_is_ready(published: &[&str]) {
    let o = xtask(&["status"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let services: Vec<(&str, &str)> = out
        .lines()
        .skip(1)
        .take(4)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?))
        })
        .collect();
    assert_eq!(
        services,
        [
            ("scheduler", "running"),
            ("ipy-controller", "running"),
            ("worker-1", "running"),
            ("ipy-worker-1", "running")
        ],
        "{out}"
    );
    assert!(
        out.contains("dask worker hosts 1/1, ipyparallel engines 1/1"),
        "{out}"
    );
    for line in published {
        let address = line.split("published: ").nth(1).unwrap();
        assert!(
            out.contains(&format!("published: {address}")),
            "status shows {address}: {out}"
        );
    }
    assert_eq!(out.lines().last(), Some("ready"), "{out}");
}

fn logs_name_the_services() {
    let o = xtask(&["logs", "worker-9"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(
            "unknown service \"worker-9\": the services are scheduler, ipy-controller, worker-1, ipy-worker-1"
        ),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    let o = xtask(&["logs", "scheduler"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Scheduler at"), "{}", stdout(&o));
    assert!(!stdout(&o).contains('\x1b'), "colour codes in a pipe");
}

/// After `up --publish`: the scheduler and its dashboard on 127.0.0.1 only,
/// remembered in the saved state, so that status and test address the same
/// cluster with the same files and leave its ports alone.
fn publish_is_remembered(project: &str, up_output: &str) {
    let published: Vec<&str> = up_output
        .lines()
        .filter(|l| l.contains("published: "))
        .collect();
    assert_eq!(published.len(), 2, "{up_output}");
    for line in &published {
        assert!(line.contains("-> 127.0.0.1:"), "{line}");
    }
    let state = saved_state().expect("up saves the cluster state");
    assert!(state.publish, "--publish is remembered: {state:?}");
    assert_eq!(state.name, project);
    let size = state.size;
    assert_eq!((size.workers, size.engines, size.worker_cpus), (1, 1, 1));

    let ports = || {
        docker(&[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Ports}}",
        ])
    };
    let published_ports = ports();
    assert!(
        published_ports.contains("127.0.0.1:")
            && !published_ports.contains("0.0.0.0:")
            && !published_ports.contains(":::"),
        "{published_ports}"
    );
    // The dashboard answers on its loopback port.
    let dashboard = published
        .iter()
        .find(|l| l.contains("8787/tcp"))
        .and_then(|l| l.rsplit(':').next())
        .expect("the dashboard's port");
    assert_eq!(http_get(dashboard.trim(), "/health"), "ok");

    status_is_ready(&published);
    let o = xtask(&[
        "test",
        "-q",
        "--",
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "test on the published cluster: {err}");
    let s = summary(&err);
    assert_eq!(s.counts.passed, 1, "{s:?}");
    assert_eq!(s.compose_project, project);
    assert_eq!(s.project, state.project.display().to_string());
    assert_eq!(
        ports(),
        published_ports,
        "status and test left the ports alone"
    );
}

/// The body of `GET path` on 127.0.0.1:port.
fn http_get(port: &str, path: &str) -> String {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A test that needs no worker, so pytest passes; the run must not, when
/// worker-1 is killed meanwhile. `status` then says not ready.
fn a_service_killed_during_the_tests_fails_the_run(project: &str) {
    let mut run = spawn(&[
        "test",
        "--",
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    run.wait_for("  ready", Duration::from_secs(300));
    let worker = running(project, "worker-1").expect("worker-1 running");
    docker(&["kill", &worker]);
    let (code, _, err) = run.finish(Duration::from_secs(300));
    let s = summary(&err);
    assert_eq!(
        (s.counts.passed, s.counts.failed),
        (1, 0),
        "pytest itself passed: {s:?}"
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(s.exit_code, 1);
    assert_eq!(s.dead_services.len(), 1, "{s:?}");
    assert_eq!(s.dead_services[0].service, "worker-1");
    assert_eq!(s.dead_services[0].exit_code, Some(137));
    assert!(
        err.contains("error: service worker-1 died during the run"),
        "{err}"
    );
    let o = xtask(&["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().last(),
        Some("not ready"),
        "{}",
        stdout(&o)
    );
}

/// A cached jitted function in a module the edit does not touch, which
/// calls a jitted LiberTEM function in the edited one: numba's own checks
/// would serve it compiled with the old callee.
const FRESH_CALLER: &str = r#"import numba
import numpy as np

from libertem.common.buffers import get_bbox_2d


@numba.njit(cache=True)
def bbox_of_eye():
    return get_bbox_2d(np.eye(4) * 0.5)
"#;

/// Added to the kept cluster's project: what a Dask worker and an engine
/// compute with a LiberTEM function (in Python, and through the cached
/// caller above), against what the tests container (a new process each
/// run) computes with the source as it is now.
const FRESH_MODULE: &str = "test_dist_test_fresh.py";
const FRESH_TEST: &str = r#"import ipyparallel
import numpy as np
import pytest

from libertem.common.buffers import get_bbox_2d


# Defined in each test, so that it travels by value (this module is not
# importable on the workers), and imports there what the worker has.
@pytest.mark.dist
def test_dask_workers_run_the_current_source(dist_ctx):
    def bbox_of_eye():
        import numpy as np
        from libertem.common.buffers import get_bbox_2d

        return tuple(int(v) for v in get_bbox_2d.py_func(np.eye(4) * 0.5))

    def cached_caller():
        import sys

        sys.path.insert(0, "/src/tests")
        import dist_test_kept_caller

        return tuple(int(v) for v in dist_test_kept_caller.bbox_of_eye())

    expected = tuple(int(v) for v in get_bbox_2d.py_func(np.eye(4) * 0.5))
    results = dist_ctx.executor.run_each_worker(bbox_of_eye)
    assert results and set(results.values()) == {expected}, (results, expected)
    results = dist_ctx.executor.run_each_worker(cached_caller)
    assert results and set(results.values()) == {expected}, ("numba", results, expected)


@pytest.mark.dist
def test_engines_run_the_current_source():
    def bbox_of_eye():
        import numpy as np
        from libertem.common.buffers import get_bbox_2d

        return tuple(int(v) for v in get_bbox_2d.py_func(np.eye(4) * 0.5))

    # ipyparallel looks a function's globals up by its module's name.
    bbox_of_eye.__module__ = "__main__"
    expected = tuple(int(v) for v in get_bbox_2d.py_func(np.eye(4) * 0.5))
    with ipyparallel.Client() as client:
        client.wait_for_engines(1, timeout=60)
        results = client[:].apply_sync(bbox_of_eye)
    assert results and set(results) == {expected}, (results, expected)
"#;

/// The kept cluster's workers and engines run the project's source as it
/// is: after an edit to a LiberTEM function, `test` restarts them (saying
/// so) and they compute with the edit. Made to look unedited (the saved
/// listing of what they imported set to the edited source), `test` restarts nothing and the check
/// fails: the workers and engines still run the old code. With no edit
/// since the last run, `test` restarts nothing.
fn an_edit_restarts_the_workers_and_engines_once(copy: &Path) {
    let selection = format!("tests/{FRESH_MODULE}");
    let test = |passed: u64, failed: u64| {
        let o = xtask(&["test", "--", &selection]);
        let err = stderr(&o);
        let s = summary(&err);
        assert_eq!(
            (s.counts.passed, s.counts.failed),
            (passed, failed),
            "{err}"
        );
        let restarted = err.contains("the project's source changed");
        assert_eq!(
            restarted,
            s.phases.get("restart").is_some(),
            "a restart said and timed: {err}"
        );
        restarted
    };
    assert!(!test(2, 0), "nothing changed since up: nothing restarts");
    edit_get_bbox_2d(copy);
    let ws = Workspace::load(&Location::new(None).unwrap()).unwrap();
    let imported = Imported::path(&ws);
    let saved = fs::read_to_string(&imported).unwrap();
    Imported::of(copy).unwrap().save(&ws).unwrap();
    assert!(
        !test(0, 2),
        "old code on the workers and engines fails the check"
    );
    fs::write(&imported, saved).unwrap();
    assert!(test(2, 0), "the edit restarts the workers and engines");
    assert!(!test(2, 0), "no edit since the last run: nothing restarts");
}
