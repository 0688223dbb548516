//! Runs that fail or are stopped once a cluster is coming up, and commands
//! of one checkout that run at once: every run ends with nothing of it left
//! on the engine and the right exit code, whatever happened. Each runs on
//! the smallest cluster that proves it, and checks only its own compose
//! project, so scenarios run side by side and other clusters on the engine
//! do not matter; `down --all` runs on a second checkout.

mod common;
use common::*;

use std::fs;
use std::process::Command;
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
    assert_eq!(o.status.code(), Some(1), "{err}");
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

/// Start the ipyparallel test on 1 worker x 2 engines (one worker is
/// enough; two engines are the point).
fn start_ipython_test(extra: &[&str]) -> (Running, String) {
    let mut args = vec!["--", "tests/test_ipython.py"];
    args.extend(extra);
    let args = small_dist_test(2, &args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = spawn(&args);
    let project = run.run_project(&root());
    (run, project)
}

/// Hold ipy-worker-2 to 5% of a CPU from the moment the cluster is ready
/// until its Dask worker has started, so that it joins seconds after
/// LiberTEM's `ipy_ctx` fixture has handed out its Context. Returns the
/// xtask's exit code, the run's pytest output and its stderr.
fn with_a_late_engine(mut run: Running, project: &str) -> (i32, String, String) {
    run.wait_for("  ready", Duration::from_secs(400));
    let engine = running(project, "ipy-worker-2").expect("ipy-worker-2 running");
    docker(&["update", "--cpus", "0.05", &engine]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let logs = Command::new("docker")
            .args(["logs", &engine])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&logs.stderr) + String::from_utf8_lossy(&logs.stdout);
        // ipyparallel logs this once the engine's Dask worker has started.
        if text.contains("dask start finished") || Instant::now() > deadline {
            break;
        }
        if run.child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = Command::new("docker")
        .args(["update", "--cpus", &cores.to_string(), &engine])
        .output();
    let (code, _, err) = run.finish(Duration::from_secs(600));
    let out = fs::read_to_string(run_dir(&err).join("pytest.log")).unwrap_or_default();
    let left = leftovers_of_project(project);
    assert!(left.is_empty(), "late engine: left behind {left:?}");
    (code, out, err)
}

#[test]
fn an_engine_that_joins_dask_late_is_waited_for() {
    if !engine_available() {
        return;
    }
    // The control, without the harness plugin, and the plugin, side by
    // side, each with its own late engine.
    let (control, control_project) = start_ipython_test(&["-p", "no:dist_test_harness"]);
    let (fixed, fixed_project) = start_ipython_test(&[]);
    let control = std::thread::spawn(move || with_a_late_engine(control, &control_project));
    let (code, out, err) = with_a_late_engine(fixed, &fixed_project);
    let (control_code, control_out, _) = control.join().expect("the control half");

    // The control: the late engine never got the fixture's data file, so
    // the scenario does reproduce the race.
    assert_eq!(control_code, 1, "{control_out}");
    assert!(control_out.contains("FileNotFoundError"), "{control_out}");
    let s = summary(&err);
    assert_eq!(code, 0, "{s:?}\n{out}");
    assert_eq!(s.counts.passed, 1, "{s:?}");
}

/// A run killed with SIGKILL cannot tear down; `down --all` must, and
/// `down --all` and `down` again succeed with nothing to do. On the second
/// checkout (a copy under target/), so that `down --all` removes no other
/// scenario's cluster and this one runs beside them.
#[test]
fn a_killed_run_is_removed_by_down_all() {
    if !engine_available() {
        return;
    }
    let other = other_checkout("second-checkout");
    let args = smallest_dist_test(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = spawn_in(&other, &args);
    let project = run.run_project(&other);
    // Killed once every service of the smallest cluster has a container.
    let label = format!("label=com.docker.compose.project={project}");
    let containers = || docker(&["ps", "-aq", "--filter", &label]).lines().count();
    let deadline = Instant::now() + Duration::from_secs(300);
    while containers() < 4 {
        assert!(Instant::now() < deadline, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(500));
    }
    run.signal("KILL", false);
    let _ = run.finish(Duration::from_secs(30));
    assert!(containers() >= 4, "a killed run leaves its cluster behind");
    for _ in 0..2 {
        let o = xtask_in(&other, &["down", "--all"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let left = leftovers_of_checkout(&other);
        assert!(left.is_empty(), "down --all: left behind {left:?}");
    }
    let o = xtask_in(&other, &["down"], &[]);
    assert!(o.status.success(), "down on nothing: {}", stderr(&o));
}

/// Right after a build of another project, three commands of this checkout
/// at once, each needing an image of a project not built yet: two
/// `dist-test`s (one with `--no-testdata`) and `up` followed by `test`.
/// One builds while the others wait, saying for whom; then they test side
/// by side, each on what it registered. All pass, and `down` leaves nothing
/// of any of them.
#[test]
fn three_commands_of_one_checkout_at_once_all_pass() {
    if !engine_available() {
        return;
    }
    let first = edited_release("at-once-first", "built first");
    let o = xtask(&["build", "-q", "--project", first.to_str().unwrap()]);
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
        spawn(&args)
    };
    let mut a = dist_test(&[]);
    let mut b = dist_test(&["--no-testdata"]);
    let ((up, test), projects, (code_a, err_a), (code_b, err_b)) = std::thread::scope(|scope| {
        let kept = scope.spawn(|| {
            let mut up: Vec<&str> = small.to_vec();
            up.push("up");
            up.extend(size);
            let up = xtask(&up);
            let test = xtask(&["test", "--", test]);
            (up, test)
        });
        let projects = [a.run_project(&root()), b.run_project(&root())];
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
    let o = xtask(&["down"]);
    assert!(o.status.success(), "down: {}", stderr(&o));
    for p in projects.iter().chain([&checkout_id(&root())]) {
        let left = leftovers_of_project(p);
        assert!(left.is_empty(), "{p}: left behind {left:?}");
    }
}
