#!/usr/bin/env bash
# Installs every real client the interop suites use, from the registries, through this script
# alone. Idempotent: a second run only checks. Fails loudly when anything cannot be installed.
#
#   - Debian packages (apt-get): chromium (when /usr/bin/chromium is missing), openssl, curl,
#     pkg-config and libssl-dev (rust_socketio links native-tls, i.e. OpenSSL).
#   - npm: `npm ci` in node/ (socket.io-client, ws, playwright-core; never a browser download).
#   - PyPI: a venv in python/.venv with python/requirements.txt.
#   - crates.io: builds rust-client/ (rust_socketio) with its own lockfile.
#   - Test keys in .keys/ (HS secrets live in the tests; RSA keys and a TLS certificate are made
#     here with openssl, never committed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: FAILED: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ----------------------------------------------------------------------------
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q 'install ok installed' || missing+=(libssl-dev)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is still missing after apt-get install chromium"
/usr/bin/chromium --version >&2 || die "/usr/bin/chromium does not run"

# --- Node: socket.io-client, ws, playwright-core -------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old: playwright-core needs 20 or newer"
lock_sum=$(sha256sum "$here/node/package-lock.json" | cut -d' ' -f1)
stamp="$here/node/node_modules/.sockeye-setup-stamp"
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" ]]; then
  say "npm ci in tests/interop/node"
  # playwright-core never downloads a browser; the variable makes sure nothing else tries either.
  (cd "$here/node" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) || die "npm ci failed"
  echo "$lock_sum" >"$stamp"
fi

# --- Python: python-socketio in a venv --------------------------------------------------------------
py=${PYTHON:-python3}
command -v "$py" >/dev/null 2>&1 || die "$py is not installed"
venv="$here/python/.venv"
if [[ ! -x $venv/bin/python ]]; then
  say "creating the venv tests/interop/python/.venv"
  "$py" -m venv "$venv" || die "python venv creation failed (Debian: apt-get install python3-venv)"
fi
req_sum=$(sha256sum "$here/python/requirements.txt" | cut -d' ' -f1)
stamp="$venv/.sockeye-setup-stamp"
if [[ ! -f $stamp || $(cat "$stamp") != "$req_sum" ]]; then
  say "pip install -r tests/interop/python/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/python/requirements.txt" \
    || die "pip install failed"
  echo "$req_sum" >"$stamp"
fi

# --- Test keys ----------------------------------------------------------------------------------------
keys="$here/.keys"
mkdir -p "$keys"
if [[ ! -f $keys/rs256-private.pem || ! -f $keys/rs256-public.pem ]]; then
  say "making RSA test keys in tests/interop/.keys"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rs256-private.pem" 2>/dev/null
  openssl pkey -in "$keys/rs256-private.pem" -pubout -out "$keys/rs256-public.pem"
  rm -f "$keys/jwks.json" # made from this key below
fi
if [[ ! -f $keys/other-private.pem ]]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/other-private.pem" 2>/dev/null
fi
if [[ ! -f $keys/es256-private.pem ]]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/es256-private.pem" 2>/dev/null
  openssl pkey -in "$keys/es256-private.pem" -pubout -out "$keys/es256-public.pem"
fi
if [[ ! -f $keys/ed25519-private.pem ]]; then
  openssl genpkey -algorithm ED25519 -out "$keys/ed25519-private.pem" 2>/dev/null
  openssl pkey -in "$keys/ed25519-private.pem" -pubout -out "$keys/ed25519-public.pem"
fi
if [[ ! -f $keys/jwks.json ]]; then
  # The RS256 public key as a JWKS with one key, kid "interop-rs256".
  node -e '
    const crypto = require("node:crypto");
    const fs = require("node:fs");
    const jwk = crypto.createPublicKey(fs.readFileSync(process.argv[1])).export({ format: "jwk" });
    fs.writeFileSync(process.argv[2], JSON.stringify({ keys: [{ ...jwk, kid: "interop-rs256", alg: "RS256", use: "sig" }] }, null, 2));
  ' "$keys/rs256-public.pem" "$keys/jwks.json" || die "could not write the test JWKS"
fi
if [[ ! -f $keys/tls-cert.pem || ! -f $keys/tls-key.pem ]]; then
  say "making a self-signed TLS certificate for 127.0.0.1 / localhost"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$keys/tls-key.pem" -out "$keys/tls-cert.pem" 2>/dev/null || die "openssl could not make the TLS certificate"
fi

# --- Rust: rust_socketio -------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo is not installed"
say "building tests/interop/rust-client (rust_socketio)"
cargo build --quiet --locked --manifest-path "$here/rust-client/Cargo.toml" || die "building the rust_socketio client failed"

say "ready: chromium, node clients, python venv, rust client, test keys"
