#!/usr/bin/env bash
# What the stacks hook (packaging/docker/dist_test_stacks.py) costs each
# Python interpreter of the cluster at its start: 40 starts of `python3 -c
# pass` in one container of the project image, timed inside the container,
# with DIST_TEST_STACKS set (the hook registers) and empty (it does
# nothing), in turn, ROUNDS times; the medians and their difference per start.
# Usage: bench/stacks-hook.sh IMAGE [ROUNDS]   (IMAGE: a project image
# `cargo xtask build` made; its runtime volume is read from its label)
set -euo pipefail
image=$1 rounds=${2:-7}
runtime=$(docker image inspect --format '{{index .Config.Labels "org.libertem.dist-test.runtime-volume"}}' "$image")
starts() {
    docker run --rm --network none -v "$runtime":/venv:ro -e DIST_TEST_STACKS="$1" "$image" sh -c '
        s=$(date +%s%N); i=0
        while [ $i -lt 40 ]; do python3 -c pass; i=$((i+1)); done
        echo $(( ($(date +%s%N) - s) / 1000000 ))'
}
on=() off=()
for _ in $(seq "$rounds"); do
    on+=("$(starts /tmp/dist-test-stacks)")
    off+=("$(starts '')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_on=$(median "${on[@]}") m_off=$(median "${off[@]}")
echo "40 starts, median of $rounds: hook on ${m_on} ms, off ${m_off} ms; $(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.1f ms a start, ratio %.3f", (a-b)/40, a/b}')"
