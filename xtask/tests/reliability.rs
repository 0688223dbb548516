//! Failure paths on the real engine: every run ends with nothing of it left
//! on the engine and the right exit code, whatever happened. Scenarios run
//! one at a time (a lock), each on the smallest cluster that proves it, and
//! every check is scoped to this checkout's label or to the run's own
//! compose project, so other clusters on the engine do not matter.

mod common;
use common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The smallest cluster: scenarios that do not need two of anything.
const SMALLEST: [&str; 4] = ["--workers", "1", "--engines", "1"];

fn dist_test_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["dist-test"];
    args.extend(SMALLEST);
    args.extend(extra);
    args
}

fn assert_nothing_left(scenario: &str) {
    let left = leftovers_of_checkout(&root());
    assert!(left.is_empty(), "{scenario}: left behind {left:?}");
}

#[test]
fn a_readiness_timeout_names_the_service_and_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let cfg = std::env::temp_dir().join(format!("xtask-ready-{}.toml", std::process::id()));
    let text = fs::read_to_string(root().join("dist-test.toml"))
        .unwrap()
        .replace("ready_s = 180", "ready_s = 1");
    fs::write(&cfg, text).unwrap();
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend(dist_test_args(&["-q"]));
    let o = xtask(&args);
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
    assert_nothing_left("readiness timeout");
    let _ = fs::remove_file(cfg);
}

#[test]
fn an_unresolvable_requirement_stops_before_any_cluster() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("xtask-unresolvable-{}", std::process::id()));
    fs::create_dir_all(dir.join("tests")).unwrap();
    fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"broken\"\nversion = \"0\"\ndependencies = [\"no-such-package-dist-test-xyz\"]\n",
    )
    .unwrap();
    let o = xtask(&["dist-test", "-q", "--project", dir.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("resolving the requirements failed"), "{err}");
    assert!(!err.contains("results and logs"), "no run started: {err}");
    assert_nothing_left("unresolvable requirement");
    let _ = fs::remove_dir_all(dir);
}

/// Start a dist-test, wait until its cluster is ready and pytest has had a
/// moment to start, then signal it; it must exit 130 with nothing left.
fn signal_during_the_tests(sig: &str, whole_group: bool) -> Duration {
    let mut run = spawn(&dist_test_args(&[]));
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
    assert!(leftovers_of_project(&project).is_empty());
    took
}

#[test]
fn sigint_during_the_tests_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // As Ctrl-C does: to the whole process group.
    let took = signal_during_the_tests("INT", true);
    assert_nothing_left("SIGINT during tests");
    eprintln!("SIGINT during tests: exit 130 after {took:?}");
}

#[test]
fn sigterm_to_the_xtask_alone_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let took = signal_during_the_tests("TERM", false);
    assert_nothing_left("SIGTERM");
    eprintln!("SIGTERM during tests: exit 130 after {took:?}");
}

/// A copy of the pinned release that lives under target/ (so that its
/// requirements are resolved once, not every test run), with a line
/// appended to one source file so that the project layer rebuilds.
fn edited_release(edit: &str) -> PathBuf {
    let copy = root().join("target/xtask-tests/edited-libertem");
    if !copy.is_dir() {
        let sdist = root().join("target/dist-test/sdist/libertem-0.16.0");
        if !sdist.is_dir() {
            // Any build of the pinned release unpacks it there.
            let o = xtask(&["build", "-q"]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        let ok = Command::new("cp")
            .arg("-r")
            .arg(&sdist)
            .arg(&copy)
            .status()
            .unwrap()
            .success();
        assert!(ok, "copying the sdist");
    }
    let init = copy.join("src/libertem/__init__.py");
    let mut text = fs::read_to_string(&init).unwrap();
    text.push_str(&format!("\n# {edit} {}\n", std::process::id()));
    fs::write(&init, text).unwrap();
    copy
}

#[test]
fn sigint_during_the_build_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let copy = edited_release("interrupted build");
    let mut args = dist_test_args(&["--verbose", "--project"]);
    args.push(copy.to_str().unwrap());
    let mut run = spawn(&args);
    // The project stage has started (its command line is echoed).
    run.wait_for("DEPS_IMAGE=", Duration::from_secs(400));
    run.signal("INT", true);
    let (code, _, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, 130, "{err}");
    let s = summary(&err);
    assert!(
        s.phases.get("up").is_none(),
        "no cluster was started: {s:?}"
    );
    assert_nothing_left("SIGINT during the build");
}

#[test]
fn edit_and_rebuild_cycles_do_not_pile_up_images() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let label = format!("label={}={}", xtask::CHECKOUT_LABEL, checkout_id(&root()));
    // This checkout's images, dangling ones included.
    let images = || {
        let mut ids: Vec<String> = docker(&[
            "image",
            "ls",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &label,
        ])
        .lines()
        .map(String::from)
        .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let mut counts = Vec::new();
    for cycle in 0..3 {
        let copy = edited_release(&format!("edit {cycle}"));
        let o = xtask(&["build", "-q", "--project", copy.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        counts.push(images());
    }
    eprintln!("this checkout's images after each of 3 edit-and-rebuild cycles: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[1] <= w[0]),
        "images pile up: {counts:?}"
    );
}

/// Run the ipyparallel test with ipy-worker-2 held to 5% of a CPU from the
/// moment the cluster is ready until its Dask worker has started, so that it
/// joins seconds after LiberTEM's `ipy_ctx` fixture has handed out its
/// Context. One worker is enough; two engines are the point. Returns the
/// xtask's exit code and the run's pytest output.
fn ipython_test_with_a_late_engine(extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "dist-test",
        "--workers",
        "1",
        "--engines",
        "2",
        "--",
        "-k",
        "test_ipython.py",
    ];
    args.extend(extra);
    let mut run = spawn(&args);
    let project = run.run_project(&root());
    run.wait_for("  ready", Duration::from_secs(400));
    let engine = running(&project, "ipy-worker-2").expect("ipy-worker-2 running");
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
    assert!(leftovers_of_project(&project).is_empty());
    (code, out, err)
}

#[test]
fn an_engine_that_joins_dask_late_is_waited_for() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // The control: without the harness plugin the late engine never got the
    // fixture's data file, so the scenario does reproduce the race.
    let (code, out, _) = ipython_test_with_a_late_engine(&["-p", "no:dist_test_harness"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FileNotFoundError"), "{out}");

    let (code, out, err) = ipython_test_with_a_late_engine(&[]);
    let s = summary(&err);
    assert_eq!(code, 0, "{s:?}\n{out}");
    assert_eq!(s.counts.passed, 1, "{s:?}");
    assert_nothing_left("late engine");
}

/// A run killed with SIGKILL cannot tear down; `down --all` must, and
/// `down --all` and `down` again succeed with nothing to do.
#[test]
fn a_killed_run_is_removed_by_down_all() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let mut run = spawn(&dist_test_args(&[]));
    let project = run.run_project(&root());
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
        let o = xtask(&["down", "--all"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_nothing_left("down --all");
    }
    let o = xtask(&["down"]);
    assert!(o.status.success(), "down on nothing: {}", stderr(&o));
}

#[test]
fn a_broken_dockerfile_line_fails_the_build_and_leaves_nothing() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // The second checkout the concurrency scenario uses (its images are
    // built once), with a project-stage line the image cannot run.
    let copy = other_checkout("second-checkout");
    let dockerfile = copy.join("packaging/docker/Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    let broken = text.replace(
        "USER libertem\n",
        "RUN no-such-command-in-the-image\nUSER libertem\n",
    );
    assert_ne!(broken, text, "the Dockerfile has a `USER libertem` line");
    fs::write(&dockerfile, broken).unwrap();
    let mut args = vec!["-q"];
    args.extend(dist_test_args(&[]));
    let o = xtask_in(&copy, &args, &[]);
    fs::write(&dockerfile, text).unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("building the project image"), "{err}");
    assert!(
        err.contains("no-such-command-in-the-image"),
        "the failing line is shown: {err}"
    );
    let s = summary(&err);
    assert!(
        s.phases.get("up").is_none(),
        "no cluster was started: {s:?}"
    );
    let left = leftovers_of_checkout(&copy);
    assert!(
        left.is_empty(),
        "broken Dockerfile line: left behind {left:?}"
    );
}

#[test]
fn no_client_no_engine_and_no_target_are_one_line_each() {
    let _one = one_at_a_time();
    let empty = std::env::temp_dir().join(format!("xtask-nopath-{}", std::process::id()));
    fs::create_dir_all(&empty).unwrap();
    let o = xtask_in(
        &root(),
        &["dist-test"],
        &[("PATH", empty.to_str().unwrap())],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("missing tools: docker: install Docker Engine"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let o = xtask_in(
        &root(),
        &["dist-test"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("the Docker engine is not reachable"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    if !engine_available() {
        return;
    }
    // target/ that cannot be written: here a file where the folder should be
    // (permission bits would not stop root, which CI runs as).
    let copy = std::env::temp_dir().join(format!("xtask-no-target-{}", std::process::id()));
    fs::create_dir_all(&copy).unwrap();
    fs::copy(root().join("dist-test.toml"), copy.join("dist-test.toml")).unwrap();
    fs::write(copy.join("target"), "not a folder").unwrap();
    let o = xtask_in(&copy, &["dist-test"], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("make target/ writable"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        fs::read_to_string(copy.join("target")).unwrap(),
        "not a folder",
        "target/ untouched"
    );
    let _ = fs::remove_dir_all(&copy);
    let _ = fs::remove_dir_all(&empty);
}

#[test]
fn bad_input_is_one_line_and_touches_nothing() {
    let _one = one_at_a_time();
    let engine = engine_available();
    // (arguments, TESTDATA_BASE_PATH, what the one line says)
    let cases = [
        (
            &["dist-test"][..],
            "/nonexistent/data",
            "TESTDATA_BASE_PATH=/nonexistent/data is not a folder",
        ),
        (
            &["--config", "/nonexistent.toml", "status"][..],
            "",
            "reading /nonexistent.toml",
        ),
    ];
    for (args, data, want) in cases {
        if !engine {
            continue; // the engine check comes first
        }
        let before = listing(&root().join("target/dist-test/runs"));
        let o = xtask_in(&root(), args, &[("TESTDATA_BASE_PATH", data)]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert_eq!(
            listing(&root().join("target/dist-test/runs")),
            before,
            "{args:?} wrote a run folder"
        );
    }
    // A config with an unknown key and a malformed one.
    let dir = std::env::temp_dir().join(format!("xtask-badcfg-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let good = fs::read_to_string(root().join("dist-test.toml")).unwrap();
    for (name, text, want) in [
        (
            "unknown.toml",
            good.replace("[cluster]\n", "[cluster]\nwrokers = 3\n"),
            "unknown field `wrokers`",
        ),
        (
            "malformed.toml",
            good.replace("[cluster]", "[cluster"),
            "is not valid",
        ),
    ] {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        let o = xtask(&["--config", p.to_str().unwrap(), "dist-test"]);
        let err = stderr(&o);
        assert!(!o.status.success());
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
    }
    let _ = fs::remove_dir_all(dir);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
