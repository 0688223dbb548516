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
"""

import os
import time

import pytest

READY_FILE = "DIST_TEST_READY_FILE"
READY_TIMEOUT = "DIST_TEST_READY_TIMEOUT_S"


def wait_for_ready_file(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise pytest.UsageError(
                f"dist-test: the cluster was not declared ready within {timeout:g} s "
                f"({path} never appeared)"
            )
        time.sleep(0.05)


def pytest_collection_finish(session):
    path = os.environ.get(READY_FILE, "").strip()
    if path:
        wait_for_ready_file(path, float(os.environ.get(READY_TIMEOUT, "900")))
