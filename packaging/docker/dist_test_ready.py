"""pytest plugin that `cargo xtask` loads into the tests container.

Mounted read-only at /opt/dist-test-harness and enabled with
`-p dist_test_ready`; it changes no test and skips nothing.

The tests container starts while the cluster is still coming up, so that
Python's start and pytest's collection (thousands of tests, to select the few
marked `dist`) overlap with the workers and engines registering. When
`DIST_TEST_READY_FILE` is set, no test runs before that file exists: `cargo
xtask` writes it once its readiness check has seen every worker host and every
engine, and tears the cluster (and this container) down if they never come.
A plugin of its own, apart from dist_test_harness, so that a run without that
one (`-p no:dist_test_harness`) still starts its tests on a ready cluster.

When `DIST_TEST_TIMELINE` names a file, the plugin writes there, as JSON, when
it was loaded (right after pytest's own import), when pytest finished
collecting, saw the cluster ready and ended (Unix times), the node ids it
selected, and each test's start, end and outcome: `cargo xtask` reports where
pytest's time went (`summary.json`, the run's report.html) and may name those
tests on the next run instead of collecting the whole suite again (see
selection.rs).

When `DIST_TEST_TETHER` is set, pytest runs through `docker exec` in a
tests container that outlives it, and must end with the xtask that started
it: the exec's input is a pipe the xtask holds for as long as it waits, so
when that input ends (the xtask was interrupted or killed, and with it the
exec) pytest and every process it started are killed. A killed `docker exec`
client would otherwise leave them running in the container.
"""

import json
import os
import signal
import sys
import threading
import time

import pytest

READY_FILE = "DIST_TEST_READY_FILE"
READY_TIMEOUT = "DIST_TEST_READY_TIMEOUT_S"
TIMELINE = "DIST_TEST_TIMELINE"

# Loaded with `-p`, so imported right after pytest itself: "started" is that.
_timeline = {"started": time.time()}


def _tether():
    """See the module's docs. The input is taken now, before pytest's
    capture puts /dev/null in its place."""
    if not os.environ.get("DIST_TEST_TETHER"):
        return
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    fd = os.dup(0)

    def wait_for_end():
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_end, name="dist-test-tether", daemon=True).start()


_tether()


def wait_for_ready_file(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise pytest.UsageError(
                f"dist-test: the cluster was not declared ready within {timeout:g} s "
                f"({path} never appeared)"
            )
        time.sleep(0.05)


def ready_timeout():
    """The xtask's own deadline (timeouts.ready_s), which it passes with the
    ready file: there is no other."""
    value = os.environ.get(READY_TIMEOUT, "").strip()
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(
            f"dist-test: {READY_FILE} is set but {READY_TIMEOUT} is {value!r}, not a number of "
            "seconds: run the tests through cargo xtask, which sets both"
        ) from None


def write_timeline():
    """A record, not a test: failing to write it changes no outcome."""
    path = os.environ.get(TIMELINE, "").strip()
    if not path:
        return
    try:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(_timeline, f)
        os.replace(tmp, path)
    except OSError as e:
        print(f"dist-test harness: cannot write {path}: {e}", file=sys.stderr)


def pytest_collection_finish(session):
    _timeline["collected"] = time.time()
    _timeline["items"] = [item.nodeid for item in session.items]
    # Written now too: a cluster that never gets ready still leaves what
    # pytest selected.
    write_timeline()
    path = os.environ.get(READY_FILE, "").strip()
    if path:
        wait_for_ready_file(path, ready_timeout())
    _timeline["ready"] = time.time()
    write_timeline()


def pytest_runtest_logstart(nodeid, location):
    # "running" until a phase says otherwise: a test killed half-way stays
    # so, and is on disk as such (the xtask counts from this file when
    # pytest was ended before it wrote its JUnit XML).
    _timeline.setdefault("tests", []).append(
        {"id": nodeid, "start": time.time(), "outcome": "running"}
    )
    write_timeline()


# At most this much of a failure's traceback and of each captured stream.
DETAIL_CHARS = 64_000


def _cut(text):
    if len(text) <= DETAIL_CHARS:
        return text
    return f"[first {len(text) - DETAIL_CHARS} characters cut]\n" + text[-DETAIL_CHARS:]


def _failure(report):
    """What a failing phase leaves: its traceback and captured output."""
    return {
        "when": report.when,
        "longrepr": _cut(report.longreprtext or ""),
        "stdout": _cut(report.capstdout or ""),
        "stderr": _cut(report.capstderr or ""),
        "log": _cut(report.caplog or ""),
    }


def pytest_runtest_logreport(report):
    tests = _timeline.get("tests") or []
    if not tests or tests[-1]["id"] != report.nodeid:
        return
    test = tests[-1]
    if report.when == "call":
        test["outcome"] = report.outcome  # passed, failed or skipped
    elif report.failed and test["outcome"] in ("running", "passed"):
        # Its setup failed (no call), or its teardown after a pass.
        test["outcome"] = "error"
    elif report.skipped and test["outcome"] == "running":
        test["outcome"] = "skipped"
    if report.failed:
        test.setdefault("failures", []).append(_failure(report))
        # dist_test_harness.py's verdict (a test past its deadline).
        verdict = dict(report.user_properties).get("dist_test_verdict")
        if verdict:
            test["verdict"] = verdict


def abandon(nodeid, verdict):
    """The test `nodeid` is being given up (pytest ends without finishing
    it): recorded so, at once."""
    tests = _timeline.get("tests") or []
    if tests and tests[-1]["id"] == nodeid:
        tests[-1].update(outcome="failed", verdict=verdict, end=time.time())
    _timeline["finished"] = time.time()
    write_timeline()


def pytest_runtest_logfinish(nodeid, location):
    tests = _timeline.get("tests") or []
    if tests and tests[-1]["id"] == nodeid:
        tests[-1]["end"] = time.time()
        write_timeline()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    if "ready" in _timeline:
        _timeline["finished"] = time.time()
        write_timeline()
