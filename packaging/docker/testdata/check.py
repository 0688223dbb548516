#!/usr/bin/env python3
"""Check generated detector files with LiberTEM's own readers.

Usage:  python3 check.py DATADIR [FORMAT...]

FORMAT is any of: mrc dm k2is frms6 mib blo empad tvips (default: all).

For each format this opens the data set the way the corresponding LiberTEM
`dist` test does (same path / parameters), with an inline executor, and
  1. checks the nav and sig shapes the dist test relies on,
  2. reads the first and the last frame (PickUDF) and compares them with the
     pattern generate.py wrote (a truncated or mis-laid-out file fails here),
  3. runs the dist test's own analysis (sum, with the test's kind of roi)
     and checks the result shape.
Prints one line per format, `ok FORMAT ...` or `FAIL FORMAT reason`, and exits
non-zero if any format failed (2 for usage errors).
"""

import glob
import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate as G  # noqa: E402  (patterns and shapes: single source of truth)


def _mrc(ctx, d):
    ds = ctx.load("mrc", path=os.path.join(d, "mrc", "20200821_92978_movie.mrc"))
    roi = np.array([True, False, False, True])  # test: random roi of size 4
    return ds, (G.MRC_FRAMES,), G.MRC_SIG, dict(roi=roi)


def _dm(ctx, d):
    files = sorted(glob.glob(os.path.join(d, "dm", "2018-7-17*.dm4")))
    if not files:
        raise AssertionError("no dm/2018-7-17*.dm4 files")
    ds = ctx.load("dm", files=files)
    roi = np.zeros(len(files), dtype=bool)  # test: random roi over the files
    roi[0] = roi[-1] = True
    return ds, (G.DM_FILES,), G.DM_SIG, dict(roi=roi)


def _k2is(ctx, d):
    ds = ctx.load("k2is", path=os.path.join(d, "Capture52", "Capture52_.gtg"))
    roi = np.zeros(G.K2_NAV, dtype=bool)
    roi[0, 5] = roi[0, 17] = True  # exactly as test_k2is_dist
    return ds, G.K2_NAV, G.K2_SIG, dict(roi=roi)


def _frms6(ctx, d):
    ds = ctx.load("frms6", path=os.path.join(d, "frms6", "C16_15_24_151203_019.hdr"))
    # test_dist_process: SumAnalysis with a disk roi given as parameters
    roi = {"shape": "disk", "cx": 5, "cy": 6, "r": 7}
    return ds, G.FRMS6_NAV, G.FRMS6_SIG, dict(analysis_roi=roi)


def _mib(ctx, d):
    ds = ctx.load("mib", path=os.path.join(d, "default.mib"), nav_shape=G.MIB_NAV)
    return ds, G.MIB_NAV, G.MIB_SIG, {}


def _blo(ctx, d):
    ds = ctx.load("blo", path=os.path.join(d, "default.blo"))
    return ds, G.BLO_NAV, (G.BLO_DP, G.BLO_DP), {}


def _empad(ctx, d):
    ds = ctx.load("empad", path=os.path.join(d, "EMPAD", "acquisition_12_pretty.xml"))
    return ds, G.EMPAD_NAV, G.EMPAD_SIG, {}


def _tvips(ctx, d):
    ds = ctx.load("tvips", path=os.path.join(d, "TVIPS", "rec_20200623_080237_000.tvips"),
                  nav_shape=(G.TVIPS_FRAMES,))
    return ds, (G.TVIPS_FRAMES,), G.TVIPS_SIG, {}


CHECKS = {
    "mrc": _mrc, "dm": _dm, "k2is": _k2is, "frms6": _frms6,
    "mib": _mib, "blo": _blo, "empad": _empad, "tvips": _tvips,
}


def check_one(ctx, fmt, datadir):
    from libertem.udf.raw import PickUDF
    from libertem.analysis.sum import SumAnalysis

    ds, nav, sig, run = CHECKS[fmt](ctx, datadir)
    got_nav = tuple(int(i) for i in ds.shape.nav)
    got_sig = tuple(int(i) for i in ds.shape.sig)
    if (got_nav, got_sig) != (tuple(nav), tuple(sig)):
        raise AssertionError(f"shape nav={got_nav} sig={got_sig}, "
                             f"expected nav={tuple(nav)} sig={tuple(sig)}")

    # first and last frame
    n = int(np.prod(nav))
    roi = np.zeros(n, dtype=bool)
    roi[[0, n - 1]] = True
    picked = ctx.run_udf(dataset=ds, udf=PickUDF(), roi=roi.reshape(nav))["intensity"].raw_data
    for k, idx in enumerate((0, n - 1)):
        frame = np.asarray(picked[k]).reshape(sig)
        want = G.expected_frame(fmt, idx)
        if not np.allclose(frame, want):
            bad = np.count_nonzero(~np.isclose(frame, want))
            raise AssertionError(f"frame {idx}: {bad} of {frame.size} pixels differ "
                                 f"from the generated pattern (truncated/corrupt file?)")

    # the dist test's analysis
    if "analysis_roi" in run:
        analysis = SumAnalysis(dataset=ds, parameters={"roi": run["analysis_roi"]})
        res = ctx.run(analysis)
    else:
        res = ctx.run(ctx.create_sum_analysis(dataset=ds), roi=run.get("roi"))
    if tuple(res[0].raw_data.shape) != tuple(sig):
        raise AssertionError(f"sum analysis result shape {res[0].raw_data.shape} != {sig}")
    return (f"shape nav={got_nav} sig={got_sig} dtype={np.dtype(ds.dtype).name}; "
            f"frames 0 and {n - 1} match")


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print("usage: check.py DATADIR [FORMAT...]  formats: " + " ".join(CHECKS),
              file=sys.stderr)
        return 2
    datadir = argv[1]
    fmts = argv[2:] or list(CHECKS)
    unknown = [f for f in fmts if f not in CHECKS]
    if unknown:
        print(f"unknown format(s): {' '.join(unknown)}; known: {' '.join(CHECKS)}",
              file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(datadir, ".complete")):
        print(f"note: {datadir}/.complete is missing (generation incomplete?)", file=sys.stderr)

    from libertem.api import Context
    failed = 0
    with Context.make_with("inline") as ctx:
        for fmt in fmts:
            try:
                msg = check_one(ctx, fmt, datadir)
                print(f"ok {fmt} {msg}", flush=True)
            except Exception as e:  # report and go on with the next format
                failed += 1
                reason = f"{type(e).__name__}: {e}".replace("\n", " ")
                if not str(e):  # bare assert inside a reader: say where
                    last = traceback.extract_tb(e.__traceback__)[-1]
                    reason += f"(at {os.path.basename(last.filename)}:{last.lineno})"
                print(f"FAIL {fmt} {reason}", flush=True)
                if os.environ.get("CHECK_TRACEBACK"):
                    traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
