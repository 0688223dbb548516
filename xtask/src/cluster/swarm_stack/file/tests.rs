use super::*;

fn spec(nodes: &[&str]) -> StackSpec {
    StackSpec {
        image: "ltdist-repo-0123abcd:p1".into(),
        size: Size {
            workers: 2,
            engines: 2,
            worker_cpus: 1,
        },
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        source: "/src/LiberTEM".into(),
        data: "/data/lt".into(),
        ipython: "/repo/target/dist-test/runs/1/ipython".into(),
        temp: "/repo/target/dist-test/runs/1/temp_data".into(),
        results: "/repo/target/dist-test/runs/1/pytest".into(),
        pytest_cache: "/repo/target/dist-test/pytest-cache/LiberTEM-0123abcd".into(),
        harness: "/repo/packaging/docker".into(),
        runtime: "libertem-dist-runtime-0123".into(),
        preload: vec!["numpy".into()],
        warm: false,
        ready_s: 7,
        tests_env: vec![("DIST_TEST_TEST_TIMEOUT_S", "300".into())],
        pytest: Some(vec![
            "pytest".into(),
            "tests/".into(),
            "-k".into(),
            "raw and dist".into(),
        ]),
        label: "org.libertem.dist-test.checkout=ltdist-repo-0123abcd".into(),
    }
}

fn parsed(s: &StackSpec) -> serde_json::Value {
    let text = s.text();
    serde_json::from_str(text.split_once('\n').unwrap().1).unwrap()
}

#[test]
fn workers_and_engines_go_one_per_node() {
    let s = spec(&["m", "a", "b"]);
    assert_eq!(
        (s.node_for(1), s.node_for(2), s.node_for(3)),
        ("a", "b", "a")
    );
    let y = parsed(&s);
    let services = y["services"].as_object().unwrap();
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ipy-controller",
            "ipy-worker-1",
            "ipy-worker-2",
            "scheduler",
            "tests",
            "worker-1",
            "worker-2"
        ]
    );
    let on = |svc: &str| services[svc]["deploy"]["placement"]["constraints"][0].clone();
    assert_eq!(on("worker-1"), "node.id == a");
    assert_eq!(on("ipy-worker-2"), "node.id == b");
    assert_eq!(on("scheduler"), "node.id == m");
    let one = spec(&["m"]);
    assert_eq!((one.node_for(1), one.node_for(2)), ("m", "m"));
}

#[test]
fn the_tests_wait_for_the_ready_file_and_nothing_is_published() {
    let y = parsed(&spec(&["m"]));
    let tests = &y["services"]["tests"];
    assert_eq!(
        tests["command"][3], "raw and dist",
        "one argument, no shell"
    );
    assert_eq!(
        tests["environment"]["DIST_TEST_READY_FILE"],
        "/results/.cluster-ready"
    );
    // The deadline is the config's, not one of the container's own.
    assert_eq!(tests["environment"]["DIST_TEST_READY_TIMEOUT_S"], "7");
    assert_eq!(tests["working_dir"], "/src");
    assert!(tests["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["target"] == "/results"));
    let worker = &y["services"]["worker-1"];
    assert!(worker["working_dir"].is_null());
    assert!(!worker["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["target"] == "/results"));
    // The runtime by name, each node's own copy: no path of the
    // manager's Docker data root.
    let venv = worker["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["target"] == "/venv")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            venv["type"].as_str(),
            venv["source"].as_str(),
            venv["read_only"].as_bool()
        ),
        (
            Some("volume"),
            Some("libertem-dist-runtime-0123"),
            Some(true)
        )
    );
    assert_eq!(y["volumes"]["libertem-dist-runtime-0123"]["external"], true);
    assert_eq!(y["networks"]["default"]["internal"], true);
    assert_eq!(
        y["networks"]["default"]["labels"]["org.libertem.dist-test.checkout"],
        "ltdist-repo-0123abcd"
    );
    assert!(!y.to_string().contains("ports"));
}

#[test]
fn without_pytest_there_are_no_tests() {
    let mut s = spec(&["m", "a"]);
    s.pytest = None;
    let y = parsed(&s);
    assert!(y["services"]["tests"].is_null());
    assert_eq!(y["services"].as_object().unwrap().len(), 6);
}
