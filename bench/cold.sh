#!/usr/bin/env bash
# The cold build, as a new user meets it (see docs/benchmarks.md, "A cold
# build"): RUNS times (default 3), from a fresh state each time, a fresh
# clone of this repository's HEAD and its first `cargo xtask dist-test`;
# then one more `dist-test` in the last clone (the warm rebuild). Prints the
# build phase of each run (from its summary.json), their median, and the
# warm one's.
#
# A fresh state means: no image, no volume, no build cache on the engine,
# nothing under the clone's target/ (so no debootstrap, uv or sdist fetched
# before). That takes EVERYTHING off the Docker engine, not only what the
# xtask made: the script refuses to run unless FRESH_ENGINE=yes says you
# mean it. Run it on a machine (or engine) of its own.
#
# Usage:  FRESH_ENGINE=yes bash bench/cold.sh
#         FRESH_ENGINE=yes RUNS=5 bash bench/cold.sh
# Needs: git, cargo, Docker. The clones go under target/bench/ and are
# removed at the end (their logs are kept there).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
die() { echo "cold.sh: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ ${FRESH_ENGINE:-} == yes ]] || die "this removes every image, volume and build cache entry of the Docker engine; set FRESH_ENGINE=yes to say you mean it"

# Debian's docker client builds with BuildKit where a newer one lacks buildx;
# either prunes the build cache.
prune() {
    docker system prune --all --force --volumes >/dev/null
    docker builder prune --all --force >/dev/null 2>&1 || /usr/bin/docker builder prune --all --force >/dev/null
}

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/target/bench/cold-$STAMP
mkdir -p "$OUT"
# One cargo target folder for the clones' xtask builds (not timed: the build
# phase is the xtask's own, read from summary.json). The xtask's state lives
# under each clone's own target/, which stays fresh.
export CARGO_TARGET_DIR=$OUT/cargo-target
build_s() { tr -d '\n ' <"$1/summary.json" | sed -nE 's/.*"build_s":([0-9.]+).*/\1/p'; }
passed() { tr -d '\n ' <"$1/summary.json" | sed -nE 's/.*"passed":([0-9]+).*/\1/p'; }
run_dir_of() { sed -n 's/^results and logs: //p' "$1" | tail -n 1; }

results=()
for i in $(seq 1 "$RUNS"); do
    clone=$OUT/clone
    rm -rf "$clone"
    git clone --quiet "$ROOT" "$clone"
    prune
    echo "run $i: fresh engine, fresh clone; cargo xtask dist-test (log: $OUT/run-$i.log)"
    (cd "$clone" && cargo xtask dist-test) >"$OUT/run-$i.log" 2>&1 || die "run $i failed; see $OUT/run-$i.log"
    dir=$(run_dir_of "$OUT/run-$i.log")
    b=$(build_s "$dir"); p=$(passed "$dir")
    cp -r "$dir" "$OUT/run-$i"
    echo "run $i: build phase $b s, $p passed"
    results+=("$b")
done
echo "warm: cargo xtask dist-test again in the last clone"
(cd "$clone" && cargo xtask dist-test) >"$OUT/warm.log" 2>&1 || die "the warm run failed; see $OUT/warm.log"
warm=$(build_s "$(run_dir_of "$OUT/warm.log")")
rm -rf "$clone"
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
echo "cold build phase: ${results[*]} s; median $median s (of $RUNS)"
echo "warm build phase: $warm s"
