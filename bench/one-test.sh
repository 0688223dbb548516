#!/usr/bin/env bash
# One test after an edit, on a kept cluster: how long from saving a change
# of a module the workers run to seeing its (failing) result. The edit makes
# SumUDF.process_tile raise; the test is
# tests/io/datasets/test_raw.py::test_sum_on_dist, which runs SumUDF on
# both Dask workers. Each round: the edit, then `cargo xtask test -- TEST`
# timed (it must fail, naming the edit's exception); then, untimed, the
# edit undone and the test run again (it must pass), and a quiet machine.
# See docs/benchmarks.md, "One test after an edit".
#
# Usage:  bash bench/one-test.sh          # 3 rounds
#         ROUNDS=5 bash bench/one-test.sh
# Works on a copy of the pinned release (target/bench/edit-project, made as
# bench/edit.sh makes it), on a kept cluster it brings up and takes down
# (also on failure or Ctrl-C), without detector data. Publishes no port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "one-test.sh: ROUNDS must be a positive integer" >&2; exit 2; }
die() { echo "one-test.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
TEST=tests/io/datasets/test_raw.py::test_sum_on_dist
LOGS=$PWD/target/bench/one-test-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$LOGS"
PROJECT=$PWD/target/bench/edit-project
MODULE=$PROJECT/src/libertem/udf/sum.py
MARK="raise RuntimeError('bench edit')"

cargo xtask build -q >"$LOGS/sdist.log" 2>&1 || die "'cargo xtask build' failed; see $LOGS/sdist.log"
if [[ ! -f $MODULE ]]; then
    sdist=$(find target/dist-test/sdist -mindepth 1 -maxdepth 1 -type d -name 'libertem-*' | head -n 1)
    [[ -d $sdist ]] || die "no unpacked sdist under target/dist-test/sdist"
    mkdir -p "$(dirname "$PROJECT")"
    cp -r "$sdist" "$PROJECT"
    rm -f "$PROJECT/.dist-test-release.json" "$PROJECT/.dist-test-sha256"
fi
ORIGINAL=$LOGS/sum.py.orig
cp -p "$MODULE" "$ORIGINAL"
UP=""
cleanup() {
    local rc=$?
    cp -p "$ORIGINAL" "$MODULE"
    [[ -n $UP ]] && { cargo xtask down >/dev/null 2>&1 || true; }
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The edit: the first statement of process_tile raises.
edit() {
    python3 - "$MODULE" "$MARK" <<'EOF'
import sys
path, mark = sys.argv[1], sys.argv[2]
text = open(path).read()
head = "    def process_tile(self, tile):\n        ''\n"
assert head in text, "SumUDF.process_tile is not where the edit expects it"
open(path, "w").write(text.replace(head, head + "        " + mark + "\n", 1))
EOF
}
# settle: wait, untimed, until the machine is quiet (bench/settle.sh).
source bench/settle.sh  # (run from the repository root: see the cd above)

UP=yes
cargo xtask up --no-testdata --project "$PROJECT" >"$LOGS/up.log" 2>&1 || die "up failed; see $LOGS/up.log"
cargo xtask test -- "$TEST" >"$LOGS/before.log" 2>&1 || die "the test failed before any edit; see $LOGS/before.log"
times=()
for ((r = 1; r <= ROUNDS; r++)); do
    settle
    t0=$(now)
    edit
    rc=0
    cargo xtask test -- "$TEST" >"$LOGS/edited-$r.log" 2>&1 || rc=$?
    t1=$(now)
    [[ $rc -ne 0 ]] || die "round $r: the edited test passed; see $LOGS/edited-$r.log"
    grep -q "RuntimeError: bench edit" "$LOGS/edited-$r.log" \
        || die "round $r: the failure does not name the edit; see $LOGS/edited-$r.log"
    grep -q " changed: replaced " "$LOGS/edited-$r.log" || die "round $r: nothing restarted; see $LOGS/edited-$r.log"
    times+=("$(secs "$t0" "$t1")")
    echo "round $r: edit to failure $(secs "$t0" "$t1") s ($(grep -o ' changed: replaced [^(]*' "$LOGS/edited-$r.log" | head -n 1))"
    cp -p "$ORIGINAL" "$MODULE"
    touch "$MODULE"
    cargo xtask test -- "$TEST" >"$LOGS/undone-$r.log" 2>&1 || die "round $r: the test failed after the edit was undone; see $LOGS/undone-$r.log"
done
median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "edit to failure: median $median s of ${times[*]}; logs: $LOGS"
