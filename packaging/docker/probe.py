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
    print(f"usage: {argv[0]} observe | watch SECONDS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"probe: {e}", file=sys.stderr)
        sys.exit(1)
