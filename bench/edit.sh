#!/usr/bin/env bash
# The edit loop on a kept cluster against the plain flow's cycle, one sitting:
# each cycle starts with the same one-line edit of a LiberTEM module, then
# (A) the plain compose flow, (B) `cargo xtask test` on the kept cluster
# (edit to result). Both without detector data by default (8 dist tests).
# See bench/cycle.sh (MODE=edit) for what each side does, and
# docs/benchmarks.md, "The edit loop", for a sitting's results.
#
# Usage:  bash bench/edit.sh             # 3 pairs, no detector data
#         PAIRS=5 DATA=generated bash bench/edit.sh
exec env MODE=edit DATA="${DATA:-none}" bash "$(dirname "${BASH_SOURCE[0]}")/cycle.sh" "$@"
