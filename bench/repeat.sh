#!/usr/bin/env bash
# `--repeat 5` against one plain run, one sitting (see docs/benchmarks.md,
# "Repeats"): PAIRS alternating pairs (default 2) of `cargo xtask dist-test`
# and `cargo xtask dist-test --repeat 5`, each timed whole (wall clock, the
# image already built), then the median of each side and their ratio. Each
# repeated run must have run every test 5 times (its summary.json's
# `passed` + `failed` + `errors` = 5 x the plain run's).
#
# Usage:  bash bench/repeat.sh
#         PAIRS=3 REPEAT=10 bash bench/repeat.sh
# Needs: cargo, Docker, python3 (to read summary.json).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PAIRS=${PAIRS:-2}
REPEAT=${REPEAT:-5}
die() { echo "repeat.sh: $*" >&2; exit 1; }
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive integer, not '$PAIRS'"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer, not '$REPEAT'"
OUT=target/bench/repeat-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
# The xtask built once and run directly: no cargo in the timings (and an
# edit of the crate during the sitting changes nothing here).
cargo build -q -p xtask
XTASK=$PWD/target/debug/xtask
"$XTASK" build -q >/dev/null

executions() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["passed"]+s["failed"]+s["errors"])' "$1"; }
timed() { # name args...
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    "$XTASK" dist-test "$@" >"$OUT/$name.log" 2>&1 || die "$name failed; see $OUT/$name.log"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

plain=(); repeated=()
for i in $(seq 1 "$PAIRS"); do
    p=$(timed "plain-$i"); plain+=("$p")
    n1=$(executions target/dist-test/last/summary.json)
    r=$(timed "repeat-$i" --repeat "$REPEAT"); repeated+=("$r")
    n5=$(executions target/dist-test/last/summary.json)
    [[ $n5 -eq $((n1 * REPEAT)) ]] || die "pair $i: $n5 executions, not $REPEAT x $n1"
    echo "pair $i: plain $p s ($n1 tests), --repeat $REPEAT $r s ($n5 executions)"
done
mp=$(printf '%s\n' "${plain[@]}" | median)
mr=$(printf '%s\n' "${repeated[@]}" | median)
echo "median: plain $mp s, --repeat $REPEAT $mr s, ratio $(echo "scale=2; $mr / $mp" | bc)"
