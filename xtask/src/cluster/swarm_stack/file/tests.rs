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
        data: "/shared/ltdist-repo-0123abcd/data".into(),
        ipython: "/repo/target/dist-test/runs/1/ipython".into(),
        temp: "/shared/ltdist-repo-0123abcd-1/temp_data".into(),
        source_volume: "ltdist-repo-0123abcd-1_source".into(),
        legacy_temp: false,
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

/// Where each service's /src, /data, /temp_data and /ipython come from.
fn mounts(y: &serde_json::Value, service: &str) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = y["services"][service]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("target"), s("type"), s("source"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn only_the_managers_services_bind_the_managers_folders() {
    let y = parsed(&spec(&["m", "a", "b"]));
    let worker = mounts(&y, "worker-1");
    let targets: Vec<&str> = worker.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(targets, ["/data", "/src", "/temp_data", "/venv"]);
    // Nothing of the manager's but the shared folder: the source and the
    // runtime are the node's own volumes.
    for (target, kind, source) in &worker {
        match target.as_str() {
            "/src" | "/venv" => assert_eq!(kind, "volume"),
            _ => assert!(kind == "bind" && source.starts_with("/shared/"), "{source}"),
        }
    }
    assert_eq!(mounts(&y, "ipy-worker-2"), worker);
    for on_manager in ["ipy-controller", "scheduler", "tests"] {
        let m = mounts(&y, on_manager);
        assert!(m.contains(&(
            "/ipython".into(),
            "bind".into(),
            "/repo/target/dist-test/runs/1/ipython".into()
        )));
        assert!(m.contains(&("/src".into(), "bind".into(), "/src/LiberTEM".into())));
    }
    assert_eq!(
        y["volumes"]["ltdist-repo-0123abcd-1_source"]["external"],
        true
    );
}

#[test]
fn the_legacy_temp_folder_is_the_scratch_folder() {
    let mut s = spec(&["m", "a"]);
    s.legacy_temp = true;
    let y = parsed(&s);
    assert!(mounts(&y, "worker-2").contains(&(
        "/data/temp_data".into(),
        "bind".into(),
        "/shared/ltdist-repo-0123abcd-1/temp_data".into()
    )));
}
