#!/usr/bin/env bash
# Installs what the cluster checker needs, through this script alone; idempotent (a second run
# only checks) and loud when anything cannot be installed:
#   - redis-server and redis-cli (Debian `redis-server`, which pulls in `redis-tools`) when missing;
#   - `npm ci` in tests/cluster (socket.io 4.8.4, @socket.io/redis-adapter 8.3.0, redis 4.7.1,
#     socket.io-client 4.8.4, @socket.io/redis-emitter 5.1.0, pinned by package-lock.json).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'cluster setup: %s\n' "$*" >&2; }
die() { printf 'cluster setup: FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  say "installing redis-server (apt-get)"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install redis-server"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y redis-server || die "apt-get install redis-server failed"
  # The package starts a system instance on 6379; the checks never use it (they start their own).
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server is still missing"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is still missing"
redis_major=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
[[ -n $redis_major ]] && ((redis_major >= 7)) || die "redis-server $(redis-server --version) is too old: sharded mode needs Redis 7"

command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old (20 or newer)"

lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$here/node_modules/.sockeye-setup-stamp"
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" ]]; then
  say "npm ci in tests/cluster"
  (cd "$here" && npm ci --no-audit --no-fund) || die "npm ci failed"
  echo "$lock_sum" >"$stamp"
fi
(cd "$here" && node -e '
  const want = { "socket.io": "4.8.4", "@socket.io/redis-adapter": "8.3.0" };
  for (const [name, version] of Object.entries(want)) {
    const got = require(`${name}/package.json`).version;
    if (got !== version) { console.error(`${name} is ${got}, want ${version}`); process.exit(1); }
  }') || die "installed packages do not match the pins"
say "ready (redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), node $(node --version))"
