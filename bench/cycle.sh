#!/usr/bin/env bash
# A warm cycle of LiberTEM's distributed tests, two ways, measured in one
# sitting (see docs/benchmarks.md, "A warm cycle"):
#
#   (A) BASELINE=seed (the default): the seed's flow, LiberTEM's documented
#       way without this project, repaired only as far as this engine needs
#       (bench/seed.sh: its own image built with the source copied in,
#       compose up, `sleep 5`, the tests container, down -v). What the
#       goals in docs/benchmarks.md are measured against.
#   (A) BASELINE=plain: the plain compose flow: what a LiberTEM developer does by hand after
#       LiberTEM's old instructions, repaired only as far as this cluster
#       needs it: build, `compose up -d` with the LT_* variables set by hand,
#       a fixed `sleep 5` instead of a readiness check, the tests container
#       with `pytest tests/ -m dist` (plus the harness plugin, without which
#       one ipyparallel test races), `compose down -v`. No numba cache is
#       kept: every run gets a fresh, empty volume.
#   (B) `cargo xtask dist-test`, whose phases and counts come from its
#       summary.json.
#
# Runs alternate A, B, A, B, ... (PAIRS pairs, default 3), after one
# `cargo xtask dist-test` as warm-up (builds the image, generates the test
# data, fills the numba cache, writes the size file). Both sides run against
# the same image, the same generated test data and the same cluster size.
# Before each run, outside its timing, the script waits until the machine is
# quiet (settle, bench/settle.sh), so that no run pays for the one before it.
#
# MODE=edit (bench/edit.sh) measures the edit loop instead: both sides work
# on a copy of the pinned release (target/bench/edit-project) and start
# their cycle with the same one-line edit of a LiberTEM module that the
# workers import (src/libertem/udf/sum.py, SumUDF's module, a comment appended): (A)
# then runs the plain flow as above; (B) runs `cargo xtask test` on the kept
# cluster, which `cargo xtask up` started and one `cargo xtask test` ran the
# tests on before the timing (and `down` removes after it, so that (A)
# never runs beside it). (B)'s time is edit
# to result: the restart of the workers and engines the edit needs, and the
# default selection's tests.
#
# DATA=none runs both sides without detector data (`--no-testdata`, an
# empty folder at /data): the 8 dist tests that make their own data run,
# the 9 that read detector files skip.
#
# Usage:  bash bench/cycle.sh            # 3 pairs
#         PAIRS=5 bash bench/cycle.sh
#         DATA=none bash bench/cycle.sh
#         MODE=edit DATA=none bash bench/cycle.sh   (what bench/edit.sh runs)
# On a Docker engine shared with other work, hold whatever lock that work
# uses for the whole run, e.g. `flock /tmp/docker.lock bash bench/cycle.sh`.
#
# Needs: the repo (cargo), Docker, and the compose plugin or docker-compose.
# Publishes no host port. Leaves nothing on the engine (the plain project and
# its throwaway volume are removed on exit, also on failure or Ctrl-C);
# each run's full output is kept under target/bench/.
# Exits non-zero with one line when a run fails or the two sides' passed
# counts differ.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PAIRS=${PAIRS:-3}
MODE=${MODE:-cycle}
DATA=${DATA:-generated}
BASELINE=${BASELINE:-seed}
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || { echo "cycle.sh: PAIRS must be a positive integer, not '$PAIRS'" >&2; exit 2; }

die() { echo "cycle.sh: $*" >&2; exit 1; }
[[ $MODE == cycle || $MODE == edit ]] || die "MODE must be cycle or edit, not '$MODE'"
[[ $DATA == generated || $DATA == none ]] || die "DATA must be generated or none, not '$DATA'"
[[ $BASELINE == seed || $BASELINE == plain ]] || die "BASELINE must be seed or plain, not '$BASELINE'"
now() { date +%s.%N; }
# seconds between two `now` stamps, two decimals
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
load1() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?"; }

# Both sides use the generated test data set (the one `cargo xtask testdata`
# makes), whatever the caller's environment says.
unset TESTDATA_BASE_PATH

# --- compose flavour, detected as the xtask does: the plugin first --------
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
else
    die "neither 'docker compose' nor 'docker-compose' works here"
fi

if [[ $MODE == edit ]]; then B_NAME="edit + cargo xtask test (kept cluster)"; else B_NAME="cargo xtask dist-test"; fi
STAMP=$(date -u +%Y%m%d-%H%M%S)
LOGS=$ROOT/target/bench/cycle-$STAMP
mkdir -p "$LOGS"

# --- the plain project's names, and cleanup --------------------------------
PLAIN_PROJECT=bench-plain-$$
PLAIN_UP=""        # set while the plain project may have anything on the engine
NUMBA_VOL=""       # the current throwaway numba volume, while it exists
KEPT_UP=""         # set while MODE=edit's kept cluster may be up
VENV_VOL=""        # the xtask's runtime volume, which the plain flow mounts too
RESULTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-plain-results.XXXXXX")
chmod 777 "$RESULTS_DIR"   # the tests container runs as uid 1000

cleanup() {
    local rc=$?
    if [[ -n $PLAIN_UP ]]; then
        plain_compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    fi
    if [[ -n $NUMBA_VOL ]]; then
        docker volume rm --force "$NUMBA_VOL" >/dev/null 2>&1 || true
    fi
    if [[ -n $KEPT_UP ]]; then
        cargo xtask down >/dev/null 2>&1 || true
    fi
    if [[ -n ${SEED_BUILT:-} ]]; then
        docker image rm dist-seed:bench >/dev/null 2>&1 || true
    fi
    rm -rf "$RESULTS_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- what both sides run ------------------------------------------------------
XT_ARGS=()                      # for dist-test and up
BUILD_ARGS=()                   # for build
[[ $DATA == none ]] && XT_ARGS+=(--no-testdata)
EDIT_PROJECT=$ROOT/target/bench/edit-project
if [[ $MODE == edit ]]; then
    # A copy of the pinned release, made from the sdist a build unpacks.
    cargo xtask build -q >"$LOGS/sdist.log" 2>&1 || die "'cargo xtask build' failed; see $LOGS/sdist.log"
    sdist=$(find "$ROOT/target/dist-test/sdist" -mindepth 1 -maxdepth 1 -type d -name 'libertem-*' | head -n 1)
    [[ -d $sdist ]] || die "no unpacked sdist under target/dist-test/sdist after a build"
    rm -rf "$EDIT_PROJECT"
    mkdir -p "$(dirname "$EDIT_PROJECT")"
    cp -r "$sdist" "$EDIT_PROJECT"
    rm -f "$EDIT_PROJECT/.dist-test-release.json" "$EDIT_PROJECT/.dist-test-sha256"
    XT_ARGS+=(--project "$EDIT_PROJECT")
    BUILD_ARGS+=(--project "$EDIT_PROJECT")
fi
# The edit that starts each cycle in MODE=edit: one line appended to a module
# every worker and engine imports.
EDITED=$EDIT_PROJECT/src/libertem/udf/sum.py
edit_source() { [[ $MODE == edit ]] && echo "# bench edit $1" >>"$EDITED"; return 0; }

# --- warm-up: image, test data, numba cache, size file ---------------------
echo "warm-up: cargo xtask dist-test ${XT_ARGS[*]} (log: $LOGS/warmup.log)"
cargo xtask dist-test "${XT_ARGS[@]}" >"$LOGS/warmup.log" 2>&1 \
    || die "warm-up 'cargo xtask dist-test' failed; see $LOGS/warmup.log"

# The run folder a dist-test printed ("results and logs: DIR").
run_dir_of() { sed -n 's/^results and logs: //p' "$1" | tail -n 1; }
# A top-level key of the xtask's pretty-printed summary.json (two-space indent).
json_top() { sed -n "s/^  \"$2\": \\(.*\\),\$/\\1/p; s/^  \"$2\": \\([^,]*\\)\$/\\1/p" "$1" | head -n 1 | tr -d '"'; }
# Every phase of summary.json as "name seconds" lines (phases is a flat object).
json_phases() {
    { tr -d '\n' <"$1"; echo; } | sed -nE 's/.*"phases": *\{([^}]*)\}.*/\1/p' | tr ',' '\n' \
        | sed -nE 's/^ *"([a-z_]+)_s": *([0-9.]+) *$/\1 \2/p'
}

WARM_DIR=$(run_dir_of "$LOGS/warmup.log")
[[ -f $WARM_DIR/summary.json ]] || die "no summary.json after the warm-up"
# The image the warm-up ran, as its summary.json names it.
IMAGE=$(json_top "$WARM_DIR/summary.json" image)
[[ -n $IMAGE ]] || die "no image in the warm-up's summary.json"
# The project's source, which the image's editable install expects at /src.
SOURCE_DIR=$(json_top "$WARM_DIR/summary.json" project)
[[ -d $SOURCE_DIR ]] || die "no project folder '$SOURCE_DIR' in the warm-up's summary.json"

# The generated data set, as `cargo xtask testdata` reports it; or, with
# DATA=none, an empty folder (what `--no-testdata` mounts).
if [[ $DATA == generated ]]; then
    cargo xtask testdata >"$LOGS/testdata.log" 2>&1 || die "'cargo xtask testdata' failed; see $LOGS/testdata.log"
    DATA_DIR=$(sed -n 's/^test data: .* in //p' "$LOGS/testdata.log" | tail -n 1)
    [[ -d $DATA_DIR ]] || die "no test data folder in $LOGS/testdata.log"
else
    DATA_DIR=$LOGS/no-data
    mkdir -p "$DATA_DIR"
fi
# LiberTEM before 0.16 writes to /data/temp_data; as the xtask does, the temp
# volume goes over it when the data folder has it, else to a path nothing reads.
if [[ -d $DATA_DIR/temp_data ]]; then LEGACY_TEMP=/data/temp_data; else LEGACY_TEMP=/opt/dist-test/unused-temp; fi

# The cluster's size, from dist-test.toml [cluster].
cluster_key() { awk -v k="$1" '/^\[/ { s = $0 } s == "[cluster]" && $1 == k { print $3 }' dist-test.toml; }
WORKERS=$(cluster_key workers); ENGINES=$(cluster_key engines); WORKER_CPUS=$(cluster_key worker_cpus)
# The compose files, as Spec::new lists them: the committed file and the size
# file that the xtask generated for this size (the warm-up wrote it).
SIZE_FILE=$ROOT/target/dist-test/size-${WORKERS}x${ENGINES}.yml
[[ -f $SIZE_FILE ]] || die "no size file $SIZE_FILE after the warm-up"

# The plain flow's compose, with every variable the compose files read set by hand.
plain_compose() {
    env LT_IMAGE="$IMAGE" LT_SOURCE_DIR="$SOURCE_DIR" LT_DATA_DIR="$DATA_DIR" LT_RESULTS_DIR="$RESULTS_DIR" \
        LT_CHECKOUT="$PLAIN_PROJECT" LT_WORKER_CPUS="$WORKER_CPUS" LT_ENGINES="$ENGINES" \
        LT_LEGACY_TEMP="$LEGACY_TEMP" LT_NUMBA_VOLUME="${NUMBA_VOL:-none}" LT_VENV_VOLUME="${VENV_VOL:-none}" \
        "${COMPOSE[@]}" --file packaging/docker/docker-compose.yml --file "$SIZE_FILE" \
        --project-name "$PLAIN_PROJECT" "$@"
}

# The compose files mount the Python runtime (/venv) from a volume that the
# xtask made (runtime.rs); the image's label names it. The plain flow mounts
# the same one, read-only as always, and leaves it alone.
VENV_VOL=$(docker image inspect --format '{{index .Config.Labels "org.libertem.dist-test.runtime-volume"}}' "$IMAGE") \
    || die "cannot inspect the image $IMAGE"
[[ -n $VENV_VOL ]] || die "the image $IMAGE names no runtime volume"

echo "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?')); image $IMAGE"
echo "data: $DATA_DIR; cluster ${WORKERS} workers x ${WORKER_CPUS} cpus, ${ENGINES} engines; logs: $LOGS"

# The seed's warm-up: its image once, so that its dependency layer is cached
# as a developer's is after the first build (outside the timing).
if [[ $BASELINE == seed ]]; then
    SEED_BUILT=yes
    echo "warm-up: bench/seed.sh (log: $LOGS/seed-warmup.log)"
    bash bench/seed.sh "$SOURCE_DIR" "$DATA_DIR" >"$LOGS/seed-warmup.log" 2>&1 \
        || die "warm-up of the seed's flow failed; see $LOGS/seed-warmup.log"
fi

# --- one run of each side ---------------------------------------------------
# Results go to one line per run in $LOGS/runs.tsv:
#   A: side pair wall build up sleep tests down pytest passed skipped failed errors load compiled
#   B: side pair wall pytest passed skipped failed errors load compiled after_ready phase=secs...
RUNS=$LOGS/runs.tsv
: >"$RUNS"

# "yes" when cargo had to compile the xtask during the run (a source edit by
# someone else in the checkout), which then counts in that run's time.
compiled() { if grep -q '^ *Compiling ' "$1"; then echo yes; else echo no; fi; }

# settle: wait, untimed, until the machine is quiet (bench/settle.sh).
source bench/settle.sh  # (run from the repository root: see the cd above)

# pytest's last line of LOG ("=== 17 passed, 10 skipped, 950 deselected in
# 61.20s (0:01:01) ===") into the caller's line, passed, failed, errors,
# skipped and pytest_s; fails when the log has none.
pytest_counts() {
    line=$(grep -E '^=+ .* in [0-9.]+s' "$1" | tail -n 1 || true)
    [[ -n $line ]] || return 1
    count() { sed -nE "s/.*[ =]([0-9]+) $1.*/\\1/p" <<<"$line" | head -n 1; }
    passed=$(count passed); failed=$(count failed); errors=$(count error)
    skipped=$(count skipped); pytest_s=$(sed -nE 's/.* in ([0-9.]+)s.*/\1/p' <<<"$line")
}

# (A) as the seed's flow: bench/seed.sh prints its phases, then pytest's line.
run_seed() {
    local pair=$1 log=$LOGS/seed-$1.log rc=0 line
    settle
    local load; load=$(load1)
    local t0; t0=$(now)
    edit_source "A$pair"
    bash bench/seed.sh "$SOURCE_DIR" "$DATA_DIR" >"$log" 2>&1 || rc=$?
    local t1; t1=$(now)
    [[ $rc -eq 0 ]] || die "seed run $pair failed (exit $rc); see $log"
    ph() { sed -nE "s/^$1 ([0-9.]+).*/\\1/p" "$log" | head -n 1; }
    local passed failed errors skipped pytest_s
    pytest_counts "$log" || die "seed run $pair: no pytest summary line; see $log"
    printf 'A\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pair" "$(secs "$t0" "$t1")" \
        "$(ph build_s)" "$(ph up_s)" "$(ph sleep_s)" "$(ph tests_s)" "$(ph down_s)" "$pytest_s" \
        "${passed:-0}" "${skipped:-0}" "${failed:-0}" "${errors:-0}" "$load" no >>"$RUNS"
    [[ ${failed:-0} -eq 0 && ${errors:-0} -eq 0 ]] || die "seed run $pair failed: $line; see $log"
    echo "A$pair seed's flow: $(secs "$t0" "$t1") s, $line"
}

run_plain() {
    [[ $BASELINE == seed ]] && { run_seed "$@"; return; }
    local pair=$1 log=$LOGS/plain-$1.log t0 t1 t2 t3 t4 t5 rc line
    settle
    local load; load=$(load1)
    # The throwaway numba cache, outside the timing (the plain flow has no
    # cache at all; the committed compose file only wants a volume to mount).
    NUMBA_VOL=$PLAIN_PROJECT-numba-$pair
    docker volume create "$NUMBA_VOL" >/dev/null
    PLAIN_UP=yes
    t0=$(now)
    edit_source "A$pair"
    cargo xtask build -q "${BUILD_ARGS[@]}" >"$log" 2>&1 || die "plain run $pair: build failed; see $log"
    t1=$(now)
    plain_compose up -d >>"$log" 2>&1 || die "plain run $pair: compose up failed; see $log"
    t2=$(now)
    sleep 5
    t3=$(now)
    rc=0
    plain_compose run --rm -T tests pytest tests/ -m dist -p no:cacheprovider -p dist_test_harness \
        >>"$log" 2>&1 || rc=$?
    t4=$(now)
    plain_compose down --volumes >>"$log" 2>&1 || die "plain run $pair: compose down failed; see $log"
    t5=$(now)
    PLAIN_UP=""
    docker volume rm "$NUMBA_VOL" >/dev/null
    NUMBA_VOL=""
    local passed failed errors skipped pytest_s
    pytest_counts "$log" || die "plain run $pair: no pytest summary line (exit $rc); see $log"
    printf 'A\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pair" "$(secs "$t0" "$t5")" \
        "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$(secs "$t3" "$t4")" \
        "$(secs "$t4" "$t5")" "$pytest_s" "${passed:-0}" "${skipped:-0}" "${failed:-0}" "${errors:-0}" \
        "$load" "$(compiled "$log")" >>"$RUNS"
    [[ $rc -eq 0 && ${failed:-0} -eq 0 && ${errors:-0} -eq 0 ]] \
        || die "plain run $pair failed: $line (exit $rc); see $log"
    echo "A$pair plain compose: $(secs "$t0" "$t5") s, $line"
}

run_xtask() {
    local pair=$1 log=$LOGS/xtask-$1.log t0 t1 rc dir s
    settle
    local load; load=$(load1)
    rc=0
    if [[ $MODE == edit ]]; then
        # The kept cluster, up before the timing (and settled), down after.
        KEPT_UP=yes
        cargo xtask up "${XT_ARGS[@]}" >"$LOGS/up-$pair.log" 2>&1 || die "xtask run $pair: up failed; see $LOGS/up-$pair.log"
        # The loop as a developer is in it: the cluster has run the tests
        # before the edit (its numba cache is filled for this source).
        cargo xtask test >"$LOGS/before-edit-$pair.log" 2>&1 || die "xtask run $pair: the test before the edit failed; see $LOGS/before-edit-$pair.log"
        settle
        t0=$(now)
        edit_source "B$pair"
        cargo xtask test >"$log" 2>&1 || rc=$?
        t1=$(now)
        cargo xtask down >"$LOGS/down-$pair.log" 2>&1 || die "xtask run $pair: down failed; see $LOGS/down-$pair.log"
        KEPT_UP=""
        grep -q " changed: replaced " "$log" || die "xtask run $pair: the edit restarted nothing; see $log"
    else
        t0=$(now)
        cargo xtask dist-test "${XT_ARGS[@]}" >"$log" 2>&1 || rc=$?
        t1=$(now)
    fi
    dir=$(run_dir_of "$log")
    s=$dir/summary.json
    [[ -f $s ]] || die "xtask run $pair: no summary.json (exit $rc); see $log"
    local passed failed errors skipped pytest_s
    passed=$(json_top "$s" passed); failed=$(json_top "$s" failed); errors=$(json_top "$s" errors)
    skipped=$(json_top "$s" skipped); pytest_s=$(json_top "$s" pytest_s)
    # pytest's own time on the ready cluster (summary.json's pytest.after_ready_s).
    local after; after=$(sed -nE 's/^ *"after_ready_s": *([0-9.]+).*/\1/p' "$s" | head -n 1)
    printf 'B\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$pair" "$(secs "$t0" "$t1")" "$pytest_s" \
        "$passed" "$skipped" "$failed" "$errors" "$load" "$(compiled "$log")" "${after:--}" >>"$RUNS"
    json_phases "$s" | while read -r name v; do printf '\t%s=%s' "$name" "$v"; done >>"$RUNS"
    echo >>"$RUNS"
    [[ $rc -eq 0 && $failed -eq 0 && $errors -eq 0 ]] \
        || die "xtask run $pair failed: $passed passed, $failed failed, $errors errors (exit $rc); see $log"
    echo "B$pair $B_NAME: $(secs "$t0" "$t1") s, $passed passed, $skipped skipped, pytest_s $pytest_s"
}

for ((p = 1; p <= PAIRS; p++)); do
    run_plain "$p"
    run_xtask "$p"
    a=$(awk -F'\t' -v p="$p" '$1 == "A" && $2 == p { print $10 }' "$RUNS")
    b=$(awk -F'\t' -v p="$p" '$1 == "B" && $2 == p { print $5 }' "$RUNS")
    [[ $a == "$b" ]] || die "pair $p: (A) passed $a tests, $B_NAME $b"
done

# --- the table ----------------------------------------------------------------
# median of the numbers on stdin (a "-", a value a run did not have, is left out)
median() { grep -E '^-?[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m }'; }
col() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s { print $c }' "$RUNS"; }
phase() { awk -F'\t' -v k="$1" '$1 == "B" { for (i = 12; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == k) print kv[2] } }' "$RUNS"; }
phase_of() { awk -F'\t' -v p="$1" -v k="$2" '$1 == "B" && $2 == p { for (i = 12; i <= NF; i++) {
    split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$RUNS"; }
PHASES=$(awk -F'\t' '$1 == "B" { for (i = 12; i <= NF; i++) { split($i, kv, "="); if (!(kv[1] in seen)) {
    seen[kv[1]] = 1; printf "%s ", kv[1] } } }' "$RUNS")
sub2() { if [[ $1 == - || $2 == - ]]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; fi; }

echo
if [[ $BASELINE == seed ]]; then A_NAME="the seed's flow"; else A_NAME="plain compose"; fi
echo "## (A) $A_NAME, seconds"
echo
echo "| run | build | up -d | sleep | run tests | down -v | wall | pytest's own | outside pytest | passed | skipped | load (1 min) at start | xtask compiled |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
awk -F'\t' '$1 == "A" { printf "| A%s | %s | %s | %s | %s | %s | **%s** | %s | %.2f | %s | %s | %s | %s |\n",
    $2, $4, $5, $6, $7, $8, $3, $9, $3 - $9, $10, $11, $14, $15 }' "$RUNS"
printf '| median | %s | %s | %s | %s | %s | **%s** | %s | %s | | | | |\n' \
    "$(col A 4 | median)" "$(col A 5 | median)" "$(col A 6 | median)" "$(col A 7 | median)" \
    "$(col A 8 | median)" "$(col A 3 | median)" "$(col A 9 | median)" \
    "$(awk -F'\t' '$1 == "A" { print $3 - $9 }' "$RUNS" | median)"

echo
echo "## (B) $B_NAME, seconds (phases from summary.json)"
echo
hdr="| run |"; sep="| --- |"
for ph in $PHASES; do hdr+=" $ph |"; sep+=" ---: |"; done
echo "$hdr not in a phase | wall | pytest_s | outside pytest | pytest on the ready cluster | outside that | passed | skipped | load (1 min) at start | xtask compiled |"
echo "$sep ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for ((p = 1; p <= PAIRS; p++)); do
    row="| B$p |"; sum=0
    for ph in $PHASES; do v=$(phase_of "$p" "$ph"); row+=" ${v:--} |"; sum=$(awk -v s="$sum" -v v="${v:-0}" 'BEGIN { print s + v }'); done
    read -r wall pyt passed skipped load comp after < <(awk -F'\t' -v p="$p" '$1 == "B" && $2 == p { print $3, $4, $5, $6, $9, $10, $11 }' "$RUNS")
    echo "$row $(sub2 "$wall" "$sum") | **$wall** | $pyt | $(sub2 "$wall" "$pyt") | $after | $(sub2 "$wall" "$after") | $passed | $skipped | $load | $comp |"
done
row="| median |"
for ph in $PHASES; do row+=" $(phase "$ph" | median) |"; done
rest=$(awk -F'\t' '$1 == "B" { s = 0; for (i = 12; i <= NF; i++) { split($i, kv, "="); s += kv[2] }; print $3 - s }' "$RUNS" | median)
echo "$row $rest | **$(col B 3 | median)** | $(col B 4 | median) | $(awk -F'\t' '$1 == "B" { print $3 - $4 }' "$RUNS" | median) | $(col B 11 | median) | $(awk -F'\t' '$1 == "B" && $11 != "-" { print $3 - $11 }' "$RUNS" | median) | | | | |"

MA=$(col A 3 | median); MB=$(col B 3 | median)
echo
echo "median wall: (A) $A_NAME $MA s, (B) $B_NAME $MB s;" \
    "ratio median(B)/median(A) = $(awk -v a="$MA" -v b="$MB" 'BEGIN { printf "%.2f", b / a }')"
echo "median outside pytest: (A) $(awk -F'\t' '$1 == "A" { print $3 - $9 }' "$RUNS" | median) s," \
    "(B) $(awk -F'\t' '$1 == "B" { print $3 - $4 }' "$RUNS" | median) s;" \
    "median pytest: (A) $(col A 9 | median) s, (B) $(col B 4 | median) s" \
    "($(col B 11 | median) s of it on the ready cluster, $(awk -F'\t' '$1 == "B" && $11 != "-" { print $3 - $11 }' "$RUNS" | median) s of the cycle outside that)"
echo "passed: equal in every pair ($(col B 5 | sort -u | paste -sd' ')); runs and logs: $LOGS"
