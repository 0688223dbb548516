//! The checkout's kept cluster, at its smallest and started with
//! `--publish`, on a copy of the pinned release with test modules of the
//! scenarios' own: every scenario that only needs a running cluster, one
//! after another, then a worker killed during the tests, then `down`.

use crate::common::*;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use xtask::cluster::freshness::Imported;
use xtask::cluster::state::ClusterState;
use xtask::workspace::{Location, Workspace};

use super::flakes;
use super::gha::a_failing_test_fails_the_run;

pub fn chain() {
    let _kept = main_kept_cluster();
    let project = checkout_id(&root());
    let _ = xtask(&["down"]); // what an interrupted test run may have left
    let copy = release_copy("kept", true);
    let _down = DownOnDrop(copy.clone());
    // A new copy, a new cache: `--lf` below must see this run's failure only.
    let ws = Workspace::load(&Location::new(None).unwrap()).unwrap();
    let _ = fs::remove_dir_all(ws.pytest_cache(&copy));
    let start = std::time::Instant::now();
    let step = |name: &str| eprintln!("kept cluster: {name} at {:?}", start.elapsed());

    let config = small_config();
    fs::write(copy.join("tests").join(FRESH_MODULE), FRESH_TEST).unwrap();
    fs::write(copy.join("tests/dist_test_kept_caller.py"), FRESH_CALLER).unwrap();
    fs::write(copy.join(FLIP_MODULE), FLIP).unwrap();
    flakes::add_tests(&copy);
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
    pytests_cache_reruns_the_failure(&copy);
    step("--lf, --ff, --sw");
    a_failing_test_fails_the_run(&project);
    step("a failing test");
    // pytest rejecting its arguments: pytest's own exit code (4).
    let o = xtask(&["test", "-q", "--", "--no-such-pytest-option"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    step("rejected arguments");
    an_edit_restarts_the_workers_and_engines_once(&copy);
    step("an edit, then no edit, then an edit of a test module");
    flakes::a_seeded_flaky_test_is_called_flaky_and_stopped_at();
    step("a flaky test");
    flakes::history_flags_a_test_made_slower(&copy);
    step("a test made slower");
    a_service_killed_during_the_tests_fails_the_run(&project);
    step("a killed worker");
    down_leaves_nothing(&project);
    remove_project_image(&copy);
    step("down");
}

/// Takes the checkout's kept cluster down, and removes its project's image,
/// when a step panics.
struct DownOnDrop(std::path::PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = xtask(&["down"]);
            remove_project_image(&self.0);
        }
    }
}

fn saved_state() -> Option<ClusterState> {
    let loc = Location::new(None).unwrap();
    let ws = Workspace::load(&loc).unwrap();
    ClusterState::load(&ws).unwrap()
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

/// A dist test that fails while its project has a file `tests/flip.txt`.
const FLIP_MODULE: &str = "tests/test_dist_test_flip.py";
const FLIP: &str = r#"import os

import pytest


@pytest.mark.dist
def test_flip():
    assert not os.path.exists(os.path.join(os.path.dirname(__file__), "flip.txt"))
"#;

/// A run with one failing test (`--sw`: pytest stops at it): `--lf`
/// (with `--ff`) then runs that test only. Nothing of the cache is written
/// into the project.
fn pytests_cache_reruns_the_failure(copy: &Path) {
    let flip = copy.join("tests/flip.txt");
    fs::write(&flip, "fail\n").unwrap();
    let o = xtask(&[
        "test",
        "--",
        "--sw",
        FLIP_MODULE,
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    let err = stderr(&o);
    let s = summary(&err);
    assert_eq!(
        (s.counts.failed, s.counts.passed),
        (1, 0),
        "--sw stops at the first failure: {err}"
    );
    fs::remove_file(&flip).unwrap();
    let o = xtask(&["test", "--", "--lf", "--ff"]);
    let err = stderr(&o);
    assert!(o.status.success(), "--lf: {err}");
    let s = summary(&err);
    let ran: Vec<&str> = s.tests.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ran,
        [format!("{FLIP_MODULE}::test_flip").as_str()],
        "--lf runs the failed test only: {err}"
    );
    assert!(
        !copy.join(".pytest_cache").exists() && !copy.join("tests/.pytest_cache").exists(),
        "pytest's cache was written into the project"
    );
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
    // Infrastructure, whatever pytest said (docs/dist-tests.md).
    assert_eq!(code, 75, "{err}");
    assert_eq!(s.exit_code, 75);
    assert_eq!(s.verdict, Some(xtask::outcome::RunVerdict::Infrastructure));
    assert_eq!(s.dead_services.len(), 1, "{s:?}");
    assert_eq!(s.dead_services[0].service, "worker-1");
    assert_eq!(s.dead_services[0].exit_code, Some(137));
    assert!(s.dead_services[0].ended.is_some(), "{s:?}");
    let inspected = s.containers.iter().find(|c| c.service == "worker-1");
    assert_eq!(inspected.and_then(|c| c.exit_code), Some(137), "{s:?}");
    assert!(
        err.contains("error: service worker-1 died during the run (exit code 137; Exited (137)"),
        "{err}"
    );
    assert!(err.contains("exit code 75 (infrastructure)"), "{err}");
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
        let restarted = err.contains(" changed: replaced ");
        if restarted {
            assert!(
                s.phases.get("restart").is_some(),
                "a restart is timed: {err}"
            );
        }
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
    // A test module no worker or engine has loaded: nothing restarts, and
    // one line says so.
    let module = copy.join("tests").join(FRESH_MODULE);
    let text = fs::read_to_string(&module).unwrap();
    fs::write(&module, format!("{text}\n# edited\n")).unwrap();
    let o = xtask(&["test", "--", &selection]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&format!("tests/{FRESH_MODULE} changed")))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("no worker or engine has loaded it: nothing restarted"),
        "{err}"
    );
}
