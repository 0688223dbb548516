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
  restart SECONDS --changed FILE... | --all
                  before a kept cluster runs edited code: numba's cache of
                  the edited files (relative to /src) and of every module
                  that imports one of them removed (with --all: the whole
                  cache but the byte-code, which Python checks against each
                  file itself), then every Dask worker
                  restarted by its nanny (a new process, which imports the
                  project afresh), the old ones waited for until the
                  scheduler dropped them; every ipyparallel engine shut
                  down and waited for until the controller has dropped it
                  (the xtask then starts the engines' containers again, and
                  its readiness check waits for the workers and engines that
                  register anew). One JSON line: {"workers": 4, "engines_stopped": 2,
                  "numba_cache_files_removed": 12}.
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


SOURCE = "/src"


def modules_under(root):
    """{dotted module name: file} for the project's Python files: named from
    /src/src (a src layout) or else from /src."""
    found = {}
    for base in (os.path.join(root, "src"), root):
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "build", "dist")]
            if base == root and os.path.abspath(folder) == os.path.join(root, "src"):
                dirs[:] = []
                continue
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, base)[: -len(".py")].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                if rel and path not in found.values():
                    found[".".join(rel)] = path
    return found


def imported_by(path, name, known):
    """The project's modules the file `path` (module `name`) imports, with
    the packages each import runs on its way."""
    import ast

    try:
        tree = ast.parse(open(path, "rb").read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets.add(base)
            targets.update(f"{base}.{a.name}" for a in node.names)
    out = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known:
                out.add(prefix)
    return out


def clear_numba_cache(changed):
    """numba checks a cached function against its own file only, so a cached
    caller in an unedited module would come back compiled with the old
    callee (or with a global's old value). What goes: the cache of every
    module that imports an edited one, directly or not, and of the edited
    ones; all of it when `changed` is None. The cache of the installed
    packages stays. Returns how many cache files went."""
    import hashlib
    import shutil

    cache = os.environ.get("NUMBA_CACHE_DIR", "/numba-cache")
    if changed is None:
        gone = 0
        for name in os.listdir(cache):
            if name == "byte-code":
                continue
            path = os.path.join(cache, name)
            if os.path.isdir(path) and not os.path.islink(path):
                gone += sum(len(f) for _, _, f in os.walk(path))
                shutil.rmtree(path)
            else:
                os.unlink(path)
                gone += 1
        return gone
    known = modules_under(SOURCE)
    by_path = {path: name for name, path in known.items()}
    importers = {}
    for name, path in known.items():
        for target in imported_by(path, name, known):
            importers.setdefault(target, set()).add(name)
    stale = {by_path[os.path.join(SOURCE, c)] for c in changed if os.path.join(SOURCE, c) in by_path}
    todo = list(stale)
    while todo:
        for importer in importers.get(todo.pop(), ()):
            if importer not in stale:
                stale.add(importer)
                todo.append(importer)
    gone = 0
    # numba's cache locator: <cache>/<folder name>_<sha1 of the folder>/<file stem>.<function>-...
    stale_files = {known[n] for n in stale} | {os.path.join(SOURCE, c) for c in changed}
    for path in stale_files:
        folder = os.path.dirname(os.path.abspath(path))
        sub = os.path.basename(folder) + "_" + hashlib.sha1(folder.encode()).hexdigest()
        where = os.path.join(cache, sub)
        stem = os.path.splitext(os.path.basename(path))[0] + "."
        try:
            entries = os.listdir(where)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(stem):
                os.unlink(os.path.join(where, entry))
                gone += 1
    return gone


def restart(limit, changed):
    """The stale part of numba's cache removed (see clear_numba_cache),
    workers restarted through their nannies, engines stopped and gone from
    the controller's registry; at most `limit` seconds for each."""
    import ipyparallel
    from distributed import Client

    deadline = time.monotonic() + limit
    cache_files = clear_numba_cache(changed)
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
    # The new worker processes start while the engines do: the xtask's
    # readiness check waits for both. Old workers are waited for until the
    # scheduler has dropped them (their names come back, their addresses
    # do not), so that it cannot count them.
    with Client("tcp://scheduler:8786", timeout=10) as dask:
        old = set(dask.nthreads())
        dask.restart(timeout=max(1.0, deadline - time.monotonic()), wait_for_workers=False)
        while set(dask.nthreads()) & old:
            if time.monotonic() > deadline:
                raise OSError(f"the scheduler still lists workers {sorted(old)} after {limit} s")
            time.sleep(0.1)
    return {"workers": len(old), "engines_stopped": len(stopped), "numba_cache_files_removed": cache_files}


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
    if what == "restart" and len(argv) >= 4 and argv[3] in ("--all", "--changed"):
        changed = None if argv[3] == "--all" else argv[4:]
        print(json.dumps(restart(float(argv[2]), changed), sort_keys=True), flush=True)
        return 0
    print(f"usage: {argv[0]} observe | watch SECONDS | restart SECONDS (--all | --changed FILE...)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"probe: {e}", file=sys.stderr)
        sys.exit(1)
