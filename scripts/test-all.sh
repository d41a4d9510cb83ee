#!/usr/bin/env bash
# Runs every test of the project: the workspace's unit, property, doc and integration tests,
# the fuzz corpus replay, every benchmark once in test mode, and the real-client interop suites
# (npm socket.io-client, python-socketio, rust_socketio, headless Chromium), which install what
# they need themselves (tests/interop/setup.sh).
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

if [ "${SOCKEYE_SKIP_INTEROP:-0}" = 1 ]; then
  echo "interop suites SKIPPED because SOCKEYE_SKIP_INTEROP=1" >&2
else
  step "real clients (tests/interop/run.sh)"
  cargo build -p sockeye-server --bin sockeye --locked
  tests/interop/run.sh
fi
