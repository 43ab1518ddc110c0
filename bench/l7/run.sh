#!/usr/bin/env bash
# L7 (HTTP mode) proxy benchmark: the same 2 weft-demo backends reached through (a) HAProxy in `mode http`
# (balance roundrobin, pooled server connections) and (b) `weft proxy` with an `http` listener
# (roundRobin, per-request balancing over pooled keep-alive connections), plus (c) directly for
# reference, measured in one run on this machine. Everything listens on 127.0.0.1; every load run is
# bounded by a duration or request count and by `timeout`; all processes this script starts are stopped
# on exit, also on failure or Ctrl-C.
#
# Usage: bench/l7/run.sh [options]             (see bench/README.md, "L7 proxy")
#   --quick              1 repetition, short runs: checks the harness, numbers are not for reporting
#   --reps N             repetitions of each throughput run (default 5)
#   --lat-reps N         repetitions of each fixed-rate latency run (default 3)
#   --duration S         seconds of each keep-alive wrk run (default 10)
#   --targets "LIST"     subset of "direct haproxy weft" (default: all)
#   --rate R             fixed keep-alive rate for the latency runs in req/s (default: derived)
#   --quiet-wait S       before measuring, wait up to S s for 30 quiet seconds (default 600; see bench/lib/noise.sh)
#   --out DIR            keep the raw wrk/h2load outputs and configs in DIR
#   --skip-build         use the release binaries already in .build-release/release
#   --profile TARGET     afterwards, one more wrk run against TARGET (haproxy or weft) under `perf record -g`
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

reps_tp=5 reps_lat=3 tp_duration=10 lat_duration=6 latency_warmup=1
targets="direct haproxy weft" backends=2 rate_ka="" quiet_wait=600 quiet_for=30
out_dir="" skip_build=0 profile=""
wrk_threads=2 wrk_conns=64
noise_threshold=15
ka_fraction=0.15 cap_fraction=0.35

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) reps_tp=1 reps_lat=1 tp_duration=3 lat_duration=3 quiet_wait=0; shift ;;
    --reps) reps_tp=$2; shift 2 ;;
    --lat-reps) reps_lat=$2; shift 2 ;;
    --duration) tp_duration=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --rate) rate_ka=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --profile) profile=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
source "$repo/bench/lib/noise.sh"
source "$repo/bench/lib/profile.sh"

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

# --- build ------------------------------------------------------------------------------------------
scratch=.build-release
if [ $skip_build = 0 ]; then
    log "building weft and weft-demo (release, --scratch-path $scratch)"
    swift build -c release --scratch-path "$scratch" --product weft >&2
    swift build -c release --scratch-path "$scratch" --product weft-demo >&2
fi
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
for b in weft weft-demo; do
    [ -x "$bin/$b" ] || { echo "$bin/$b is missing: run without --skip-build" >&2; exit 1; }
done

# --- processes and clean-up -------------------------------------------------------------------------
work=$(mktemp -d /tmp/weft-l7-bench.XXXXXX)
res=$work/results
mkdir -p "$res"/{tp_ka,lat_ka,noise}
pids=()
loadgen=""
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
[ "$max_conns" -le 10000 ] || max_conns=10000
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_tcp() {
    for _ in $(seq 1 "$3"); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

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
case " $targets " in *" direct "*) url[direct]="http://127.0.0.1:${backend_ports[0]}/" ;; esac
cores=$(nproc)

case " $targets " in *" haproxy "*)
    hport=$(free_port)
    {
        echo "global"
        echo "    nbthread $cores"
        echo "    maxconn $max_conns"
        echo "defaults"
        echo "    mode http"
        echo "    maxconn $max_conns"
        echo "    option http-keep-alive"
        echo "    http-reuse always"
        echo "    retries 2"
        echo "    retry-on conn-failure empty-response 503"
        echo "    option redispatch 1"
        echo "    timeout connect 1s"
        echo "    timeout client 30s"
        echo "    timeout server 15s"
        echo "    timeout http-keep-alive 30s"
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
    ;;
esac

case " $targets " in *" weft "*)
    wport=$(free_port)
    {
        echo "# generated by bench/l7/run.sh: the equivalent of the HAProxy configuration"
        echo "listeners:"
        echo "  - name: bench"
        echo "    address: 127.0.0.1"
        echo "    port: $wport"
        echo "    protocol: http"
        echo "    service: bench/demo"
        echo "    loadBalancer: roundRobin"
        echo "    connectTimeoutMs: 1000"
        echo "    idleTimeoutMs: 30000"
        echo "    maxConnections: $max_conns"
        echo "    http: {timeoutMs: 15000, retries: {attempts: 2}}"
        echo "    backends:"
        for p in "${backend_ports[@]}"; do echo "      - {address: 127.0.0.1, port: $p, weight: 1}"; done
    } >"$work/weft-proxy.yaml"
    "$bin/weft" proxy --config "$work/weft-proxy.yaml" --threads "$cores" >"$work/weft.out" 2>"$work/weft.err" &
    pids+=($!)
    proxy_pid[weft]=$!
    for _ in $(seq 1 300); do
        grep -q '^ready' "$work/weft.out" 2>/dev/null && break
        kill -0 "${proxy_pid[weft]}" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$work/weft.out" 2>/dev/null || { cat "$work/weft.out" "$work/weft.err" >&2; echo "weft proxy did not print 'ready'" >&2; exit 1; }
    url[weft]="http://127.0.0.1:$wport/"
    ;;
esac

# Sanity: every target answers 200; a proxy spreads the requests of ONE keep-alive connection over both
# backends (curl reuses its connection for the URLs of one command line).
for t in $targets; do
    urls=()
    for _ in $(seq 1 $((backends * 2))); do urls+=("${url[$t]}"); done
    body=$(curl -sS --max-time 5 "${urls[@]}" -w '\n%{http_code} %{num_connects}\n')
    codes=$(grep -Ec '^200 [0-9]+$' <<<"$body" || true)
    [ "$codes" = $((backends * 2)) ] || { echo "$t: ${url[$t]} did not answer 200: $body" >&2; exit 1; }
    n=$(grep -o '"replica":"[^"]*"' <<<"$body" | sort -u | grep -c . || true)
    log "$t: ${url[$t]} OK, $n distinct backend(s) over $((backends * 2)) requests on one connection"
done

wait_quiet

runs=0 noisy_runs=0
measure() { # PHASE TARGET REP CMD...
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

log "1/2 throughput, keep-alive: wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s --latency, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp_ka "$t" "$rep" bounded $((tp_duration + 30)) \
            wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s --timeout 2s --latency "${url[$t]}" >"$res/tp_ka/$t.$rep.wrk"
        log "  $t #$rep: $(grep -o 'Requests/sec:.*' "$res/tp_ka/$t.$rep.wrk" || echo failed)"
    done
done

# A fixed rate below every target's knee (see bench/README.md, "Proxy"): 15 % of the direct throughput,
# capped at 35 % of the slowest proxy's.
if [ -z "$rate_ka" ]; then
    for t in $targets; do
        m=$(python3 "$repo/bench/proxy/report.py" median-rps "$res/tp_ka/$t".*.wrk)
        f=$cap_fraction
        [ "$t" = direct ] && f=$ka_fraction
        m=$(awk -v m="$m" -v f="$f" 'BEGIN { printf "%d", m * f }')
        if [ -z "$rate_ka" ] || [ "$m" -lt "$rate_ka" ]; then rate_ka=$m; fi
    done
fi
rate_ka=$(((rate_ka / 100) * 100))
[ "$rate_ka" -ge 100 ] || rate_ka=100
ka_clients=$((rate_ka / 100))

log "2/2 latency, keep-alive at $rate_ka req/s: h2load --h1 -c$ka_clients --rps=100 (${lat_duration}s), $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        rm -f "$res/lat_ka/$t.$rep.log"
        measure lat_ka "$t" "$rep" bounded $((lat_duration * 3 + 30)) \
            h2load --h1 -t1 -c$ka_clients -r1 --rate-period=1ms --rps=100 -m1 -n$((rate_ka * lat_duration)) -N5s \
            --log-file="$res/lat_ka/$t.$rep.log" "${url[$t]}" >"$res/lat_ka/$t.$rep.out"
        log "  $t #$rep: $(grep -E '^requests:' "$res/lat_ka/$t.$rep.out" || echo failed)"
    done
done

if [ -n "$profile" ] && [ -n "${proxy_pid[$profile]:-}" ]; then
    log "profile: perf record -F 997 -g on $profile during wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s"
    perf record -F 997 -g -o "$work/perf.data" -p "${proxy_pid[$profile]}" -- sleep $((tp_duration + 1)) \
        >"$work/perf-record.out" 2>&1 &
    perf_pid=$!
    pids+=($perf_pid)
    sleep 0.5
    bounded $((tp_duration + 30)) wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s "${url[$profile]}" >"$res/profile.wrk"
    wait "$perf_pid" || true
    perf_summaries "$work/perf.data" "$res" 0.7
fi

# The proxy's own view of the run: Weft's request counters are not exported by `weft proxy`, so the
# check that every request was balanced is the backends' share in the sanity step and wrk's error count.
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(free -g | awk '/Mem:/{print $2}')
{
    echo "targets=$targets"
    echo "reps_tp=$reps_tp"
    echo "reps_lat=$reps_lat"
    echo "tp_duration_s=$tp_duration"
    echo "lat_duration_s=$lat_duration"
    echo "latency_warmup_s=$latency_warmup"
    echo "rate_ka=$rate_ka"
    echo "runs=$runs"
    echo "noisy_runs=$noisy_runs"
    echo "noise_threshold=$noise_threshold"
} >"$res/meta.env"

echo "## L7 proxy benchmark — $(date -u '+%F %H:%M') UTC"
echo
echo "Machine: $cores cores ($cpu_model), $mem GiB, $(uname -sr); $(haproxy -v | head -n1 | cut -d' ' -f1-3);" \
    "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(h2load --version | head -n1);" \
    "$backends weft-demo backends; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Source: commit $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- Sources Package.swift examples 2>/dev/null)" ] || echo ", plus uncommitted changes under Sources/"); $(swift --version 2>/dev/null | grep -o 'Swift version [0-9.]*' | head -n1)."
echo
python3 "$repo/bench/l7/report.py" table "$res"
[ -n "$quiet_note" ] && echo "- WARNING: $quiet_note"
[ -s "$res/profile.txt" ] && print_profile "$res" "Profile of $profile, keep-alive ($(grep -o 'Requests/sec:.*' "$res/profile.wrk"))" 15 15 160
exit 0
