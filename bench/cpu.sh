#!/usr/bin/env bash
# CPU seconds a command costs the whole machine and its containers, from the
# cgroup v1 cpuacct counters (Docker Engine 20.10 with cgroupfs, as on this
# project's CI machines): wall time, all CPU, the containers' share and the
# rest (dockerd, containerd, fuse-overlayfs, compose, the xtask).
#
# Usage:  bash bench/cpu.sh cargo xtask up -q
# Run it while nothing else uses the machine (hold the Docker lock, if any).
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: bench/cpu.sh COMMAND [ARGS...]" >&2; exit 2; }
root=/sys/fs/cgroup/cpuacct
[[ -r $root/cpuacct.usage && -r $root/docker/cpuacct.usage ]] \
    || { echo "cpu.sh: needs cgroup v1 cpuacct with Docker's cgroup at $root/docker" >&2; exit 2; }
snap() { echo "$(cat $root/cpuacct.usage) $(cat $root/docker/cpuacct.usage)"; }
a=$(snap); t0=$(date +%s.%N)
rc=0; "$@" || rc=$?
b=$(snap); t1=$(date +%s.%N)
awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "wall %.1f s, cpu %.1f s: containers %.1f s, other %.1f s\n",
        t1 - t0, (y[1] - x[1]) / 1e9, (y[2] - x[2]) / 1e9, (y[1] - x[1] - y[2] + x[2]) / 1e9
}' >&2
exit $rc
