#!/usr/bin/env bash
# Runs sockeye against real clients: socket.io-client (Node), headless Chromium on the example
# page (playwright-core), python-socketio and rust_socketio. One command:
#
#   tests/interop/run.sh [--build] [node] [browser] [python] [rust]     (no suite names: all)
#
# It installs the clients (setup.sh), builds target/debug/sockeye if it is missing (or always with
# --build; SOCKEYE_BIN picks another binary), starts one server per line of scenarios.txt on a free
# port of 127.0.0.1, runs the suites, stops every server it started by PID, and ends with the line
# `interop: N passed, M failed`. Exit status 0 only when nothing failed and something passed.
# Logs and reports are in tests/interop/.results/.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
results="$here/.results"
mkdir -p "$results"
rm -f "$results"/server-*.log "$results"/*.tap "$results"/*.xml "$results"/*.out "$results/tokens.txt"

passed=0
failed=0
pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + $1)); }
say() { printf 'interop: %s\n' "$*" >&2; }
finish() {
  echo "interop: $passed passed, $failed failed"
  if ((failed > 0 || passed == 0)); then exit 1; fi
  exit 0
}

build=0
suites=()
for arg in "$@"; do
  case $arg in
    --build) build=1 ;;
    node | browser | python | rust) suites+=("$arg") ;;
    *) echo "usage: $0 [--build] [node] [browser] [python] [rust]" >&2; exit 2 ;;
  esac
done
((${#suites[@]})) || suites=(node browser python rust)
want() { [[ " ${suites[*]} " == *" $1 "* ]]; }

# --- clients and the server binary -------------------------------------------------------------
if ! bash "$here/setup.sh"; then
  say "setup.sh failed: no suite can run"
  fail 1
  finish
fi

if [[ -n ${SOCKEYE_BIN:-} ]]; then
  bin=$SOCKEYE_BIN
else
  bin="$root/target/debug/sockeye"
  if ((build)) || [[ ! -x $bin ]]; then
    say "cargo build -p sockeye-server --bin sockeye"
    if ! (cd "$root" && cargo build -p sockeye-server --bin sockeye); then
      say "building the sockeye binary failed"
      fail 1
      finish
    fi
  fi
fi
if [[ ! -x $bin ]]; then
  say "no sockeye binary at $bin"
  fail 1
  finish
fi
say "server binary: $bin ($(date -u -r "$bin" '+built %Y-%m-%d %H:%M UTC'))"

secret=${SOCKEYE_TEST_SECRET:-sockeye-interop-test-secret-0123456789abcdef}
keys=${SOCKEYE_INTEROP_KEYS:-$here/.keys}

# --- scenario servers ---------------------------------------------------------------------------
pids=()
names=()
stop_servers() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  pids=()
}
trap stop_servers EXIT
trap 'stop_servers; exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The servers get an environment without SOCKEYE_* and PORT: only their flags configure them.
unset_args=()
for v in $(compgen -e); do
  [[ $v == SOCKEYE_* || $v == PORT ]] && unset_args+=(-u "$v")
done

start_server() { # name scheme flags...
  local name=$1 scheme=$2
  shift 2
  local port log pid url
  port=$(free_port)
  log="$results/server-$name.log"
  # Debug logs: the token check at the end then covers more than the default level.
  env "${unset_args[@]}" RUST_LOG="${SOCKEYE_INTEROP_LOG:-debug}" "$bin" --host 127.0.0.1 --port "$port" "$@" >"$log" 2>&1 &
  pid=$!
  url="$scheme://127.0.0.1:$port"
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "server '$name' exited before listening: $bin --host 127.0.0.1 --port $port $*"
      sed 's/^/    /' "$log" | tail -20 >&2
      fail 1
      return 1
    fi
    if curl -sk -o /dev/null --max-time 1 "$url/healthz"; then
      pids+=("$pid")
      names+=("$name")
      export "SOCKEYE_URL_${name^^}=$url"
      say "server '$name' (pid $pid) at $url"
      return 0
    fi
    sleep 0.1
  done
  say "server '$name' did not answer HTTP at $url within 20 s"
  kill -KILL "$pid" 2>/dev/null
  fail 1
  return 1
}

set -f # flags may hold a literal '*'
while read -r name scheme rest; do
  [[ -z $name || $name == \#* ]] && continue
  rest=${rest//\{SECRET\}/$secret}
  rest=${rest//\{KEYS\}/$keys}
  # shellcheck disable=SC2086 # flags are split on whitespace on purpose
  start_server "$name" "$scheme" $rest
done <"$here/scenarios.txt"
set +f

export SOCKEYE_BIN=$bin SOCKEYE_TEST_SECRET=$secret SOCKEYE_INTEROP_KEYS=$keys
export SOCKEYE_INTEROP_TOKENS="$results/tokens.txt"
: >"$SOCKEYE_INTEROP_TOKENS"

# --- suites -------------------------------------------------------------------------------------
# Node's test runner with the spec reporter, copied to a file whose summary lines are counted.
node_suite() { # label dir
  local label=$1 dir=$2 out="$results/$1.out"
  say "suite: $label (node --test $dir/)"
  (cd "$here/node" && node --test --test-timeout=120000 --test-reporter=spec "$dir/") 2>&1 | tee "$out"
  local p f c s t
  p=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -1)
  f=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -1)
  c=$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$out" | tail -1)
  s=$(sed -n 's/^ℹ skipped \([0-9]*\)$/\1/p' "$out" | tail -1)
  t=$(sed -n 's/^ℹ todo \([0-9]*\)$/\1/p' "$out" | tail -1)
  if [[ -z $p || -z $f ]]; then
    say "$label: no summary from node --test"
    fail 1
    return
  fi
  # Nothing may be skipped silently: skipped, todo and cancelled tests count as failed.
  say "$label: ${p} passed, ${f} failed, ${c:-0} cancelled, ${s:-0} skipped"
  pass "$p"
  fail $((f + ${c:-0} + ${s:-0} + ${t:-0}))
}

python_suite() {
  local xml="$results/python.xml"
  say "suite: python (pytest with python-socketio)"
  "$here/python/.venv/bin/python" -m pytest -p no:cacheprovider -v --junitxml="$xml" "$here/python"
  if [[ ! -f $xml ]]; then
    say "python: no report from pytest"
    fail 1
    return
  fi
  local counts
  counts=$("$here/python/.venv/bin/python" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = failures = 0
for s in suites:
    n = int(s.get("tests", 0))
    bad = int(s.get("failures", 0)) + int(s.get("errors", 0)) + int(s.get("skipped", 0))
    tests += n
    failures += bad
print(tests - failures, failures)
PY
)
  read -r p f <<<"$counts"
  say "python: $p passed, $f failed"
  pass "$p"
  fail "$f"
}

rust_suite() {
  local url=${SOCKEYE_URL_DEFAULT:-}
  say "suite: rust (rust_socketio)"
  if [[ -z $url ]]; then
    say "rust: the default server is not running"
    fail 1
    return
  fi
  local a b bad out
  a=$(cd "$here/node" && node lib/mint.js rust-alice) || { fail 1; return; }
  b=$(cd "$here/node" && node lib/mint.js rust-bob) || { fail 1; return; }
  bad=$(cd "$here/node" && SOCKEYE_TEST_SECRET=not-the-server-secret-0123456789abcdef node lib/mint.js rust-mallory) || { fail 1; return; }
  out="$results/rust.out"
  timeout 120 "$here/rust-client/target/debug/sockeye-interop-rust-client" "$url" "$a" "$b" "$bad" | tee "$out"
  local rc=${PIPESTATUS[0]} p f
  p=$(grep -c '^ok - ' "$out")
  f=$(grep -c '^not ok - ' "$out")
  if ((rc != 0 && f == 0)); then f=1; fi
  say "rust: $p passed, $f failed (exit $rc)"
  pass "$p"
  fail "$f"
}

want node && node_suite node test
want browser && node_suite browser browser
want python && python_suite
want rust && rust_suite

# --- after the suites: every server still up, and no token in any log ----------------------------
for i in "${!pids[@]}"; do
  if kill -0 "${pids[$i]}" 2>/dev/null; then
    pass 1
  else
    say "FAILED: server '${names[$i]}' (pid ${pids[$i]}) is gone: nothing a client sends may crash it"
    tail -20 "$results/server-${names[$i]}.log" >&2
    fail 1
  fi
done
stop_servers

if [[ -s $SOCKEYE_INTEROP_TOKENS ]]; then
  if leaked=$(grep -F -l -f "$SOCKEYE_INTEROP_TOKENS" "$results"/server-*.log 2>/dev/null); then
    say "FAILED: a test token appears in the server logs: $leaked"
    fail 1
  else
    say "no test token appears in the server logs"
    pass 1
  fi
fi

finish
