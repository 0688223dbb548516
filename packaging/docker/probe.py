"""What has registered with the dist-test cluster, seen from inside it.

`cargo xtask` runs this in the scheduler's container and decides from what
it reports whether the cluster is ready (the rule is the xtask's alone,
cluster/readiness.rs); this only observes:

  observe         one JSON line, {"hosts": {"worker-1": [2, 1]}, "engines": 1}:
                  each Dask host with its CPU and service workers (from the
                  names libertem-worker gives them), and the ipyparallel
                  engines registered with the controller
  watch SECONDS   the same line at every change, until its input ends (the
                  xtask holds it open for as long as it wants to hear) or
                  SECONDS have passed. One process for the whole wait: each
                  `docker exec` costs about 0.3 s of CPU, which the services
                  starting beside it need.
  restart SECONDS before a kept cluster runs edited code: numba's cache
                  emptied (the byte-code of the project's modules stays:
                  Python checks it against each file), then every Dask worker
                  restarted by its nanny (a new process, which imports the
                  project afresh), waited for; every ipyparallel engine shut
                  down and waited for until the controller has dropped it
                  (the xtask then starts the engines' containers again, and
                  its readiness check counts only engines that register
                  anew). One JSON line: {"workers": 4, "engines_stopped": 2}.
"""

import json
import os
import select
import sys
import time
import urllib.request

SECURITY = os.path.join(os.environ.get("IPYTHONDIR", "/ipython"), "profile_default", "security")
POLL_S = 0.5


def dask_identity(host):
    url = f"http://{host}:8787/json/identity.json"
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.load(resp)


def dask_hosts(identity):
    """{hostname: [cpu workers, service workers]} from libertem-worker names."""
    hosts = {}
    for worker in identity.get("workers", {}).values():
        name = str(worker.get("name", ""))
        for i, kind in enumerate(("-cpu-", "-service-")):
            if kind in name:
                host = name.split(kind)[0]
                hosts.setdefault(host, [0, 0])[i] += 1
    return hosts


class Engines:
    """The controller's engine count, through one client kept for the wait
    (it hears of registrations as they complete)."""

    def __init__(self):
        self.client = None

    def count(self):
        try:
            if self.client is None:
                if not os.path.exists(os.path.join(SECURITY, "ipcontroller-client.json")):
                    return 0
                import ipyparallel

                self.client = ipyparallel.Client(timeout=5)
            return len(self.client.ids)
        except Exception:  # the controller is not answering yet
            self.close()
            return 0

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None


def observation(engines):
    try:
        hosts = dask_hosts(dask_identity("scheduler"))
    except (OSError, ValueError):  # the scheduler is not answering yet
        hosts = {}
    return {"hosts": hosts, "engines": engines.count()}


def input_ended(timeout):
    """Wait up to `timeout` seconds for our input to end; True once it has."""
    readable, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(readable) and not os.read(sys.stdin.fileno(), 4096)


def watch(lifetime):
    deadline = time.monotonic() + lifetime
    engines, last = Engines(), None
    try:
        while time.monotonic() < deadline:
            now = observation(engines)
            if now != last:
                print(json.dumps(now, sort_keys=True), flush=True)
                last = now
            if input_ended(POLL_S):
                return 0
        return 0
    finally:
        engines.close()


def clear_numba_cache():
    """numba checks a cached function against its own file only, so a caller
    in an unedited module would come back compiled with the old callee."""
    import shutil

    cache = os.environ.get("NUMBA_CACHE_DIR", "/numba-cache")
    for name in os.listdir(cache):
        if name == "byte-code":
            continue
        path = os.path.join(cache, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def restart(limit):
    """numba's cache emptied, workers restarted through their nannies,
    engines stopped and gone from the controller's registry; at most
    `limit` seconds for each."""
    import ipyparallel
    from distributed import Client

    deadline = time.monotonic() + limit
    clear_numba_cache()
    engines = ipyparallel.Client(timeout=10)
    try:
        stopped = list(engines.ids)
        if stopped:
            engines.shutdown(targets=stopped, block=False)
        # An engine's own nanny reports its exit at once; one whose report
        # was lost is dropped when its heartbeats stop (about 30 s).
        while set(engines.ids) & set(stopped):
            if time.monotonic() > deadline:
                raise OSError(f"the controller still lists engines {sorted(engines.ids)} after {limit} s")
            time.sleep(0.1)
            engines.spin()
    finally:
        engines.close()
    with Client("tcp://scheduler:8786", timeout=10) as dask:
        dask.restart(timeout=max(1.0, deadline - time.monotonic()), wait_for_workers=True)
        workers = len(dask.nthreads())
    return {"workers": workers, "engines_stopped": len(stopped)}


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "observe" and len(argv) == 2:
        engines = Engines()
        try:
            print(json.dumps(observation(engines), sort_keys=True))
        finally:
            engines.close()
        return 0
    if what == "watch" and len(argv) == 3:
        return watch(float(argv[2]))
    if what == "restart" and len(argv) == 3:
        print(json.dumps(restart(float(argv[2])), sort_keys=True), flush=True)
        return 0
    print(f"usage: {argv[0]} observe | watch SECONDS | restart SECONDS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"probe: {e}", file=sys.stderr)
        sys.exit(1)
