//! Nothing hangs, and a hang explains itself. On a copy of the pinned
//! release with a dist test that waits forever on a Dask future, on the
//! smallest cluster: the test is stopped at its deadline as "timed out",
//! every process's stacks and Dask's cluster dump are kept first, the
//! workers are restarted and the next test passes; `--keep-on-failure`
//! makes the failed run's cluster the checkout's kept one, which `status`,
//! `test` and `down` address. (A service killed under the tests, verdict
//! infrastructure: cluster/kept.rs. The ready gate and the engines' wait:
//! tests/harness.rs.)

use crate::common::*;

use std::fs;
use std::time::{Duration, Instant};

use xtask::outcome::RunVerdict;
use xtask::repeats::Verdict;

const HANGING: &str = r#""""A dist test that waits forever on a Dask future (a task that
sleeps for a year), for cargo xtask's deadline scenario."""
import time

import distributed
import pytest


@pytest.mark.dist
def test_waits_forever_on_a_future(scheduler_addr):
    with distributed.Client(scheduler_addr) as client:
        future = client.submit(time.sleep, 365 * 86400, pure=False)
        future.result()
"#;

const HANGS: &str = "tests/test_hangs_forever.py::test_waits_forever_on_a_future";
const AFTER: &str = "tests/io/datasets/test_raw.py::test_sum_on_dist";

#[test]
fn a_test_that_waits_forever_times_out_with_every_process_stacks_kept() {
    if !engine_available() {
        return;
    }
    let copy = release_copy("hanging-test", true);
    let _copy = RemoveImageOnDrop(copy.clone());
    fs::write(copy.join("tests/test_hangs_forever.py"), HANGING).unwrap();
    // The failed run's cluster becomes the main checkout's kept one.
    let _kept = main_kept_cluster();
    let copy_arg = copy.display().to_string();
    let mut args = smallest_dist_test(&[
        "--project",
        &copy_arg,
        "--test-timeout",
        "20",
        "--keep-on-failure",
    ]);
    args.extend(["--".into(), HANGS.into(), AFTER.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let o = xtask(&args);
    let took = start.elapsed();
    let err = stderr(&o);
    let s = summary(&err);
    let project = s.compose_project.clone();
    let _down = DownOnDrop;
    // pytest decided (it went on after the timeout): its code, verdict timed out.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(s.verdict, Some(RunVerdict::TimedOut), "{s:?}");
    assert!(took < Duration::from_secs(20 + 60 + 300), "took {took:?}");
    let verdict = |id: &str| s.tests.iter().find(|t| t.id == id).map(|t| t.verdict);
    assert_eq!(verdict(HANGS), Some(Verdict::TimedOut), "{s:?}");
    assert_eq!(
        verdict(AFTER),
        Some(Verdict::Passed),
        "the suite went on: {s:?}"
    );

    let dir = run_dir(&err);
    let snap = s.snapshots.first().expect("a snapshot was taken");
    assert_eq!(snap.test.as_deref(), Some(HANGS));
    assert!(snap.usable, "{snap:?}");
    let read = |rel: &str| fs::read_to_string(dir.join(rel)).unwrap_or_default();
    let stacks_of = |service: &str| {
        let rel = format!("{}/stacks/{service}.txt", snap.dir);
        assert!(snap.stacks.contains(&rel), "{snap:?}");
        read(&rel)
    };
    // The waiting frame in the tests container's pytest; the sleeping task
    // on the worker; every engine and the scheduler answered.
    assert!(stacks_of("tests").contains("test_hangs_forever.py\", line 13"));
    assert!(stacks_of("worker-1").contains("in _run_task"));
    for service in ["ipy-worker-1", "scheduler", "ipy-controller"] {
        assert!(stacks_of(service).contains("=== pid "), "{service}");
    }
    let dump = read(snap.dask.as_deref().expect("a Dask dump"));
    assert!(
        dump.contains("scheduler:") && dump.contains("sleep-"),
        "{dump:.400}"
    );
    // The failure bundle and the report.
    let failure = s
        .tests
        .iter()
        .find(|t| t.id == HANGS)
        .and_then(|t| t.failure.clone());
    let failure = failure.expect("the timed-out test's failure");
    assert!(failure.phases[0].longrepr.contains("timed out after 20 s"));
    assert!(read(failure.bundle.as_deref().unwrap()).contains("every service's log"));
    let report = read("report.html");
    assert!(report.contains("timed out: ") && report.contains("stacks/worker-1.txt"));
    assert!(read("pytest.log").contains("restarted the cluster's"));

    // --keep-on-failure: the kept cluster, for status, test and down.
    let o = xtask(&["status"]);
    assert!(stdout(&o).contains(&project), "{}", stdout(&o));
    let o = xtask(&["test", "-q", "--", AFTER]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "test on the kept cluster: {}",
        stderr(&o)
    );
    let o = xtask(&["down"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let left = leftovers_of_project(&project);
    assert!(left.is_empty(), "left {left:?}");
}

/// The kept cluster goes when a step panics.
struct DownOnDrop;

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = xtask(&["down"]);
        }
    }
}

/// The suite's own deadline (`timeouts.tests_s`) with no test's passed: the
/// stacks are kept all the same, pytest is ended, the run says timed out
/// with exit code 124, and the test that was running is counted from the
/// harness's timeline. Nothing of the run is left.
#[test]
fn the_suites_deadline_keeps_the_stacks_and_ends_pytest_with_124() {
    if !engine_available() {
        return;
    }
    let copy = release_copy("hanging-suite", true);
    let _copy = RemoveImageOnDrop(copy.clone());
    fs::write(copy.join("tests/test_hangs_forever.py"), HANGING).unwrap();
    let text = fs::read_to_string(small_config()).unwrap();
    let short = text.replace("tests_s = 900\n", "tests_s = 30\n");
    assert_ne!(short, text, "dist-test.toml sets tests_s = 900");
    let config = root().join("target/xtask-tests/suite-deadline.toml");
    fs::write(&config, short).unwrap();
    let (config, copy) = (config.display().to_string(), copy.display().to_string());
    let o = xtask(&[
        "--config",
        &config,
        "dist-test",
        "--workers",
        "1",
        "--engines",
        "1",
        "--project",
        &copy,
        "--",
        AFTER,
        HANGS,
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(124), "{err}");
    let s = summary(&err);
    assert_eq!(s.verdict, Some(RunVerdict::TimedOut), "{s:?}");
    assert!(
        err.contains("the tests passed the suite's deadline (30 s)"),
        "{err}"
    );
    let snap = s
        .snapshots
        .first()
        .expect("a snapshot at the suite's deadline");
    assert_eq!(snap.test, None, "{snap:?}");
    assert!(snap.dir.starts_with("timeouts/suite-"), "{snap:?}");
    let tests = fs::read_to_string(run_dir(&err).join(&snap.dir).join("stacks/tests.txt"));
    assert!(tests
        .unwrap_or_default()
        .contains("test_hangs_forever.py\", line 13"));
    // pytest wrote no JUnit XML; the test before the hang still counts.
    let verdict = |id: &str| s.tests.iter().find(|t| t.id == id).map(|t| t.verdict);
    assert_eq!(verdict(AFTER), Some(Verdict::Passed), "{s:?}");
    assert_eq!(verdict(HANGS), Some(Verdict::TimedOut), "{s:?}");
    assert_eq!(s.counts.passed, 1, "{s:?}");
    let left = leftovers_of_project(&s.compose_project);
    assert!(left.is_empty(), "left {left:?}");
}
