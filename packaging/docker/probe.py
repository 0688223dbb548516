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
        import ipyparallel

        client = ipyparallel.Client(timeout=5)
        try:
            print(len(client.ids))
        finally:
            client.close()
        return 0
    print(f"usage: {argv[0]} scheduler|dask-hosts|worker N|controller|engines", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"not ready: {e}", file=sys.stderr)
        sys.exit(1)
