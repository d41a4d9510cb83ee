#!/usr/bin/env bash
# A local 3-master Redis Cluster on free 127.0.0.1 ports, for tests that need one (sharded pub/sub
# across masters, cluster-mode clients). Every process is stopped by its PID.
#
#   tests/cluster/redis-cluster.sh start [DIR]   # prints REDIS_CLUSTER_NODES=127.0.0.1:p1,...
#   tests/cluster/redis-cluster.sh stop  [DIR]
#   tests/cluster/redis-cluster.sh status [DIR]
#
# DIR (default tests/cluster/.redis-cluster) holds each master's nodes.conf, log, pid and the
# file `nodes` (host:port per line). Each port's cluster bus (port + 10000) is free too. start
# waits for `cluster_state:ok` on every master and fails loudly (stopping what it started) if not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-}
dir=${2:-$here/.redis-cluster}
masters=3
die() { printf 'redis-cluster: FAILED: %s\n' "$*" >&2; exit 1; }

free_port() {
  # A port that is free on 127.0.0.1 together with its cluster bus port (port + 10000).
  python3 - "$@" <<'PY'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    p = random.randint(20000, 55000)
    if p not in taken and p + 10000 not in taken and free(p) and free(p + 10000):
        print(p)
        sys.exit(0)
sys.exit("no free port pair")
PY
}

stop() {
  [[ -d $dir ]] || return 0
  local pidfile pid
  for pidfile in "$dir"/*/pid; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

case $cmd in
  start)
    command -v redis-server >/dev/null 2>&1 || die "redis-server is missing (tests/cluster/setup.sh installs it)"
    command -v redis-cli >/dev/null 2>&1 || die "redis-cli is missing"
    stop
    rm -rf "$dir"
    mkdir -p "$dir"
    trap 'stop; exit 1' ERR
    ports=()
    for i in $(seq "$masters"); do
      port=$(free_port "${ports[@]}") || die "no free port"
      ports+=("$port")
      mkdir -p "$dir/$port"
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 5000 \
        --save '' --appendonly no --protected-mode no --dir "$dir/$port" \
        --logfile "$dir/$port/redis.log" --daemonize no </dev/null >/dev/null 2>&1 &
      echo $! >"$dir/$port/pid"
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 100); do
        [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]] && break
        sleep 0.1
      done
      [[ $(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]] || die "master on $port did not start: $(tail -5 "$dir/$port/redis.log")"
    done
    nodes=()
    for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 \
      || die "redis-cli --cluster create failed: $(tail -5 "$dir/create.log")"
    for port in "${ports[@]}"; do
      ok=0
      for _ in $(seq 100); do
        if redis-cli -h 127.0.0.1 -p "$port" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; then ok=1; break; fi
        sleep 0.1
      done
      ((ok)) || die "master on $port never reached cluster_state:ok"
    done
    trap - ERR
    printf '%s\n' "${nodes[@]}" >"$dir/nodes"
    echo "REDIS_CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")"
    ;;
  stop)
    stop
    ;;
  status)
    [[ -f $dir/nodes ]] || { echo "no cluster in $dir"; exit 1; }
    while read -r node; do
      printf '%s %s\n' "$node" "$(redis-cli -h "${node%:*}" -p "${node#*:}" CLUSTER INFO 2>/dev/null | grep '^cluster_state' | tr -d '\r' || echo down)"
    done <"$dir/nodes"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
