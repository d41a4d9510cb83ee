'use strict';
// Test tokens, minted by hand with node:crypto so that every malformed variant the contract names
// (wrong algorithm, `alg: none`, missing or mistyped claims) can be built on purpose.

const crypto = require('node:crypto');
const fs = require('node:fs');

const HMAC = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
const RSA = { RS256: 'sha256', RS384: 'sha384', RS512: 'sha512' };
const PSS = { PS256: 'sha256', PS384: 'sha384', PS512: 'sha512' };
const EC = { ES256: 'sha256', ES384: 'sha384' };

const b64url = (value) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Seconds since the epoch, as JWT time claims count. */
const now = () => Math.floor(Date.now() / 1000);

let counter = 0;

/**
 * Signs `claims` into a compact JWT.
 * - `alg`: HS256/384/512 (with `secret`); RS*, PS*, ES256/384, EdDSA (with `key`, a PEM private
 *   key); or `none`.
 * - `header`: extra or overriding header fields.
 */
function sign(claims, { alg = 'HS256', secret, key, header = {} } = {}) {
  const head = b64url({ alg, typ: 'JWT', ...header });
  const body = b64url(claims);
  const input = `${head}.${body}`;
  let sig;
  if (alg === 'none') {
    sig = '';
  } else if (HMAC[alg]) {
    if (!secret) throw new Error(`jwt.sign: ${alg} needs a secret`);
    sig = crypto.createHmac(HMAC[alg], secret).update(input).digest('base64url');
  } else if (RSA[alg]) {
    if (!key) throw new Error(`jwt.sign: ${alg} needs a private key`);
    sig = crypto.sign(RSA[alg], Buffer.from(input), key).toString('base64url');
  } else if (PSS[alg]) {
    if (!key) throw new Error(`jwt.sign: ${alg} needs a private key`);
    const opts = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST };
    sig = crypto.sign(PSS[alg], Buffer.from(input), opts).toString('base64url');
  } else if (EC[alg]) {
    if (!key) throw new Error(`jwt.sign: ${alg} needs a private key`);
    // JWS wants the raw r || s form, not DER.
    sig = crypto.sign(EC[alg], Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  } else if (alg === 'EdDSA') {
    if (!key) throw new Error('jwt.sign: EdDSA needs a private key');
    sig = crypto.sign(null, Buffer.from(input), key).toString('base64url');
  } else {
    throw new Error(`jwt.sign: unsupported alg ${alg}`);
  }
  const token = `${input}.${sig}`;
  record(token);
  return token;
}

/**
 * The usual claims: a fresh unique `sub`, `iat` now and `exp` in an hour. `overrides` replaces
 * them; a value of `undefined` removes the claim.
 */
function claims(overrides = {}) {
  counter += 1;
  const base = { sub: `user-${process.pid}-${counter}`, iat: now(), exp: now() + 3600 };
  const out = { ...base, ...overrides };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

// Every token minted is written (its signature part) to SOCKEYE_INTEROP_TOKENS when set, so that
// run.sh can check that no server log ever contains one.
function record(token) {
  const file = process.env.SOCKEYE_INTEROP_TOKENS;
  const sig = token.split('.')[2];
  if (file && sig && sig.length >= 16) fs.appendFileSync(file, `${sig}\n`);
}

module.exports = { sign, claims, now, b64url };
