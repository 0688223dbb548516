//! End-to-end on real clusters, as two chains that run beside each other
//! (and beside the other scenarios), each checking only its own objects:
//!
//! - two checkouts side by side (`checkouts.rs`): the main job on the
//!   default cluster beside a second checkout's smallest one; a run of the
//!   second killed with SIGKILL, and one killed in its build; the second
//!   checkout deleted, and `clean` in a third removing what it left;
//! - one kept cluster (`kept.rs`) that every scenario needing only a
//!   running cluster shares: the published ports, `status`, `logs`, a
//!   failing test on a GitHub Actions page, pytest's own cache, an edit
//!   that restarts what loaded it and one that restarts nothing, a flaky
//!   test under `--repeat` and `--until-failure`, a test made slower and
//!   flagged by `history` (`flakes.rs`), a worker killed during the tests.
//!
//! These need Docker; on a machine without an engine they skip, loudly,
//! unless CI is set, where a missing engine is a failure.

use crate::common::*;

#[path = "cluster/checkouts.rs"]
mod checkouts;
#[path = "cluster/flakes.rs"]
mod flakes;
#[path = "cluster/gha.rs"]
mod gha;
#[path = "cluster/kept.rs"]
mod kept;

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

#[test]
fn two_checkouts_side_by_side_and_what_a_deleted_one_leaves() {
    if !engine_available() {
        return;
    }
    // Its main job's `--keep` makes the main checkout's kept cluster.
    let _kept = main_kept_cluster();
    checkouts::chain();
}

#[test]
fn a_kept_cluster_serves_every_command() {
    if !engine_available() {
        return;
    }
    kept::chain();
}
