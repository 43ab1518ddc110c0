#!/usr/bin/env bash
# Builds Weft in release mode, starts a one-node server on 127.0.0.1 (port 0, temporary data dir),
# runs the control-plane benchmark against it, and stops it. Usage: bench/run.sh [extra args]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product weft >&2
swift build -c release --product weft-demo >&2
bin=$(swift build -c release --show-bin-path)
data=$(mktemp -d /tmp/weft-bench.XXXXXX)
out=$(mktemp)
"$bin/weft" server --data-dir "$data" --api-listen 127.0.0.1:0 --dns-listen 127.0.0.1:0 --dns-upstream none --tunnel-port 0 --node-name bench --log-level warning >"$out" 2>"$data/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data" "$out"' EXIT
for _ in $(seq 1 300); do grep -q '^ready ' "$out" && break; sleep 0.1; done
grep '^ready ' "$out" >&2
for _ in $(seq 1 300); do grep -q '^dns ' "$out" && break; sleep 0.1; done
dns_port=$(sed -n 's/^dns [^ ]*:\([0-9]*\) .*/\1/p' "$out")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); date: $(date -u +%F)"
python3 bench/control_plane.py --config "$data/admin.yaml" --dns-port "$dns_port" "$@"
