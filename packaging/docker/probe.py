"""Readiness probes for the dist-test cluster, run inside its containers.

Used as compose healthchecks and by `cargo xtask` to count what has
registered. Prints one line per fact and exits non-zero when not ready.
"""

import json
import os
import socket
import sys
import urllib.request

SECURITY = os.path.join(os.environ.get("IPYTHONDIR", "/ipython"), "profile_default", "security")


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


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    if what == "scheduler":
        with urllib.request.urlopen("http://localhost:8787/health", timeout=3) as resp:
            return 0 if resp.read().strip() == b"ok" else 1
    if what == "dask-hosts":
        # One line per host: `HOST CPU_WORKERS SERVICE_WORKERS`.
        for host, (cpu, service) in sorted(dask_hosts(dask_identity("localhost")).items()):
            print(host, cpu, service)
        return 0
    if what == "worker":
        cpus = int(argv[2])
        cpu, service = dask_hosts(dask_identity("scheduler")).get(socket.gethostname(), [0, 0])
        return 0 if cpu >= cpus and service >= 1 else 1
    if what == "controller":
        files = ("ipcontroller-engine.json", "ipcontroller-client.json")
        return 0 if all(os.path.exists(os.path.join(SECURITY, f)) for f in files) else 1
    if what == "engines":
        print(count_engines())
        return 0
    if what == "wait":
        # Inside the cluster's network (a swarm, where `docker exec` cannot
        # reach other nodes): wait until the scheduler has HOSTS worker hosts
        # with CPUS CPU workers each and the controller ENGINES engines.
        hosts_wanted, cpus, engines_wanted, timeout = (int(a) for a in argv[2:6])
        return wait_ready(hosts_wanted, cpus, engines_wanted, timeout)
    print(f"usage: {argv[0]} scheduler|dask-hosts|worker N|controller|engines|wait H C E T", file=sys.stderr)
    return 2


def count_engines():
    import ipyparallel

    client = ipyparallel.Client(timeout=5)
    try:
        return len(client.ids)
    finally:
        client.close()


def wait_ready(hosts_wanted, cpus, engines_wanted, timeout):
    import time

    deadline = time.monotonic() + timeout
    engines, last = 0, None
    while True:
        try:
            hosts = sum(
                1
                for cpu, service in dask_hosts(dask_identity("scheduler")).values()
                if cpu >= cpus and service >= 1
            )
        except (OSError, ValueError):
            hosts = 0
        if engines < engines_wanted:
            try:
                engines = count_engines()
            except Exception:  # the controller or its files are not there yet
                engines = 0
        line = f"dask worker hosts {hosts}/{hosts_wanted}, ipyparallel engines {engines}/{engines_wanted}"
        if line != last:
            print(f"dist-test: {line}", flush=True)
            last = line
        if hosts >= hosts_wanted and engines >= engines_wanted:
            print("dist-test: cluster ready", flush=True)
            return 0
        if time.monotonic() > deadline:
            print(f"dist-test: the cluster was not ready after {timeout} s: {line}", flush=True)
            return 3
        time.sleep(0.5)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"not ready: {e}", file=sys.stderr)
        sys.exit(1)
