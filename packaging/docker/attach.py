"""What a cluster the user runs is made of, seen from a container of the
project's image: `cargo xtask dist-test --attach` runs this before any test.

Prints one JSON object: the versions of Python, LiberTEM, dask, distributed
and ipyparallel here (the tests' side), in the Dask scheduler, in every Dask
worker (with its host's name) and in every ipyparallel engine; or, when it
could not ask, {"error": why, "waiting": whether asking again may help (the
scheduler or the controller did not answer)}. Nothing is started,
restarted or changed on the cluster: it only asks.

    python3 attach.py SCHEDULER_ADDRESS CLIENT_FILE TIMEOUT_S
"""

import json
import sys

PACKAGES = ("libertem", "dask", "distributed", "ipyparallel")


def versions():
    """This process's Python, packages and host (run here and remotely)."""
    import importlib.metadata
    import platform
    import socket

    found = {"python": platform.python_version(), "host": socket.gethostname()}
    for name in ("libertem", "dask", "distributed", "ipyparallel"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    address, client_file, timeout = argv[1], argv[2], float(argv[3])
    seen = {"tests": versions(), "scheduler": None, "workers": {}, "engines": {}}
    from distributed import Client

    with Client(address, timeout=timeout) as dask:
        seen["scheduler"] = dask.run_on_scheduler(versions)
        seen["workers"] = dask.run(versions)
    if client_file:
        import ipyparallel

        rc = ipyparallel.Client(url_file=client_file, timeout=timeout)
        try:
            if rc.ids:
                answers = rc[:].apply_sync(versions)
                seen["engines"] = {str(i): v for i, v in zip(rc.ids, answers)}
        finally:
            rc.close()
    print(json.dumps(seen, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (TimeoutError, ConnectionError) as e:  # not answering yet
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "waiting": True}))
    except OSError as e:  # a file it cannot read, an address that is wrong
        waiting = "timed out" in str(e).lower() or "connect" in str(e).lower()
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "waiting": waiting}))
    except Exception as e:  # one line for the xtask to show
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "waiting": False}))
