#!/usr/bin/env bash
# Mesh tunnel benchmark: one HTTP backend on 127.0.0.1 reached (a) directly, (b) through two HAProxy
# "nodes" joined by mutual TLS 1.3 (mode tcp) and (c) through two `weft proxy` nodes joined by Weft's
# mTLS tunnel (HTTP/2 CONNECT streams over pooled TLS 1.3 connections), measured in one run on this
# machine. Everything listens on 127.0.0.1; every load run is bounded by a duration or a count and by
# `timeout`; all processes this script starts are stopped on exit, also on failure or Ctrl-C.
#
# Usage: bench/mesh/run.sh [options]           (see bench/README.md, "Mesh tunnel")
#   --quick              1 repetition, short runs: checks the harness, numbers are not for reporting
#   --reps N             repetitions of each throughput, bulk and handshake run (default 5)
#   --lat-reps N         repetitions of each latency run (default 3)
#   --duration S         seconds of each keep-alive wrk run (default 10)
#   --hs-duration S      `openssl s_time -time S` of each handshake run (default 10; s_time counts it
#                        on its own clock, the run takes a little longer)
#   --bulk-mib N         size of the single-stream download (default 1024 MiB)
#   --targets "LIST"     subset of "direct haproxy-tls weft-tunnel" (default: all)
#   --node-threads N     threads of each node: HAProxy `nbthread`, `weft proxy --threads` (default: cores)
#   --haproxy-no-ssl-reuse  node A's HAProxy does not resume TLS sessions to node B (`no-ssl-reuse`):
#                        a full handshake per client connection instead of a resumed one
#   --rate-ka R          fixed keep-alive rate in req/s (default: derived from the throughput runs)
#   --rate-new R         fixed new-connection rate in conn/s (default: derived likewise)
#   --quiet-wait S       before measuring, wait up to S s for 30 quiet seconds: no swift-frontend/-build/
#                        -test or test bundle running, other processes < 15% of a core (default 600)
#   --out DIR            keep the certificates, configs, node logs and raw outputs in DIR
#   --skip-build         use the release binaries already in .build/release
#   --weft-bin PATH      use this `weft` binary (no build of weft)
#   --demo-bin PATH      use this `weft-demo` binary (no build of weft-demo)
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
repo=$(pwd)
here=$repo/bench/mesh

reps_tp=5 reps_lat=3 tp_duration=10 tpc_duration=5 lat_duration=6 latency_warmup=1 hs_duration=10 bulk_mib=1024
targets="direct haproxy-tls weft-tunnel" node_threads="" rate_ka="" rate_new="" quiet_wait=600 quiet_for=30
out_dir="" skip_build=0 weft_bin="" demo_bin="" ssl_reuse=1
wrk_threads=2 wrk_conns=64
noise_threshold=15 # % of one core used by other processes during a run that counts it as noisy
ka_fraction=0.15 new_fraction=0.15 cap_fraction=0.35

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) reps_tp=1 reps_lat=1 tp_duration=3 tpc_duration=2 lat_duration=3 hs_duration=3 bulk_mib=256 quiet_wait=0; shift ;;
    --reps) reps_tp=$2; shift 2 ;;
    --lat-reps) reps_lat=$2; shift 2 ;;
    --duration) tp_duration=$2; shift 2 ;;
    --hs-duration) hs_duration=$2; shift 2 ;;
    --bulk-mib) bulk_mib=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --node-threads) node_threads=$2; shift 2 ;;
    --haproxy-no-ssl-reuse) ssl_reuse=0; shift ;;
    --rate-ka) rate_ka=$2; shift 2 ;;
    --rate-new) rate_new=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --weft-bin) weft_bin=$2; shift 2 ;;
    --demo-bin) demo_bin=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
source "$repo/bench/lib/noise.sh"
has() { case " $targets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for t in $targets; do
    case "$t" in direct | haproxy-tls | weft-tunnel) ;; *) echo "unknown target: $t" >&2; exit 2 ;; esac
done
cores=$(nproc)
node_threads=${node_threads:-$cores}

# --- tools ------------------------------------------------------------------------------------------
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v ss >/dev/null || missing+=(iproute2)
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
pgrep -x haproxy >/dev/null && log "note: another haproxy is running (not ours; left alone)"

# --- build ------------------------------------------------------------------------------------------
if [ $skip_build = 0 ] && [ -z "$demo_bin" ]; then
    log "building weft-demo (release)"
    swift build -c release --product weft-demo >&2
fi
if [ $skip_build = 0 ] && [ -z "$weft_bin" ] && has weft-tunnel; then
    log "building weft (release)"
    swift build -c release --product weft >&2
fi
bin=""
if [ -z "$demo_bin" ] || { [ -z "$weft_bin" ] && has weft-tunnel; }; then bin=$(swift build -c release --show-bin-path); fi
demo=${demo_bin:-$bin/weft-demo}
weft=""
has weft-tunnel && weft=${weft_bin:-$bin/weft}
[ -x "$demo" ] || { echo "no weft-demo at $demo" >&2; exit 1; }
if has weft-tunnel && ! "$weft" proxy --help 2>&1 | grep -q -e '--inbound-allow'; then
    echo "$weft has no 'weft proxy --inbound-allow' (the mesh tunnel): build a newer weft or drop weft-tunnel from --targets" >&2
    exit 1
fi

# --- processes and clean-up -------------------------------------------------------------------------
work=$(mktemp -d /tmp/weft-mesh-bench.XXXXXX)
res=$work/results
mkdir -p "$res"/{tp_ka,tp_close,bulk,lat_ka,lat_new,hs,noise} "$work/www"
pids=()    # long-running processes we started (backends, nodes)
loadgen="" # the load generator running now, if any
sampler="" # the mid-run sampler running now, if any
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$loadgen" ] && kill -TERM "$loadgen" 2>/dev/null
    [ -n "$sampler" ] && kill -TERM "$sampler" 2>/dev/null
    stop_pids "${pids[@]}"
    if [ -n "$out_dir" ]; then
        rm -f "$work/www/bulk.bin"
        mkdir -p "$out_dir" && cp -r "$work"/. "$out_dir"/ && log "raw outputs kept in $out_dir"
    fi
    rm -rf "$work"
    exit $rc
}
stop_pids() { # PID...: SIGTERM, up to 5 s, then SIGKILL
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
forget_pids() { # PID...: no longer ours to account for (stopped)
    local keep=() p q drop
    for p in "${pids[@]}"; do
        drop=0
        for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
        [ $drop = 1 ] || keep+=("$p")
    done
    pids=("${keep[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Both meshes get the same connection limit; HAProxy needs two descriptors per connection plus a few.
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
wait_line() { # FILE PATTERN PID: until a line of FILE matches PATTERN (30 s), or PID exits
    for _ in $(seq 1 300); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "$2" "$1" 2>/dev/null
}
haproxy_info() { # SOCKET: `show info` of an HAProxy through its stats socket
    python3 - "$1" <<'EOF' 2>/dev/null || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"show info\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
EOF
}

# Certificates: a root and two node SVIDs (SPIFFE URI SAN, serverAuth + clientAuth), P-256 like Weft's.
log "certificates: bench-root, spiffe://bench.local/node/a and /node/b (ECDSA P-256)"
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
        -subj /CN=bench-root -days 2 2>/dev/null
    for n in a b; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj / 2>/dev/null
        printf "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://bench.local/node/$n\n" >$n.ext
        openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile $n.ext -out $n.crt 2>/dev/null
        cat $n.crt $n.key >$n.pem # HAProxy's crt: certificate and key in one file
    done
)

# Backends: weft-demo (GET /, a 77-byte JSON answer) and, for the single-stream download, Python's
# http.server on a sparse file of --bulk-mib MiB (zeros; nothing on the path compresses).
BIND=127.0.0.1 PORT=0 SERVICE_NAME=bench WEFT_REPLICA_NAME=b1 WEFT_REPLICA_IP=127.0.0.1 \
    "$demo" >"$work/backend.out" 2>"$work/backend.err" &
pids+=($!)
demo_pid=$!
wait_line "$work/backend.out" '^weft-demo listening on ' "$demo_pid" || { cat "$work/backend.err" >&2; echo "weft-demo did not start" >&2; exit 1; }
demo_port=$(sed -n 's/^weft-demo listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/backend.out")
truncate -s "${bulk_mib}M" "$work/www/bulk.bin"
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/www" 0 >"$work/bulk-server.out" 2>"$work/bulk-server.err" &
pids+=($!)
bulk_pid=$!
wait_line "$work/bulk-server.out" '^Serving HTTP on 127.0.0.1 port ' "$bulk_pid" || { cat "$work/bulk-server.err" >&2; echo "http.server did not start" >&2; exit 1; }
bulk_port=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9][0-9]*\) .*/\1/p' "$work/bulk-server.out")
log "backends: weft-demo 127.0.0.1:$demo_port, http.server 127.0.0.1:$bulk_port (bulk.bin, $bulk_mib MiB)"

declare -A url bulk_url node_a node_b tls_port
if has direct; then
    url[direct]="http://127.0.0.1:$demo_port/"
    bulk_url[direct]="http://127.0.0.1:$bulk_port/bulk.bin"
fi

# Both meshes get TLS 1.3 only, X25519 and ECDSA P-256 certificates, and the cipher suite order Weft's
# client (BoringSSL) offers, so that both negotiate TLS_AES_128_GCM_SHA256.
suites="TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
if has haproxy-tls; then
    ha_a_demo=$(free_port) ha_a_bulk=$(free_port) ha_b_demo=$(free_port) ha_b_bulk=$(free_port) ha_b_hs=$(free_port)
    haproxy_global() { # SOCKET
        echo "global"
        echo "    nbthread $node_threads"
        echo "    maxconn $max_conns"
        echo "    stats socket $1 mode 600 level user"
        echo "    ssl-default-bind-ciphersuites $suites"
        echo "    ssl-default-bind-options ssl-min-ver TLSv1.3"
        echo "    ssl-default-server-ciphersuites $suites"
        echo "    ssl-default-server-options ssl-min-ver TLSv1.3"
        echo "    # no 'log' line: HAProxy logs nothing"
        echo "defaults"
        echo "    mode tcp"
        echo "    maxconn $max_conns"
        echo "    retries 2"
        echo "    timeout connect 1s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
    }
    {
        echo "# node B: TLS 1.3 with a client certificate required, forwarding to the local backends"
        haproxy_global "$work/haproxy-b.sock"
        echo "frontend tunnel_demo"
        echo "    bind 127.0.0.1:$ha_b_demo ssl crt $work/b.pem ca-file $work/ca.crt verify required curves X25519"
        echo "    default_backend demo"
        echo "frontend tunnel_bulk"
        echo "    bind 127.0.0.1:$ha_b_bulk ssl crt $work/b.pem ca-file $work/ca.crt verify required curves X25519"
        echo "    default_backend bulk"
        echo "# for openssl s_time: the same TLS bind, but the backend is only connected to once a byte arrives"
        echo "# (s_time sends none), as Weft's inbound port opens nothing before a CONNECT stream"
        echo "frontend handshakes"
        echo "    bind 127.0.0.1:$ha_b_hs ssl crt $work/b.pem ca-file $work/ca.crt verify required curves X25519"
        echo "    tcp-request inspect-delay 30s"
        echo "    tcp-request content accept if { req.len gt 0 }"
        echo "    default_backend demo"
        echo "backend demo"
        echo "    server demo 127.0.0.1:$demo_port"
        echo "backend bulk"
        echo "    server bulk 127.0.0.1:$bulk_port"
    } >"$work/haproxy-b.cfg"
    reuse=""
    [ $ssl_reuse = 1 ] || reuse=" no-ssl-reuse"
    {
        echo "# node A: plaintext from local clients, each client connection its own TLS connection to node B"
        echo "# (mode tcp has no connection reuse); TLS sessions are resumed unless no-ssl-reuse"
        haproxy_global "$work/haproxy-a.sock"
        echo "frontend demo"
        echo "    bind 127.0.0.1:$ha_a_demo"
        echo "    default_backend to_b_demo"
        echo "frontend bulk"
        echo "    bind 127.0.0.1:$ha_a_bulk"
        echo "    default_backend to_b_bulk"
        echo "backend to_b_demo"
        echo "    server b 127.0.0.1:$ha_b_demo ssl crt $work/a.pem ca-file $work/ca.crt verify required$reuse"
        echo "backend to_b_bulk"
        echo "    server b 127.0.0.1:$ha_b_bulk ssl crt $work/a.pem ca-file $work/ca.crt verify required$reuse"
    } >"$work/haproxy-a.cfg"
    haproxy -c -q -f "$work/haproxy-b.cfg" >&2
    haproxy -c -q -f "$work/haproxy-a.cfg" >&2
    url[haproxy-tls]="http://127.0.0.1:$ha_a_demo/"
    bulk_url[haproxy-tls]="http://127.0.0.1:$ha_a_bulk/bulk.bin"
    tls_port[haproxy-tls]=$ha_b_demo
    hs_port_haproxy=$ha_b_hs
fi
start_haproxy() {
    local n
    for n in b a; do
        haproxy -db -f "$work/haproxy-$n.cfg" >>"$work/haproxy-$n.out" 2>&1 &
        pids+=($!)
        if [ $n = a ]; then node_a[haproxy-tls]=$!; else node_b[haproxy-tls]=$!; fi
    done
    wait_tcp 127.0.0.1 "$ha_b_hs" 100 && wait_tcp 127.0.0.1 "$ha_a_demo" 100 ||
        { cat "$work"/haproxy-*.out >&2; echo "haproxy did not start" >&2; exit 1; }
}

if has weft-tunnel; then
    w_a_demo=$(free_port) w_a_bulk=$(free_port) w_inbound=0
    echo "listeners: []" >"$work/weft-b.yaml"
    url[weft-tunnel]="http://127.0.0.1:$w_a_demo/"
    bulk_url[weft-tunnel]="http://127.0.0.1:$w_a_bulk/bulk.bin"
fi
start_weft() {
    "$weft" proxy --config "$work/weft-b.yaml" --threads "$node_threads" \
        --mesh-certificate "$work/b.crt" --mesh-key "$work/b.key" --mesh-bundle "$work/ca.crt" \
        --inbound "127.0.0.1:$w_inbound" --inbound-allow "127.0.0.1:$demo_port" --inbound-allow "127.0.0.1:$bulk_port" \
        >"$work/weft-b.out" 2>>"$work/weft-b.err" &
    pids+=($!)
    node_b[weft-tunnel]=$!
    wait_line "$work/weft-b.out" '^ready' "${node_b[weft-tunnel]}" || { cat "$work/weft-b.out" "$work/weft-b.err" >&2; echo "weft node B did not print 'ready'" >&2; exit 1; }
    w_inbound=$(sed -n 's/^ready.* inbound=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$work/weft-b.out")
    [ -n "$w_inbound" ] || { cat "$work/weft-b.out" >&2; echo "no inbound=127.0.0.1:PORT in node B's ready line" >&2; exit 1; }
    tls_port[weft-tunnel]=$w_inbound
    {
        echo "# node A: the equivalent of HAProxy node A; each backend reached through node B's tunnel"
        echo "listeners:"
        for l in "demo $w_a_demo $demo_port" "bulk $w_a_bulk $bulk_port"; do
            set -- $l
            echo "  - name: $1"
            echo "    address: 127.0.0.1"
            echo "    port: $2"
            echo "    connectTimeoutMs: 1000"
            echo "    idleTimeoutMs: 30000"
            echo "    maxConnections: $max_conns"
            echo "    connectAttempts: 3"
            echo "    backends:"
            echo "      - address: 127.0.0.1"
            echo "        port: $3"
            echo "        tunnel: {address: \"127.0.0.1:$w_inbound\", identity: \"spiffe://bench.local/node/b\"}"
        done
    } >"$work/weft-a.yaml"
    "$weft" proxy --config "$work/weft-a.yaml" --threads "$node_threads" \
        --mesh-certificate "$work/a.crt" --mesh-key "$work/a.key" --mesh-bundle "$work/ca.crt" \
        >"$work/weft-a.out" 2>>"$work/weft-a.err" &
    pids+=($!)
    node_a[weft-tunnel]=$!
    wait_line "$work/weft-a.out" '^ready' "${node_a[weft-tunnel]}" || { cat "$work/weft-a.out" "$work/weft-a.err" >&2; echo "weft node A did not print 'ready'" >&2; exit 1; }
}
start_target() { case "$1" in haproxy-tls) start_haproxy ;; weft-tunnel) start_weft ;; esac; }
restart_target() {
    [ "$1" != direct ] || return 0
    stop_pids "${node_a[$1]}" "${node_b[$1]}"
    forget_pids "${node_a[$1]}" "${node_b[$1]}"
    start_target "$1"
}
for t in $targets; do start_target "$t"; done

answers() { # URL: "200" when GET answers 200 within 3 s, else curl's code and error
    curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "$1" 2>&1 | tr '\n' ' ' || true
}
# Sanity: every path answers GET / with the backend's JSON, and the whole file comes through (this also
# brings the file into the page cache). TLS version and cipher of node B's ports, as openssl sees them.
for t in $targets; do
    body=$(curl -sS --max-time 5 "${url[$t]}" || true)
    grep -q '"replica":"b1"' <<<"$body" || { echo "$t: ${url[$t]} did not answer with weft-demo's JSON: $body" >&2; exit 1; }
    got=$(curl -sS --max-time 120 -o /dev/null -w '%{http_code} %{size_download}' "${bulk_url[$t]}" || true)
    [ "$got" = "200 $((bulk_mib * 1048576))" ] || { echo "$t: ${bulk_url[$t]}: $got, expected 200 and $((bulk_mib * 1048576)) bytes" >&2; exit 1; }
    tls=""
    if [ -n "${tls_port[$t]:-}" ]; then
        tls=$(openssl s_client -connect "127.0.0.1:${tls_port[$t]}" -cert "$work/a.crt" -key "$work/a.key" -CAfile "$work/ca.crt" \
            -ciphersuites "$suites" </dev/null 2>/dev/null | grep -E '^(New|Verify return code)' | tr '\n' ' ' || true)
        echo "$t: $tls" >>"$res/tls.txt"
        tls="; node B's port: $tls"
    fi
    log "$t: GET / and the $bulk_mib MiB download OK$tls"
done

# --- noise ------------------------------------------------------------------------------------------
wait_quiet

# --- measurements -----------------------------------------------------------------------------------
runs=0 noisy_runs=0
declare -A last_run
: >"$res/incidents.txt"
ensure_up() { # PHASE TARGET REP: before a run, the path must answer GET / with 200; otherwise it is
    # recorded as an incident and the target's nodes are restarted (a stuck path would spoil every run after)
    local got
    got=$(answers "${url[$2]}")
    [ "$got" = 200 ] && return 0
    echo "before $1 #$3 (last run: ${last_run[$2]:-none}): $2 did not answer GET / (curl: $got); both nodes restarted" >>"$res/incidents.txt"
    log "WARNING: $2 did not answer GET / before $1 #$3 (last run: ${last_run[$2]:-none}; curl: $got); restarting its nodes"
    restart_target "$2"
    got=$(answers "${url[$2]}")
    [ "$got" = 200 ] || { echo "  ... and not after the restart either (curl: $got)" >>"$res/incidents.txt"; log "WARNING: still not answering"; }
}
sample_mid() { # PHASE TARGET REP DELAY: mid-run, the TLS connections from node A to node B (and HAProxy B's TLS counters)
    sleep "$4"
    ss -Htn state established "( dport = :${tls_port[$2]} )" | wc -l >"$res/$1/$2.$3.conns"
    [ "$2" != haproxy-tls ] || haproxy_info "$work/haproxy-b.sock" >"$res/$1/$2.$3.info-mid"
}
ticks_of() { # PID...: their CPU ticks together (a process that is gone counts 0)
    local sum=0 p
    for p in "$@"; do [ -r "/proc/$p/stat" ] && sum=$((sum + $(cpu_ticks "$p"))); done
    echo "$sum"
}
measure() { # PHASE TARGET REP CPU MID_DELAY OUT CMD...: CMD's stdout and stderr to OUT; noise, CPU time of
    # TARGET's nodes (CPU "nodes": both, "node-b": the TLS server only) and mid-run samples to $res/PHASE/TARGET.REP.*
    local phase=$1 t=$2 rep=$3 cpu=$4 mid=$5 out=$6 cpu_pids
    shift 6
    local before after c0 c1 s0 s1 o0 o1 w0 w1 other rc=0
    ensure_up "$phase" "$t" "$rep" # may restart the nodes: their PIDs are read after it
    [ "$t" != haproxy-tls ] || haproxy_info "$work/haproxy-b.sock" >"$res/$phase/$t.$rep.info-before"
    if [ "$cpu" = node-b ]; then cpu_pids=${node_b[$t]:-}; else cpu_pids=$(echo ${node_a[$t]:-} ${node_b[$t]:-}); fi
    before=$(builders)
    c0=$(ticks_of $cpu_pids)
    s0=$(system_busy) o0=$(our_ticks) w0=$(date +%s.%N)
    if [ "$mid" != 0 ] && [ "$t" != direct ]; then
        sample_mid "$phase" "$t" "$rep" "$mid" &
        sampler=$!
    fi
    "$@" >"$out" 2>&1 || rc=$?
    if [ -n "$sampler" ]; then wait "$sampler" || true; sampler=""; fi
    s1=$(system_busy) o1=$(our_ticks) w1=$(date +%s.%N)
    c1=$(ticks_of $cpu_pids)
    [ -z "$cpu_pids" ] || awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.3f\n", (b - a) / hz }' >"$res/$phase/$t.$rep.cpu"
    awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f\n", b - a }' >"$res/$phase/$t.$rep.wall"
    [ "$t" != haproxy-tls ] || haproxy_info "$work/haproxy-b.sock" >"$res/$phase/$t.$rep.info-after"
    after=$(builders)
    other=$(other_cpu "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
    echo "$before $after $other" >"$res/noise/$phase.$t.$rep"
    runs=$((runs + 1))
    last_run[$t]="$phase #$rep"
    if [ "$before" -gt 0 ] || [ "$after" -gt 0 ] || [ "$other" -gt "$noise_threshold" ]; then
        noisy_runs=$((noisy_runs + 1))
    fi
    [ $rc = 0 ] || log "WARNING: $phase $t rep $rep exited with $rc"
    return 0
}
wrk_line() { grep -o 'Requests/sec:.*' "$1" | tr -s ' ' || echo failed; grep -o 'Socket errors:.*\|Non-2xx.*' "$1" || true; }

log "warm-up: 2 s of wrk per target (not recorded)"
for t in $targets; do bounded 20 wrk -t$wrk_threads -c$wrk_conns -d2s "${url[$t]}" >/dev/null; done

log "1/6 throughput, keep-alive: wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp_ka "$t" "$rep" nodes $((tp_duration / 2)) "$res/tp_ka/$t.$rep.wrk" bounded $((tp_duration + 30)) \
            wrk -t$wrk_threads -c$wrk_conns -d${tp_duration}s --timeout 2s "${url[$t]}"
        log "  $t #$rep: $(wrk_line "$res/tp_ka/$t.$rep.wrk" | tr '\n' ' ')"
    done
done

log "2/6 single-stream download: curl of $bulk_mib MiB, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure bulk "$t" "$rep" nodes 0 "$res/bulk/$t.$rep.curl" bounded 150 \
            curl -sS --max-time 120 -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "${bulk_url[$t]}"
        log "  $t #$rep: $(awk 'NF == 3 && $3 > 0 { printf "%s, %d bytes in %.2f s = %.0f MiB/s", $1, $2, $3, $2 / $3 / 1048576; next } { print }' "$res/bulk/$t.$rep.curl" | tr '\n' ' ')"
    done
done

# Fixed rates, as bench/proxy/run.sh: 15 % of the direct wrk throughput, capped at 35 % of the slowest
# path's, the same for all targets of the run.
pick_rate() { # PHASE FRACTION -> req/s
    local phase=$1 frac=$2 rate="" m t
    for t in $targets; do
        m=$(python3 "$here/report.py" median-rps "$res/$phase/$t".*.wrk)
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
ka_clients=$((rate_ka / 100))

log "3/6 latency, keep-alive at $rate_ka req/s: h2load --h1 -c$ka_clients --rps=100 (${lat_duration}s, first ${latency_warmup}s dropped), $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        rm -f "$res/lat_ka/$t.$rep.log"
        measure lat_ka "$t" "$rep" nodes 0 "$res/lat_ka/$t.$rep.out" bounded $((lat_duration * 3 + 30)) \
            h2load --h1 -t1 -c$ka_clients -r1 --rate-period=1ms --rps=100 -m1 -n$((rate_ka * lat_duration)) -N5s \
            --log-file="$res/lat_ka/$t.$rep.log" "${url[$t]}"
        log "  $t #$rep: $(grep -E '^requests:' "$res/lat_ka/$t.$rep.out" || echo failed)"
    done
done

hs_targets=""
has haproxy-tls && hs_targets+="haproxy-tls "
has weft-tunnel && hs_targets+="weft-tunnel "
if [ -n "$hs_targets" ]; then
    log "4/6 handshakes on node B's TLS port: openssl s_time -new -tls1_3 -time $hs_duration, client certificate a.crt, $reps_tp repetitions"
    for rep in $(seq 1 "$reps_tp"); do
        for t in $(targets=$hs_targets rotated "$rep"); do
            if [ "$t" = haproxy-tls ]; then port=$hs_port_haproxy; else port=${tls_port[$t]}; fi
            measure hs "$t" "$rep" node-b 0 "$res/hs/$t.$rep.out" bounded $((hs_duration + 30)) \
                openssl s_time -connect "127.0.0.1:$port" -new -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 \
                -cert "$work/a.crt" -key "$work/a.key" -CAfile "$work/ca.crt" -time "$hs_duration"
            log "  $t #$rep: $(grep -E 'connections in [0-9]+ real' "$res/hs/$t.$rep.out" || echo failed)"
        done
    done
fi

log "5/6 throughput, new connection per request: wrk ... -H 'Connection: close' -d${tpc_duration}s, $reps_tp repetitions"
for rep in $(seq 1 "$reps_tp"); do
    for t in $(rotated "$rep"); do
        measure tp_close "$t" "$rep" nodes "$(awk -v d="$tpc_duration" 'BEGIN { print d / 2 }')" "$res/tp_close/$t.$rep.wrk" \
            bounded $((tpc_duration + 30)) \
            wrk -t$wrk_threads -c$wrk_conns -d${tpc_duration}s --timeout 2s -H 'Connection: close' "${url[$t]}"
        log "  $t #$rep: $(wrk_line "$res/tp_close/$t.$rep.wrk" | tr '\n' ' ')"
    done
done

[ -n "$rate_new" ] || rate_new=$(pick_rate tp_close $new_fraction)
[ "$rate_new" -ge 1 ] || rate_new=1
if [ "$rate_new" -ge 1000 ]; then
    new_k=$((rate_new / 1000)) new_period=1
else
    new_k=1 new_period=$(((1000 + rate_new - 1) / rate_new))
fi
rate_new=$((new_k * 1000 / new_period))

log "6/6 latency, new connection per request at $rate_new conn/s: h2load --h1 -r$new_k --rate-period=${new_period}ms -n=-c (${lat_duration}s), $reps_lat repetitions"
for rep in $(seq 1 "$reps_lat"); do
    for t in $(rotated "$rep"); do
        rm -f "$res/lat_new/$t.$rep.log"
        n=$((rate_new * lat_duration))
        measure lat_new "$t" "$rep" nodes 0 "$res/lat_new/$t.$rep.out" bounded $((lat_duration * 3 + 30)) \
            h2load --h1 -t1 -c$n -n$n -r$new_k --rate-period=${new_period}ms -m1 -N5s \
            --log-file="$res/lat_new/$t.$rep.log" "${url[$t]}"
        log "  $t #$rep: $(grep -E '^requests:' "$res/lat_new/$t.$rep.out" || echo failed)"
    done
done
for t in $targets; do
    got=$(answers "${url[$t]}")
    [ "$got" = 200 ] || echo "after the last run (${last_run[$t]:-none}): $t did not answer GET / (curl: $got)" >>"$res/incidents.txt"
done

# --- report -----------------------------------------------------------------------------------------
{
    echo "date=$(date -u '+%F %H:%M') UTC"
    echo "cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
    echo "cores=$cores"
    echo "mem_gib=$(free -g | awk '/Mem:/{print $2}')"
    echo "kernel=$(uname -sr)"
    echo "haproxy=$(haproxy -v | head -n1 | cut -d' ' -f1-3)"
    echo "openssl=$(openssl version | cut -d' ' -f1-2)"
    echo "wrk=$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "h2load=$(h2load --version | head -n1)"
    echo "python=$(python3 --version)"
    echo "weft_bin=$weft"
    case "$weft" in */debug/*) echo "weft_debug=1" ;; esac
    echo "weft_commit=$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- Sources Package.swift 2>/dev/null)" ] || echo " + uncommitted changes under Sources/")$([ -z "$weft_bin" ] || echo " (checkout; the binary was given with --weft-bin)")"
    echo "swift=$(swift --version 2>/dev/null | grep -o 'Swift version [0-9.]*' | head -n1)"
    echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "targets=$targets"
    echo "node_threads=$node_threads"
    echo "ssl_reuse=$ssl_reuse"
    echo "wrk_args=-t$wrk_threads -c$wrk_conns"
    echo "reps_tp=$reps_tp"
    echo "reps_lat=$reps_lat"
    echo "tp_duration_s=$tp_duration"
    echo "tpc_duration_s=$tpc_duration"
    echo "lat_duration_s=$lat_duration"
    echo "latency_warmup_s=$latency_warmup"
    echo "hs_duration_s=$hs_duration"
    echo "bulk_mib=$bulk_mib"
    echo "rate_ka=$rate_ka"
    echo "rate_new=$rate_new"
    echo "runs=$runs"
    echo "noisy_runs=$noisy_runs"
    echo "noise_threshold=$noise_threshold"
    echo "quiet_note=$quiet_note"
} >"$res/meta.env"
python3 "$here/report.py" table "$res"
exit 0
