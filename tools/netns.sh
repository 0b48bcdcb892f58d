#!/usr/bin/env bash
# Hosts on one machine for multi-host tests: N network namespaces NAME2..NAME(N+1),
# each with its own address 10.89.0.K/24 on a bridge NAME-br (10.89.0.1), so the
# processes started in them (`ip netns exec NAMEK …`) reach each other only over
# the bridge, as separate hosts do. Needs root and iproute2.
#   tools/netns.sh up [N] [NAME]     # default 2 namespaces named lsn2, lsn3
#   tools/netns.sh down [N] [NAME]
set -euo pipefail
cmd=${1:-up}; N=${2:-2}; NAME=${3:-lsn}
BR=$NAME-br; NET=10.89.0
[ "$(id -u)" -eq 0 ] || { echo "netns.sh: run as root" >&2; exit 1; }
case "$cmd" in
up)
  ip link show "$BR" >/dev/null 2>&1 || { ip link add "$BR" type bridge; ip addr add $NET.1/24 dev "$BR"; }
  ip link set "$BR" up
  for i in $(seq 2 $((N + 1))); do
    ns=$NAME$i
    ip netns list | grep -qw "$ns" || ip netns add "$ns"
    if ! ip link show "$NAME-v$i" >/dev/null 2>&1; then
      ip link add "$NAME-v$i" type veth peer name eth0 netns "$ns"
      ip netns exec "$ns" ip addr add $NET.$i/24 dev eth0
    fi
    ip link set "$NAME-v$i" master "$BR" up
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
  done ;;
down)
  for i in $(seq 2 $((N + 1))); do
    ip link del "$NAME-v$i" 2>/dev/null || true
    ip netns del "$NAME$i" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true ;;
*) echo "usage: netns.sh up|down [N] [NAME]" >&2; exit 2 ;;
esac
