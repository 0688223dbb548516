//! Runs that fail or are stopped once a cluster is coming up, and commands
//! of one checkout that run at once: every run ends with nothing of it left
//! on the engine and the right exit code, whatever happened. Each runs on
//! the smallest cluster that proves it, and checks only its own compose
//! project, so scenarios run side by side and other clusters on the engine
//! do not matter. A run killed in its build runs in a checkout of its own.
//! (A run killed with SIGKILL and `down --all`: in the two-checkouts chain,
//! cluster/checkouts.rs.)

use crate::common::*;

use std::fs;
use std::time::{Duration, Instant};

fn smallest(extra: &[&str]) -> Running {
    let args = smallest_dist_test(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(&args)
}

#[test]
fn a_readiness_timeout_names_the_service_and_tears_down() {
    if !engine_available() {
        return;
    }
    let cfg = std::env::temp_dir().join(format!("xtask-ready-{}.toml", std::process::id()));
    let text = fs::read_to_string(small_config())
        .unwrap()
        .replace("ready_s = 180", "ready_s = 1");
    fs::write(&cfg, text).unwrap();
    let o = xtask(&[
        "--config",
        cfg.to_str().unwrap(),
        "dist-test",
        "-q",
        "--workers",
        "1",
        "--engines",
        "1",
    ]);
    let err = stderr(&o);
    // The cluster, not a test, failed: infrastructure (docs/dist-tests.md).
    assert_eq!(o.status.code(), Some(75), "{err}");
    assert!(err.contains("the cluster was not ready after 1 s"), "{err}");
    assert!(err.contains("last log lines of"), "{err}");
    let s = summary(&err);
    assert!(
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("not ready after 1 s")),
        "{s:?}"
    );
    let left = leftovers_of_project(&s.compose_project);
    assert!(left.is_empty(), "readiness timeout: left behind {left:?}");
    let _ = fs::remove_file(cfg);
}

/// Start a dist-test, wait until its cluster is ready and pytest has had a
/// moment to start, then signal it; it must exit 130 with nothing left.
fn signal_during_the_tests(sig: &str, whole_group: bool) -> Duration {
    let mut run = smallest(&[]);
    let project = run.run_project(&root());
    run.wait_for("  ready", Duration::from_secs(400));
    // pytest is starting in the tests container: a one-off container exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(&project, "tests").is_none() {
        assert!(Instant::now() < deadline, "the tests container never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    run.signal(sig, whole_group);
    let (code, took, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, 130, "{err}");
    assert_eq!(summary(&err).exit_code, 130);
    let left = leftovers_of_project(&project);
    assert!(left.is_empty(), "{sig}: left behind {left:?}");
    took
}

#[test]
fn sigint_during_the_tests_tears_down() {
    if !engine_available() {
        return;
    }
    // As Ctrl-C does: to the whole process group.
    let took = signal_during_the_tests("INT", true);
    eprintln!("SIGINT during tests: exit 130 after {took:?}");
}

#[test]
fn sigterm_to_the_xtask_alone_tears_down() {
    if !engine_available() {
        return;
    }
    let took = signal_during_the_tests("TERM", false);
    eprintln!("SIGTERM during tests: exit 130 after {took:?}");
}

/// `kill -9` of a dist-test while it builds, and at once a build: it says
/// it took over the lock from the dead one, stops the helper the dead one
/// left running, and builds the project itself.
#[test]
fn a_run_killed_in_its_build_is_taken_over() {
    if !engine_available() {
        return;
    }
    // A checkout of its own: no other scenario takes its lock first.
    let other = &other_checkout("takeover-checkout");
    let _clean = CleanOnDrop(other.clone());
    let copy = edited_release("killed-build", "killed build");
    let project = copy.to_str().unwrap();
    let args = smallest_dist_test(&["--verbose", "--project", project]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut killed = spawn_in(other, &args);
    // The project's editable install has started (a helper container):
    // the lock is held, a build is running.
    killed.wait_for("/opt/dist-test/project-site", Duration::from_secs(600));
    killed.signal("KILL", false);
    let _ = killed.finish(Duration::from_secs(30));
    let o = xtask_in(other, &["build", "--project", project], &[]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the build after the killed run: {err}"
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
    assert!(
        err.contains(&format!("image {}:", checkout_id(other))),
        "{err}"
    );
    let o = xtask_in(other, &["down", "--all"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `clean` in a scratch checkout, whatever happened: it leaves nothing.
struct CleanOnDrop(std::path::PathBuf);

impl Drop for CleanOnDrop {
    fn drop(&mut self) {
        let _turn = cleans();
        let o = xtask_in(&self.0, &["clean"], &[]);
        if !std::thread::panicking() {
            assert!(o.status.success(), "clean: {}", stderr(&o));
            let left = leftovers_of_checkout(&self.0);
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }
}

/// Right after a build of another project, three commands of this checkout
/// at once, each needing an image of a project not built yet: two
/// `dist-test`s (one with `--no-testdata`) and `up` followed by `test`.
/// One builds while the others wait, saying for whom; then they test side
/// by side, each on what it registered. All pass, and `down` leaves nothing
/// of any of them. Second tier (`.ci/run`): two builds and three clusters.
#[test]
#[ignore = "second tier: .ci/run runs it (cargo test -p xtask -- --ignored)"]
fn three_commands_of_one_checkout_at_once_all_pass() {
    if !engine_available() {
        return;
    }
    // A checkout of its own: its kept cluster is nobody else's; its images
    // and numba volumes go with a `clean` there at the end.
    let checkout = other_checkout("at-once-checkout");
    let _clean = CleanOnDrop(checkout.clone());
    let first = edited_release("at-once-first", "built first");
    let o = xtask_in(
        &checkout,
        &["build", "-q", "--project", first.to_str().unwrap()],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let copy = edited_release("at-once", &format!("run {:?}", Instant::now()));
    let project = copy.to_str().unwrap();
    let test = "tests/template/test_ring_template.py::test_datadir_inspection";
    let config = small_config();
    let config = config.to_str().unwrap();
    let small = ["--config", config];
    let size = ["--workers", "1", "--engines", "1", "--project", project];
    let dist_test = |extra: &[&str]| {
        let mut args: Vec<&str> = small.to_vec();
        args.push("dist-test");
        args.extend(size);
        args.extend(extra);
        args.extend(["--", test]);
        spawn_in(&checkout, &args)
    };
    let mut a = dist_test(&[]);
    let mut b = dist_test(&["--no-testdata"]);
    let ((up, test), projects, (code_a, err_a), (code_b, err_b)) = std::thread::scope(|scope| {
        let kept = scope.spawn(|| {
            let mut up: Vec<&str> = small.to_vec();
            up.push("up");
            up.extend(size);
            let up = xtask_in(&checkout, &up, &[]);
            let test = xtask_in(&checkout, &["test", "--", test], &[]);
            (up, test)
        });
        let projects = [a.run_project(&checkout), b.run_project(&checkout)];
        let (code_a, _, err_a) = a.finish(Duration::from_secs(900));
        let (code_b, _, err_b) = b.finish(Duration::from_secs(900));
        (
            kept.join().unwrap(),
            projects,
            (code_a, err_a),
            (code_b, err_b),
        )
    });
    let (err_up, err_test) = (stderr(&up), stderr(&test));
    assert_eq!(code_a, 0, "dist-test: {err_a}");
    assert_eq!(code_b, 0, "dist-test --no-testdata: {err_b}");
    assert!(up.status.success(), "up: {err_up}");
    assert!(test.status.success(), "test: {err_test}");
    for err in [&err_a, &err_b, &err_test] {
        assert_eq!(summary(err).counts.passed, 1, "{err}");
    }
    let waited: Vec<&str> = [&err_a, &err_b, &err_up]
        .iter()
        .flat_map(|e| e.lines())
        .filter(|l| l.contains("waiting for this checkout's lock, held by `cargo xtask"))
        .collect();
    assert!(
        !waited.is_empty(),
        "one built, the others waited and said so:\n{err_a}\n{err_b}\n{err_up}"
    );
    let o = xtask_in(&checkout, &["down"], &[]);
    assert!(o.status.success(), "down: {}", stderr(&o));
    for p in projects.iter().chain([&checkout_id(&checkout)]) {
        let left = leftovers_of_project(p);
        assert!(left.is_empty(), "{p}: left behind {left:?}");
    }
}
