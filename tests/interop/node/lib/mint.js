#!/usr/bin/env node
'use strict';
// Prints an HS256 test token: node lib/mint.js SUB [TTL_SECONDS]. Used by run.sh for clients that
// take a ready token (the Rust client). The secret is SOCKEYE_TEST_SECRET or the suites' default.
const { sign, claims, now } = require('./jwt');
const { SECRET } = require('./config');

const [sub, ttl = '3600'] = process.argv.slice(2);
if (!sub) {
  console.error('usage: node lib/mint.js SUB [TTL_SECONDS]');
  process.exit(2);
}
process.stdout.write(`${sign(claims({ sub, exp: now() + Number(ttl) }), { secret: SECRET })}\n`);
