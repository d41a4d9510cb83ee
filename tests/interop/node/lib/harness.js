'use strict';
// Shared helpers for the Node suites: the scenario servers, stock socket.io-client connections,
// raw HTTP and WebSocket requests, and small waiting primitives. Every wait has a deadline and
// fails with a message saying what did not happen.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const { SECRET, SOCKEYE_BIN, scenarios, readKey, KEYS_DIR } = require('./config');
const jwt = require('./jwt');

// ---------------------------------------------------------------------------------------------
// Servers

const servers = new Map(); // scenario name -> Promise<{ url, scheme }>
const children = new Set();

process.on('exit', () => {
  for (const child of children) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True once something answers HTTP(S) at `url` (any status). */
function answers(url) {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(`${url}/healthz`, { agent: false, rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/** This process's environment without SOCKEYE_* and PORT, which would configure the server. */
function cleanEnv() {
  const out = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SOCKEYE_') && k !== 'PORT') out[k] = v;
  return out;
}

/** Runs the sockeye binary to completion (or kills it after `ms`): { code, signal, output, timedOut }. */
function runToExit(args, { env = {}, ms = 15000 } = {}) {
  if (!fs.existsSync(SOCKEYE_BIN)) return Promise.reject(new Error(`sockeye binary not found at ${SOCKEYE_BIN}`));
  return new Promise((resolve) => {
    const child = spawn(SOCKEYE_BIN, args, { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    child.stdout.on('data', (c) => { output += c; });
    child.stderr.on('data', (c) => { output += c; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, ms);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, output, timedOut });
    });
  });
}

/**
 * Starts the sockeye binary with `flags` on a free port of 127.0.0.1 and waits until it answers.
 * Returns { url, child, output(), stop() }. `env` adds environment variables; `port: false` leaves
 * --host/--port out (the caller sets them some other way).
 */
async function spawnServer(flags, { env = {}, scheme = 'http', port, addListenFlags = true } = {}) {
  if (!fs.existsSync(SOCKEYE_BIN)) {
    throw new Error(`sockeye binary not found at ${SOCKEYE_BIN}: build it with ` +
      '`cargo build -p sockeye-server --bin sockeye` or set SOCKEYE_BIN');
  }
  const p = port || (await freePort());
  const args = addListenFlags ? ['--host', '127.0.0.1', '--port', String(p), ...flags] : flags;
  const child = spawn(SOCKEYE_BIN, args, {
    env: { RUST_LOG: 'info', ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  const keep = (chunk) => { if (out.length < 1 << 20) out += chunk.toString(); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; children.delete(child); });
  const url = `${scheme}://127.0.0.1:${p}`;
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    if (!exited) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 20000;
  while (!(await answers(url))) {
    if (exited) {
      throw new Error(`sockeye ${args.join(' ')} exited (${JSON.stringify(exited)}) before listening:\n${out}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`sockeye ${args.join(' ')} did not answer HTTP on ${url} within 20 s:\n${out}`);
    }
    await sleep(100);
  }
  child.stdout.unref?.();
  child.stderr.unref?.();
  child.unref();
  return { url, child, output: () => out, stop, exited: () => exited };
}

/**
 * The base URL of a scenario server from scenarios.txt: SOCKEYE_URL_<NAME> when run.sh started
 * it, otherwise one this process starts (and kills on exit).
 */
function server(name) {
  if (!servers.has(name)) {
    const all = scenarios();
    if (!all[name]) throw new Error(`no scenario ${name} in scenarios.txt`);
    const fromEnv = process.env[`SOCKEYE_URL_${name.toUpperCase()}`];
    const promise = fromEnv
      ? Promise.resolve({ url: fromEnv.replace(/\/$/, ''), scheme: all[name].scheme })
      : spawnServer(all[name].flags, { scheme: all[name].scheme }).then((s) => ({ ...s, scheme: all[name].scheme }));
    servers.set(name, promise);
  }
  return servers.get(name);
}

async function stopAll() {
  for (const s of sockets) s.close();
  sockets.clear();
  for (const p of servers.values()) {
    const s = await p.catch(() => null);
    if (s && s.stop) await s.stop();
  }
  servers.clear();
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** An HS256 token for the test secret; `overrides` as for jwt.claims, `opts` as for jwt.sign. */
function token(overrides = {}, opts = {}) {
  return jwt.sign(jwt.claims(overrides), { secret: SECRET, ...opts });
}

// ---------------------------------------------------------------------------------------------
// socket.io-client

const sockets = new Set();

/** Options every test client uses unless overridden: no retries, a fresh Manager, short timeouts. */
function clientOptions(url, opts) {
  const base = { forceNew: true, reconnection: false, timeout: 5000, transports: ['websocket'] };
  if (url.startsWith('https:')) base.ca = readKey('tls-cert.pem');
  return { ...base, ...opts };
}

/** A socket.io-client socket, not yet waited on. */
function client(url, opts = {}) {
  const socket = io(url, clientOptions(url, opts));
  sockets.add(socket);
  return socket;
}

/** Connects and resolves with the socket; rejects with the connect_error (or a timeout). */
function connect(url, opts = {}) {
  const socket = client(url, opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect within 8 s to ${url}`)), 8000);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      const e = new Error(`connect_error: ${err.message} ${JSON.stringify(err.data)}`);
      e.cause = err;
      reject(e);
    });
  });
}

/** Connects expecting a refusal; resolves with the connect_error the client saw. */
function refused(url, opts = {}) {
  const socket = client(url, opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`neither connect nor connect_error within 8 s (${url})`)), 8000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.close();
      reject(new Error('connected, but a refusal was expected'));
    });
    socket.once('connect_error', (err) => { clearTimeout(timer); resolve(err); });
  });
}

/** Asserts a refusal with the contract's exact shape and reason. */
async function assertUnauthorized(url, opts, reason, leaked) {
  const err = await refused(url, opts);
  assert.equal(err.message, 'unauthorized', `connect_error message (data ${JSON.stringify(err.data)})`);
  assert.ok(err.data && typeof err.data === 'object', `connect_error data is an object: ${JSON.stringify(err.data)}`);
  assert.equal(err.data.code, 'UNAUTHORIZED', `data.code in ${JSON.stringify(err.data)}`);
  assert.equal(err.data.reason, reason, `data.reason in ${JSON.stringify(err.data)}`);
  for (const t of [].concat(leaked || [])) {
    if (typeof t === 'string' && t.length > 0) {
      assert.ok(!JSON.stringify(err.data).includes(t), 'the token must not appear in the error');
    }
  }
  return err;
}

/** Closes every socket this process opened. */
function closeAll() {
  for (const s of sockets) s.close();
  sockets.clear();
}

/** Resolves with the first argument of the next `event` on `emitter`, or rejects after `ms`. */
function next(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    function on(first) {
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(first);
    }
    emitter.on(event, on);
  });
}

/** Records every payload of `event`; `until(n)` waits for n of them. */
function collect(emitter, event) {
  const items = [];
  const waiters = [];
  emitter.on(event, (payload) => {
    items.push(payload);
    for (const w of [...waiters]) if (items.length >= w.n) { w.resolve(items); waiters.splice(waiters.indexOf(w), 1); }
  });
  return {
    items,
    until(n, ms = 3000) {
      if (items.length >= n) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const w = { n, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`expected ${n} '${event}' events within ${ms} ms, got ${items.length}: ${JSON.stringify(items).slice(0, 2000)}`));
          }
        }, ms);
      });
    },
  };
}

/** Emits with an acknowledgement and resolves with the server's answer. */
function ack(socket, event, payload, ms = 5000) {
  return socket.timeout(ms).emitWithAck(event, payload);
}

/** Fails if `event` arrives on `emitter` within `ms`. */
async function none(emitter, event, ms = 500) {
  const seen = [];
  const on = (p) => seen.push(p);
  emitter.on(event, on);
  await sleep(ms);
  emitter.off(event, on);
  assert.deepEqual(seen, [], `no '${event}' event expected, got ${JSON.stringify(seen)}`);
}

/** Asserts an `error` payload or ack error: { code, message, event? }. */
function assertError(error, code, event) {
  assert.ok(error && typeof error === 'object', `error object expected, got ${JSON.stringify(error)}`);
  assert.equal(error.code, code, `error code in ${JSON.stringify(error)}`);
  assert.equal(typeof error.message, 'string', `error.message is a string in ${JSON.stringify(error)}`);
  assert.ok(error.message.length > 0, 'error.message is not empty');
  if (event !== undefined) assert.equal(error.event, event, `error.event in ${JSON.stringify(error)}`);
}

/** Asserts a refused acknowledgement: { ok: false, error: { code, message, event? } }. */
function assertAckError(res, code, event) {
  assert.ok(res && typeof res === 'object', `ack object expected, got ${JSON.stringify(res)}`);
  assert.equal(res.ok, false, `ack.ok in ${JSON.stringify(res)}`);
  assertError(res.error, code, event);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP and WebSocket

/** One HTTP(S) request without connection reuse: resolves { status, headers, body }. */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, { method, headers, agent: false, rejectUnauthorized: false, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Engine.IO polling handshake: resolves the parsed open packet ({ sid, upgrades, ... }). */
async function pollingHandshake(base, { headers = {} } = {}) {
  const res = await request(`${base}/socket.io/?EIO=4&transport=polling`, { headers });
  assert.equal(res.status, 200, `polling handshake status (body ${res.body.slice(0, 200)})`);
  assert.ok(res.body.startsWith('0'), `open packet expected, got ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body.slice(1));
}

/**
 * Opens a raw Engine.IO WebSocket (`/socket.io/?EIO=4&transport=websocket`). Resolves { ws, open,
 * messages } once the open packet arrived, or rejects with `err.status` set for an HTTP refusal.
 */
function rawWebSocket(base, { headers = {}, query = '' } = {}) {
  const url = `${base.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket${query}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, rejectUnauthorized: false, handshakeTimeout: 5000 });
    const messages = [];
    ws.on('unexpected-response', (_req, res) => {
      const err = new Error(`WebSocket upgrade refused with HTTP ${res.statusCode}`);
      err.status = res.statusCode;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.on('error', (err) => reject(err));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString();
      if (messages.length === 0 && typeof text === 'string' && text.startsWith('0')) {
        messages.push(text);
        resolve({ ws, open: JSON.parse(text.slice(1)), messages });
        return;
      }
      messages.push(text);
    });
  });
}

/** Resolves { code, reason } when `ws` closes, or rejects after `ms`. */
function closed(ws, ms = 5000) {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve({ code: null, reason: 'already closed' }); return; }
    const timer = setTimeout(() => reject(new Error(`WebSocket still open after ${ms} ms`)), ms);
    ws.once('close', (code, reason) => { clearTimeout(timer); resolve({ code, reason: reason.toString() }); });
  });
}

/** Polls `fn` until it returns truthy or `ms` passes. */
async function eventually(fn, ms = 3000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(50);
  }
}

module.exports = {
  server, spawnServer, runToExit, cleanEnv, stopAll, freePort, sleep, KEYS_DIR,
  token, jwt, SECRET,
  client, connect, refused, assertUnauthorized, closeAll, next, collect, ack, none,
  assertError, assertAckError,
  request, pollingHandshake, rawWebSocket, closed, eventually,
};
