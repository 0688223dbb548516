"""pytest plugin that `cargo xtask` loads into the tests container.

Mounted read-only at /opt/dist-test-harness and enabled with
`-p dist_test_harness`; it changes no test and skips nothing. It bounds
what LiberTEM's fixtures would wait for forever, gives each test a deadline,
and tells the xtask when a test passes it.

Engines. LiberTEM's `ipy_ctx` fixture waits for two ipyparallel engines
with `Client.wait_for_engines(2)`, which by default waits forever: on a
cluster of one engine, the test hangs. Here that wait is bounded by
$DIST_TEST_ENGINES_TIMEOUT_S (the xtask passes timeouts.ready_s), and a
wait for more engines than the cluster has ($DIST_TEST_ENGINES) fails at
once, saying so. The fixture then turns the engines into Dask workers with
`Client.become_dask()`, which returns before they have joined: a test that
writes a file on each host it sees could miss the engine that joins late.
So the fixture's value is handed out only once that many Dask workers run
on its scheduler (bounded the same way), or it errors saying they did not.

Deadlines. When $DIST_TEST_TEST_TIMEOUT_S is set, a test (its setup, call
and teardown) that runs longer is stopped: first the xtask is asked to keep
where every process of the cluster is (a request file in
$DIST_TEST_DEADLINES, `<pid>-<n>.json`; it answers with `<pid>-<n>.done`,
within $DIST_TEST_SNAPSHOT_S, saying whether the cluster is still usable),
then the test fails as timed out (pytest's `Failed`, raised once in the
main thread from SIGALRM, so its traceback shows where it waited) and the
suite goes on with the next test, or stops when the xtask found the
cluster unusable. A test that cannot be stopped that way (stuck in C code,
or swallowing the error) ends pytest with exit code ABANDONED once
$DIST_TEST_GRACE_S has passed: the run is then told as timed out, with the
stacks kept. Every bound comes from the xtask (dist-test.toml); the plugin
has none of its own.

After a timeout. A thread cannot be interrupted: the tasks a timed-out test
left running on the Dask workers (a task that waits forever) go on, and the
next test's tasks (or the next pass's, with --repeat) would queue behind
them. So once the snapshot is taken and the test has ended, every Dask
worker of the cluster's scheduler ($DASK_SCHEDULER_ADDRESS) is restarted by
its nanny (`Client.restart`, bounded like the engines' wait); when that
fails, the suite stops there, saying so.
"""

import faulthandler
import json
import os
import signal
import sys
import threading
import time

import pytest

ENGINES = "DIST_TEST_ENGINES"
ENGINES_TIMEOUT = "DIST_TEST_ENGINES_TIMEOUT_S"
TEST_TIMEOUT = "DIST_TEST_TEST_TIMEOUT_S"
DEADLINES = "DIST_TEST_DEADLINES"
SNAPSHOT = "DIST_TEST_SNAPSHOT_S"
# The verdict the plugin gives a report, as a user property (the timeline of
# dist_test_ready.py records it).
VERDICT = "dist_test_verdict"
TIMED_OUT = "timed out"
# How long a stopped test has to end before pytest is ended.
GRACE = "DIST_TEST_GRACE_S"
# pytest's exit code when a test could not be stopped (timeout(1)'s).
ABANDONED = 124


def seconds(name, default=None):
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def expected_engines():
    raw = os.environ.get(ENGINES, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def required(name):
    """A bound the xtask passes: there is no default of the plugin's own."""
    value = seconds(name)
    if value is None:
        raise pytest.UsageError(
            f"dist-test harness: {name} is not a number of seconds: run the tests through "
            "cargo xtask, which sets it"
        )
    return value


def engines_timeout():
    return required(ENGINES_TIMEOUT)


def bound_engine_wait():
    """ipyparallel's `Client.wait_for_engines`, bounded (see the module's docs)."""
    try:
        import ipyparallel
    except ImportError:
        return
    original = ipyparallel.Client.wait_for_engines
    if getattr(original, "_dist_test", False):
        return

    def wait_for_engines(self, n=None, *args, **kwargs):
        have = expected_engines()
        if n is not None and have is not None and n > have:
            raise RuntimeError(
                f"dist-test harness: the test waits for {n} ipyparallel engines and the "
                f"cluster has {have}: run it on a cluster of {n} (`--engines {n}`)"
            )
        timeout = kwargs.get("timeout", -1)
        if timeout is None or timeout < 0:
            kwargs["timeout"] = engines_timeout()
        try:
            return original(self, n, *args, **kwargs)
        except TimeoutError as e:
            raise RuntimeError(
                f"dist-test harness: {n} ipyparallel engines did not register within "
                f"{kwargs['timeout']:g} s ({e}); see the ipy-worker-* logs in the run folder"
            ) from e

    wait_for_engines._dist_test = True
    ipyparallel.Client.wait_for_engines = wait_for_engines


def wait_until_joined(ctx, want, timeout):
    client = getattr(getattr(ctx, "executor", None), "client", None)
    if client is None or not hasattr(client, "wait_for_workers"):
        return
    try:
        client.wait_for_workers(want, timeout=timeout)
    except Exception as e:  # distributed's TimeoutError says how many arrived
        raise RuntimeError(
            f"dist-test harness: not all {want} ipyparallel engines joined the Dask "
            f"cluster of `ipy_ctx` within {timeout:g} s ({e}); "
            "see the ipy-worker-* logs in the run folder"
        ) from e


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if fixturedef.argname == "ipy_ctx":
        bound_engine_wait()
    value = yield
    want = expected_engines()
    if fixturedef.argname == "ipy_ctx" and want:
        wait_until_joined(value, want, engines_timeout())
    return value


class TestTimedOut(pytest.fail.Exception):
    """pytest's `Failed`: a test that ran past its deadline."""


class Watchdog:
    """One thread that watches the running test's deadline."""

    def __init__(self, limit, grace, snapshot_wait):
        self.limit = limit
        self.grace = grace
        self.snapshot_wait = snapshot_wait
        # (nodeid, deadline), replaced whole: a tuple assignment is atomic,
        # so the alarm handler reads it without a lock (one taken in a
        # handler could be held by the thread it interrupted).
        self.current = None
        self.timed_out = {}  # nodeid -> message
        # Set while no expiry is under way: the next test waits for it.
        self.settled = threading.Event()
        self.settled.set()
        # A test timed out and the workers were not restarted since.
        self.dirty = False
        self.session = None
        self.requests = 0
        self.main = threading.main_thread().ident
        signal.signal(signal.SIGALRM, self.on_alarm)
        threading.Thread(target=self.watch, name="dist-test-deadline", daemon=True).start()

    def begin(self, nodeid):
        self.current = (nodeid, time.monotonic() + self.limit)

    def end(self):
        self.current = None

    def running(self, nodeid):
        current = self.current
        return current is not None and current[0] == nodeid

    def on_alarm(self, signum, frame):
        current = self.current
        message = self.timed_out.get(current[0]) if current else None
        if message:
            raise TestTimedOut(message, pytrace=True)

    def watch(self):
        while True:
            time.sleep(0.2)
            current = self.current
            if current and time.monotonic() >= current[1] and current[0] not in self.timed_out:
                self.settled.clear()
                try:
                    self.expire(current[0])
                except Exception as e:  # the watchdog must go on
                    print(f"dist-test harness: {e!r}", file=sys.__stderr__)
                finally:
                    self.settled.set()

    def expire(self, nodeid):
        message = (
            f"dist-test: timed out after {self.limit:g} s (the per-test deadline, "
            f"timeouts.test_s or --test-timeout); where every process of the cluster was "
            "is kept with the run (timeouts/ in its folder)"
        )
        self.timed_out[nodeid] = message
        self.dirty = True
        print(f"\ndist-test harness: {nodeid} passed its deadline of {self.limit:g} s", file=sys.__stderr__)
        answer = self.ask_for_snapshot(nodeid)
        if answer.get("usable") is False and self.session is not None:
            self.session.shouldfail = (
                f"dist-test: the cluster is no longer usable after {nodeid} timed out: "
                f"{answer.get('why', 'see the run')}"
            )
        self.stop(nodeid)

    def ask_for_snapshot(self, nodeid):
        """Ask the xtask to keep every process's stacks and the cluster's
        state, and wait (bounded) for its answer; without an xtask to ask,
        this process's own stacks go to stderr."""
        folder = os.environ.get(DEADLINES, "").strip()
        if not folder:
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
            return {}
        # Named for this process too: several pytest processes (xdist) may ask.
        self.requests += 1
        name = os.path.join(folder, f"{os.getpid()}-{self.requests}")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(name + ".tmp", "w") as f:
                json.dump({"test": nodeid, "at": time.time(), "limit_s": self.limit}, f)
            os.replace(name + ".tmp", name + ".json")
        except OSError as e:
            print(f"dist-test harness: cannot ask for a snapshot: {e}", file=sys.__stderr__)
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
            return {}
        wait = self.snapshot_wait
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                with open(name + ".done") as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.1)
        print(f"dist-test harness: no snapshot within {wait:g} s", file=sys.__stderr__)
        return {}

    def stop(self, nodeid):
        """SIGALRM to the main thread, once (another, landing between two
        phases of pytest's, would end pytest with an internal error); past
        the grace, pytest itself ends."""
        if self.running(nodeid):
            signal.pthread_kill(self.main, signal.SIGALRM)
        deadline = time.monotonic() + self.grace
        while self.running(nodeid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running(nodeid):
            print(
                f"dist-test harness: {nodeid} did not stop within {self.grace:g} s of its "
                f"deadline: ending pytest (exit code {ABANDONED})",
                file=sys.__stderr__,
            )
            abandon = getattr(sys.modules.get("dist_test_ready"), "abandon", None)
            if abandon is not None:
                abandon(nodeid, TIMED_OUT)
            sys.__stderr__.flush()
            os._exit(ABANDONED)


def restart_dask_workers(timeout):
    """Every Dask worker restarted by its nanny, and back: how many, and
    in how many seconds."""
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
    if not address:
        return None
    from distributed import Client

    start = time.monotonic()
    with Client(address, timeout=timeout) as client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        client.restart(timeout=timeout, wait_for_workers=True)
    return workers, time.monotonic() - start


def recover(session, nodeid):
    """After `nodeid` timed out: the cluster's Dask workers restarted,
    unless they are the user's (`dist-test --attach`)."""
    if os.environ.get("DIST_TEST_NO_RESTART") == "1":
        print(
            f"\ndist-test harness: {nodeid} timed out; the attached cluster's workers are "
            "yours and were not restarted (its tasks may still run on them)",
            file=sys.__stderr__,
        )
        return
    timeout = engines_timeout()
    try:
        done = restart_dask_workers(timeout)
    except Exception as e:  # said, and the suite stops
        session.shouldfail = (
            f"dist-test: the Dask workers could not be restarted within {timeout:g} s "
            f"after {nodeid} timed out: {e!r}"
        )
        return
    if done:
        workers, secs = done
        print(
            f"\ndist-test harness: restarted the cluster's {workers} Dask workers in {secs:.1f} s "
            f"after {nodeid} timed out (its tasks may still have run on them)",
            file=sys.__stderr__,
        )


_watchdog = None


def pytest_configure(config):
    global _watchdog
    limit = seconds(TEST_TIMEOUT)
    if limit and _watchdog is None:
        _watchdog = Watchdog(limit, required(GRACE), required(SNAPSHOT))


def pytest_sessionstart(session):
    if _watchdog is not None:
        _watchdog.session = session


def settle(session, nodeid):
    """After a test that timed out: once its expiry is over (the snapshot
    taken), the workers restarted for whatever runs next."""
    w = _watchdog
    w.settled.wait(w.snapshot_wait + w.grace)
    if w.dirty and not session.shouldfail:
        w.dirty = False
        recover(session, nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _watchdog is None:
        return (yield)
    _watchdog.begin(item.nodeid)
    try:
        return (yield)
    finally:
        _watchdog.end()
        if item.nodeid in _watchdog.timed_out:
            settle(item.session, item.nodeid)



@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if _watchdog is not None and item.nodeid in _watchdog.timed_out and report.failed:
        report.user_properties.append((VERDICT, TIMED_OUT))
    return report
