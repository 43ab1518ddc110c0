#!/usr/bin/env bash
# Simulated hosts for multi-node tests: network namespaces joined by veth pairs to a bridge that lives in a
# "switch" namespace of its own, so nothing is added to the machine's own namespace (no interface, route,
# NAT or firewall rule). The hosts' subnet exists only inside these namespaces and has no default route:
# no packet leaves them. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2.
#
#   hosts.sh up N PREFIX [--owner PID]   create PREFIX-sw and hosts PREFIX-h1 .. PREFIX-hN
#   hosts.sh down PREFIX                 kill every process in them, delete them (idempotent)
#   hosts.sh reap                        tear down runs whose owner process has died
#   hosts.sh exec PREFIX K CMD...        run CMD on host K (its network, its /etc/resolv.conf)
#   hosts.sh cut PREFIX K | heal PREFIX K   take host K's switch port down / up (a pulled cable)
#   hosts.sh kill PREFIX K               SIGKILL every process on host K (a host crash)
#   hosts.sh ip PREFIX K                 host K's address
#   hosts.sh list                        runs on this machine, with their owners
#
# Host K has `lo` up, eth0 with $WEFT_NETNS_SUBNET.K/24 (default 10.213.0.K), and an /etc/resolv.conf
# (bind-mounted by `ip netns exec`) that asks 127.0.0.1:53 on its own loopback and searches the
# default namespace of the cluster domain weft.internal, for a node agent run with --dns-listen
# 127.0.0.1:53. `up` first removes whatever an earlier run with the same PREFIX left behind, then reaps
# runs whose --owner has died (a crashed test); runs without an owner stay until `down`.
#
# What a run creates, and `down` removes:
#   network namespaces PREFIX-sw (bridge br0, ports p1..pN) and PREFIX-h1..PREFIX-hN (eth0 + lo)
#   /etc/netns/PREFIX-hK/resolv.conf            (read by `ip netns exec` only)
#   /run/weft-netns/PREFIX/                     (the run's record: owner, host count, subnet)
#   ${TMPDIR:-/tmp}/weft-netns/PREFIX/          (free for the run's data: server and agent directories)
# `down` also kills the replica processes and removes the replica namespaces that agents of the netns
# runtime recorded in the work directory (<node>/processes.json, <node>/pod-network.json).
set -Eeuo pipefail

STATE_ROOT=/run/weft-netns
SUBNET=${WEFT_NETNS_SUBNET:-10.213.0}

die() { echo "hosts.sh: $*" >&2; exit 1; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

check_prefix() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,19}$ ]] || die "PREFIX \"$1\" must be 1 to 20 of [a-z0-9-], starting with a letter or digit"
}

check_host() {
  [[ "$1" =~ ^[1-9][0-9]{0,2}$ ]] && (( $1 <= 250 )) || die "host \"$1\" must be a number from 1 to 250"
}

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces and veth pairs)"
  command -v ip >/dev/null || die "needs ip (iproute2)"
}

workdir() { echo "${TMPDIR:-/tmp}/weft-netns/$1"; }

# Namespaces that belong to PREFIX: exactly PREFIX-sw and PREFIX-h<digits>.
namespaces_of() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1-(sw|h[0-9]+)\$" || true
}

# The start time of PID (field 22 of /proc/PID/stat), to tell a live owner from a reused PID.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  echo "$stat" | awk '{print $20}'
}

kill_namespace_processes() {
  local ns=$1 pids tries=0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$pids" ] && return 0
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  while [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ] && (( tries < 100 )); do
    sleep 0.05; tries=$((tries + 1))
  done
}

# Replicas of the netns runtime live in network namespaces of their own, not the host's: kill the process
# groups the hosts' agents recorded (<workdir>/<node>/processes.json), if each leader still has its
# recorded start time (so a reused pid is never hit).
kill_recorded_replicas() {
  local ledger entry pid started
  for ledger in "$(workdir "$1")"/*/processes.json; do
    [ -f "$ledger" ] || continue
    for entry in $(grep -oE '\{[^{}]*\}' "$ledger" | tr -d ' ' || true); do
      pid=$(echo "$entry" | grep -oE '"pid":[0-9]+' | cut -d: -f2 || true)
      started=$(echo "$entry" | grep -oE '"startTime":[0-9]+' | cut -d: -f2 || true)
      [ -n "$pid" ] && [ -n "$started" ] || continue
      if [ "$(start_time "$pid" 2>/dev/null || true)" = "$started" ]; then
        kill -9 -- "-$pid" 2>/dev/null || true
      fi
    done
  done
}

# What the agents' netns runtime recorded for its replicas (<workdir>/<node>/pod-network.json): their
# namespaces' names under /run/netns and /etc/netns. Their interfaces go with the hosts' namespaces.
remove_recorded_sandboxes() {
  local book ns
  for book in "$(workdir "$1")"/*/pod-network.json; do
    [ -f "$book" ] || continue
    for ns in $(grep -oE '"weft-[0-9a-f]{10}"' "$book" | tr -d '"' | sort -u || true); do
      ip netns delete "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
      rm -rf "/etc/netns/$ns"
    done
  done
}

cmd_down() {
  local prefix=$1 ns
  check_prefix "$prefix"
  need_root
  for ns in $(namespaces_of "$prefix"); do
    kill_namespace_processes "$ns"
  done
  kill_recorded_replicas "$prefix"
  remove_recorded_sandboxes "$prefix"
  # Deleting a host's namespace deletes its veth pair; deleting the switch's deletes the bridge.
  for ns in $(namespaces_of "$prefix"); do
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "${STATE_ROOT:?}/$prefix" "$(workdir "$prefix")"
}

cmd_reap() {
  need_root
  local record prefix owner started
  for record in "$STATE_ROOT"/*/owner; do
    [ -f "$record" ] || continue
    prefix=$(basename "$(dirname "$record")")
    read -r owner started < "$record" || continue
    [ -n "$owner" ] || continue
    if [ "$(start_time "$owner" 2>/dev/null || true)" != "$started" ]; then
      echo "hosts.sh: reaping $prefix (owner $owner is gone)" >&2
      cmd_down "$prefix"
    fi
  done
}

cmd_up() {
  local count=$1 prefix=$2 owner=""
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --owner) owner=${2:-}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ "$count" =~ ^[1-9][0-9]{0,2}$ ]] && (( count <= 250 )) || die "N must be 1 to 250 hosts"
  check_prefix "$prefix"
  need_root
  [[ "$SUBNET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "WEFT_NETNS_SUBNET \"$SUBNET\" must be the first three octets, e.g. 10.213.0"

  cmd_down "$prefix"
  cmd_reap

  # The record comes first, so that a run interrupted from here on is found by `down` and `reap`.
  mkdir -p "$STATE_ROOT/$prefix" "$(workdir "$prefix")"
  if [ -n "$owner" ]; then
    started=$(start_time "$owner") || die "--owner $owner is not a running process"
    echo "$owner $started" > "$STATE_ROOT/$prefix/owner"
  else
    : > "$STATE_ROOT/$prefix/owner"
  fi
  echo "$count" > "$STATE_ROOT/$prefix/hosts"
  echo "$SUBNET" > "$STATE_ROOT/$prefix/subnet"

  trap 'cmd_down "$prefix"' ERR
  local switch="$prefix-sw" k ns
  ip netns add "$switch"
  ip -n "$switch" link set lo up
  ip -n "$switch" link add br0 type bridge
  ip -n "$switch" link set br0 up
  for k in $(seq 1 "$count"); do
    ns="$prefix-h$k"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Both ends are created inside namespaces: nothing appears in the machine's own.
    ip -n "$ns" link add eth0 type veth peer name "p$k" netns "$switch"
    ip -n "$switch" link set "p$k" master br0
    ip -n "$switch" link set "p$k" up
    ip -n "$ns" addr add "$SUBNET.$k/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "/etc/netns/$ns"
    printf 'nameserver 127.0.0.1\nsearch default.svc.weft.internal svc.weft.internal weft.internal\noptions ndots:5 timeout:1 attempts:2\n' \
      > "/etc/netns/$ns/resolv.conf"
  done
  trap - ERR
  echo "up $prefix hosts=$count subnet=$SUBNET.0/24 workdir=$(workdir "$prefix")"
}

cmd_list() {
  local dir prefix owner started state
  for dir in "$STATE_ROOT"/*/; do
    [ -d "$dir" ] || continue
    prefix=$(basename "$dir")
    read -r owner started < "$dir/owner" 2>/dev/null || true
    if [ -z "${owner:-}" ]; then state="no owner"
    elif [ "$(start_time "$owner" 2>/dev/null || true)" = "${started:-}" ]; then state="owner $owner"
    else state="owner $owner gone"; fi
    echo "$prefix hosts=$(cat "$dir/hosts" 2>/dev/null) subnet=$(cat "$dir/subnet" 2>/dev/null).0/24 $state"
  done
}

subnet_of() { cat "$STATE_ROOT/$1/subnet" 2>/dev/null || echo "$SUBNET"; }

[ $# -ge 1 ] || usage
command=$1; shift
case $command in
  up) [ $# -ge 2 ] || usage; cmd_up "$@" ;;
  down) [ $# -eq 1 ] || usage; cmd_down "$1" ;;
  reap) cmd_reap ;;
  list) cmd_list ;;
  exec)
    [ $# -ge 3 ] || usage
    check_prefix "$1"; check_host "$2"
    ns="$1-h$2"; shift 2
    exec ip netns exec "$ns" "$@" ;;
  cut|heal)
    [ $# -eq 2 ] || usage
    check_prefix "$1"; check_host "$2"; need_root
    ip -n "$1-sw" link set "p$2" "$([ "$command" = cut ] && echo down || echo up)" ;;
  kill)
    [ $# -eq 2 ] || usage
    check_prefix "$1"; check_host "$2"; need_root
    kill_namespace_processes "$1-h$2" ;;
  ip)
    [ $# -eq 2 ] || usage
    check_prefix "$1"; check_host "$2"
    echo "$(subnet_of "$1").$2" ;;
  *) usage ;;
esac
