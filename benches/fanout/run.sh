#!/usr/bin/env bash
# Fan-out benchmark, one command: builds sockeye, the load generator and the peer servers (Node
# socket.io 4.x, socketioxide), runs each server in turn on the same scenarios, and writes
# benches/fanout/results/latest.jsonl (one report per run) and latest.md (medians of the clean
# runs, with sockeye's ratios to each peer); --quick writes quick.jsonl and quick.md instead.
#
#   benches/fanout/run.sh              full run (about 15 minutes)
#   benches/fanout/run.sh --quick      smoke run for CI (about 1 minute)
#
# Options:
#   --servers LIST     comma-separated, from sockeye,socketioxide,node (default: all three)
#   --reps N           repetitions of each scenario (default 3; 1 with --quick)
#   --noise-max CORES  runs during which other processes used more CPU are left out of the
#                      medians (default 0.25 cores)
#   --scenarios LIST   comma-separated scenario names to run (default: all of the mode's)
#   --out NAME         write results/NAME.jsonl and NAME.md (default: latest; quick with --quick)
#   --no-build         use the binaries already built
#
# Every server listens on 127.0.0.1 only and all load goes to loopback. Each server is started
# fresh for each run and stopped by its PID; nothing else is touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RESULTS="$HERE/results"
LOGS="$RESULTS/logs"

QUICK=0
SERVERS="sockeye,socketioxide,node"
REPS=""
NOISE_MAX="0.25"
BUILD=1
ONLY=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --servers) SERVERS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --noise-max) NOISE_MAX="$2"; shift ;;
    --scenarios) ONLY="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# Budget of re-runs for noisy runs.
if [ "$QUICK" = 1 ]; then RETRIES=2; else RETRIES=10; fi
if [ -z "$REPS" ]; then
  if [ "$QUICK" = 1 ]; then REPS=1; else REPS=3; fi
fi

log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }

# Thousands of sockets on each side: raise the open-file limit as far as allowed.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi
log "open-file limit $(ulimit -n)"

FANOUT="$ROOT/target/release/fanout"
SOCKEYE="$ROOT/target/release/sockeye"
SIOX="$HERE/peers/socketioxide/target/release/fanout-peer-socketioxide"
NODE_PEER="$HERE/peers/node/server.js"

has_server() { case ",$SERVERS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
drop_server() { SERVERS="$(echo ",$SERVERS," | sed "s/,$1,/,/; s/^,//; s/,\$//")"; }

if [ "$BUILD" = 1 ]; then
  log "building the load generator (release)"
  (cd "$ROOT" && cargo build --release --quiet -p sockeye-benches --bin fanout)
  if has_server sockeye; then
    log "building sockeye (release)"
    if ! (cd "$ROOT" && cargo build --release --quiet -p sockeye-server --bin sockeye); then
      log "sockeye did not build: leaving it out"
      drop_server sockeye
    fi
  fi
  if has_server socketioxide; then
    log "building the socketioxide peer (release, own workspace)"
    (cd "$HERE/peers/socketioxide" && cargo build --release --quiet)
  fi
  if has_server node; then
    log "installing the Node peer (npm ci)"
    (cd "$HERE/peers/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
for s in sockeye socketioxide node; do
  if has_server "$s"; then
    case "$s" in
      sockeye) bin="$SOCKEYE" ;;
      socketioxide) bin="$SIOX" ;;
      node) bin="$NODE_PEER" ;;
    esac
    if [ ! -e "$bin" ]; then log "$s: $bin missing: leaving it out"; drop_server "$s"; fi
  fi
done
[ -x "$FANOUT" ] || { log "load generator missing: $FANOUT"; exit 1; }
[ -n "$SERVERS" ] || { log "no server to run"; exit 1; }
log "servers: $SERVERS; repetitions: $REPS"

# A development secret for sockeye (32+ bytes); the generator mints its tokens with it.
SECRET="fanout-bench-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"

# name|generator arguments
if [ "$QUICK" = 1 ]; then
  SCENARIOS=(
    "idle-500|-n 500 -m 0"
    "fanout-500-10hz|-n 500 -m 30 --rate 10"
    "saturate-500|-n 500 -m 10000000 --rate 0 --window 64 --send-seconds 3"
  )
else
  SCENARIOS=(
    "idle-5k|-n 5000 -m 0"
    "fanout-1k-10hz|-n 1000 -m 100 --rate 10"
    "fanout-5k-10hz|-n 5000 -m 100 --rate 10"
    "saturate-1k|-n 1000 -m 10000000 --rate 0 --window 64 --send-seconds 8"
    "burst-1k|-n 1000 -m 1000 --rate 0 --window 1000000000 --drain-seconds 20"
  )
fi
BYTES=64

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then stop_server; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() { # name port log
  local name="$1" port="$2" logfile="$3"
  case "$name" in
    sockeye)
      "$SOCKEYE" --host 127.0.0.1 --port "$port" --rate-limit 0 --max-connections-per-ip 0 \
        --jwt-secret "$SECRET" >"$logfile" 2>&1 &
      ;;
    socketioxide)
      PORT="$port" HOST=127.0.0.1 MAX_BUFFER_SIZE=65536 "$SIOX" >"$logfile" 2>&1 &
      ;;
    socketioxide-defaults)
      PORT="$port" HOST=127.0.0.1 MAX_BUFFER_SIZE=128 "$SIOX" >"$logfile" 2>&1 &
      ;;
    node)
      PORT="$port" HOST=127.0.0.1 node "$NODE_PEER" >"$logfile" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "$name did not start on port $port (see $logfile)"
  stop_server
  return 1
}

stop_server() {
  local pid="$SERVER_PID"
  SERVER_PID=""
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

mkdir -p "$RESULTS" "$LOGS"
# A smoke run must not replace the published results.
if [ -z "$OUT" ]; then
  if [ "$QUICK" = 1 ]; then OUT=quick; else OUT=latest; fi
fi
JSONL_TMP="$RESULTS/$OUT.jsonl.tmp"
: >"$JSONL_TMP"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
run_index=0
IFS=',' read -r -a SERVER_LIST <<<"$SERVERS"

for rep in $(seq 1 "$REPS"); do
  for entry in "${SCENARIOS[@]}"; do
    scenario="${entry%%|*}"
    if [ -n "$ONLY" ]; then
      case ",$ONLY," in *",$scenario,"*) ;; *) continue ;; esac
    fi
    read -r -a gen_args <<<"${entry#*|}"
    servers=("${SERVER_LIST[@]}")
    # socketioxide at its default buffer (128 packets), for the record, on the burst only.
    if [ "$scenario" = burst-1k ] && has_server socketioxide; then
      servers+=(socketioxide-defaults)
    fi
    for server in "${servers[@]}"; do
      # A run that other processes made noisy is run once more right away (within a budget);
      # both stay in latest.jsonl, and the summary uses only the clean ones.
      for try in 1 2; do
        run_index=$((run_index + 1))
        tag="$server-$scenario-$rep-$try"
        # Ports below the kernel's ephemeral range (32768+), where the generator's own client
        # sockets live; try another if one is taken.
        started=0
        for attempt in 0 1 2; do
          port=$((23000 + run_index * 3 + attempt))
          if start_server "$server" "$port" "$LOGS/$tag.server.log"; then started=1; break; fi
        done
        [ "$started" = 1 ] || break
        log "run $run_index: $tag (server pid $SERVER_PID, port $port)"
        timeout 150 "$FANOUT" --url "http://127.0.0.1:$port" --label "$server" \
          --scenario "$scenario" --rep "$rep" --bytes "$BYTES" --server-pid "$SERVER_PID" \
          --jwt-secret "$SECRET" --max-seconds 120 "${gen_args[@]}" \
          >>"$JSONL_TMP" 2>"$LOGS/$tag.table.txt" || log "$tag: generator exited with $?"
        grep -E "deliveries |deliveries/s|latency|server CPU|per connection|other" \
          "$LOGS/$tag.table.txt" | sed 's/^/    /' >&2 || true
        stop_server
        other="$(tail -n 1 "$JSONL_TMP" | grep -o '"other_cpu_cores":[0-9.e+-]*' | cut -d: -f2)"
        if [ -n "$other" ] && awk -v o="$other" -v m="$NOISE_MAX" 'BEGIN { exit !(o > m) }' \
          && [ "$try" = 1 ] && [ "$RETRIES" -gt 0 ]; then
          RETRIES=$((RETRIES - 1))
          log "$tag: other processes used $other cores (> $NOISE_MAX): noisy, running it again"
          sleep 2
          continue
        fi
        break
      done
    done
  done
done

mv "$JSONL_TMP" "$RESULTS/$OUT.jsonl"

cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
siox_version="$(grep -A1 'name = "socketioxide"' "$HERE/peers/socketioxide/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
sio_version="$(node -p 'require(process.argv[1]).version' "$HERE/peers/node/node_modules/socket.io/package.json" 2>/dev/null || echo '?')"
{
  echo "# Fan-out benchmark results"
  echo
  echo "Written by \`benches/fanout/run.sh$([ "$QUICK" = 1 ] && echo ' --quick')\` (started $STARTED, finished $(date -u +%Y-%m-%dT%H:%M:%SZ))."
  echo
  echo "- commit: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (work tree modified)')"
  echo "- machine: $(nproc) cores ($cpu_model), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
  echo "- servers: sockeye (\`--rate-limit 0 --max-connections-per-ip 0\`, JWT auth on), socketioxide $siox_version (max_buffer_size 65536; \`socketioxide-defaults\`: 128), Node $(node --version 2>/dev/null) with socket.io $sio_version"
  echo "- generator: \`target/release/fanout\`, 2 threads, WebSocket only, ${BYTES}-byte contents; the sender is a room member, so deliveries = messages × (receivers + 1)"
  echo "- each cell: median of the clean runs (other normal-priority processes at most $NOISE_MAX cores during the send phase; niced background jobs, which yield to the benchmark, are reported but not counted); \`*\`: no clean run, median of all runs. Ratios are sockeye ÷ peer: above 1 is better for ↑ rows, below 1 is better for ↓ rows."
  echo
  "$FANOUT" --summarize "$RESULTS/$OUT.jsonl" --noise-max "$NOISE_MAX"
} >"$RESULTS/$OUT.md"
log "wrote $RESULTS/$OUT.md and $OUT.jsonl"
cat "$RESULTS/$OUT.md"
