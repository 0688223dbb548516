"""What `cargo xtask` keeps of a cluster when a test passes its deadline, or
fails: run with `docker exec` in a service's container, its report on
stdout. Every wait is bounded by the seconds given.

  stacks SECONDS  the stacks of every thread of every Python process in this
                  container that registered with dist_test_stacks.py (every
                  process of the cluster does), each under a header with its
                  pid and command line; a process that gives none within
                  SECONDS is named as silent
  dask ADDRESS SECONDS
                  the Dask cluster's state, as `Client.dump_cluster_state`
                  writes it in YAML (the scheduler's and each worker's view
                  of its tasks); when that takes longer than SECONDS (a
                  worker that does not answer), the scheduler's own view
  engines SECONDS the ipyparallel controller's view, as JSON: the engines'
                  ids and each one's queue (`Client.queue_status`)
  versions        the distributions installed, as JSON {name: version}
"""

import json
import os
import signal
import sys
import threading
import time

STACKS = os.environ.get("DIST_TEST_STACKS", "").strip()
# SIGUSR2's bit in /proc/PID/status's SigCgt (signal 12: bit 11).
CAUGHT = 1 << (signal.SIGUSR2 - 1)
SECURITY = os.path.join(os.environ.get("IPYTHONDIR", "/ipython"), "profile_default", "security")


def start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def catches_sigusr2(pid):
    """Whether the process has a handler for SIGUSR2 now: one that has not
    registered yet, or exec'ed another program since, would be killed."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & CAUGHT)
    except (OSError, ValueError):
        pass
    return False


def registered():
    """(pid, file) of each live process with a stacks file that catches
    SIGUSR2, this helper's kind aside; the files of processes that are
    gone are removed."""
    found = []
    try:
        names = sorted(os.listdir(STACKS))
    except OSError:
        return found
    for name in names:
        stem, _, ext = name.partition(".")
        pid, _, start = stem.partition("-")
        if ext != "txt" or not pid.isdigit() or int(pid) == os.getpid():
            continue
        path = os.path.join(STACKS, name)
        try:
            alive = start_time(pid) == start
        except OSError:
            alive = False
        if alive:
            # Another snapshot.py (run beside this one) is no process of the cluster's.
            if catches_sigusr2(pid) and "snapshot.py" not in command_line(pid):
                found.append((int(pid), path))
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
    return found


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def stacks(seconds):
    targets = []
    for pid, path in registered():
        before = size(path)
        try:
            os.kill(pid, signal.SIGUSR2)
        except OSError:
            continue
        targets.append((pid, path, before))
    # A process has answered once its file grew and then stayed the same
    # for a moment: faulthandler writes each stack at once, from the handler.
    deadline = time.monotonic() + seconds
    last = {pid: None for pid, _, _ in targets}
    steady = set()
    while len(steady) < len(targets) and time.monotonic() < deadline:
        time.sleep(0.1)
        for pid, path, before in targets:
            now = size(path)
            if now > before and last[pid] == now:
                steady.add(pid)
            last[pid] = now
    out = sys.stdout
    out.write(f"# {len(targets)} Python processes in {os.uname().nodename}, at {time.time():.3f}\n")
    for pid, path, before in targets:
        out.write(f"\n=== pid {pid}: {command_line(pid)}\n")
        try:
            with open(path, "rb") as f:
                f.seek(before)
                text = f.read().decode(errors="replace")
        except OSError as e:
            text = f"(cannot read {path}: {e})\n"
        out.write(text if text else f"(no stacks within {seconds:g} s)\n")
    return 0


class Deadline:
    """One deadline shared by a helper's steps."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.1, self.end - time.monotonic())


def bounded(seconds, work):
    """`work()` in a thread: its result, or the error it raised, or None
    when it did not end within `seconds`."""
    box = {}

    def run():
        try:
            box["value"] = work()
        except BaseException as e:  # reported, never raised here
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def dask(address, seconds):
    from distributed import Client

    d = Deadline(seconds)
    client = bounded(d.left(), lambda: Client(address, timeout=d.left()))
    if client is None:
        print(f"# the scheduler at {address} did not answer within {seconds:g} s")
        return 1
    base = f"/tmp/dist-test-dump-{os.getpid()}"
    path = base + ".yaml"
    try:
        # The full dump may take most of the time; the scheduler's own view
        # (no worker asked) keeps a quarter of it.
        done = bounded(d.left() * 0.75, lambda: client.dump_cluster_state(base, format="yaml") or True)
        if done and os.path.exists(path):
            with open(path) as f:
                sys.stdout.write(f.read())
            return 0
        print(f"# the full dump did not end in time (a worker did not answer): the scheduler's view")
        info = bounded(d.left() / 2, client.scheduler_info)
        processing = bounded(d.left(), client.processing)
        print(json.dumps({"scheduler_info": info, "processing": processing}, indent=1, default=str))
        return 0
    finally:
        if os.path.exists(path):
            os.unlink(path)


def engines(seconds):
    import ipyparallel

    connection = os.path.join(SECURITY, "ipcontroller-client.json")
    if not os.path.exists(connection):
        print(json.dumps({"error": f"{connection} does not exist: the controller never started"}))
        return 1
    d = Deadline(seconds)
    client = bounded(d.left(), lambda: ipyparallel.Client(connection, timeout=d.left()))
    if client is None:
        print(json.dumps({"error": f"the controller did not answer within {seconds:g} s"}))
        return 1
    status = bounded(d.left(), lambda: client.queue_status(verbose=True))
    view = {"ids": list(client.ids), "queue_status": status}
    if status is None:
        view["error"] = f"queue_status did not answer within {seconds:g} s"
    print(json.dumps(view, indent=1, default=str))
    return 0


def versions():
    from importlib.metadata import distributions

    found = {}
    for d in distributions():
        name = (d.metadata["Name"] or "").lower()
        if name:
            found.setdefault(name, d.version)
    print(json.dumps(dict(sorted(found.items())), indent=1))
    return 0


def main(argv):
    usage = f"usage: {argv[0]} stacks SECONDS | dask ADDRESS SECONDS | engines SECONDS | versions"
    try:
        if argv[1:2] == ["stacks"] and len(argv) == 3:
            if not STACKS:
                print("snapshot.py: DIST_TEST_STACKS is not set (every service of the cluster sets it)", file=sys.stderr)
                return 2
            return stacks(float(argv[2]))
        if argv[1:2] == ["dask"] and len(argv) == 4:
            return dask(argv[2], float(argv[3]))
        if argv[1:2] == ["engines"] and len(argv) == 3:
            return engines(float(argv[2]))
        if argv[1:] == ["versions"]:
            return versions()
    except ValueError:
        pass
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv)
    sys.stdout.flush()
    # Threads left waiting on a silent service must not keep this alive.
    os._exit(code)
