# Sourced by the bench scripts. settle: wait, outside the timing, until the
# machine is quiet: under a quarter of one core busy over one second, at
# most 60 s. What a run leaves behind (container and volume removal,
# write-back, the engine's own clean-up) would otherwise land in the next
# run's time, whichever side that is.
settle() {
    local start=$SECONDS a b
    stat_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }
    while ((SECONDS - start < 60)); do
        a=$(stat_cpu); sleep 1; b=$(stat_cpu)
        awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ")
            busy = y[1] - x[1]; all = busy + y[2] - x[2]
            exit !(all > 0 && busy / all * n < 0.25) }' && return 0
    done
    echo "settle: the machine stayed busy for 60 s; measuring anyway" >&2
}
