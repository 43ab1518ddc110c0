# Noise accounting and bounded runs shared by the benchmark harnesses (sourced, not run).
#
# Other engineers build and test on this machine. Two signs of that: build/test processes, and CPU time
# used by processes that are not ours. The sourcing script provides `log`, the array `pids` (its
# long-running processes), `targets` (for `rotated`) and, for `wait_quiet`, `quiet_wait`, `quiet_for`
# and `noise_threshold`; `bounded` sets `loadgen` so the script's EXIT trap can stop a running load.

# Live build/test processes; a defunct one (state Z, already exited, uses no CPU) does not count.
builders() {
    ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 ~ /^(swift-(frontend|build|test|driver)|.*PackageTest.*|.*\.xctest)$/ { n++ } END { print n + 0 }'
}
hz=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime of a process (fields 14 and 15 of /proc/PID/stat, counted after "comm")
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
system_busy() { # user+nice+system+irq+softirq ticks of all CPUs (a process's stime includes the softirq work it runs)
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}
our_ticks() { # CPU ticks of everything the script runs: its long-running processes, itself, and its
    # reaped children (timeout → the load generator, whose times the kernel adds to ours when waited for)
    local total pid
    total=$(sed 's/.*) //' /proc/$$/stat | awk '{print $12 + $13 + $14 + $15}')
    for pid in "${pids[@]}"; do
        [ -r "/proc/$pid/stat" ] && total=$((total + $(cpu_ticks "$pid")))
    done
    echo "$total"
}
other_cpu() { # S0 S1 O0 O1 W0 W1 -> % of one core used by others between the two samples
    awk -v s0="$1" -v s1="$2" -v o0="$3" -v o1="$4" -v w0="$5" -v w1="$6" -v hz="$hz" \
        'BEGIN { x = ((s1 - s0) - (o1 - o0)) / hz / (w1 - w0) * 100; if (x < 0) x = 0; printf "%.0f", x }'
}
wait_quiet() { # waits up to quiet_wait s for quiet_for s without builders and with others under the threshold
    quiet_note=""
    [ "$quiet_wait" -gt 0 ] || return 0
    log "waiting (up to ${quiet_wait}s) for ${quiet_for}s with no swift build/test process and others < ${noise_threshold}% of a core"
    local start=$SECONDS quiet_since=$SECONDS s0 s1 o0 o1 w0 w1 other
    s0=$(system_busy) o0=$(our_ticks) w0=$(date +%s.%N)
    while :; do
        sleep 2
        s1=$(system_busy) o1=$(our_ticks) w1=$(date +%s.%N)
        other=$(other_cpu "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
        s0=$s1 o0=$o1 w0=$w1
        if [ "$(builders)" -gt 0 ] || [ "$other" -gt "$noise_threshold" ]; then quiet_since=$SECONDS; fi
        [ $((SECONDS - quiet_since)) -ge "$quiet_for" ] && break
        if [ $((SECONDS - start)) -ge "$quiet_wait" ]; then
            quiet_note="gave up waiting for a quiet machine after ${quiet_wait}s (builds/tests of others were running)"
            log "WARNING: $quiet_note"
            break
        fi
    done
    [ -n "$quiet_note" ] || log "quiet after $((SECONDS - start))s"
}
bounded() { # LIMIT_S CMD...: runs CMD in the background (so the EXIT trap can stop it), waits
    local limit=$1
    shift
    timeout --kill-after=5 "$limit" "$@" &
    loadgen=$!
    local rc=0
    wait "$loadgen" || rc=$?
    loadgen=""
    return $rc
}
rotated() { # REP: the targets, rotated by REP so that no target always runs first or last
    local arr=($targets) n i
    n=${#arr[@]}
    for i in $(seq 0 $((n - 1))); do echo -n "${arr[$(((i + $1) % n))]} "; done
}
