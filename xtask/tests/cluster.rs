//! End-to-end: a real cluster on the real engine. These need Docker; on a
//! machine without an engine they skip, loudly, unless CI is set, where a
//! missing engine is a failure.

mod common;
use common::*;

use std::process::Command;

#[test]
fn requirements_are_current() {
    let o = xtask(&["update-reqs", "--check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn dist_test_runs_a_real_cluster_and_leaves_nothing() {
    if !engine_available() {
        return;
    }
    // Two tests: one through the Dask scheduler and both workers, one
    // through the ipyparallel controller and its engines.
    let o = xtask(&[
        "dist-test",
        "--",
        "-k",
        "test_raw.py and test_sum_on_dist or test_ipython.py",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "dist-test failed:\n{stderr}");
    let summary =
        std::fs::read_to_string(root().join("target/dist-test/last/summary.json")).unwrap();
    assert!(summary.contains("\"passed\": 2,"), "{summary}");
    assert!(summary.contains("\"failed\": 0,"), "{summary}");
    for svc in [
        "scheduler",
        "worker-1",
        "worker-2",
        "ipy-controller",
        "ipy-worker-1",
        "ipy-worker-2",
    ] {
        let log = root().join(format!("target/dist-test/last/logs/{svc}.log"));
        assert!(log.is_file(), "no log for {svc}");
    }
    let compose_project = summary
        .split("\"compose_project\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let checkout = compose_project.rsplit_once("-r").unwrap().0.to_string();
    let run_id = summary
        .split("\"run_id\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let compact: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let left: Vec<String> = leftovers("ltdist-")
        .into_iter()
        .filter(|l| l.ends_with(&format!("-r{compact}")))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A run killed with SIGKILL cannot tear down; `down --all` must.
    // (Sequential with the run above: `down --all` removes every cluster of
    // this checkout.)
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["dist-test", "-q"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkout_containers = || {
        let o = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=org.libertem.dist-test.checkout={checkout}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while checkout_containers() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster never came up"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        checkout_containers() >= 6,
        "a killed run leaves its cluster behind"
    );
    for _ in 0..2 {
        let o = xtask(&["down", "--all"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(checkout_containers(), 0);
        assert!(
            leftovers(&checkout).is_empty(),
            "left behind: {:?}",
            leftovers(&checkout)
        );
    }
    let o = xtask(&["down"]);
    assert!(
        o.status.success(),
        "down on nothing: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn bad_input_is_one_clear_line() {
    let o = xtask(&["dist-test", "--project", "/nonexistent/libertem"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
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
