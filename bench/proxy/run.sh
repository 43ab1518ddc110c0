#!/usr/bin/env bash
# Proxy benchmark: the same weft-demo backends reached (a) directly, (b) through HAProxy (mode tcp,
# balance roundrobin) and (c) through `weft proxy` (roundRobin), measured in one run on this machine.
# Everything listens on 127.0.0.1; every load run is bounded by a request count and/or a duration and
# by `timeout`; all processes this script starts are stopped on exit, also on failure or Ctrl-C.
#
# Usage: bench/proxy/run.sh [options]          (see bench/README.md, "Proxy")
#   --quick              1 repetition, short runs: checks the harness, numbers are not for reporting
#   --reps N             repetitions of each throughput run (default 5)
#   --lat-reps N         repetitions of each latency run (default 3)
#   --duration S         seconds of each keep-alive wrk run (default 10)
#   --targets "LIST"     subset of "direct haproxy weft" (default: all; weft is dropped with a warning
#                        when `weft proxy` does not exist or does not build)
#   --backends N         weft-demo backends (default 3)
#   --rate-ka R          fixed keep-alive rate in req/s (default: derived from the throughput runs)
#   --rate-new R         fixed new-connection rate in conn/s (default: derived likewise)
#   --quiet-wait S       before measuring, wait up to S s for 30 quiet seconds: no swift-frontend/-build/
#                        -test or test bundle running, other processes < 15% of a core (default 600)
#   --out DIR            keep the raw wrk/h2load outputs and configs in DIR
#   --skip-build         use the release binaries already in .build/release
#   --weft-bin PATH      measure this `weft` binary instead of the release build (e.g. a copy built
#                        at another commit, to compare two commits in alternating runs)
#   --profile TARGET     afterwards, one more wrk run against TARGET (haproxy or weft) under
#                        `perf record -g`; prints the top symbols (self time), Swift names demangled
#   --profile-close      make that run a new-connection-per-request one (-H 'Connection: close')
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

reps_tp=5 reps_lat=3 tp_duration=10 tpc_duration=5 lat_duration=6 latency_warmup=1
targets="direct haproxy weft" backends=3 rate_ka="" rate_new="" quiet_wait=600 quiet_for=30
out_dir="" skip_build=0 weft_bin="" profile="" profile_close=0
wrk_threads=2 wrk_conns=64
noise_threshold=15 # % of one core used by other processes during a run that counts it as noisy
ka_fraction=0.15 new_fraction=0.15 cap_fraction=0.35

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) reps_tp=1 reps_lat=1 tp_duration=3 tpc_duration=2 lat_duration=3 quiet_wait=0; shift ;;
    --reps) reps_tp=$2; shift 2 ;;
    --lat-reps) reps_lat=$2; shift 2 ;;
    --duration) tp_duration=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --rate-ka) rate_ka=$2; shift 2 ;;
    --rate-new) rate_new=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --weft-bin) weft_bin=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --profile-close) profile_close=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/../lib/noise.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/profile.sh"
has() { case " $targets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
drop_target() { targets=$(echo " $targets " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

# --- tools ------------------------------------------------------------------------------------------
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v curl >/dev/null || missing+=(curl)
[ -z "$profile" ] || command -v perf >/dev/null || missing+=(linux-perf)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    else
        echo "missing: ${missing[*]} (apt-get install them, or run as root)" >&2
        exit 1
    fi
fi
# The Debian package may have started a system haproxy (where systemd runs); ours uses its own config
# and port, so it does not matter, but say so.
pgrep -x haproxy >/dev/null && log "note: another haproxy is running (not ours; left alone)"

# --- build ------------------------------------------------------------------------------------------
weft_note=""
if [ $skip_build = 0 ]; then
    log "building weft-demo (release)"
    swift build -c release --product weft-demo >&2
    if has weft && [ -z "$weft_bin" ]; then
        log "building weft (release)"
        if ! swift build -c release --product weft >&2; then
            weft_note="weft: release build failed; measured without it"
        fi
    fi
fi
bin=$(swift build -c release --show-bin-path)
weft=${weft_bin:-$bin/weft}
if has weft && [ -z "$weft_note" ] && ! "$weft" proxy --help 2>&1 | grep -q -e '--config'; then
    weft_note="weft: no 'weft proxy' subcommand in this build; measured without it"
fi
if [ -n "$weft_note" ]; then
    log "WARNING: $weft_note"
    drop_target weft
fi
[ -n "$targets" ] || { echo "no targets left" >&2; exit 1; }

# --- processes and clean-up -------------------------------------------------------------------------
work=$(mktemp -d /tmp/weft-proxy-bench.XXXXXX)
res=$work/results
mkdir -p "$res"/{tp_ka,tp_close,lat_ka,lat_new,noise}
pids=()    # long-running processes we started (backends, proxies)
loadgen="" # the load generator running now, if any
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$loadgen" ] && kill -TERM "$loadgen" 2>/dev/null
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$out_dir" ]; then
        mkdir -p "$out_dir" && cp -r "$work"/. "$out_dir"/ && log "raw outputs kept in $out_dir"
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Both proxies get the same connection limit; HAProxy needs two descriptors per connection plus a few.
max_conns=$((($(ulimit -n) - 200) / 2))
[ "$max_conns" -le 20000 ] || max_conns=20000

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_tcp() { # host port tries(0.1 s each)
    for _ in $(seq 1 "$3"); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Backends: weft-demo on 127.0.0.1, port chosen by the kernel and read from its first line.
backend_ports=()
for i in $(seq 1 "$backends"); do
    BIND=127.0.0.1 PORT=0 SERVICE_NAME=bench WEFT_REPLICA_NAME="b$i" WEFT_REPLICA_IP=127.0.0.1 \
        "$bin/weft-demo" >"$work/backend$i.out" 2>"$work/backend$i.err" &
    pids+=($!)
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^weft-demo listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/backend$i.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/backend$i.err" >&2; echo "backend $i did not start" >&2; exit 1; }
    backend_ports+=("$port")
done
log "backends: ${backend_ports[*]/#/127.0.0.1:}"

declare -A url proxy_pid
has direct && url[direct]="http://127.0.0.1:${backend_ports[0]}/"

cores=$(nproc)
if has haproxy; then
    hport=$(free_port)
    {
        echo "global"
        echo "    nbthread $cores"
        echo "    maxconn $max_conns"
        echo "    # no 'log' line: HAProxy logs nothing"
        echo "defaults"
        echo "    mode tcp"
        echo "    maxconn $max_conns"
        echo "    retries 2"
        echo "    timeout connect 1s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
        echo "frontend bench"
        echo "    bind 127.0.0.1:$hport"
        echo "    default_backend demo"
        echo "backend demo"
        echo "    balance roundrobin"
        for i in "${!backend_ports[@]}"; do echo "    server b$((i + 1)) 127.0.0.1:${backend_ports[$i]} weight 1"; done
    } >"$work/haproxy.cfg"
    haproxy -c -q -f "$work/haproxy.cfg" >&2
    haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 &
    pids+=($!)
    proxy_pid[haproxy]=$!
    wait_tcp 127.0.0.1 "$hport" 100 || { cat "$work/haproxy.out" >&2; echo "haproxy did not start" >&2; exit 1; }
    url[haproxy]="http://127.0.0.1:$hport/"
fi

if has weft; then
    wport=$(free_port)
    {
        echo "# generated by bench/proxy/run.sh: the equivalent of the HAProxy configuration"
        echo "listeners:"
        echo "  - name: bench"
        echo "    address: 127.0.0.1"
        echo "    port: $wport"
        echo "    loadBalancer: roundRobin"
        echo "    connectTimeoutMs: 1000"
        echo "    idleTimeoutMs: 30000"
        echo "    maxConnections: $max_conns"
        echo "    connectAttempts: 3"
        echo "    backends:"
        for p in "${backend_ports[@]}"; do echo "      - {address: 127.0.0.1, port: $p, weight: 1}"; done
    } >"$work/weft-proxy.yaml"
    "$weft" proxy --config "$work/weft-proxy.yaml" >"$work/weft.out" 2>"$work/weft.err" &
    pids+=($!)
    proxy_pid[weft]=$!
    for _ in $(seq 1 300); do
        grep -q '^ready' "$work/weft.out" "$work/weft.err" 2>/dev/null && break
        kill -0 "${proxy_pid[weft]}" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$work/weft.out" "$work/weft.err" 2>/dev/null; then
        cat "$work/weft.out" "$work/weft.err" >&2
        echo "weft proxy did not print 'ready'" >&2
        exit 1
    fi
    url[weft]="http://127.0.0.1:$wport/"
fi

# Sanity: every target answers 200, and a proxy spreads fresh connections over all backends.
for t in $targets; do
    seen=""
    for _ in $(seq 1 $((backends * 2))); do
        body=$(curl -sS --max-time 5 -o - -w '\n%{http_code}' "${url[$t]}")
        [ "$(tail -n1 <<<"$body")" = 200 ] || { echo "$t: ${url[$t]} did not answer 200: $body" >&2; exit 1; }
        seen+=$(sed -n 's/.*"replica":"\([^"]*\)".*/\1/p' <<<"$body")$'\n'
    done
    n=$(sort -u <<<"$seen" | grep -c . || true)
    log "$t: ${url[$t]} OK, $n distinct backend(s) over $((backends * 2)) connections"
    if [ "$t" != direct ] && [ "$n" -lt "$backends" ]; then
        log "WARNING: $t reached only $n of $backends backends"
    fi
done

# --- noise ------------------------------------------------------------------------------------------
# Other engineers build and test on this machine. Two signs of that: build/test processes, and CPU time
# used by processes that are not ours.

wait_quiet

# --- measurements -----------------------------------------------------------------------------------
runs=0 noisy_runs=0
measure() { # PHASE TARGET REP CMD...   (output to $res/PHASE/TARGET.REP.*; bookkeeping of noise and CPU)
    local phase=$1 t=$2 rep=$3
    shift 3
    local before after c0 c1 s0 s1 o0 o1 w0 w1 other rc=0
    before=$(builders)
    [ -n "${proxy_pid[$t]:-}" ] && c0=$(cpu_ticks "${proxy_pid[$t]}")
    s0=$(system_busy) o0=$(our_ticks) w0=$(date +%s.%N)
    "$@" || rc=$?
    s1=$(system_busy) o1=$(our_ticks) w1=$(date +%s.%N)
    [ -n "${proxy_pid[$t]:-}" ] && c1=$(cpu_ticks "${proxy_pid[$t]}") &&
        awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.3f\n", (b - a) / hz }' >"$res/$phase/$t.$rep.cpu"
    after=$(builders)
    # CPU used by processes that are not ours during the run, in % of one core.
    other=$(other_cpu "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
    echo "$before $after $other" >"$res/noise/$phase.$t.$rep"
    runs=$((runs + 1))
    if [ "$before" -gt 0 ] || [ "$after" -gt 0 ] || [ "$other" -gt "$noise_threshold" ]; then
        noisy_runs=$((noisy_runs + 1))
    fi
    [ $rc = 0 ] || log "WARNING: $phase $t rep $rep exited with $rc"
    return 0
}

log "warm-up: 2 s of wrk per target (not recorded)"
for t in $targets; do bounded 20 wrk -t$wrk_threads -c$wrk_conns -d2s "${url[$t]}" >/dev/null; done

log "1/4 throughput, keep-alive: wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp_ka "$t" "$rep" bounded $((tp_duration + 30)) \
            wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s --timeout 2s "${url[$t]}" >"$res/tp_ka/$t.$rep.wrk"
        log "  $t #$rep: $(grep -o 'Requests/sec:.*' "$res/tp_ka/$t.$rep.wrk" || echo failed)"
    done
done

log "2/4 throughput, new connection per request: wrk ... -H 'Connection: close' -d${tpc_duration}s, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp_close "$t" "$rep" bounded $((tpc_duration + 30)) \
            wrk -t$wrk_threads -c$wrk_conns -d${tpc_duration}s --timeout 2s -H 'Connection: close' "${url[$t]}" \
            >"$res/tp_close/$t.$rep.wrk"
        log "  $t #$rep: $(grep -o 'Requests/sec:.*' "$res/tp_close/$t.$rep.wrk" || echo failed)"
    done
done

# Fixed rates: 15 % of the direct wrk throughput, capped at 35 % of the slowest proxy's, so that no target
# is measured near saturation. (Paced requests, one per connection per tick, get no batching: on a 2-core
# machine the direct backend's p50 goes from ~0.3 ms at 25 k req/s to ~2.6 ms at 30 k, i.e. at ~30 % of
# its wrk throughput.) All targets get the same rate within a run.
pick_rate() { # PHASE FRACTION -> req/s
    local phase=$1 frac=$2 rate="" m t
    for t in $targets; do
        m=$(python3 "$repo/bench/proxy/report.py" median-rps "$res/$phase/$t".*.wrk)
        if [ "$t" = direct ]; then
            m=$(awk -v m="$m" -v f="$frac" 'BEGIN { printf "%d", m * f }')
        else
            m=$(awk -v m="$m" -v f="$cap_fraction" 'BEGIN { printf "%d", m * f }')
        fi
        if [ -z "$rate" ] || [ "$m" -lt "$rate" ]; then rate=$m; fi
    done
    echo "$rate"
}
[ -n "$rate_ka" ] || rate_ka=$(pick_rate tp_ka $ka_fraction)
rate_ka=$(((rate_ka / 100) * 100))
[ "$rate_ka" -ge 100 ] || rate_ka=100
[ -n "$rate_new" ] || rate_new=$(pick_rate tp_close $new_fraction)
# h2load opens K connections every P ms; P = 1 ms keeps the bursts small.
if [ "$rate_new" -ge 1000 ]; then
    new_k=$((rate_new / 1000)) new_period=1
else
    new_k=1 new_period=$(((1000 + rate_new - 1) / rate_new))
fi
rate_new=$((new_k * 1000 / new_period))
# Keep-alive: one connection per 100 req/s (a request every 10 ms per connection, h2load's finest --rps
# tick), connections opened one per ms so that their ticks are spread out.
ka_clients=$((rate_ka / 100))

log "3/4 latency, keep-alive at $rate_ka req/s: h2load --h1 -c$ka_clients --rps=100 (${lat_duration}s, first ${latency_warmup}s dropped), $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        rm -f "$res/lat_ka/$t.$rep.log"
        measure lat_ka "$t" "$rep" bounded $((lat_duration * 3 + 30)) \
            h2load --h1 -t1 -c$ka_clients -r1 --rate-period=1ms --rps=100 -m1 -n$((rate_ka * lat_duration)) -N5s \
            --log-file="$res/lat_ka/$t.$rep.log" "${url[$t]}" >"$res/lat_ka/$t.$rep.out"
        log "  $t #$rep: $(grep -E '^requests:' "$res/lat_ka/$t.$rep.out" || echo failed)"
    done
done

log "4/4 latency, new connection per request at $rate_new conn/s: h2load --h1 -r$new_k --rate-period=${new_period}ms -n=-c (${lat_duration}s), $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        rm -f "$res/lat_new/$t.$rep.log"
        n=$((rate_new * lat_duration))
        measure lat_new "$t" "$rep" bounded $((lat_duration * 3 + 30)) \
            h2load --h1 -t1 -c$n -n$n -r$new_k --rate-period=${new_period}ms -m1 -N5s \
            --log-file="$res/lat_new/$t.$rep.log" "${url[$t]}" >"$res/lat_new/$t.$rep.out"
        log "  $t #$rep: $(grep -E '^requests:' "$res/lat_new/$t.$rep.out" || echo failed)"
    done
done

# --- profile (optional) ---------------------------------------------------------------------------
if [ -n "$profile" ] && [ -n "${proxy_pid[$profile]:-}" ]; then
    profile_args=()
    profile_kind="keep-alive"
    if [ $profile_close = 1 ]; then profile_args=(-H 'Connection: close'); profile_kind="new connection per request"; fi
    log "profile: perf record -F 997 -g on $profile during wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s ($profile_kind)"
    perf record -F 997 -g -o "$work/perf.data" -p "${proxy_pid[$profile]}" -- sleep $((tp_duration + 1)) \
        >"$work/perf-record.out" 2>&1 &
    perf_pid=$!
    pids+=($perf_pid)
    sleep 0.5
    bounded $((tp_duration + 30)) wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s "${profile_args[@]}" "${url[$profile]}" \
        >"$res/profile.wrk"
    wait "$perf_pid" || true
    perf_summaries "$work/perf.data" "$res" 0.7
fi

# --- report -----------------------------------------------------------------------------------------
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(free -g | awk '/Mem:/{print $2}')
{
    echo "targets=$targets"
    echo "reps_tp=$reps_tp"
    echo "reps_lat=$reps_lat"
    echo "tp_duration_s=$tp_duration"
    echo "tpc_duration_s=$tpc_duration"
    echo "lat_duration_s=$lat_duration"
    echo "latency_warmup_s=$latency_warmup"
    echo "rate_ka=$rate_ka"
    echo "rate_new=$rate_new"
    echo "runs=$runs"
    echo "noisy_runs=$noisy_runs"
    echo "noise_threshold=$noise_threshold"
} >"$res/meta.env"

echo "## Proxy benchmark — $(date -u +%F)"
echo
echo "Machine: $cores cores ($cpu_model), $mem GiB, $(uname -sr); $(haproxy -v | head -n1 | cut -d' ' -f1-3);" \
    "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(h2load --version | head -n1);" \
    "$backends weft-demo backends; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Source: commit $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- Sources Package.swift examples 2>/dev/null)" ] || echo ", plus uncommitted changes under Sources/ (shared checkout)"); $(swift --version 2>/dev/null | grep -o 'Swift version [0-9.]*' | head -n1)."
echo
python3 "$repo/bench/proxy/report.py" table "$res"
[ -n "$weft_note" ] && echo "- WARNING: $weft_note"
[ -n "$quiet_note" ] && echo "- WARNING: $quiet_note"
[ -s "$res/profile.txt" ] && print_profile "$res" "Profile of $profile, $profile_kind ($(grep -o 'Requests/sec:.*' "$res/profile.wrk"))" 15 15 160
exit 0
