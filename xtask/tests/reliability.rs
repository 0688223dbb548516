//! Failure paths on the real engine: every run ends with nothing of it left
//! on the engine and the right exit code, whatever happened. The scenarios
//! run one at a time (a lock), since each brings a cluster up.

mod common;
use common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The lock that keeps scenarios one at a time, when there is an engine to
/// run them on (`None`, after saying so, when there is not).
fn docker_scenario() -> Option<MutexGuard<'static, ()>> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    engine_available().then_some(guard)
}

fn spawn(args: &[&str]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().unwrap()
}

/// A top-level count from summary.json.
fn count(summary: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\": ");
    summary
        .split(&pat)
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn summary() -> String {
    fs::read_to_string(root().join("target/dist-test/last/summary.json")).unwrap_or_default()
}

/// Read the child's stderr until a line contains `marker`; keep the rest
/// flowing in a thread so the child never blocks on a full pipe.
fn wait_for_line(child: &mut Child, marker: &str, timeout: Duration) -> String {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(marker) {
                std::thread::spawn(move || for _ in rx {});
                return seen;
            }
        }
    }
    panic!("never saw {marker:?}; output so far:\n{seen}");
}

fn signal(pid: u32, sig: &str, group: bool) {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), "--", &target])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {target}");
}

fn wait_exit(mut child: Child, timeout: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s.code().unwrap_or(-1), start.elapsed());
        }
        assert!(
            start.elapsed() < timeout,
            "the xtask did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_nothing_left(scenario: &str) {
    let left = leftovers("");
    assert!(left.is_empty(), "{scenario}: left behind {left:?}");
}

#[test]
fn a_failing_test_fails_the_run_and_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // test_sum_on_dist warns "Sending large graph"; as an error it fails.
    let o = xtask(&[
        "dist-test",
        "-q",
        "--",
        "-k",
        "test_raw.py and test_sum_on_dist",
        "-W",
        "error:Sending large graph:UserWarning",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = summary();
    // The warning is raised while the test's fixture ships data to the
    // workers: pytest counts that as an error rather than a failure.
    assert_eq!(count(&s, "failed") + count(&s, "errors"), 1, "{s}");
    assert_eq!(count(&s, "passed"), 0, "{s}");
    assert!(s.contains("\"exit_code\": 1,"), "{s}");
    assert_nothing_left("failing test");
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
    let o = xtask(&["--config", cfg.to_str().unwrap(), "dist-test", "-q"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the cluster was not ready after 1 s"), "{err}");
    assert!(err.contains("last log lines of"), "{err}");
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
    assert_nothing_left("unresolvable requirement");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sigint_during_the_tests_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let mut child = spawn(&["dist-test"]);
    wait_for_line(&mut child, "  ready", Duration::from_secs(400));
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id();
    signal(pid, "INT", true); // as Ctrl-C: the whole process group
    let (code, took) = wait_exit(child, Duration::from_secs(60));
    assert_eq!(code, 130);
    assert!(summary().contains("\"exit_code\": 130"), "{}", summary());
    assert_nothing_left("SIGINT during tests");
    eprintln!("SIGINT during tests: exit {code} after {took:?}");
}

#[test]
fn sigterm_to_the_xtask_alone_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let mut child = spawn(&["dist-test"]);
    wait_for_line(&mut child, "  ready", Duration::from_secs(400));
    std::thread::sleep(Duration::from_secs(3));
    signal(child.id(), "TERM", false);
    let (code, took) = wait_exit(child, Duration::from_secs(60));
    assert_eq!(code, 130);
    assert_nothing_left("SIGTERM");
    eprintln!("SIGTERM during tests: exit {code} after {took:?}");
}

#[test]
fn sigint_during_the_build_tears_down() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // A checkout copy with a changed file, so that the project layer rebuilds.
    let sdist = root().join("target/dist-test/sdist/libertem-0.16.0");
    let o = xtask(&["build", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let copy = std::env::temp_dir().join(format!("xtask-sigbuild-{}", std::process::id()));
    let _ = fs::remove_dir_all(&copy);
    assert!(Command::new("cp")
        .arg("-r")
        .arg(&sdist)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let init = copy.join("src/libertem/__init__.py");
    let mut text = fs::read_to_string(&init).unwrap();
    text.push_str(&format!("\n# {}\n", std::process::id()));
    fs::write(&init, text).unwrap();
    let mut child = spawn(&[
        "dist-test",
        "--verbose",
        "--project",
        copy.to_str().unwrap(),
    ]);
    wait_for_line(&mut child, "DEPS_IMAGE=", Duration::from_secs(400));
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), "INT", true);
    let (code, _) = wait_exit(child, Duration::from_secs(60));
    assert_eq!(code, 130);
    assert_nothing_left("SIGINT during the build");
    let _ = fs::remove_dir_all(&copy);
}

#[test]
fn a_worker_killed_during_the_tests_fails_the_run() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // A test that needs no worker, so pytest passes; the run must not.
    let mut child = spawn(&["dist-test", "--", "-k", "test_datadir_inspection"]);
    wait_for_line(&mut child, "  ready", Duration::from_secs(400));
    let worker = running("worker-2").expect("worker-2 running");
    assert!(Command::new("docker")
        .args(["kill", &worker])
        .output()
        .unwrap()
        .status
        .success());
    let (code, _) = wait_exit(child, Duration::from_secs(300));
    let s = summary();
    assert!(
        s.contains("\"failed\": 0,") && s.contains("\"passed\": 1,"),
        "pytest itself passed: {s}"
    );
    assert_eq!(code, 1, "{s}");
    assert!(s.contains("\"service\": \"worker-2\""), "{s}");
    assert!(s.contains("\"exit_code\": 137"), "{s}");
    assert_nothing_left("killed worker");
}

/// The id of the running container of `service` in this checkout's runs.
fn running(service: &str) -> Option<String> {
    let o = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            "label=org.libertem.dist-test.checkout",
        ])
        .args([
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .map(String::from)
}

/// Run the ipyparallel test with ipy-worker-2 held to 5% of a CPU from the
/// moment the cluster is ready until its Dask worker has started, so that it
/// joins seconds after LiberTEM's `ipy_ctx` fixture has handed out its
/// Context. Returns the xtask's exit code and the run's pytest output.
fn ipython_test_with_a_late_engine(extra: &[&str]) -> (i32, String) {
    let mut args = vec!["dist-test", "--", "-k", "test_ipython.py"];
    args.extend(extra);
    let mut child = spawn(&args);
    wait_for_line(&mut child, "  ready", Duration::from_secs(400));
    let engine = running("ipy-worker-2").expect("ipy-worker-2 running");
    let update = |cpus: &str| {
        let o = Command::new("docker")
            .args(["update", "--cpus", cpus, &engine])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    update("0.05");
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
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    update(&cores.to_string());
    let (code, _) = wait_exit(child, Duration::from_secs(600));
    let out =
        fs::read_to_string(root().join("target/dist-test/last/pytest.log")).unwrap_or_default();
    (code, out)
}

#[test]
fn an_engine_that_joins_dask_late_is_waited_for() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // The control: without the harness plugin the late engine never got the
    // fixture's data file, so the scenario does reproduce the race.
    let (code, out) = ipython_test_with_a_late_engine(&["-p", "no:dist_test_harness"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FileNotFoundError"), "{out}");
    assert_nothing_left("late engine, no plugin");

    let (code, out) = ipython_test_with_a_late_engine(&[]);
    let s = summary();
    assert_eq!(code, 0, "{s}\n{out}");
    assert_eq!(count(&s, "passed"), 1, "{s}");
    assert_nothing_left("late engine");
}

#[test]
fn the_cluster_is_closed_by_default() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let o = xtask(&[
        "dist-test",
        "-q",
        "--keep",
        "--",
        "-k",
        "test_datadir_inspection",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            "label=org.libertem.dist-test.checkout",
        ])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(ids.len() >= 6, "kept cluster: {ids:?}");
    for id in &ids {
        let f = "{{json .HostConfig.PortBindings}}|{{json .NetworkSettings.Ports}}|{{.Config.User}}|{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}";
        let o = Command::new("docker")
            .args(["inspect", "--format", f, id])
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&o.stdout).to_string();
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
    let o = xtask(&["down", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_nothing_left("closed by default");

    // Asked to publish: the scheduler and dashboard, on 127.0.0.1 only.
    let o = xtask(&["up", "--publish"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let published: Vec<&str> = err.lines().filter(|l| l.contains("published: ")).collect();
    assert_eq!(published.len(), 2, "{err}");
    for line in &published {
        assert!(line.contains("-> 127.0.0.1:"), "{line}");
    }
    let o = Command::new("docker")
        .args([
            "ps",
            "--filter",
            "label=org.libertem.dist-test.checkout",
            "--format",
            "{{.Ports}}",
        ])
        .output()
        .unwrap();
    let ports = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        ports.contains("127.0.0.1:") && !ports.contains("0.0.0.0:") && !ports.contains(":::"),
        "{ports}"
    );
    let o = xtask(&["down", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_input_is_one_line_and_touches_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            vec!["dist-test"],
            vec![("TESTDATA_BASE_PATH", "/nonexistent/data")],
            "TESTDATA_BASE_PATH=/nonexistent/data is not a folder",
        ),
        (
            vec!["logs", "worker-9"],
            vec![],
            "unknown service \"worker-9\"",
        ),
        (
            vec!["--config", "/nonexistent.toml", "status"],
            vec![],
            "reading /nonexistent.toml",
        ),
    ];
    let engine = engine_available();
    for (args, env, want) in cases {
        if !engine && !args.contains(&"--config") {
            continue;
        }
        let before = tree_listing(&root().join("target/dist-test/runs"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.args(&args).current_dir(root());
        for (k, v) in &env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert_eq!(
            tree_listing(&root().join("target/dist-test/runs")),
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
    // pytest rejecting its arguments: pytest's own exit code (4), and the
    // cluster is gone.
    if engine {
        let o = xtask(&["dist-test", "-q", "--", "--no-such-pytest-option"]);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_nothing_left("rejected pytest arguments");
    }
}

fn tree_listing(dir: &Path) -> Vec<String> {
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

#[test]
fn two_checkouts_at_once_keep_apart() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    // A second checkout: the files the xtask reads, in another folder.
    let other = std::env::temp_dir().join(format!("xtask-second-checkout-{}", std::process::id()));
    let _ = fs::remove_dir_all(&other);
    fs::create_dir_all(&other).unwrap();
    for item in ["dist-test.toml", "packaging"] {
        assert!(Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(&other)
            .status()
            .unwrap()
            .success());
    }
    let run = |dir: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.args([
            "dist-test",
            "-q",
            "--",
            "-k",
            "test_raw.py and test_sum_on_dist or test_ipython.py",
        ]);
        c.current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(d) = dir {
            c.env("XTASK_WORKSPACE_ROOT", d);
        }
        c.spawn().unwrap()
    };
    let a = run(None);
    let b = run(Some(&other));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "first checkout: {}", stderr(&a));
    assert!(b.status.success(), "second checkout: {}", stderr(&b));
    let sa = summary();
    let sb = fs::read_to_string(other.join("target/dist-test/last/summary.json")).unwrap();
    for s in [&sa, &sb] {
        assert!(
            s.contains("\"passed\": 2,") && s.contains("\"failed\": 0,"),
            "{s}"
        );
    }
    let project = |s: &str| {
        s.split("\"compose_project\": \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(project(&sa), project(&sb), "two runs, two compose projects");
    assert_ne!(
        fs::canonicalize(root().join("target/dist-test/last")).unwrap(),
        fs::canonicalize(other.join("target/dist-test/last")).unwrap()
    );
    assert_nothing_left("two checkouts");
    // The second checkout's images go with it.
    let o = Command::new("docker")
        .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    let theirs = project(&sb);
    let checkout = theirs.rsplit_once("-r").unwrap().0;
    for img in String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|i| i.starts_with(checkout))
    {
        let _ = Command::new("docker").args(["image", "rm", img]).output();
    }
    let _ = fs::remove_dir_all(&other);
}

#[test]
fn edit_and_rebuild_cycles_do_not_pile_up_images() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let o = xtask(&["build", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let copy = std::env::temp_dir().join(format!("xtask-disk-{}", std::process::id()));
    let _ = fs::remove_dir_all(&copy);
    let sdist = root().join("target/dist-test/sdist/libertem-0.16.0");
    assert!(Command::new("cp")
        .arg("-r")
        .arg(&sdist)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let images = || {
        let o = Command::new("docker")
            .args(["image", "ls", "--all", "--quiet", "--no-trunc"])
            .output()
            .unwrap();
        let mut ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let disk = || {
        let o = Command::new("docker")
            .args(["system", "df", "--format", "{{.Type}}={{.Size}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut counts = Vec::new();
    let start = disk();
    let init = copy.join("src/libertem/__init__.py");
    for cycle in 0..5 {
        let mut text = fs::read_to_string(&init).unwrap();
        text.push_str(&format!("\n# edit {cycle}\n"));
        fs::write(&init, text).unwrap();
        let o = xtask(&["build", "-q", "--project", copy.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        counts.push(images());
    }
    eprintln!("images after each of 5 edit-and-rebuild cycles: {counts:?}; disk before: {start}; after: {}", disk());
    assert!(
        counts.windows(2).all(|w| w[1] <= w[0]),
        "images pile up: {counts:?}"
    );
    let _ = fs::remove_dir_all(&copy);
}

/// A copy of the files the xtask reads, as a second checkout to break.
fn checkout_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for item in ["dist-test.toml", "packaging"] {
        assert!(Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(&dir)
            .status()
            .unwrap()
            .success());
    }
    dir
}

fn xtask_in(checkout: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args)
        .current_dir(root())
        .env("XTASK_WORKSPACE_ROOT", checkout);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn a_broken_dockerfile_line_fails_the_build_and_leaves_nothing() {
    let Some(_one) = docker_scenario() else {
        return;
    };
    let copy = checkout_copy("broken-dockerfile");
    let dockerfile = copy.join("packaging/docker/Dockerfile");
    let text = fs::read_to_string(&dockerfile).unwrap();
    let text = text.replace(
        "USER libertem\n",
        "RUN no-such-command-in-the-image\nUSER libertem\n",
    );
    fs::write(&dockerfile, text).unwrap();
    let o = xtask_in(&copy, &["dist-test", "-q"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("building the project image"), "{err}");
    assert!(
        err.contains("no-such-command-in-the-image"),
        "the failing line is shown: {err}"
    );
    assert_nothing_left("broken Dockerfile line");
    remove_images_of_checkouts("ltdist-xtask-broken");
    let _ = fs::remove_dir_all(&copy);
}

#[test]
fn no_client_no_engine_and_no_target_are_one_line_each() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    let copy = checkout_copy("no-target");
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

/// Remove the images that checkouts whose id starts with `prefix` built.
fn remove_images_of_checkouts(prefix: &str) {
    let o = Command::new("docker")
        .args([
            "image",
            "ls",
            "--filter",
            "label=org.libertem.dist-test.checkout",
        ])
        .args(["--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    for img in String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|i| i.starts_with(prefix))
    {
        let _ = Command::new("docker").args(["image", "rm", img]).output();
    }
}
