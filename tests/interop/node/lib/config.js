'use strict';
// Paths and settings shared by every Node suite and by run.sh (through the same scenarios file).

const fs = require('node:fs');
const path = require('node:path');

const INTEROP_DIR = path.resolve(__dirname, '..', '..');
const REPO_ROOT = path.resolve(INTEROP_DIR, '..', '..');
const KEYS_DIR = process.env.SOCKEYE_INTEROP_KEYS || path.join(INTEROP_DIR, '.keys');

// At least 32 bytes, as an HS256 secret should be. Tests only.
const SECRET = process.env.SOCKEYE_TEST_SECRET || 'sockeye-interop-test-secret-0123456789abcdef';
// A second secret of the same length for bad_signature.
const OTHER_SECRET = 'sockeye-interop-other-secret-9876543210fedcba';

const SOCKEYE_BIN = process.env.SOCKEYE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'sockeye');

/** Parses scenarios.txt into { name: { scheme, flags: [...] } } with placeholders filled in. */
function scenarios() {
  const text = fs.readFileSync(path.join(INTEROP_DIR, 'scenarios.txt'), 'utf8');
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [name, scheme, ...flags] = line.split(/\s+/);
    out[name] = {
      scheme,
      flags: flags.map((f) => f.replaceAll('{SECRET}', SECRET).replaceAll('{KEYS}', KEYS_DIR)),
    };
  }
  return out;
}

const readKey = (file) => fs.readFileSync(path.join(KEYS_DIR, file), 'utf8');

module.exports = { INTEROP_DIR, REPO_ROOT, KEYS_DIR, SECRET, OTHER_SECRET, SOCKEYE_BIN, scenarios, readKey };
