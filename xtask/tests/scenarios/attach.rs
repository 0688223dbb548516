//! Bring your own cluster: a cluster started by hand with plain `docker
//! run` commands from the project's image (a scheduler, two workers with
//! their hosts' names, a controller and two engines, on a network of their
//! own), as a user who runs one already would; `dist-test --attach` runs
//! dist tests against it and leaves every one of its containers running,
//! untouched. A worker that reports another distributed stops the run
//! before any test, in one line that names both versions.

use crate::common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The hand-made cluster: removed when the test ends, however it ends.
struct HandCluster {
    prefix: String,
    dir: PathBuf,
}

impl HandCluster {
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn containers(&self) -> Vec<String> {
        [
            "scheduler",
            "worker-1",
            "worker-2",
            "controller",
            "engine-1",
            "engine-2",
        ]
        .iter()
        .map(|c| self.name(c))
        .collect()
    }

    /// Each container's start time and restart count.
    fn states(&self) -> Vec<String> {
        let mut args = vec![
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}",
        ];
        let names = self.containers();
        args.extend(names.iter().map(String::as_str));
        docker(&args).lines().map(str::to_string).collect()
    }
}

impl Drop for HandCluster {
    fn drop(&mut self) {
        let mut rm = vec!["rm".to_string(), "-f".into()];
        rm.extend(self.containers());
        let _ = Command::new("docker").args(&rm).output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name("net")])
            .output();
        let _ = Command::new("docker")
            .args(["volume", "rm", &self.name("ipython")])
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `docker run --detach` of the project's image on the cluster's network,
/// with the runtime, the source, the data and the scratch folder (these two
/// at the paths the tests use).
fn run_in(
    c: &HandCluster,
    name: &str,
    host: &str,
    (image, mounts, env): (&str, &[String], &[&str]),
    command: &[&str],
) {
    let (net, full) = (c.name("net"), c.name(name));
    let mut args: Vec<&str> = vec!["run", "--detach", "--init", "--network", &net];
    args.extend(["--name", &full, "--hostname", host]);
    for m in mounts {
        args.extend(["--volume", m]);
    }
    for e in env {
        args.extend(["--env", e]);
    }
    args.push(image);
    args.extend(command);
    docker(&args);
}

#[test]
fn dist_tests_run_on_a_cluster_the_user_started_and_leave_it_running() {
    if !engine_available() {
        return;
    }
    // The pinned release's image and its generated data, as `dist-test` has them.
    let o = xtask(&["testdata"]);
    assert!(o.status.success(), "testdata: {}", stderr(&o));
    let data = stdout(&o);
    let data = data.trim().rsplit(" in ").next().unwrap().to_string();
    let o = xtask(&["build"]);
    assert!(o.status.success(), "build: {}", stderr(&o));
    let image = release_image(&root());
    let runtime = runtime_of(&image);
    let source = root().join("target/dist-test/sdist/libertem-0.16.0");
    let c = HandCluster {
        prefix: format!("ltattach-{}", std::process::id()),
        dir: root().join(format!("target/xtask-tests/attach-{}", std::process::id())),
    };
    let scratch = c.dir.join("temp_data");
    fs::create_dir_all(&scratch).unwrap();
    Command::new("chmod")
        .arg("777")
        .arg(&scratch)
        .status()
        .unwrap();
    docker(&["network", "create", &c.name("net")]);
    docker(&["volume", "create", &c.name("ipython")]);
    let same = |p: &Path, mode: &str| format!("{0}:{0}:{mode}", p.display());
    let mounts = vec![
        format!("{runtime}:/venv:ro"),
        format!("{}:/src:ro", source.display()),
        same(Path::new(&data), "ro"),
        same(&scratch, "rw"),
    ];
    let mut with_ipython = mounts.clone();
    with_ipython.push(format!("{}:/ipython", c.name("ipython")));
    let scheduler = format!("tcp://{}:8786", c.name("scheduler"));
    let on = (image.as_str(), &mounts[..], &[][..]);
    run_in(
        &c,
        "scheduler",
        "scheduler",
        on,
        &["dask", "scheduler", "--port", "8786", "--no-dashboard"],
    );
    let worker = [
        "libertem-worker",
        &scheduler,
        "--n-cpus",
        "1",
        "--cudas",
        "",
    ];
    for i in 1..=2 {
        let host = format!("worker-{i}");
        run_in(&c, &host, &host, on, &worker);
    }
    let location = format!("--location={}", c.name("controller"));
    let on_ipython = (image.as_str(), &with_ipython[..], &[][..]);
    run_in(
        &c,
        "controller",
        "ipy-controller",
        on_ipython,
        &["ipcontroller", "--ip=0.0.0.0", &location],
    );
    let engine_file = "/ipython/profile_default/security/ipcontroller-engine.json";
    let wait_then_engine = format!(
        "until [ -s {engine_file} ]; do sleep 0.2; done; exec ipengine --file={engine_file}"
    );
    for i in 1..=2 {
        let name = format!("engine-{i}");
        run_in(
            &c,
            &name,
            &format!("ipy-worker-{i}"),
            on_ipython,
            &["sh", "-c", &wait_then_engine],
        );
    }
    let client = c.dir.join("ipcontroller-client.json");
    let from = format!(
        "{}:/ipython/profile_default/security/ipcontroller-client.json",
        c.name("controller")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new("docker")
        .args(["cp", &from])
        .arg(&client)
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the controller wrote no client file"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let before = c.states();

    let attach = |extra: &[&str]| {
        let client = client.display().to_string();
        let scratch = scratch.display().to_string();
        let mut args = vec!["dist-test", "--attach", "--scheduler", &scheduler];
        args.extend(["--ipython-client", &client, "--network"]);
        let net = c.name("net");
        args.extend([net.as_str(), "--scratch", &scratch]);
        args.extend(extra);
        xtask(&args)
    };
    let o = attach(&[
        "--",
        "tests/io/datasets/test_raw.py::test_raw_on_workers",
        "tests/test_ipython.py",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "dist-test --attach: {err}");
    let s = summary(&err);
    assert_eq!((s.counts.passed, s.counts.failed), (2, 0), "{err}");
    assert!(
        err.contains("nothing of it is started, restarted or removed"),
        "{err}"
    );
    // Untouched: the same containers, running since the same moment.
    assert_eq!(c.states(), before, "the user's cluster changed");
    assert!(
        before
            .iter()
            .all(|s| s.contains(" running ") && s.ends_with(" 0")),
        "{before:?}"
    );

    // A worker whose environment reports another distributed: a copy of
    // its real metadata under another version, found first on its path
    // (this test goes to no network, so no other release can be fetched).
    let overlay = c.dir.join("overlay");
    let site = "/venv/lib/python3.14/site-packages";
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{runtime}:/venv:ro"),
        &image,
        "sh",
        "-c",
        &format!("ls -d {site}/distributed-*.dist-info"),
    ]);
    let info = out.trim().rsplit('/').next().unwrap().to_string();
    let version = info
        .trim_start_matches("distributed-")
        .trim_end_matches(".dist-info")
        .to_string();
    let faked = overlay.join("distributed-2099.1.0.dist-info");
    fs::create_dir_all(&faked).unwrap();
    let metadata = "Metadata-Version: 2.1\nName: distributed\nVersion: 2099.1.0\n";
    fs::write(faked.join("METADATA"), metadata).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&overlay)
        .status()
        .unwrap();
    docker(&["rm", "-f", &c.name("worker-2")]);
    let mut odd = mounts.clone();
    odd.push(format!("{}:/overlay:ro", overlay.display()));
    let odd = (image.as_str(), &odd[..], &["PYTHONPATH=/overlay"][..]);
    run_in(&c, "worker-2", "worker-2", odd, &worker);
    let o = attach(&["--", "tests/io/datasets/test_raw.py::test_raw_on_workers"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // One line naming the host and both versions; how many of worker-2's
    // processes it counts depends on how many had registered when asked.
    let versions = format!("distributed 2099.1.0, the tests' container distributed {version}");
    let line = err.lines().find(|l| l.contains(&versions));
    assert!(line.is_some_and(|l| l.contains(" on worker-2 ")), "{err}");
    let s = summary(&err);
    assert_eq!(
        (s.counts.passed, s.counts.failed),
        (0, 0),
        "no test ran: {err}"
    );
    let all_running = c.states().iter().all(|s| s.contains(" running "));
    assert!(all_running, "{:?}", c.states());
}
