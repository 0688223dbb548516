"""The tests container's pytest, started warm.

Each run of the tests is a `docker exec` of pytest_client.py in the tests
container. Started cold, pytest pays for importing itself and everything
LiberTEM imports (numpy, numba, scipy, distributed, ...) before it collects
a test: seconds of CPU per run, which a one-test run and the edit loop wait
for. This server, the tests container's main process, imports those once
(pytest, ipyparallel, and the modules of $DIST_TEST_PRELOAD, never the
project: see warm_start.py) and forks a pytest for each client, which runs
with the client's arguments, environment, working folder and standard
streams (passed over the socket), and imports the project and its tests
from the source as it is. The client exits with pytest's exit code.

pytest's plugins are not imported here: pytest rewrites their asserts when
it loads them, which it cannot do for a module imported before. Nor are
the harness's own plugins (dist_test_ready.py keeps the time of its import
as pytest's start).

A client that cannot reach a server runs pytest itself (pytest_client.py).
"""

import json
import os
import select
import socket
import struct
import sys

SOCKET = os.environ.get("DIST_TEST_PYTEST_SOCKET", "/tmp/dist-test-pytest.sock")


def preload():
    """pytest; with DIST_TEST_WARM=1 (a warm cluster, see dist-test.toml's
    warm_start) also what LiberTEM and its tests import."""
    import importlib

    names = ["pytest"]
    if os.environ.get("DIST_TEST_WARM") == "1":
        names += ["ipyparallel"]
        names += [n for n in os.environ.get("DIST_TEST_PRELOAD", "").split(",") if n]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # only saves time
            pass


def read_request(conn):
    """The request and the client's standard streams: a 4-byte length and
    that much JSON, the first part arriving with the three descriptors."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(data) < 4 or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise OSError("a malformed request")
    (size,) = struct.unpack("!I", data[:4])
    body = data[4:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise OSError("the client went away")
        body += more
    return json.loads(body), fds


def run_pytest(request, fds, listener, conn):
    """In the forked child: become the client's pytest; never returns."""
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["pytest", *request["args"]]
        # Standard streams on the client's descriptors, as a new process's.
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        import pytest

        code = int(pytest.main(request["args"]))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - reported, then the child ends
        print(f"pytest_server: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        # What a normal end would write; the rest of the interpreter's
        # teardown protects nothing of the run's (its results are written).
        try:
            import logging

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve():
    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(SOCKET)
    listener.listen(8)
    # Clients that come while the preload runs wait in the backlog.
    preload()
    print(f"pytest_server: ready on {SOCKET}", flush=True)
    running = {}  # pid -> the client's connection
    while True:
        readable, _, _ = select.select([listener], [], [], 0.2 if running else None)
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = running.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass
                conn.close()
        if not readable:
            continue
        conn, _ = listener.accept()
        try:
            request, fds = read_request(conn)
        except (OSError, ValueError) as e:
            print(f"pytest_server: {e}", file=sys.stderr, flush=True)
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_pytest(request, fds, listener, conn)
        for fd in fds:
            os.close(fd)
        running[pid] = conn


if __name__ == "__main__":
    serve()
