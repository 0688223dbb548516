"""Readiness probes for the dist-test cluster, run inside its containers.

`cargo xtask` counts what has registered with these:

  dask-hosts    one line per Dask host: `HOST CPU_WORKERS SERVICE_WORKERS`
  engines       the number of ipyparallel engines registered
  watch H C E T until the scheduler has H hosts with C CPU workers (and a
                service worker) each and the controller E engines, or T
                seconds passed: a JSON line at every change,
                {"hosts": {"worker-1": [2, 1]}, "engines": 1}; exits 0 when
                ready, 3 at the time limit. One process for the whole wait:
                each `docker exec` costs about 0.3 s of CPU, which the
                services starting beside it need.
  wait H C E T  the same, in words, then `dist-test: cluster ready` (the swarm
                tests task's wait, whose output is its log)
"""

import json
import os
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


def count_engines():
    engines = Engines()
    try:
        return engines.count()
    finally:
        engines.close()


def observe(hosts_wanted, cpus, engines_wanted, timeout, report):
    """Poll until ready or `timeout` seconds; `report(hosts, engines)` at
    every change. 0 when ready, 3 at the time limit."""
    deadline = time.monotonic() + timeout
    engines, last = Engines(), None
    engine_count = 0
    try:
        while True:
            try:
                hosts = dask_hosts(dask_identity("scheduler"))
            except (OSError, ValueError):  # the scheduler is not answering yet
                hosts = {}
            # Once all have registered they are not asked again: an engine
            # that goes shows as a container that stopped.
            if engine_count < engines_wanted:
                engine_count = engines.count()
            now = (hosts, engine_count)
            if now != last:
                report(hosts, engine_count)
                last = now
            complete = sum(1 for cpu, service in hosts.values() if cpu >= cpus and service >= 1)
            if complete >= hosts_wanted and engine_count >= engines_wanted:
                return 0
            if time.monotonic() > deadline:
                return 3
            time.sleep(POLL_S)
    finally:
        engines.close()


def watch(hosts_wanted, cpus, engines_wanted, timeout):
    def report(hosts, engines):
        print(json.dumps({"hosts": hosts, "engines": engines}), flush=True)

    return observe(hosts_wanted, cpus, engines_wanted, timeout, report)


def wait(hosts_wanted, cpus, engines_wanted, timeout):
    line = ""

    def report(hosts, engines):
        nonlocal line
        complete = sum(1 for cpu, service in hosts.values() if cpu >= cpus and service >= 1)
        now = (
            f"dask worker hosts {complete}/{hosts_wanted}, "
            f"ipyparallel engines {engines}/{engines_wanted}"
        )
        if now != line:
            print(f"dist-test: {now}", flush=True)
            line = now

    code = observe(hosts_wanted, cpus, engines_wanted, timeout, report)
    if code == 0:
        print("dist-test: cluster ready", flush=True)
    else:
        print(f"dist-test: the cluster was not ready after {timeout} s: {line}", flush=True)
    return code


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "dask-hosts":
        for host, (cpu, service) in sorted(dask_hosts(dask_identity("localhost")).items()):
            print(host, cpu, service)
        return 0
    if what == "engines":
        print(count_engines())
        return 0
    if what in ("watch", "wait") and len(argv) == 6:
        hosts_wanted, cpus, engines_wanted, timeout = (int(a) for a in argv[2:6])
        return (watch if what == "watch" else wait)(hosts_wanted, cpus, engines_wanted, timeout)
    print(f"usage: {argv[0]} dask-hosts|engines|watch H C E T|wait H C E T", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"not ready: {e}", file=sys.stderr)
        sys.exit(1)
