#!/usr/bin/env bash
# Runs every test of the project: the workspace's unit, property, doc and integration tests,
# the fuzz corpus replay, every benchmark once in test mode, and the real-client interop suites
# (npm socket.io-client, python-socketio, rust_socketio, headless Chromium) and the Redis cluster
# interop matrix (tests/cluster/run.sh), which install what they need themselves
# (tests/interop/setup.sh, tests/cluster/setup.sh).
#
# Usage: scripts/test-all.sh            # everything
#        SOCKEYE_SKIP_INTEROP=1 scripts/test-all.sh   # Rust tests only (say so when you report)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n=== %s\n' "$*"; }

step "cargo test (workspace)"
cargo test --workspace --all-features --locked

step "fuzz corpus and regression replay"
cargo test --manifest-path fuzz/Cargo.toml --locked

step "every benchmark once (--test)"
cargo bench -p sockeye-benches --locked -- --test

step "fan-out load generator smoke (benches/fanout/run.sh --quick, all three servers)"
benches/fanout/run.sh --quick
# Every sockeye run connected every receiver and lost nothing.
python3 - benches/fanout/results/quick.jsonl <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
mine = [r for r in runs if r["label"] == "sockeye"]
assert len(mine) == 3, f"expected 3 sockeye runs, got {len(mine)}"
for r in mine:
    assert r["connected"] == r["receivers"], f'{r["scenario"]}: {r["connected"]}/{r["receivers"]} connected'
    assert r["deliveries_lost"] == 0, f'{r["scenario"]}: {r["deliveries_lost"]} deliveries lost'
    assert r["deliveries_received"] == r["deliveries_expected"], r["scenario"]
print(f"fan-out smoke: {len(runs)} runs, sockeye lost nothing in {len(mine)}")
PY

if [ "${SOCKEYE_SKIP_INTEROP:-0}" = 1 ]; then
  echo "interop suites SKIPPED because SOCKEYE_SKIP_INTEROP=1" >&2
else
  step "real clients (tests/interop/run.sh)"
  cargo build -p sockeye-server --bin sockeye --locked
  tests/interop/run.sh

  # Cluster interop (issue 12): Node socket.io + @socket.io/redis-adapter nodes and sockeye nodes on
  # one Redis, checked by real clients (tests/cluster/README.md). The all-Node cells prove the
  # checker; the sockeye cells run once the cluster-node example exists.
  # Sockeye cells: classic mode always (the classic adapter is merged); sharded mode only with
  # SOCKEYE_CLUSTER_CELLS=all, because the sharded adapter is not merged yet (issue 12 note).
  step "cluster interop (tests/cluster/run.sh: all-Node cells, then classic sockeye cells)"
  tests/cluster/run.sh
  cargo build --release -p sockeye-server --example cluster-node --locked
  if [ "${SOCKEYE_CLUSTER_CELLS:-classic}" = all ]; then
    tests/cluster/run.sh --sockeye-only
  else
    echo "sharded sockeye cluster cells NOT run: the sharded adapter is not merged (issue 12); SOCKEYE_CLUSTER_CELLS=all runs them" >&2
    CLUSTER_MODES=classic tests/cluster/run.sh --sockeye-only
  fi
fi
