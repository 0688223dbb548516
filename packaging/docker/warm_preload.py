"""Imported by the processes that workers and engines are forked from (see
warm_start.py): imports, in order, the modules named in $DIST_TEST_PRELOAD
(comma-separated; `cargo xtask` finds them with `warm_start.py discover`).
A name that cannot be imported is left out: this only saves time, it never
decides what runs. Nothing of the project under /src may be loaded here,
and `discover` never names a module that loads it; if one did anyway, it is
said on stderr, since processes forked from here would keep that module as
it was when this ran.
"""

import importlib
import os
import sys


def _preload():
    names = [n for n in os.environ.get("DIST_TEST_PRELOAD", "").split(",") if n]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # never stop the fork server
            pass
    stale = sorted(
        name
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith("/src/")
    )
    if stale:
        print(
            f"warm_preload: the preload imported the project ({', '.join(stale[:3])}...): "
            "processes forked from here keep those modules as they are now",
            file=sys.stderr,
            flush=True,
        )


_preload()
