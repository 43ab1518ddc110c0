#!/usr/bin/env bash
# DNS benchmark: Weft's node DNS server (in `weft server`) against unbound serving the same records as
# local-data, both measured with dnsperf in one run on this machine; plus the server's memory with
# 0, 1,000 and 10,000 services. Everything listens on 127.0.0.1 and is queried there only; every load
# run is bounded by a duration and by `timeout`; all processes this script starts are stopped on exit,
# also on failure or Ctrl-C.
#
# Usage: bench/dns/run.sh [options]            (see bench/README.md, "DNS")
#   --quick              N=200 services, 1 repetition of 3 s runs, memory at 0/200/1000: checks the
#                        harness, numbers are not for reporting
#   --services N         services in the benchmarked zone (default 1000)
#   --nx-percent P       share of queries for names that do not exist (NXDOMAIN), in % (default 10)
#   --reps N             repetitions of each max-throughput run, interleaved (default 3)
#   --duration S         seconds of each max-throughput dnsperf run (default 10)
#   --lat-reps N         repetitions of each fixed-rate run (default 2)
#   --lat-duration S     seconds of each fixed-rate run (default 10)
#   --clients C          dnsperf -c: UDP sockets (default 16)
#   --outstanding Q      dnsperf -q: queries in flight at most (default 200)
#   --rate R             fixed rate in queries/s (default: 50 % of the slower target's median max QPS)
#   --mem-counts "LIST"  service counts for the memory rows (default "0 1000 10000"; "" skips them)
#   --mem-batch N        services per applied file in the memory phase (default 500)
#   --targets "LIST"     subset of "weft unbound" (default both)
#   --quiet-wait S       before measuring, wait up to S s for 30 quiet seconds: no swift-frontend/-build/
#                        -test or test bundle running, other processes < 15% of a core (default 600)
#   --profile            afterwards, one more max-throughput run against Weft under `perf record -g`;
#                        prints the top symbols (self time), Swift names demangled
#   --out DIR            keep the configs, query file and raw dnsperf outputs in DIR
#   --scratch-path DIR   passed to `swift build --scratch-path` (default: SwiftPM's .build)
#   --skip-build         use the release binary already built (in the scratch path, if given)
#   --weft-bin PATH      use this weft binary (no build), e.g. to compare two commits
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

services=1000 nx_percent=10 reps_tp=3 tp_duration=10 reps_lat=2 lat_duration=10
clients=16 outstanding=200 rate="" mem_counts="0 1000 10000" mem_batch=500 targets="weft unbound"
quiet_wait=600 quiet_for=30 profile=0 out_dir="" scratch="" skip_build=0 weft_bin=""
latency_warmup_fraction=0.1 # share of each fixed-rate run's answers dropped as warm-up
noise_threshold=15          # % of one core used by other processes during a run that counts it as noisy
rate_fraction=0.5
domain=weft.internal cidr=127.60.0.0/16 ttl=5

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) services=200 reps_tp=1 tp_duration=3 reps_lat=1 lat_duration=3 mem_counts="0 200 1000" quiet_wait=0; shift ;;
    --services) services=$2; shift 2 ;;
    --nx-percent) nx_percent=$2; shift 2 ;;
    --reps) reps_tp=$2; shift 2 ;;
    --duration) tp_duration=$2; shift 2 ;;
    --lat-reps) reps_lat=$2; shift 2 ;;
    --lat-duration) lat_duration=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --mem-counts) mem_counts=$2; shift 2 ;;
    --mem-batch) mem_batch=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --out) out_dir=$2; shift 2 ;;
    --scratch-path) scratch=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --weft-bin) weft_bin=$2; skip_build=1; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/../lib/noise.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/profile.sh"
has() { case " $targets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- tools ------------------------------------------------------------------------------------------
missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v unbound >/dev/null || missing+=(unbound)
command -v dig >/dev/null || missing+=(bind9-dnsutils)
command -v python3 >/dev/null || missing+=(python3)
[ $profile = 0 ] || command -v perf >/dev/null || missing+=(linux-perf)
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
# Installing the Debian package may start the system's unbound (where systemd runs; it listens on port
# 53). We never query it: ours runs with its own config file on a free port. Say so if one is there.
pgrep -x unbound >/dev/null && log "note: another unbound is running (not ours; left alone, not queried)"

# --- build ------------------------------------------------------------------------------------------
build_args=(-c release)
[ -z "$scratch" ] || build_args+=(--scratch-path "$scratch")
if [ $skip_build = 0 ]; then
    log "building weft (release${scratch:+, scratch path $scratch})"
    swift build "${build_args[@]}" --product weft >&2
fi
if [ -n "$weft_bin" ]; then
    weft=$(realpath "$weft_bin")
else
    weft=$(swift build "${build_args[@]}" --show-bin-path)/weft
fi
[ -x "$weft" ] || { echo "no $weft (build it, or drop --skip-build)" >&2; exit 1; }
"$weft" server --help 2>&1 | grep -q -e '--dns-listen' || { echo "$weft has no DNS server (--dns-listen)" >&2; exit 1; }

# --- processes and clean-up -------------------------------------------------------------------------
work=$(mktemp -d /tmp/weft-dns-bench.XXXXXX)
res=$work/results
mkdir -p "$res"/{tp,lat,noise}
pids=()    # long-running processes we started (servers, unbound, perf)
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
        mkdir -p "$out_dir" && cp -r "$work"/. "$out_dir"/ && rm -rf "$out_dir"/data-* && log "raw outputs kept in $out_dir"
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stop_pid() { # PID: TERM, wait up to 5 s, KILL; drop it from pids
    local pid=$1 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}

free_udp_tcp_port() { # a port free for both UDP and TCP on 127.0.0.1
    python3 - <<'EOF'
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
EOF
}

# A weft server with a temporary data dir; sets server_pid, server_data, dns_port.
start_server() { # NAME
    server_data=$work/data-$1
    mkdir -p "$server_data"
    "$weft" server --data-dir "$server_data" --api-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 --dns-upstream none --tunnel-port 0 \
        --cluster-domain "$domain" --service-cidr "$cidr" --node-name bench --log-level warning \
        >"$work/server-$1.out" 2>"$work/server-$1.err" &
    server_pid=$!
    pids+=("$server_pid")
    dns_port=""
    for _ in $(seq 1 300); do
        dns_port=$(sed -n 's/^dns 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$work/server-$1.out")
        [ -n "$dns_port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$dns_port" ]; then
        cat "$work/server-$1.out" "$work/server-$1.err" >&2
        echo "weft server did not print 'ready' and 'dns 127.0.0.1:PORT'" >&2
        exit 1
    fi
    log "weft server ($1): pid $server_pid, $(grep '^ready ' "$work/server-$1.out" | cut -d' ' -f2), DNS 127.0.0.1:$dns_port"
}

svc_name() { echo "svc-$1.default.svc.$domain"; }
write_services() { # FROM TO FILE: services svc-FROM..svc-TO as one multi-document YAML file
    python3 - "$1" "$2" >"$3" <<'EOF'
import sys
for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    print(f"---\napiVersion: weft/v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: default}}\n"
          f"spec:\n  selector: {{app: svc-{i}}}\n  ports: [{{name: http, port: 80}}]")
EOF
}
apply_file() { # FILE
    timeout 300 "$weft" apply -f "$1" --config "$server_data/admin.yaml" >/dev/null
}
wait_resolves() { # NAME PORT LIMIT_S: until NAME has an A record at 127.0.0.1:PORT
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        [ -n "$(dig @127.0.0.1 -p "$2" "$1" A +short +tries=1 +time=1 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    return 1
}
soa_serial() { # PORT
    dig @127.0.0.1 -p "$1" "svc.$domain" SOA +short +tries=1 +time=2 2>/dev/null | awk '{ print $3 }'
}
wait_settled() { # PORT LIMIT_S: until the zone's SOA serial (bumped on every rebuild) stays the same for 3 s
    local deadline=$(($SECONDS + $2)) last="" same=0 serial
    while [ $SECONDS -lt $deadline ]; do
        serial=$(soa_serial "$1")
        if [ -n "$serial" ] && [ "$serial" = "$last" ]; then
            same=$((same + 1))
            [ $same -ge 3 ] && return 0
        else
            same=0 last=$serial
        fi
        sleep 1
    done
    return 1
}
proc_kb() { # PID FIELD (VmRSS, VmHWM, RssAnon, RssFile) -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# --- noise ------------------------------------------------------------------------------------------
# Other engineers build and test on this machine. Two signs of that: build/test processes, and CPU time
# used by processes that are not ours.

# --- memory: a server of its own, services applied in files of $mem_batch -------------------------
# Measured before any load is sent, on a server that never gets any (dnsperf traffic would grow its
# buffers and allocator arenas and blur the differences).
: >"$res/memory.tsv"
if [ -n "$mem_counts" ]; then
    start_server mem
    mem_pid=$server_pid
    applied=0
    for count in $mem_counts; do
        t0=$(date +%s.%N)
        batches=0
        while [ "$applied" -lt "$count" ]; do
            to=$((applied + mem_batch))
            [ "$to" -le "$count" ] || to=$count
            write_services $((applied + 1)) "$to" "$work/mem-batch.yaml"
            apply_file "$work/mem-batch.yaml" || { echo "apply of services $((applied + 1))-$to failed" >&2; exit 1; }
            applied=$to batches=$((batches + 1))
        done
        t1=$(date +%s.%N)
        if [ "$count" -gt 0 ]; then
            wait_resolves "$(svc_name "$count")" "$dns_port" 300 || { echo "$(svc_name "$count") did not resolve within 300 s" >&2; exit 1; }
        fi
        t2=$(date +%s.%N)
        # Let the controllers (endpoints) and the zone rebuilds that follow them settle.
        wait_settled "$dns_port" 300 || log "WARNING: the zone was still changing after 300 s"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$count" "$(proc_kb "$mem_pid" VmRSS)" "$(proc_kb "$mem_pid" VmHWM)" \
            "$(proc_kb "$mem_pid" RssAnon)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
            "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')" "$batches" >>"$res/memory.tsv"
        log "memory with $count services: $(tail -n1 "$res/memory.tsv" | awk '{ printf "VmRSS %d kB, VmHWM %d kB, RssAnon %d kB; apply %s s in %d file(s), then resolvable after %s s", $2, $3, $4, $5, $7, $6 }')"
    done
    stop_pid "$mem_pid"
fi

# --- the benchmarked zone: weft server with N services, unbound with the same records ------------
[ -n "$targets" ] || { log "no targets: memory only"; }
start_server bench
weft_pid=$server_pid weft_port=$dns_port
write_services 1 "$services" "$work/services.yaml"
t0=$SECONDS
apply_file "$work/services.yaml" || { echo "apply of $services services failed" >&2; exit 1; }
wait_resolves "$(svc_name "$services")" "$weft_port" 300 || { echo "$(svc_name "$services") did not resolve" >&2; exit 1; }
log "$services services applied (one file) and resolvable after $((SECONDS - t0)) s"
wait_settled "$weft_port" 300 || log "WARNING: the zone was still changing after 300 s"
log "zone settled (SOA serial unchanged for 3 s) after $((SECONDS - t0)) s"

# The addresses the API gave the services, and the SOA Weft serves (unbound gets the same one, so that
# negative answers carry the same authority record).
timeout 60 "$weft" get svc -o json --config "$server_data/admin.yaml" >"$work/services.json"
soa=$(dig @127.0.0.1 -p "$weft_port" "svc.$domain" SOA +short +tries=1 +time=2)
[ -n "$soa" ] || { echo "no SOA for svc.$domain from Weft" >&2; exit 1; }
python3 - "$work/services.json" "$domain" "$ttl" "$soa" "$services" >"$work/records.conf" <<'EOF'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
domain, ttl, soa, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
zone = f"svc.{domain}."
print(f'    local-zone: "{zone}" static')
print(f'    local-data: "{zone} {ttl} IN SOA {soa}"')
print(f'    local-data: "{zone} {ttl} IN NS ns.dns.{domain}."')
count = 0
for item in items:
    ip = item.get("clusterIP") or item["spec"].get("clusterIP")
    if not ip:
        continue
    print(f'    local-data: "{item["name"]}.{item["namespace"]}.{zone} {ttl} IN A {ip}"')
    count += 1
if count != n:
    sys.exit(f"the API lists {count} services with a clusterIP, expected {n}")
EOF

if has unbound; then
    uport=$(free_udp_tcp_port)
    {
        echo "# generated by bench/dns/run.sh: the records Weft serves, as local-data"
        echo "server:"
        echo "    interface: 127.0.0.1"
        echo "    port: $uport"
        echo "    do-ip6: no"
        echo "    num-threads: 2"
        echo "    so-reuseport: yes"
        echo "    do-daemonize: no"
        echo "    chroot: \"\""
        echo "    username: \"\""
        echo "    directory: \"$work\""
        echo "    pidfile: \"$work/unbound.pid\""
        echo "    logfile: \"$work/unbound.log\""
        echo "    use-syslog: no"
        echo "    verbosity: 0"
        echo "    access-control: 127.0.0.0/8 allow"
        echo "    # no DNSSEC validation, no trust anchor: the iterator alone (never used: every name is local)"
        echo "    module-config: \"iterator\""
        echo "    trust-anchor-signaling: no"
        echo "    root-key-sentinel: no"
        cat "$work/records.conf"
        echo "remote-control:"
        echo "    control-enable: no"
    } >"$work/unbound.conf"
    unbound-checkconf "$work/unbound.conf" >&2
    unbound -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
    unbound_pid=$!
    pids+=("$unbound_pid")
    wait_resolves "$(svc_name "$services")" "$uport" 30 || { cat "$work/unbound.out" "$work/unbound.log" >&2; echo "unbound did not answer" >&2; exit 1; }
    log "unbound $(unbound -V | sed -n 's/^Version //p'): pid $unbound_pid, 127.0.0.1:$uport, $(grep -c 'IN A' "$work/records.conf") A records"
fi

declare -A port server
has weft && port[weft]=$weft_port server[weft]=$weft_pid
has unbound && port[unbound]=$uport server[unbound]=$unbound_pid

# Query file: every service name (type A) plus nx_percent % names that do not exist (NXDOMAIN), in a
# fixed pseudo-random order; dnsperf goes round it again and again. The same file for every target.
python3 - "$services" "$nx_percent" "$domain" >"$work/queries.txt" <<'EOF'
import random, sys
n, nx, domain = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lines = [f"svc-{i}.default.svc.{domain} A" for i in range(1, n + 1)]
missing = round(n * nx / (100 - nx)) if nx < 100 else n
lines += [f"nx-{i}.default.svc.{domain} A" for i in range(1, missing + 1)]
random.Random(42).shuffle(lines)
print("\n".join(lines))
EOF

# Both must give the same answers: every query of the file, answer sections and status compared.
if has weft && has unbound; then
    for t in weft unbound; do
        timeout 120 dig @127.0.0.1 -p "${port[$t]}" +tries=1 +time=2 +noall +answer +authority +comments -f "$work/queries.txt" |
            awk '/->>HEADER<<-/ { sub(/,.*/, "", $6); print "status", $6; next } /^;/ || NF == 0 { next }
                 $4 == "SOA" { $7 = "SERIAL" } { print }' \
                >"$work/answers.$t"
    done
    if ! cmp -s "$work/answers.weft" "$work/answers.unbound"; then
        diff "$work/answers.weft" "$work/answers.unbound" | head -n 20 >&2
        echo "Weft and unbound answer differently (above)" >&2
        exit 1
    fi
    log "same answers from both for all $(wc -l <"$work/queries.txt") queries ($(grep -c 'status NOERROR' "$work/answers.weft") NOERROR, $(grep -c 'status NXDOMAIN' "$work/answers.weft") NXDOMAIN)"
fi

wait_quiet

# --- measurements -----------------------------------------------------------------------------------
runs=0 noisy_runs=0
measure() { # PHASE TARGET REP CMD...   (bookkeeping of noise and the server's CPU time)
    local phase=$1 t=$2 rep=$3
    shift 3
    local before after c0 c1 s0 s1 o0 o1 w0 w1 other rc=0
    before=$(builders)
    c0=$(cpu_ticks "${server[$t]}")
    s0=$(system_busy) o0=$(our_ticks) w0=$(date +%s.%N)
    "$@" || rc=$?
    s1=$(system_busy) o1=$(our_ticks) w1=$(date +%s.%N)
    c1=$(cpu_ticks "${server[$t]}")
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
qps_of() { sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$1"; }

dnsperf_max=(-l "$tp_duration" -c "$clients" -q "$outstanding" -t 2 -v)
log "warm-up: 2 s of dnsperf per target (not recorded)"
for t in $targets; do
    bounded 30 dnsperf -s 127.0.0.1 -p "${port[$t]}" -d "$work/queries.txt" -l 2 -c "$clients" -q "$outstanding" >/dev/null 2>&1 || true
done

log "1/2 max throughput: dnsperf -c $clients -q $outstanding -l $tp_duration -v, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp "$t" "$rep" bounded $((tp_duration + 30)) \
            dnsperf -s 127.0.0.1 -p "${port[$t]}" -d "$work/queries.txt" "${dnsperf_max[@]}" >"$res/tp/$t.$rep.out" 2>&1
        log "  $t #$rep: $(qps_of "$res/tp/$t.$rep.out" | cut -d. -f1) queries/s"
    done
done

if [ -z "$rate" ]; then
    rate=""
    for t in $targets; do
        m=$(for f in "$res/tp/$t".*.out; do qps_of "$f"; done | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
        m=$(awk -v m="$m" -v f="$rate_fraction" 'BEGIN { printf "%d", m * f }')
        if [ -z "$rate" ] || [ "$m" -lt "$rate" ]; then rate=$m; fi
    done
    rate=$(((rate / 1000) * 1000))
    [ "$rate" -ge 1000 ] || rate=1000
fi

log "2/2 fixed rate $rate queries/s: dnsperf -Q $rate -c $clients -q $outstanding -l $lat_duration -v, $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        measure lat "$t" "$rep" bounded $((lat_duration + 30)) \
            dnsperf -s 127.0.0.1 -p "${port[$t]}" -d "$work/queries.txt" -l "$lat_duration" -c "$clients" -q "$outstanding" \
            -Q "$rate" -t 2 -v >"$res/lat/$t.$rep.out" 2>&1
        log "  $t #$rep: $(qps_of "$res/lat/$t.$rep.out" | cut -d. -f1) queries/s"
    done
done

# --- profile (optional) ---------------------------------------------------------------------------
if [ $profile = 1 ] && has weft; then
    log "profile: perf record -F 997 -g on the weft server during dnsperf -c $clients -q $outstanding -l $tp_duration"
    perf record -F 997 -g -o "$work/perf.data" -p "$weft_pid" -- sleep $((tp_duration + 1)) >"$work/perf-record.out" 2>&1 &
    perf_pid=$!
    pids+=("$perf_pid")
    sleep 0.5
    bounded $((tp_duration + 30)) dnsperf -s 127.0.0.1 -p "$weft_port" -d "$work/queries.txt" -l "$tp_duration" \
        -c "$clients" -q "$outstanding" >"$res/profile.dnsperf" 2>&1 || true
    wait "$perf_pid" || true
    perf_summaries "$work/perf.data" "$res" 0.5
fi

# --- report -----------------------------------------------------------------------------------------
{
    echo "targets=$targets"
    echo "services=$services"
    echo "nx_percent=$nx_percent"
    echo "queries_in_file=$(wc -l <"$work/queries.txt")"
    echo "reps_tp=$reps_tp"
    echo "reps_lat=$reps_lat"
    echo "tp_duration_s=$tp_duration"
    echo "lat_duration_s=$lat_duration"
    echo "latency_warmup_fraction=$latency_warmup_fraction"
    echo "clients=$clients"
    echo "outstanding=$outstanding"
    echo "rate=$rate"
    echo "runs=$runs"
    echo "noisy_runs=$noisy_runs"
    echo "noise_threshold=$noise_threshold"
    echo "mem_batch=$mem_batch"
} >"$res/meta.env"

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(free -g | awk '/Mem:/{print $2}')
echo "## DNS benchmark — $(date -u +%F)"
echo
echo "Machine: $(nproc) cores ($cpu_model), $mem GiB, $(uname -sr); $(dnsperf -h 2>&1 | grep -m1 '^Version' | sed 's/Version/dnsperf/');" \
    "unbound $(unbound -V | sed -n 's/^Version //p'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
if [ $skip_build = 1 ]; then
    source_note="binary $weft built $(date -u -r "$weft" '+%F %H:%M UTC') (not rebuilt: the tree is now at commit $(git rev-parse --short HEAD))"
else
    source_note="commit $(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- Sources Package.swift 2>/dev/null)" ] || echo ", plus uncommitted changes under Sources/ (shared checkout)")"
fi
echo "Source: $source_note; $(swift --version 2>/dev/null | grep -o 'Swift version [0-9.]*' | head -n1)."
echo
python3 "$repo/bench/dns/report.py" table "$res"
[ -n "$quiet_note" ] && echo "- WARNING: $quiet_note"
[ -s "$res/profile.txt" ] && print_profile "$res" "Profile of the weft server under dnsperf ($(qps_of "$res/profile.dnsperf" | cut -d. -f1) queries/s)" 20 25 170
exit 0
