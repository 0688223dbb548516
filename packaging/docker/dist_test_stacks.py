"""Where each Python process of the dist-test cluster is, when asked.

Imported at every interpreter's start by dist-test-stacks.pth, which the
image puts in /opt/dist-test/project-site (a site folder of the runtime:
its .pth files run). When $DIST_TEST_STACKS names a folder (every service of
the cluster sets it), the process registers faulthandler on SIGNAL, writing
the stacks of all its threads to a file of its own there,
`<pid>-<start time>.txt`; a process forked from it gets a file of its own.
faulthandler writes from the signal handler itself, without the GIL, so a
process stuck in C code (a lock, a socket) still answers.

`snapshot.py stacks` (what `cargo xtask` runs in each container when a test
passes its deadline) signals every process that has such a file and a
handler for the signal now, and only those: the start time in the name
tells a live process from one whose pid was reused, and the handler check
one that has exec'ed another program since (SIGUSR2 would end it). Nothing here may break an interpreter's start: any error leaves
the process as it would be without it.
"""

import os

SIGNAL_NAME = "SIGUSR2"
_state = {}


def start_time(pid="self"):
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat.rsplit(")", 1)[1].split()[19]


def _register(folder):
    import faulthandler
    import signal

    # The file gets its name once the handler is in place: snapshot.py
    # signals no process before (it also checks the handler is there).
    path = os.path.join(folder, f"{os.getpid()}-{start_time()}.txt")
    f = open(path + ".new", "w")
    faulthandler.register(getattr(signal, SIGNAL_NAME), file=f, all_threads=True, chain=False)
    os.rename(path + ".new", path)
    old = _state.get("file")
    _state.update(file=f, path=path, pid=os.getpid())
    if old is not None:
        old.close()


def _forget():
    """At a normal exit: the file goes with the process."""
    if _state.get("pid") == os.getpid():
        try:
            os.unlink(_state["path"])
        except OSError:
            pass


def install():
    folder = os.environ.get("DIST_TEST_STACKS", "").strip()
    if not folder or _state:
        return
    try:
        import atexit

        os.makedirs(folder, exist_ok=True)
        _register(folder)
        os.register_at_fork(after_in_child=lambda: _safe(_register, folder))
        atexit.register(_forget)
    except Exception:
        pass


def _safe(f, *args):
    try:
        f(*args)
    except Exception:
        pass


install()
