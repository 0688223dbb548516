#!/usr/bin/env bash
# The disk an hour of ordinary work leaves on the engine (see docs/disk.md):
# from a fresh engine, `cargo xtask dist-test` in this checkout, then in a
# second clone, then in a third clone five cycles of editing a LiberTEM .py
# file of a project copy and `cargo xtask dist-test --project` on it. After
# each step it prints `docker system df` (images + volumes + build cache)
# and what the second clone added; at the end the `<none>` images.
#
# A fresh engine means: no image, no volume, no build cache. That takes
# EVERYTHING off the Docker engine, not only what the xtask made: the script
# refuses to run unless FRESH_ENGINE=yes says you mean it.
#
# Usage:  FRESH_ENGINE=yes bash bench/disk.sh
# Needs: git, cargo, Docker. The clones go under target/bench/ and are
# removed at the end with `cargo xtask clean` run in each (logs are kept).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
die() { echo "disk.sh: $*" >&2; exit 1; }
[[ ${FRESH_ENGINE:-} == yes ]] || die "this removes every image, volume and build cache entry of the Docker engine; set FRESH_ENGINE=yes to say you mean it"

prune() {
    docker system prune --all --force --volumes >/dev/null
    docker builder prune --all --force >/dev/null 2>&1 || /usr/bin/docker builder prune --all --force >/dev/null
}
# Bytes on the engine: images + volumes + build cache, as `docker system df` counts them.
engine_bytes() {
    docker system df --format '{{.Type}}\t{{.Size}}' | awk -F'\t' '
        function bytes(s,   n, u) { n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
            return n * (u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : u == "TB" ? 1e12 : 1) }
        $1 != "Containers" { t += bytes($2) } END { printf "%.0f\n", t }'
}
show() { echo "== $1: $(awk -v b="$(engine_bytes)" 'BEGIN { printf "%.2f GB", b / 1e9 }') on the engine"; docker system df; }

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/target/bench/disk-$STAMP
mkdir -p "$OUT"
# Each clone builds its own xtask (in its own target/): the xtask knows its
# checkout by the folder it was built in, and one shared cargo target folder
# would run one clone's binary in another.
prune
show "fresh engine"

step() { # name dir args...
    local name=$1 dir=$2; shift 2
    echo "$name: cargo xtask dist-test $* (log: $OUT/$name.log)"
    (cd "$dir" && cargo xtask dist-test "$@") >"$OUT/$name.log" 2>&1 || die "$name failed; see $OUT/$name.log"
    grep -E '^result:' "$OUT/$name.log"
}

step first "$ROOT"
show "after dist-test in this checkout"
before=$(engine_bytes)
git clone --quiet "$ROOT" "$OUT/second"
step second "$OUT/second"
after=$(engine_bytes)
show "after dist-test in a second clone"
echo "the second clone added $(( (after - before) / 1000000 )) MB"

git clone --quiet "$ROOT" "$OUT/third"
project=$OUT/project
cp -r "$ROOT/target/dist-test/sdist/libertem-"*/. "$project"
for i in 1 2 3 4 5; do
    echo "x_edited_$i = $i" >>"$project/src/libertem/udf/sum.py"
    step "edit-$i" "$OUT/third" --project "$project"
done
show "after five edit cycles in a third clone"
echo "<none> images: $(docker images --filter dangling=true --quiet | wc -l)"
docker images --all

for clone in "$OUT/second" "$OUT/third"; do
    (cd "$clone" && cargo xtask clean) >>"$OUT/clean.log" 2>&1 || true
    rm -rf "$clone"
done
rm -rf "$project"
show "after clean in the clones"
