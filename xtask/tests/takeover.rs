//! A command killed while it holds the checkout lock: the next command takes
//! the lock over, says so, and passes. In a test binary of its own, so that
//! no other scenario of the checkout takes the lock first (and says so in
//! its own output instead).

mod common;
use common::*;

use std::time::Duration;

/// `kill -9` of a dist-test while it builds, and at once another: the new
/// one says it took over the lock from the dead one, stops the helper the
/// dead one left running, and passes on what it builds itself.
#[test]
fn a_run_killed_in_its_build_leaves_nothing_the_next_run_trips_over() {
    if !engine_available() {
        return;
    }
    let copy = edited_release("killed-build", "killed build");
    let project = copy.to_str().unwrap();
    let args = smallest_dist_test(&[
        "--verbose",
        "--project",
        project,
        "--",
        "tests/template/test_ring_template.py::test_datadir_inspection",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut killed = spawn(&args);
    // The project's editable install has started (a helper container):
    // the lock is held, a build is running.
    killed.wait_for("/opt/dist-test/project-site", Duration::from_secs(600));
    killed.signal("KILL", false);
    let _ = killed.finish(Duration::from_secs(30));
    let o = xtask(&args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the run after the killed one: {err}"
    );
    let took_over: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("took over this checkout's lock from"))
        .collect();
    assert_eq!(took_over.len(), 1, "one line says so: {err}");
    assert!(
        took_over[0].contains("which ended without releasing it"),
        "{err}"
    );
    let s = summary(&err);
    assert_eq!((s.counts.passed, s.counts.failed), (1, 0), "{s:?}");
}
