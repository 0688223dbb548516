//! The harness's pytest plugins (packaging/docker/dist_test_*.py), run by
//! the host's python3 against a stand-in for pytest and ipyparallel: their
//! waits are bounded by what the xtask passes, whatever LiberTEM asks. No
//! Docker; the real plugins in a real cluster are the scenarios' part.

use std::path::PathBuf;
use std::process::Command;

fn docker_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/docker")
}

/// Stand-ins for the modules the plugins import at load, enough to call
/// their functions: pytest's `UsageError`, `hookimpl` and `fail.Exception`,
/// and an ipyparallel `Client` whose `wait_for_engines` records its timeout.
const STUBS: &str = r#"
import sys, types
pytest = types.ModuleType("pytest")
class UsageError(Exception): pass
class Failed(BaseException):
    def __init__(self, msg=None, pytrace=True):
        super().__init__(msg)
def fail(msg, pytrace=True): raise Failed(msg)
fail.Exception = Failed
pytest.UsageError = UsageError
pytest.fail = fail
pytest.hookimpl = lambda **kw: (lambda f: f)
sys.modules["pytest"] = pytest
ipp = types.ModuleType("ipyparallel")
class Client:
    seen = []
    def wait_for_engines(self, n=None, *, timeout=-1, block=True):
        Client.seen.append(timeout)
        raise TimeoutError(f"{n} engines not there after {timeout} s")
ipp.Client = Client
sys.modules["ipyparallel"] = ipp
"#;

/// Run `body` after the stand-ins, with `env`; its stdout, or a panic with
/// its stderr.
fn python(body: &str, env: &[(&str, &str)]) -> String {
    let script = format!("{STUBS}\nsys.path.insert(0, {:?})\n{body}", docker_dir());
    let mut c = Command::new("python3");
    c.arg("-c").arg(script);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .output()
        .expect("python3 runs (a prerequisite, see README.md)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_ready_gate_ends_at_ready_s_not_later() {
    let out = python(
        r#"
import time, dist_test_ready as r
start = time.monotonic()
try:
    r.wait_for_ready_file("/nonexistent/.cluster-ready", r.ready_timeout())
except pytest.UsageError as e:
    print(f"{time.monotonic() - start:.2f} {e}")
"#,
        &[("DIST_TEST_READY_TIMEOUT_S", "1")],
    );
    let (secs, said) = out.trim().split_once(' ').expect("the gate raised");
    let secs: f64 = secs.parse().unwrap();
    assert!((1.0..2.0).contains(&secs), "ended after {secs} s: {said}");
    assert!(said.contains("not declared ready within 1 s"), "{said}");
}

#[test]
fn the_engines_wait_is_bounded_and_more_engines_than_there_are_fail_at_once() {
    let out = python(
        r#"
import dist_test_harness as h
h.bound_engine_wait()
c = ipp.Client()
try:
    c.wait_for_engines(2)          # LiberTEM's ipy_ctx: no timeout
except RuntimeError as e:
    print("bounded:", ipp.Client.seen, e)
try:
    c.wait_for_engines(3)
except RuntimeError as e:
    print("at once:", ipp.Client.seen, e)
c.wait_for_engines.__func__  # still a method
"#,
        &[
            ("DIST_TEST_ENGINES", "2"),
            ("DIST_TEST_ENGINES_TIMEOUT_S", "7"),
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("bounded: [7.0]"), "{out}");
    assert!(lines[0].contains("did not register within 7 s"), "{out}");
    assert!(
        lines[1].starts_with("at once: [7.0]"),
        "no second wait: {out}"
    );
    assert!(lines[1].contains("the cluster has 2"), "{out}");
}

#[test]
fn a_test_that_swallows_its_timeout_ends_pytest_with_124_past_the_grace() {
    let dir = std::env::temp_dir().join(format!("xtask-harness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        r#"{STUBS}
sys.path.insert(0, {docker:?})
import time, dist_test_harness as h
w = h.Watchdog(0.3, 1.0, 1.0)
w.begin("tests/t.py::test_stuck")
end = time.monotonic() + 30
while time.monotonic() < end:   # a test that swallows every error
    try:
        time.sleep(0.05)
    except BaseException as e:
        print("swallowed", type(e).__name__, flush=True)
print("never ended", flush=True)
"#,
        docker = docker_dir()
    );
    let start = std::time::Instant::now();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("DIST_TEST_DEADLINES", &dir)
        .output()
        .expect("python3 runs");
    let took = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stdout}{stderr}");
    assert!(stdout.contains("swallowed TestTimedOut"), "{stdout}");
    assert!(!stdout.contains("never ended"), "{stdout}");
    assert!(stderr.contains("did not stop within 1 s"), "{stderr}");
    // It asked for a snapshot first (no xtask answered: it waited 1 s).
    let asked = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("-1.json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a request named <pid>-1.json");
    assert!(asked.contains("tests/t.py::test_stuck"), "{asked}");
    assert!(took < 10.0, "took {took} s");
    std::fs::remove_dir_all(&dir).unwrap();
}
