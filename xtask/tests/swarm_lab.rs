//! The test swarm on this machine and the cluster on it: `swarm-lab up`
//! makes three Docker engines in network namespaces of their own, joined
//! into one swarm, and prints the manager's DOCKER_HOST; `dist-test --swarm`
//! runs the dist suite with its workers on different nodes and leaves
//! nothing on any node; `swarm-lab down` leaves no engine, namespace, mount,
//! rule or file of the lab, and can be repeated. Needs root and the
//! machine's Docker engine binaries.
//!
//! Ignored by `cargo test --workspace` (a few minutes: the image is loaded
//! into every node); `.ci/run` runs it with
//! `cargo test --test swarm_lab -- --ignored`.

mod common;
use common::*;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The lab's nodes besides the manager, as its env file names them.
const ENGINES: &str = "unix:///run/ltlab/2/docker.sock unix:///run/ltlab/3/docker.sock";
/// The one folder the lab's nodes share.
const SHARED: &str = "/var/lib/ltlab/shared";

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

fn run(program: &str, args: &[&str]) -> String {
    let o = Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Everything of the lab still on the machine, by kind.
fn lab_traces() -> Vec<String> {
    let mut left = Vec::new();
    for ns in run("ip", &["netns", "list"]).lines() {
        if ns.starts_with("ltlab-") {
            left.push(format!("netns {ns}"));
        }
    }
    for link in run("ip", &["-o", "link", "show"]).lines() {
        if link.contains(" ltlab") {
            left.push(format!("link {link}"));
        }
    }
    for p in run("ps", &["-eo", "args"]).lines() {
        if p.contains("/run/ltlab/") {
            left.push(format!("process {p}"));
        }
    }
    for m in fs::read_to_string("/proc/self/mounts").unwrap().lines() {
        if m.contains("ltlab") {
            left.push(format!("mount {m}"));
        }
    }
    for dir in ["/var/lib/ltlab/1", "/run/ltlab/1"] {
        if Path::new(dir).exists() {
            left.push(format!("folder {dir}"));
        }
    }
    if run("iptables", &["-S", "FORWARD"]).contains("ltlab0") {
        left.push("iptables FORWARD rule for ltlab0".into());
    }
    if run("iptables", &["-t", "nat", "-S", "POSTROUTING"]).contains("192.168.231.") {
        left.push("iptables MASQUERADE rule for the lab".into());
    }
    left
}

#[test]
#[ignore = "minutes long; .ci/run runs it"]
fn a_three_node_lab_runs_the_cluster_and_goes_without_a_trace() {
    if !engine_available() {
        return;
    }
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the lab as root"
        );
        eprintln!("SKIPPED: swarm-lab needs root; this test did not run");
        return;
    }
    let _ = xtask(&["swarm-lab", "down"]); // what an interrupted run may have left
    let o = xtask(&["swarm-lab", "up", "--nodes", "3"]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "swarm-lab up: {err}");
    let manager = "unix:///run/ltlab/1/docker.sock";
    assert_eq!(
        out,
        format!(
            "export DOCKER_HOST={manager}\nexport DIST_TEST_SWARM_ENGINES='{}'\n\
             export DIST_TEST_SWARM_SHARED={SHARED}\n",
            ENGINES
        ),
        "{err}"
    );
    let env = root().join("target/dist-test/swarm-lab/env");
    assert_eq!(fs::read_to_string(&env).unwrap(), out);

    // One swarm of three ready nodes, one the leader, each at its own address.
    let nodes = run(
        "docker",
        &[
            "-H",
            manager,
            "node",
            "ls",
            "--format",
            "{{.Status}} {{.ManagerStatus}}",
        ],
    );
    let mut lines: Vec<&str> = nodes.lines().map(str::trim).collect();
    lines.sort();
    assert_eq!(lines, ["Ready", "Ready", "Ready Leader"], "{nodes}");
    for n in 1..=3 {
        let host = format!("unix:///run/ltlab/{n}/docker.sock");
        let addr = run(
            "docker",
            &["-H", &host, "info", "--format", "{{.Swarm.NodeAddr}}"],
        );
        assert_eq!(addr.trim(), format!("192.168.231.1{n}"));
    }
    // Strict, as separate machines: a node sees neither the host engine's
    // state nor another node's, only the manager sees the checkout, and
    // every node sees the one shared folder.
    fs::write(Path::new(SHARED).join(".lab-check"), "").unwrap();
    for n in 1..=3 {
        let pid = fs::read_to_string(format!("/run/ltlab/{n}/docker.pid")).unwrap();
        let ls = |dir: &str| run("nsenter", &["-t", pid.trim(), "-m", "ls", "-A", dir]);
        let checkout = ls(&root().display().to_string());
        assert_eq!(
            checkout.trim().is_empty(),
            n != 1,
            "node {n} sees the checkout: {checkout}"
        );
        for other in (1..=3).filter(|m| *m != n) {
            assert_eq!(
                ls(&format!("/var/lib/ltlab/{other}")),
                "",
                "node {n} sees node {other}'s state"
            );
        }
        assert!(
            !ls("/var/lib/docker").contains("volumes"),
            "node {n} sees the host engine's state"
        );
        assert!(
            ls(SHARED).contains(".lab-check"),
            "node {n} does not see {SHARED}"
        );
    }
    // Asked again, it is found up, not made twice.
    let o = xtask(&["swarm-lab", "up", "--nodes", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already up"), "{}", stderr(&o));
    let o = xtask(&["swarm-lab", "up", "--nodes", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("swarm-lab down"),
        "a different size says how to go on: {}",
        stderr(&o)
    );

    the_cluster_runs_on_the_swarm(manager);
    a_kept_stack_serves_the_lifecycle_commands(manager);
    a_kept_stack_runs_an_edited_jitted_function(manager);
    a_stopped_node_is_named_dead(manager);

    for _ in 0..2 {
        let o = xtask(&["swarm-lab", "down"]);
        assert!(o.status.success(), "swarm-lab down: {}", stderr(&o));
        let left = lab_traces();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(!env.exists(), "the env file is removed");
    }
}

/// `dist-test --swarm` against the lab's manager: LiberTEM's dist tests
/// that need two worker hosts and the engines, worker-1 and worker-2 on
/// different nodes, nothing of the stack left on any node.
fn the_cluster_runs_on_the_swarm(manager: &str) {
    let o = xtask_in(
        &root(),
        &[
            "dist-test",
            "--swarm",
            "--",
            "tests/io/datasets/test_raw.py::test_raw_on_workers",
            "tests/test_ipython.py",
        ],
        &[
            ("DOCKER_HOST", manager),
            ("DIST_TEST_SWARM_ENGINES", ENGINES),
            ("DIST_TEST_SWARM_SHARED", SHARED),
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "dist-test --swarm: {err}");
    let s = summary(&err);
    assert_eq!(
        (s.counts.passed, s.counts.failed, s.counts.errors),
        (2, 0, 0),
        "{s:?}"
    );
    let node = |svc: &str| {
        s.nodes
            .get(svc)
            .unwrap_or_else(|| panic!("no node for {svc}: {s:?}"))
            .clone()
    };
    assert_ne!(node("worker-1"), node("worker-2"), "{:?}", s.nodes);
    assert_ne!(node("ipy-worker-1"), node("ipy-worker-2"), "{:?}", s.nodes);
    // The runtime reached the other nodes through their engines, a volume
    // of their own, as on real machines (no path of the manager's is bound).
    let image = release_image(&root());
    let label = "{{index .Config.Labels \"org.libertem.dist-test.runtime-volume\"}}";
    let runtime = run(
        "docker",
        &["-H", manager, "image", "inspect", "--format", label, &image],
    );
    let runtime = runtime.trim();
    for n in 2..=3 {
        let host = format!("unix:///run/ltlab/{n}/docker.sock");
        let mark = run(
            "docker",
            &[
                "-H",
                &host,
                "run",
                "--rm",
                "--network",
                "none",
                "--volume",
                &format!("{runtime}:/v:ro"),
                &image,
                "cat",
                "/v/.dist-test-runtime",
            ],
        );
        assert!(
            !mark.trim().is_empty(),
            "node {n} has a complete copy of {runtime}"
        );
    }
    nothing_of_the_stack_left(&s.compose_project, &[1, 2, 3]);
    // The nodes started every task from the image they hold: none asked a
    // registry off this machine first (and waited for it to refuse).
    for n in 1..=3 {
        let log = root().join(format!("target/dist-test/swarm-lab/ltlab-{n}.log"));
        let log = fs::read_to_string(&log).unwrap();
        let pulls: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("pulling image"))
            .collect();
        assert!(pulls.is_empty(), "node {n} tried to pull: {pulls:?}");
    }
}

/// `up --swarm`, then `status`, `test`, `logs` and `down` address the
/// stack through the saved state; `down` leaves nothing on any node and can
/// be repeated; the commands say in one line what is wrong when the
/// cluster is not a swarm stack.
fn a_kept_stack_serves_the_lifecycle_commands(manager: &str) {
    let on_manager = [
        ("DOCKER_HOST", manager),
        ("DIST_TEST_SWARM_ENGINES", ENGINES),
        ("DIST_TEST_SWARM_SHARED", SHARED),
    ];
    let x = |args: &[&str]| xtask_in(&root(), args, &on_manager);
    // The image reaches the nodes through the engines DIST_TEST_SWARM_ENGINES
    // names, as on a swarm of real machines: node 3 lost its copy first.
    let node = |n: u32| format!("unix:///run/ltlab/{n}/docker.sock");
    let image = release_image(&root());
    let id_on = |n: u32| {
        let id = run(
            "docker",
            &[
                "-H",
                &node(n),
                "image",
                "inspect",
                "--format",
                "{{.Id}}",
                &image,
            ],
        );
        id.trim().to_string()
    };
    run(
        "docker",
        &["-H", &node(3), "image", "rm", "--force", &image],
    );
    assert_eq!(id_on(3), "", "node 3 has no copy");
    for (engines, says) in [
        (
            node(2),
            "names no engine for 1 of the swarm's 2 other nodes",
        ),
        (
            format!("{},{}", node(1), node(3)),
            "is not one of this swarm's other nodes",
        ),
    ] {
        let o = xtask_in(
            &root(),
            &["up", "--swarm"],
            &[
                ("DOCKER_HOST", manager),
                ("DIST_TEST_SWARM_ENGINES", &engines),
                ("DIST_TEST_SWARM_SHARED", SHARED),
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{engines}: {}", stderr(&o));
        let _ = x(&["down"]);
    }
    let engines = format!("{} {}", node(2), node(3));
    let o = xtask_in(
        &root(),
        &["up", "--swarm"],
        &[
            ("DOCKER_HOST", manager),
            ("DIST_TEST_SWARM_ENGINES", &engines),
            ("DIST_TEST_SWARM_SHARED", SHARED),
        ],
    );
    assert!(o.status.success(), "up --swarm: {}", stderr(&o));
    assert!(
        stderr(&o).contains("is ready on a swarm of 3 nodes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(id_on(3), id_on(1), "node 3 got the manager's image");

    let o = x(&["status"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "status: {out}{}", stderr(&o));
    assert!(
        out.contains("  worker-2         running   Running"),
        "{out}"
    );
    assert!(
        out.contains("dask worker hosts 2/2, ipyparallel engines 2/2"),
        "{out}"
    );
    assert!(out.ends_with("ready\n"), "{out}");

    // Twice: the tests service is removed after each run, so the next
    // deploy starts it afresh, beside the services that keep running.
    for _ in 0..2 {
        let o = x(&[
            "test",
            "--swarm",
            "--",
            "tests/io/datasets/test_raw.py::test_raw_on_workers",
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "test --swarm: {err}");
        let s = summary(&err);
        assert_eq!((s.counts.passed, s.counts.failed), (1, 0), "{s:?}");
        assert_ne!(s.nodes.get("worker-1"), s.nodes.get("worker-2"), "{s:?}");
    }

    let o = x(&["logs", "worker-1"]);
    assert!(o.status.success(), "logs: {}", stderr(&o));
    assert!(stdout(&o).contains("worker-1"), "{}", stdout(&o));
    let o = x(&["logs", "--follow"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--follow shows one service"),
        "{}",
        stderr(&o)
    );
    // Without DOCKER_HOST the stack cannot be reached: said, and the state
    // is kept for a `down` that can.
    let o = xtask_in(&root(), &["status"], &[("DOCKER_HOST", "")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("swarm stack"), "{}", stderr(&o));

    let stack = fs::read_to_string(root().join("target/dist-test/cluster/state.json")).unwrap();
    let stack: serde_json::Value = serde_json::from_str(&stack).unwrap();
    let stack = stack["name"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let o = x(&["down"]);
        assert!(o.status.success(), "down: {}", stderr(&o));
    }
    nothing_of_the_stack_left(&stack, &[1, 2, 3]);
    let o = x(&["status", "--swarm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("up --swarm"), "{}", stderr(&o));
}

/// A kept stack never runs old numba code: its workers on other nodes keep
/// a numba cache of their own (no volume spans the nodes), so after an
/// edit to a jitted LiberTEM function the stale files must go in their
/// containers too, not only in the scheduler's. Its callee edited, a cached
/// caller on every worker must compute with the edit on the next `test`
/// (it did not before the restart cleared every container's cache: the
/// workers answered with the old bounding box).
fn a_kept_stack_runs_an_edited_jitted_function(manager: &str) {
    let on_manager = [
        ("DOCKER_HOST", manager),
        ("DIST_TEST_SWARM_ENGINES", ENGINES),
        ("DIST_TEST_SWARM_SHARED", SHARED),
    ];
    let x = |args: &[&str]| xtask_in(&root(), args, &on_manager);
    let copy = release_copy("swarm-live-source", true);
    let _copy = RemoveImageOnDrop(copy.clone());
    fs::write(copy.join("tests/dist_test_caller.py"), LIVE_CALLER).unwrap();
    fs::write(copy.join("tests/test_dist_test_live_source.py"), LIVE_TEST).unwrap();
    fs::write(copy.join("tests/test_dist_test_sum.py"), SUM_TEST).unwrap();
    let project = copy.display().to_string();
    let o = x(&["up", "-q", "--swarm", "--project", &project]);
    assert!(o.status.success(), "up --swarm: {}", stderr(&o));
    let test_exit = |code: i32| {
        let o = x(&[
            "test",
            "--swarm",
            "--",
            "tests/test_dist_test_live_source.py",
            "tests/test_dist_test_sum.py",
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "test --swarm: {err}");
        err
    };
    let test = || test_exit(0);
    // Fills every worker's own numba cache with the caller.
    test();
    edit_get_bbox_2d(&copy);
    let err = test();
    assert!(
        err.contains("numba cache files of it and its importers removed"),
        "{err}"
    );
    // The workers on the other nodes run an edited UDF on the next `test`:
    // the source reached their own copies.
    let sum = copy.join("src/libertem/udf/sum.py");
    let text = fs::read_to_string(&sum).unwrap();
    let edited = text.replace(
        "    def process_tile(self, tile):\n        ''\n",
        "    def process_tile(self, tile):\n        ''\n        raise RuntimeError('process_tile edited on the kept stack')\n",
    );
    assert_ne!(edited, text, "SumUDF.process_tile is as expected");
    fs::write(&sum, edited).unwrap();
    let err = test_exit(1);
    assert!(
        err.contains("process_tile edited on the kept stack"),
        "{err}"
    );
    assert!(err.contains("1 passed, 1 failed"), "{err}");
    let o = x(&["down"]);
    assert!(o.status.success(), "down: {}", stderr(&o));
}

/// SumUDF on the cluster's workers.
const SUM_TEST: &str = r#"import numpy as np
import pytest

from libertem.udf.sum import SumUDF


@pytest.mark.dist
def test_sum_on_the_workers(dist_ctx):
    data = np.ones((4, 4, 8, 8), dtype=np.float32)
    ds = dist_ctx.load("memory", data=data, num_partitions=4)
    res = dist_ctx.run_udf(dataset=ds, udf=SumUDF())
    assert np.allclose(res["intensity"].data, 16)
"#;

/// What `f` reports once it is empty, or after 30 s: a node removes its
/// containers once the manager has removed their tasks.
fn settled(f: impl Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = f();
    while !out.trim().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        out = f();
    }
    out
}

/// No container, network or volume of the stack on the given nodes.
fn nothing_of_the_stack_left(stack: &str, nodes: &[u32]) {
    for n in nodes {
        let host = format!("unix:///run/ltlab/{n}/docker.sock");
        let filter = format!("label=com.docker.stack.namespace={stack}");
        for what in [
            &["ps", "-aq"][..],
            &["network", "ls", "-q"],
            &["volume", "ls", "-q"],
        ] {
            let mut args = vec!["-H", host.as_str()];
            args.extend(what);
            args.extend(["--filter", filter.as_str()]);
            // A node removes its containers once the manager has removed
            // the tasks: allowed a few seconds to catch up.
            let left = settled(|| run("docker", &args));
            assert!(left.trim().is_empty(), "node {n}: {what:?} left {left}");
        }
    }
}

/// Node 3's engine stopped while the tests run: the run fails, and its
/// summary names node 3 as dead and the services that ran there; the
/// other nodes keep nothing of the stack.
fn a_stopped_node_is_named_dead(manager: &str) {
    // ipyparallel may wait for a dead engine forever: the tests phase is
    // bounded here, and the run fails either way.
    let text = fs::read_to_string(root().join("dist-test.toml")).unwrap();
    let bounded = text.replace("tests_s = 900\n", "tests_s = 120\n");
    assert_ne!(bounded, text, "dist-test.toml sets tests_s = 900");
    let config = root().join("target/xtask-tests/stopped-node.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, bounded).unwrap();
    let config = config.display().to_string();
    let args = [
        "--config",
        config.as_str(),
        "dist-test",
        "--swarm",
        "--",
        "tests/test_ipython.py",
    ];
    std::env::set_var("DOCKER_HOST", manager);
    std::env::set_var("DIST_TEST_SWARM_ENGINES", ENGINES);
    std::env::set_var("DIST_TEST_SWARM_SHARED", SHARED);
    let mut run = spawn(&args);
    std::env::remove_var("DOCKER_HOST");
    std::env::remove_var("DIST_TEST_SWARM_ENGINES");
    std::env::remove_var("DIST_TEST_SWARM_SHARED");
    run.wait_for("  ready", Duration::from_secs(300));
    let pid = fs::read_to_string("/run/ltlab/3/docker.pid").unwrap();
    let ok = Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap()
        .success();
    assert!(ok, "stopping node 3's engine");
    let (code, _, err) = run.finish(Duration::from_secs(600));
    // A node that left is infrastructure (docs/dist-tests.md).
    assert_eq!(code, 75, "{err}");
    let s = summary(&err);
    assert!(
        s.dead_nodes.iter().any(|n| n.ends_with(" 192.168.231.13")),
        "node 3 is named dead: {s:?}"
    );
    let dead: Vec<&str> = s.dead_services.iter().map(|d| d.service.as_str()).collect();
    let on_node_3: Vec<&str> = s
        .nodes
        .iter()
        .filter(|(_, node)| node.ends_with(" 192.168.231.13"))
        .map(|(service, _)| service.as_str())
        .collect();
    assert_eq!(dead, on_node_3, "{s:?}");
    // One Dask worker host and one engine: the services go one per node.
    assert_eq!(dead.len(), 2, "{s:?}");
    assert!(
        err.contains(&format!("error: service {} died during the run", dead[0])),
        "{err}"
    );
    nothing_of_the_stack_left(&s.compose_project, &[1, 2]);
}
