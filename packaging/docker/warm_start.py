"""Processes of the dist-test cluster that start warm.

The Dask workers and the ipyparallel engines run the project's code, so a
kept cluster replaces them after an edit (probe.py restart). What makes a
new process slow is importing everything the project imports: numpy, numba,
scipy, distributed, ... (about 3 s of CPU each, six workers and two engines
on two cores). Those modules do not change between edits, so here they are
imported once, in a process that never runs the project's code, and every
worker or engine is forked from it with them already loaded; it imports only
the project itself, which is what changed.

  worker -- COMMAND ARGS...
      Run the console script COMMAND (libertem-worker) with Dask's worker
      processes started by multiprocessing's fork server, which imports, when
      $DIST_TEST_WARM is 1 (see dist-test.toml, warm_start), the modules named in
      $DIST_TEST_PRELOAD (warm_preload.py) before it forks any. A worker
      process that exits is started again by its nanny (Dask's own rule), so
      `probe.py restart` only has to make it exit.
  engine -- COMMAND ARGS...
      Import the console script COMMAND (ipengine) and, when
      $DIST_TEST_WARM is 1, the modules of $DIST_TEST_PRELOAD; then run COMMAND
      in a forked child. A child that
      exits with RESTART_CODE (what `probe.py restart` makes it do) is
      replaced by a new one at once; any other end of the child ends this
      process with the child's code, so an engine that dies still stops its
      container. SIGTERM and SIGINT go to the child.
  discover MODULE...
      Import MODULEs and print, one per line, the other modules they loaded
      (not the project's under /src, not the standard library's), cut to
      the shortest list whose imports, in order, load them all: what
      `cargo xtask` passes as $DIST_TEST_PRELOAD.

Nothing here imports the project in the process that others are forked
from: a forked process must import the project's modules from the source as
it is when it starts.
"""

import importlib
import json
import os
import signal
import subprocess
import sys

# The exit code with which an engine asks its parent for a new one.
RESTART_CODE = 75
SOURCE = "/src"


def from_source(module):
    path = getattr(module, "__file__", None) or ""
    return path.startswith(SOURCE + os.sep)


def console_script(name):
    """The function behind an installed console script."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="console_scripts") if ep.name == name]
    if not found:
        raise SystemExit(f"warm_start: no console script {name!r} is installed")
    return found[0].load()


def run_script(main, argv):
    """Run a console script's function as its own file would; its exit code."""
    sys.argv = list(argv)
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def worker(command):
    # Set before distributed reads its configuration (at its import).
    os.environ.setdefault("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD", "forkserver")
    import multiprocessing.forkserver as forkserver

    # distributed names its own modules for the fork server to preload (and
    # older releases do so before every start): ours go first, whatever it
    # sets. Older releases ignore a module that cannot be imported; so does
    # warm_preload for its own.
    own = forkserver.set_forkserver_preload

    def with_ours(names):
        own(["warm_preload", *[n for n in names if n != "warm_preload"]])

    if os.environ.get("DIST_TEST_WARM") == "1":
        forkserver.set_forkserver_preload = with_ours
        with_ours([])
    return run_script(console_script(command[0]), command)


def engine(command):
    if os.environ.get("DIST_TEST_WARM") == "1":
        import warm_preload  # noqa: F401  (imports $DIST_TEST_PRELOAD)

    main = console_script(command[0])
    child = 0

    def forward(signum, _frame):
        if child:
            os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                code = run_script(main, command)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        child = 0
        if code != RESTART_CODE:
            # A signal's death as a shell reports it.
            return code if code >= 0 else 128 - code
        print("warm_start: the engine was asked to restart; starting a new one", flush=True)


def loaded_in_order(targets):
    """Modules other than the project's and the standard library's that
    importing `targets` loads, in the order they were loaded."""
    before = set(sys.modules)
    for name in targets:
        try:
            importlib.import_module(name)
        except Exception as e:  # a module this project version lacks
            print(f"warm_start: cannot import {name}: {e}", file=sys.stderr)
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    return [
        name
        for name, module in list(sys.modules.items())
        if name not in before
        and not name.startswith("_")
        and name.split(".")[0] not in stdlib
        and not from_source(module)
    ]


def shortest(names):
    """In a fresh interpreter: the names whose import, in order, loads all
    of `names`, without one that would load the project."""
    keep = []
    for name in names:
        if name in sys.modules:
            continue
        before = set(sys.modules)
        try:
            importlib.import_module(name)
        except Exception:
            continue
        if any(from_source(sys.modules[n]) for n in set(sys.modules) - before):
            continue
        keep.append(name)
    return keep


def discover(targets):
    names = loaded_in_order(targets)
    # A fresh interpreter for the second pass: this one has them all.
    out = subprocess.run(
        [sys.executable, __file__, "shortest"],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=True,
    )
    print(out.stdout, end="")
    return 0


def main(argv):
    what, rest = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if what == "worker" and rest:
        return worker(rest)
    if what == "engine" and rest:
        return engine(rest)
    if what == "discover" and rest:
        return discover(rest)
    if what == "shortest" and not rest:
        print("\n".join(shortest(json.load(sys.stdin))))
        return 0
    print(
        f"usage: {argv[0]} worker -- COMMAND ARGS... | engine -- COMMAND ARGS... | discover MODULE...",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
