"""What has registered with the dist-test cluster, seen from inside it.

The scheduler's container runs `probe.py serve -- dask scheduler ...`: the
scheduler, and beside it a probe server that keeps its clients of the
scheduler and the controller connected. `probe.py observe|watch|restart`
(what `cargo xtask` runs with `docker exec`) asks that server, and does the
work itself where no server answers.

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
                  file itself); then every Dask worker process and every
                  ipyparallel engine that has loaded an edited file (any,
                  with --all) exits at once, its nanny (or warm_start.py's
                  engine parent) starts a new one, and the new ones, once
                  registered, import the project's modules the old ones had
                  loaded. One JSON line: {"workers": 6, "engines": 2,
                  "modules": 55, "numba_cache_files_removed": 12,
                  "stopped_s": 0.3, "replaced_s": 1.6, "warmed_s": 2.1,
                  "warm_errors": []}.
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

    def connect(self):
        """The client, made now if need be (the controller must answer)."""
        if self.client is None:
            import ipyparallel

            self.client = ipyparallel.Client(timeout=10)
        return self.client

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


def watch(lifetime, engines, say, ended):
    """`say` an observation at every change until `ended(timeout)` says the
    listener went or `lifetime` seconds have passed."""
    deadline = time.monotonic() + lifetime
    last = None
    while time.monotonic() < deadline:
        now = observation(engines)
        if now != last:
            say(json.dumps(now, sort_keys=True))
            last = now
        if ended(POLL_S):
            return 0
    return 0


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


def raw_imports(path, name):
    """Every dotted name the file `path` (module `name`) imports, relative
    imports made absolute."""
    import ast

    try:
        tree = ast.parse(open(path, "rb").read(), path)
    except (OSError, SyntaxError, ValueError):
        return []
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
    return sorted(targets)


# What each file imports, kept in the cache volume beside numba's and
# keyed by the file's size and time: a restart parses only what changed
# (parsing the whole project took seconds of the restart).
IMPORTS_FILE = ".dist-test-imports.json"


def imports_of(known, cache):
    """{module: the dotted names it imports} for the modules `known`."""
    path = os.path.join(cache, IMPORTS_FILE)
    try:
        with open(path) as f:
            kept = json.load(f)
    except (OSError, ValueError):
        kept = {}
    out, fresh = {}, {}
    for name, file in known.items():
        try:
            st = os.stat(file)
        except OSError:
            continue
        stamp = f"{name} {st.st_size} {st.st_mtime_ns}"
        entry = kept.get(file)
        if not entry or entry.get("stamp") != stamp:
            entry = {"stamp": stamp, "imports": raw_imports(file, name)}
        fresh[file] = entry
        out[name] = entry["imports"]
    if fresh != kept:
        try:
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(fresh, f)
            os.replace(tmp, path)
        except OSError:  # only saves time
            pass
    return out


def imported_by(targets, known):
    """The project's modules among `targets` (dotted names a module
    imports), with the packages each import runs on its way."""
    out = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known:
                out.add(prefix)
    return out


def stale_caches(changed):
    """Where numba's stale cache is, as `[(folder, file prefix)]` under the
    cache: numba checks a cached function against its own file only, so a
    cached caller in an unedited module would come back compiled with the
    old callee (or with a global's old value). What is stale: the cache of
    every module that imports an edited one, directly or not, and of the
    edited ones; all of it (`None`) when `changed` is None. The cache of the
    installed packages stays."""
    import hashlib

    if changed is None:
        return None
    cache = os.environ.get("NUMBA_CACHE_DIR", "/numba-cache")
    known = modules_under(SOURCE)
    by_path = {path: name for name, path in known.items()}
    importers = {}
    for name, targets in imports_of(known, cache).items():
        for target in imported_by(targets, known):
            importers.setdefault(target, set()).add(name)
    stale = {by_path[os.path.join(SOURCE, c)] for c in changed if os.path.join(SOURCE, c) in by_path}
    todo = list(stale)
    while todo:
        for importer in importers.get(todo.pop(), ()):
            if importer not in stale:
                stale.add(importer)
                todo.append(importer)
    # numba's cache locator: <cache>/<folder name>_<sha1 of the folder>/<file stem>.<function>-...
    stale_files = {known[n] for n in stale} | {os.path.join(SOURCE, c) for c in changed}
    found = set()
    for path in stale_files:
        folder = os.path.dirname(os.path.abspath(path))
        sub = os.path.basename(folder) + "_" + hashlib.sha1(folder.encode()).hexdigest()
        found.add((sub, os.path.splitext(os.path.basename(path))[0] + "."))
    return sorted(found)


def remove_caches(where, keep=("byte-code", IMPORTS_FILE)):
    """Remove the cache files `stale_caches` named (all of them but `keep`
    for `None`) from this container's cache: run here and, on a swarm where
    each container has its own, in every worker and engine. Self-contained
    (its imports inside, its constants as defaults): ipyparallel runs a
    function in the engine's namespace, not in this module's. How many
    files went."""
    import os
    import shutil

    cache = os.environ.get("NUMBA_CACHE_DIR", "/numba-cache")
    gone = 0
    if where is None:
        for name in os.listdir(cache):
            if name in keep:
                continue
            path = os.path.join(cache, name)
            if os.path.isdir(path) and not os.path.islink(path):
                gone += sum(len(f) for _, _, f in os.walk(path))
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                    gone += 1
                except OSError:
                    pass
        return gone
    for sub, stem in where:
        try:
            entries = os.listdir(os.path.join(cache, sub))
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(stem):
                try:
                    os.unlink(os.path.join(cache, sub, entry))
                    gone += 1
                except OSError:  # another process of the container was first
                    pass
    return gone


def project_modules():
    """{module: file} of the project's modules this process has loaded.
    Runs in the workers and engines."""
    import sys

    return {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith("/src/")
    }


def import_all(names):
    """Import `names` (run in a new worker or engine); what failed, as
    `name: error`, leaving out modules that are not importable on their own
    (test modules a pickle named)."""
    import importlib

    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            pass
        except Exception as e:  # the edit broke it: the tests will say so too
            failed.append(f"{name}: {type(e).__name__}: {e}")
    return failed


def exit_soon():
    """Make this worker process exit once the reply is on its way (its nanny
    starts a new one)."""
    import os
    import threading

    threading.Timer(0.05, os._exit, (1,)).start()


def unregister(engines, ids):
    """Tell the controller that engines `ids` are gone: they exited without
    saying so, and it would otherwise list them until ten heartbeats missed."""
    for eid in ids:
        engines.session.send(engines._query_socket, "unregistration_request", content={"id": eid})


def wait_until(what, done, deadline, spin=None):
    while not done():
        if time.monotonic() > deadline:
            raise OSError(f"{what} after the restart's time limit")
        time.sleep(0.05)
        if spin:
            spin()


def restart(limit, changed, engines, dask):
    """The processes that run the project's code (Dask workers, ipyparallel
    engines) and have loaded a changed file exit and are replaced at once
    (by their nanny, by warm_start.py's engine parent), without waiting for
    graceful closes: they are test processes between two runs. The new ones
    are waited for and made to import the project's modules the old ones
    had loaded, so that the first test pays no import. numba's cache of the
    changed modules and their importers goes, in every container that runs
    the project's code, before the old ones exit and the new ones import
    anything, whether or not anything restarts. At most `limit` seconds."""
    from warm_start import RESTART_CODE

    deadline = time.monotonic() + limit
    started = time.monotonic()
    report = {}
    paths = None if changed is None else {os.path.join(SOURCE, c) for c in changed}

    def stale(loaded):
        return bool(loaded) and (paths is None or not paths.isdisjoint(loaded.values()))

    ipp = engines.connect()
    workers = dask.run(project_modules)
    ids = list(ipp.ids)
    on_engines = dict(zip(ids, ipp[ids].apply_sync(project_modules))) if ids else {}
    old_workers = [a for a, loaded in workers.items() if stale(loaded)]
    old_engines = [e for e, loaded in on_engines.items() if stale(loaded)]
    names = set()
    for loaded in [workers[a] for a in old_workers] + [on_engines[e] for e in old_engines]:
        names.update(loaded)
    report.update(workers=len(old_workers), engines=len(old_engines), modules=len(names))
    # numba's cache is each container's own on a swarm (no volume is
    # shared between nodes): the stale files go in every worker's and
    # engine's container, before anything exits, and in this one (on
    # compose one volume they all mount: the others then find nothing).
    where = stale_caches(changed)
    gone = remove_caches(where)
    gone += sum(dask.run(remove_caches, where).values())
    if ids:
        gone += sum(ipp[ids].apply_sync(remove_caches, where))
    report["numba_cache_files_removed"] = gone
    if old_workers:
        dask.run(exit_soon, workers=old_workers)
    if old_engines:
        ipp[old_engines].apply_async(os._exit, RESTART_CODE)
        unregister(ipp, old_engines)
    wait_until(
        "the scheduler still lists old workers",
        lambda: not set(dask.nthreads()) & set(old_workers),
        deadline,
    )
    wait_until(
        "the controller still lists old engines",
        lambda: not set(ipp.ids) & set(old_engines),
        deadline,
        ipp.spin,
    )
    report["stopped_s"] = round(time.monotonic() - started, 2)
    wait_until(
        f"fewer than {len(workers)} Dask workers registered",
        lambda: len(dask.nthreads()) >= len(workers),
        deadline,
    )
    wait_until(
        f"fewer than {len(ids)} engines registered",
        lambda: len(ipp.ids) >= len(ids),
        deadline,
        ipp.spin,
    )
    report["replaced_s"] = round(time.monotonic() - started, 2)
    order = sorted(names)
    new_workers = [a for a in dask.nthreads() if a not in workers]
    new_engines = [e for e in ipp.ids if e not in on_engines]
    failed = set()
    if new_workers and order:
        for errors in dask.run(import_all, order, workers=new_workers).values():
            failed.update(errors)
    if new_engines and order:
        for errors in ipp[new_engines].apply_sync(import_all, order):
            failed.update(errors)
    report["warm_errors"] = sorted(failed)
    report["warmed_s"] = round(time.monotonic() - started, 2)
    # What has registered now, as `observe` says it: the xtask's readiness
    # verdict needs no second look.
    report["seen"] = observation(engines)
    return report


class Clients:
    """The probe's clients of the controller and the scheduler, made when
    first needed and kept (a server keeps them between requests)."""

    def __init__(self):
        self.engines = Engines()
        self._dask = None

    def dask(self):
        if self._dask is None:
            from distributed import Client

            self._dask = Client("tcp://scheduler:8786", timeout=10)
        return self._dask

    def close(self):
        self.engines.close()
        if self._dask is not None:
            self._dask.close()
            self._dask = None


def handle(request, clients, say, ended):
    """One request: `observe`, `watch SECONDS`, `restart SECONDS ...`."""
    what, args = request[0] if request else "", request[1:]
    if what == "observe" and not args:
        say(json.dumps(observation(clients.engines), sort_keys=True))
        return 0
    if what == "watch" and len(args) == 1:
        return watch(float(args[0]), clients.engines, say, ended)
    if what == "restart" and len(args) >= 2 and args[1] in ("--all", "--changed"):
        changed = None if args[1] == "--all" else args[2:]
        say(json.dumps(restart(float(args[0]), changed, clients.engines, clients.dask()), sort_keys=True))
        return 0
    raise ValueError(f"usage: observe | watch SECONDS | restart SECONDS (--all | --changed FILE...), not {request}")


# The probe server: a second process of the scheduler's container (`serve --
# COMMAND`), so that a look at the cluster costs a connection, not a Python
# that imports ipyparallel and distributed and connects to both (a second or
# more of CPU per `test`, per restart). `probe.py observe|watch|restart`
# asks it when it answers, and does the work itself when not.
SOCKET = "/tmp/dist-test-probe.sock"


def serve(command):
    """Fork the probe server, then become `command` (the scheduler): the
    container lives as long as the scheduler does, and the server with it."""
    if os.fork() != 0:
        os.execvp(command[0], command)
    import socket
    import threading

    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(SOCKET)
    listener.listen(8)
    clients, lock = Clients(), threading.Lock()
    # What every request needs, while the scheduler starts.
    import distributed  # noqa: F401
    import ipyparallel  # noqa: F401

    def answer(conn):
        with conn, conn.makefile("rw") as f:
            request = json.loads(f.readline() or "[]")

            def say(line):
                f.write(line + "\n")
                f.flush()

            def ended(timeout):
                readable, _, _ = select.select([conn], [], [], timeout)
                return bool(readable) and not conn.recv(1)

            try:
                if request[:1] == ["watch"]:
                    # One look at a time, the lock let go between looks.
                    def looked(timeout):
                        lock.release()
                        try:
                            return ended(timeout)
                        finally:
                            lock.acquire()

                    with lock:
                        handle(request, clients, say, looked)
                else:
                    with lock:
                        handle(request, clients, say, ended)
                say("OK")
            except Exception as e:  # said to the client, which exits 1
                say(f"ERROR {type(e).__name__}: {e}")
                if request[:1] == ["restart"]:
                    # A client that failed half-way is not to be trusted.
                    clients.close()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


def ask_server(request):
    """The server's answer to `request`, its lines relayed to stdout as they
    come (and the request ended when our input ends, for `watch`); `None`
    when no server answers."""
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET)
    except OSError:
        conn.close()
        return None
    with conn:
        conn.sendall((json.dumps(request) + "\n").encode())
        f = conn.makefile("r")
        watching = request[:1] == ["watch"]
        while True:
            if watching:
                readable, _, _ = select.select([conn, sys.stdin], [], [])
                if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
                    return 0
                if conn not in readable:
                    continue
            line = f.readline()
            if not line:
                raise OSError("the probe server went away")
            line = line.rstrip("\n")
            if line == "OK":
                return 0
            if line.startswith("ERROR "):
                raise OSError(line[len("ERROR "):])
            print(line, flush=True)


def main(argv):
    if argv[1:2] == ["serve"] and argv[2:3] == ["--"] and len(argv) > 3:
        serve(argv[3:])
        return 0
    request = argv[1:]
    if request[:1] not in (["observe"], ["watch"], ["restart"]):
        print(
            f"usage: {argv[0]} observe | watch SECONDS | restart SECONDS (--all | --changed FILE...)"
            " | serve -- COMMAND...",
            file=sys.stderr,
        )
        return 2
    answered = ask_server(request)
    if answered is not None:
        return answered
    clients = Clients()
    try:
        return handle(request, clients, lambda line: print(line, flush=True), input_ended)
    finally:
        clients.close()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"probe: {e}", file=sys.stderr)
        sys.exit(1)
