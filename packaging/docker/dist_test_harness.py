"""pytest plugin that `cargo xtask` loads into the tests container.

Mounted read-only at /opt/dist-test-harness and enabled with
`-p dist_test_harness`; it changes no test and skips nothing.

LiberTEM's `ipy_ctx` fixture turns the ipyparallel engines into Dask workers
with `ipyparallel.Client.become_dask()`. That call schedules each engine's
`Worker.start()` in the background and returns as soon as the scheduler is up,
so the fixture can hand out its Context before the engines have joined. The
`raw_on_workers_ipy` fixture then writes its file on the hosts it can see
(`run_each_host`), and the test fails with FileNotFoundError on the engine
that joined late. Whether it does depends on the machine's load.

The harness knows how many engines the cluster has (it waited for them before
running pytest), so it waits, bounded, until that many Dask workers are
running on the scheduler the Context talks to. If they do not arrive, the
fixture errors with a message that says so: a real failure still fails.
"""

import os

import pytest

ENGINES = "DIST_TEST_ENGINES"
JOIN_TIMEOUT = "DIST_TEST_JOIN_TIMEOUT_S"


def expected_engines():
    raw = os.environ.get(ENGINES, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


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
    value = yield
    want = expected_engines()
    if fixturedef.argname == "ipy_ctx" and want:
        timeout = float(os.environ.get(JOIN_TIMEOUT, "60"))
        wait_until_joined(value, want, timeout)
    return value
