"""What a cluster the user runs is made of, seen from a container of the
project's image: `cargo xtask dist-test --attach` runs this before any test.

Prints one JSON object: the versions of Python, LiberTEM, dask, distributed
and ipyparallel here (the tests' side), in the Dask scheduler, in every Dask
worker (with its host's name) and in every ipyparallel engine; or, when it
could not ask, {"error": why, "waiting": whether asking again may help (the
scheduler or the controller did not answer)}. Nothing is started,
restarted or changed on the cluster: it only asks.

    python3 attach.py SCHEDULER_ADDRESS CLIENT_FILE TIMEOUT_S

Every wait is bounded by TIMEOUT_S: an engine busy with an abandoned task
makes the look fail, it does not hang.
"""

import json
import socket
import sys

PACKAGES = ("libertem", "dask", "distributed", "ipyparallel")

# What an engine runs: sent as text and executed there, so that an engine on
# another Python still answers (a pickled function's code would not load).
ENGINE_CODE = """
def _dist_test_versions():
    import importlib.metadata, platform, socket
    found = {"python": platform.python_version(), "host": socket.gethostname()}
    for name in %r:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found
_dist_test_seen = _dist_test_versions()
""" % (PACKAGES,)


def here():
    """This process's Python, packages and host: the tests' side."""
    namespace = {}
    exec(ENGINE_CODE, namespace)
    return namespace["_dist_test_seen"]


def python_of(host_info):
    """'3.14.0' from distributed's host info ('python': '3.14.0.final.0')."""
    return ".".join(str(host_info.get("python", "")).split(".")[:3])


def from_dask(info, host):
    """A process's versions as distributed's `get_versions` reports them
    (computed where the process runs: nothing is pickled across)."""
    packages = info.get("packages", {})
    found = {"python": python_of(info.get("host", {})), "host": host}
    for name in PACKAGES:
        found[name] = packages.get(name)
    return found


def main(argv):
    if len(argv) != 4:
        print("usage: attach.py SCHEDULER_ADDRESS CLIENT_FILE TIMEOUT_S", file=sys.stderr)
        return 2
    address, client_file, timeout = argv[1], argv[2], float(argv[3])
    seen = {"tests": here(), "scheduler": None, "workers": {}, "engines": {}}
    from distributed import Client

    try:
        dask = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(f"the Dask scheduler at {address} does not answer ({e})") from None
    with dask:
        versions = dask.get_versions(check=False, packages=list(PACKAGES))
        # A builtin, pickled by name: any Python can run it.
        hosts = dask.run(socket.gethostname)
        scheduler_host = dask.run_on_scheduler(socket.gethostname)
    seen["scheduler"] = from_dask(versions["scheduler"], scheduler_host)
    for addr, info in versions["workers"].items():
        seen["workers"][addr] = from_dask(info, hosts.get(addr, addr))
    import ipyparallel

    try:
        rc = ipyparallel.Client(url_file=client_file, timeout=timeout)
    except (OSError, TimeoutError) as e:
        with open(client_file) as f:
            where = json.load(f).get("location", "?")
        raise ConnectionError(f"the ipyparallel controller at {where} does not answer ({e})") from None
    try:
        if rc.ids:
            view = rc[:]
            view.execute(ENGINE_CODE, block=False).get(timeout=timeout)
            answers = view.pull("_dist_test_seen", block=False).get(timeout=timeout)
            seen["engines"] = {str(i): v for i, v in zip(rc.ids, answers)}
    finally:
        rc.close()
    print(json.dumps(seen, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except ConnectionError as e:  # not answering yet: asked again
        print(json.dumps({"error": str(e), "waiting": True}))
    except Exception as e:  # one line for the xtask to show
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "waiting": False}))
