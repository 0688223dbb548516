//! Helpers shared by the integration tests. They use the crate's own types
//! (the label, the names of a checkout, `Summary`), not copies of them.
#![allow(dead_code)] // each test file uses its own subset

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xtask::labels::COMPOSE_PROJECT_LABEL;
use xtask::summary::Summary;
use xtask::CHECKOUT_LABEL;

/// `clean` in any checkout removes what a deleted one left: the scenarios
/// that delete a checkout, and those that clean one, take turns.
pub fn cleans() -> std::sync::MutexGuard<'static, ()> {
    static CLEANS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLEANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The checkout the xtask under test was built in.
/// The main checkout has one kept cluster: the scenarios that bring it up
/// (`up`, or a `dist-test --keep`/`--keep-on-failure`, whose cluster
/// becomes it), kill its services and take it down take turns, in one
/// binary.
pub fn main_kept_cluster() -> std::sync::MutexGuard<'static, ()> {
    static KEPT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The id (and label value) of a checkout, as the xtask computes it.
pub fn checkout_id(checkout: &Path) -> String {
    xtask::workspace::checkout_id(checkout)
}

fn command(checkout: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args).current_dir(root());
    // Under GitHub Actions the scenarios' runs must not write the job
    // summary of the step that tests the xtask (tests/gha.rs sets its own).
    c.env_remove("GITHUB_STEP_SUMMARY");
    if checkout != root() {
        c.env("XTASK_WORKSPACE_ROOT", checkout);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Run the xtask binary in the checkout.
pub fn xtask(args: &[&str]) -> Output {
    xtask_in(&root(), args, &[])
}

/// Run the xtask binary on another checkout (`XTASK_WORKSPACE_ROOT`), with
/// extra environment.
pub fn xtask_in(checkout: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(checkout, args, env)
        .output()
        .expect("running the xtask binary")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Is a Docker engine reachable? Without one the Docker tests skip and say
/// so, unless CI is set: there a missing engine is a failure.
pub fn engine_available() -> bool {
    let up = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no Docker engine is reachable: the Docker tests cannot be skipped in CI"
        );
        eprintln!("SKIPPED: no Docker engine reachable; this test did not run");
    }
    up
}

/// The Python a default run uses: the newest both the pinned release and
/// the Debian suites of dist-test.toml support.
pub const DEFAULT_PYTHON: &str = "3.14";

/// The image the xtask builds for the pinned release in the checkout `root`.
pub fn release_image(checkout: &Path) -> String {
    let sdist = checkout.join("target/dist-test/sdist/libertem-0.16.0");
    xtask::image::project_tag(&checkout_id(checkout), &sdist, DEFAULT_PYTHON)
}

/// Edit LiberTEM's `get_bbox_2d` (a jitted function the workers run) in a
/// project copy: with eps = 1, no pixel of the 0.5-scaled identity counts,
/// so the bounding box of `np.eye(4) * 0.5` changes.
pub fn edit_get_bbox_2d(copy: &Path) {
    let buffers = copy.join("src/libertem/common/buffers.py");
    let text = fs::read_to_string(&buffers).unwrap();
    let edited = text.replace(
        "def get_bbox_2d(arr, eps=1e-8)",
        "def get_bbox_2d(arr, eps=1.0)",
    );
    assert_ne!(edited, text, "get_bbox_2d's signature is as expected");
    fs::write(&buffers, edited).unwrap();
}

/// Remove the main checkout's tag of the project copy `copy` (the image
/// goes with it unless another project's tag is on it, as the pinned
/// release's is on a copy's with the same build files), and the copy's
/// numba caches: what a scenario's own project leaves.
pub fn remove_project_image(copy: &Path) {
    let tag = xtask::image::project_tag(&checkout_id(&root()), copy, DEFAULT_PYTHON);
    let id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .map(|o| stdout(&o).trim().to_string())
        .unwrap_or_default();
    let _ = Command::new("docker").args(["image", "rm", &tag]).output();
    if id.is_empty() {
        return;
    }
    let prefix = xtask::numba::volume_prefix(&checkout_id(&root()), &id, copy);
    let volumes = docker(&[
        "volume",
        "ls",
        "--quiet",
        "--filter",
        &format!("name={prefix}"),
    ]);
    for v in volumes.lines().filter(|v| v.starts_with(&prefix)) {
        let _ = Command::new("docker").args(["volume", "rm", v]).output();
    }
}

/// The runtime volume (`/venv`) an image runs with, as its label names it.
pub fn runtime_of(image: &str) -> String {
    docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.libertem.dist-test.runtime-volume\"}}",
        image,
    ])
    .trim()
    .to_string()
}

/// `docker ARGS...`, its stdout; panics when docker fails.
pub fn docker(args: &[&str]) -> String {
    let o = Command::new("docker")
        .args(args)
        .output()
        .expect("running docker");
    assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Containers, networks and volumes matching a label filter, as `ps of
/// PROJECT`.
fn objects(label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        &["ps", "-a"][..],
        &["network", "ls"][..],
        &["volume", "ls"][..],
    ] {
        let mut all = args.to_vec();
        let format = format!("{{{{.Label \"{COMPOSE_PROJECT_LABEL}\"}}}}");
        all.extend(["--filter", label, "--format", &format]);
        for p in docker(&all).lines() {
            out.push(format!("{} of {p}", args[0]));
        }
    }
    out
}

/// What a compose project has left on the engine.
pub fn leftovers_of_project(project: &str) -> Vec<String> {
    objects(&format!("label={COMPOSE_PROJECT_LABEL}={project}"))
}

/// Remove what compose project `project` has on the engine (containers,
/// networks, volumes), as `compose down` would: for a cluster a scenario
/// kept with `dist-test --keep` (`down --all` would take the checkout's
/// kept cluster with it, which another scenario uses).
pub fn remove_compose_project(project: &str) {
    let label = format!("label={COMPOSE_PROJECT_LABEL}={project}");
    for (list, rm) in [
        (&["ps", "-aq"][..], &["rm", "-f"][..]),
        (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        (&["volume", "ls", "-q"][..], &["volume", "rm", "-f"][..]),
    ] {
        let mut args = list.to_vec();
        args.extend(["--filter", label.as_str()]);
        let ids = docker(&args);
        if !ids.trim().is_empty() {
            let _ = Command::new("docker").args(rm).args(ids.lines()).output();
        }
    }
}

/// What a checkout has left on the engine, whatever the compose project.
pub fn leftovers_of_checkout(checkout: &Path) -> Vec<String> {
    objects(&format!("label={CHECKOUT_LABEL}={}", checkout_id(checkout)))
}

/// The running container of `service` in compose project `project`.
pub fn running(project: &str, service: &str) -> Option<String> {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label={COMPOSE_PROJECT_LABEL}={project}"),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ])
    .lines()
    .next()
    .map(String::from)
}

/// The run folder a `dist-test` or `test` printed ("results and logs: DIR").
pub fn run_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("results and logs: "))
        .unwrap_or_else(|| panic!("no run folder in the output:\n{stderr}"));
    PathBuf::from(line.trim())
}

/// The run's summary.json, read as the xtask wrote it.
pub fn summary(stderr: &str) -> Summary {
    let path = run_dir(stderr).join("summary.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", path.display()));
    Summary::from_json(&text).unwrap_or_else(|e| panic!("{}: {e:#}\n{text}", path.display()))
}

/// A copy of the pinned LiberTEM release under target/xtask-tests/NAME
/// (the sdist unpacked by a build of this checkout, made first if need be):
/// made anew when `fresh`, else kept from an earlier test run.
pub fn release_copy(name: &str, fresh: bool) -> PathBuf {
    let copy = root().join("target/xtask-tests").join(name);
    if fresh {
        let _ = fs::remove_dir_all(&copy);
    }
    if copy.is_dir() {
        return copy;
    }
    let sdist = root().join("target/dist-test/sdist/libertem-0.16.0");
    if !sdist.is_dir() {
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
    copy
}

/// A copy of the pinned release under target/xtask-tests/NAME (kept, so
/// that its requirements are resolved once, not every test run), with a
/// comment appended to one of its build files (hatch_build.py, not an input
/// of its requirements) so that the project stage rebuilds. A source edit
/// would not: the services mount the source.
pub fn edited_release(name: &str, edit: &str) -> PathBuf {
    let copy = release_copy(name, false);
    let build_file = copy.join("hatch_build.py");
    let mut text = fs::read_to_string(&build_file).unwrap();
    text.push_str(&format!("\n# {edit} {}\n", std::process::id()));
    fs::write(&build_file, text).unwrap();
    copy
}

/// A checkout under the main one's target/: the files the xtask reads,
/// copied fresh, and what the main checkout downloaded and generated (the
/// release's sdist, uv and debootstrap, the test data, the workers'
/// preload), linked in where the new one has none yet, as a clone whose
/// owner copied their downloads would have it: its own engine objects
/// (images, caches) it makes itself. A scenario that makes one removes what
/// it made (`clean` in it, or its folder deleted and `clean` elsewhere).
pub fn other_checkout(name: &str) -> PathBuf {
    let dir = root().join("target").join("xtask-tests").join(name);
    fs::create_dir_all(dir.join("target/dist-test")).unwrap();
    for downloaded in ["sdist", "tools", "testdata", "preload"] {
        let from = root().join("target/dist-test").join(downloaded);
        let to = dir.join("target/dist-test").join(downloaded);
        if from.is_dir() && !to.exists() {
            let ok = Command::new("cp")
                .arg("-al")
                .arg(&from)
                .arg(&to)
                .status()
                .unwrap()
                .success();
            assert!(ok, "linking {}", from.display());
        }
    }
    for item in ["dist-test.toml", "packaging"] {
        let _ = fs::remove_dir_all(dir.join(item));
        let _ = fs::remove_file(dir.join(item));
        let ok = Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "copying {item}");
    }
    dir
}

/// The committed config with one CPU worker per Dask host and no warm
/// start but the kept cluster's: with `--workers 1 --engines 1`, the
/// smallest cluster, for the scenarios that do not need the default size
/// (it starts with less work on two cores).
pub fn small_config() -> PathBuf {
    let text = fs::read_to_string(root().join("dist-test.toml")).unwrap();
    let small = text
        .replace("worker_cpus = 2\n", "worker_cpus = 1\n")
        .replace("# warm_start = \"always\"\n", "warm_start = \"kept\"\n");
    assert_ne!(small, text, "dist-test.toml sets worker_cpus = 2");
    let dir = root().join("target").join("xtask-tests");
    fs::create_dir_all(&dir).unwrap();
    // Written whole under another name, then renamed: scenarios running
    // side by side never read half a file.
    let path = dir.join("small.toml");
    let tmp = dir.join(format!(".small.toml.{:?}", std::thread::current().id()));
    fs::write(&tmp, small).unwrap();
    fs::rename(&tmp, &path).unwrap();
    path
}

/// `--config SMALL dist-test --workers 1 --engines 1 EXTRA...`
pub fn smallest_dist_test(extra: &[&str]) -> Vec<String> {
    small_dist_test(1, extra)
}

/// `--config SMALL dist-test --workers 1 --engines ENGINES EXTRA...`
pub fn small_dist_test(engines: u32, extra: &[&str]) -> Vec<String> {
    let engines = engines.to_string();
    let mut args: Vec<String> = vec!["--config".into(), small_config().display().to_string()];
    args.extend(
        ["dist-test", "--workers", "1", "--engines", &engines]
            .iter()
            .chain(extra)
            .map(|a| a.to_string()),
    );
    args
}

/// The compose project of a `dist-test` run, from its heading line
/// (`==> dist-test <run id>: …`).
pub fn run_project_of(line: &str, checkout: &Path) -> String {
    let run_id = line
        .split("==> dist-test ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no run id in {line:?}"));
    xtask::workspace::run_project(&checkout_id(checkout), run_id)
}

/// A running xtask whose stderr is read line by line as it comes.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    seen: Arc<Mutex<String>>,
}

/// Start the xtask on `checkout` in its own process group, stdout dropped.
pub fn spawn_in(checkout: &Path, args: &[&str]) -> Running {
    let mut c = command(checkout, args, &[]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    let seen = Arc::new(Mutex::new(String::new()));
    let all = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut s = all.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
            let _ = tx.send(line);
        }
    });
    Running {
        child,
        lines: rx,
        seen,
    }
}

pub fn spawn(args: &[&str]) -> Running {
    spawn_in(&root(), args)
}

impl Running {
    /// Wait, bounded, for a line containing `marker`; return that line.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                if line.contains(marker) {
                    return line;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Drain what is left before giving up.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    if line.contains(marker) {
                        return line;
                    }
                }
                panic!("exited ({status}) before {marker:?}:\n{}", self.output());
            }
        }
        panic!("never saw {marker:?}; output so far:\n{}", self.output());
    }

    /// The compose project of the `dist-test` run, from its heading.
    pub fn run_project(&mut self, checkout: &Path) -> String {
        run_project_of(
            &self.wait_for("==> dist-test ", Duration::from_secs(600)),
            checkout,
        )
    }

    pub fn output(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str, whole_group: bool) {
        let pid = self.child.id();
        let target = if whole_group {
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

    /// Wait, bounded, for the exit; the exit code, how long it took, and
    /// everything it printed on stderr.
    pub fn finish(mut self, timeout: Duration) -> (i32, Duration, String) {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                while self.lines.recv_timeout(Duration::from_millis(200)).is_ok() {}
                return (s.code().unwrap_or(-1), start.elapsed(), self.output());
            }
            assert!(
                start.elapsed() < timeout,
                "the xtask did not exit within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Takes the kept cluster of `checkout` down, and removes `images` and
/// `volumes` made by hand, when a test that made them fails half-way.
pub struct CleanUpOnPanic {
    pub checkout: PathBuf,
    pub images: Vec<String>,
    pub volumes: Vec<String>,
}

impl Drop for CleanUpOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = xtask_in(&self.checkout, &["down"], &[]);
            for (kind, names) in [("image", &self.images), ("volume", &self.volumes)] {
                for n in names {
                    let _ = Command::new("docker").args([kind, "rm", n]).output();
                }
            }
        }
    }
}

/// A cached jitted function in a module that the edit does not touch, which
/// calls a cached jitted LiberTEM function in another module. numba's own
/// cache checks look at the caller's file only, so after an edit to the
/// callee they would serve the caller compiled with the old callee inlined.
pub const LIVE_CALLER: &str = r#"import numba
import numpy as np

from libertem.common.buffers import get_bbox_2d


@numba.njit(cache=True)
def bbox_of_eye():
    return get_bbox_2d(np.eye(4) * 0.5)
"#;

/// Runs the caller on every Dask worker and compares with what the callee's
/// current source computes in the tests container (pure Python).
pub const LIVE_TEST: &str = r#"import sys

import numpy as np
import pytest

from libertem.common.buffers import get_bbox_2d


@pytest.mark.dist
def test_workers_run_the_current_source(dist_ctx):
    def on_worker():
        sys.path.insert(0, "/src/tests")
        import dist_test_caller
        return tuple(int(v) for v in dist_test_caller.bbox_of_eye())

    expected = tuple(int(v) for v in get_bbox_2d.py_func(np.eye(4) * 0.5))
    results = dist_ctx.executor.run_each_worker(on_worker)
    assert results and set(results.values()) == {expected}, (results, expected)
"#;

/// Removes the copy's image and numba caches, and the copy.
pub struct RemoveImageOnDrop(pub std::path::PathBuf);

impl Drop for RemoveImageOnDrop {
    fn drop(&mut self) {
        remove_project_image(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
