'use strict';
// APP-CONTRACT "Configuration an operator relies on": SOCKEYE_* environment variables, PORT, bad
// values that stop the server naming the setting, and the explicit development mode. Each test
// starts its own sockeye process (the binary from SOCKEYE_BIN or target/debug/sockeye).

const assert = require('node:assert/strict');
const { describe, test, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { jwt, connect, next, ack, request, pollingHandshake } = h;

after(h.stopAll);
afterEach(h.closeAll);

const JWT_RE = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;
const auth = () => ({ auth: { token: jwt.sign(jwt.claims(), { secret: h.SECRET }) } });

describe('configuration from the environment', () => {
  test('SOCKEYE_HOST, SOCKEYE_PORT and SOCKEYE_JWT_SECRET alone configure the server', async () => {
    const port = await h.freePort();
    const srv = await h.spawnServer([], {
      addListenFlags: false, port,
      env: { SOCKEYE_HOST: '127.0.0.1', SOCKEYE_PORT: String(port), SOCKEYE_JWT_SECRET: h.SECRET },
    });
    try {
      const socket = await connect(srv.url, auth());
      assert.equal((await ack(socket, 'message', { content: 'env' })).ok, true);
    } finally { await srv.stop(); }
  });

  test('PORT (as hosting platforms set it) picks the port', async () => {
    const port = await h.freePort();
    const srv = await h.spawnServer(['--host', '127.0.0.1', '--jwt-secret', h.SECRET], {
      addListenFlags: false, port, env: { PORT: String(port) },
    });
    try {
      await connect(srv.url, auth());
    } finally { await srv.stop(); }
  });

  test('SOCKEYE_MAX_PAYLOAD and SOCKEYE_PING_INTERVAL reach the Engine.IO handshake', async () => {
    const srv = await h.spawnServer(['--jwt-secret', h.SECRET], {
      env: { SOCKEYE_MAX_PAYLOAD: '4096', SOCKEYE_PING_INTERVAL: '10000', SOCKEYE_PING_TIMEOUT: '5000' },
    });
    try {
      const open = await pollingHandshake(srv.url);
      assert.equal(open.maxPayload, 4096);
      assert.equal(open.pingInterval, 10000);
      assert.equal(open.pingTimeout, 5000);
    } finally { await srv.stop(); }
  });
});

describe('listen address and config file', () => {
  test('without --host the server listens on all addresses (0.0.0.0), reachable on 127.0.0.1', async () => {
    const port = await h.freePort();
    const srv = await h.spawnServer(['--port', String(port), '--jwt-secret', h.SECRET], { addListenFlags: false, port });
    try {
      await connect(srv.url, auth());
    } finally { await srv.stop(); }
  });

  test('--config reads the settings from a TOML file', async () => {
    // The contract does not fix the key spelling: accept snake_case or kebab-case keys.
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockeye-config-'));
    const errors = [];
    for (const style of ['snake', 'kebab']) {
      const port = await h.freePort();
      const key = (k) => (style === 'snake' ? k.replaceAll('-', '_') : k);
      const file = path.join(dir, `${style}.toml`);
      fs.writeFileSync(file, [
        `${key('host')} = "127.0.0.1"`, `${key('port')} = ${port}`, `${key('jwt-secret')} = "${h.SECRET}"`,
        `${key('max-payload')} = 3000`,
      ].join('\n'));
      let srv;
      try {
        srv = await h.spawnServer(['--config', file], { addListenFlags: false, port });
        assert.equal((await pollingHandshake(srv.url)).maxPayload, 3000);
        await connect(srv.url, auth());
        return;
      } catch (e) {
        errors.push(`${style}: ${e.message.slice(0, 800)}`);
      } finally {
        if (srv) await srv.stop();
      }
    }
    assert.fail(`no TOML key style worked:\n${errors.join('\n')}`);
  });
});

describe('defaults', () => {
  test('the connection cap per address defaults to 256', async () => {
    const srv = await h.spawnServer(['--jwt-secret', h.SECRET]);
    try {
      const sids = [];
      for (let i = 0; i < 256; i++) {
        const res = await request(`${srv.url}/socket.io/?EIO=4&transport=polling`);
        assert.equal(res.status, 200, `session ${i + 1} of 256: ${res.status} ${res.body}`);
        sids.push(JSON.parse(res.body.slice(1)).sid);
      }
      const over = await request(`${srv.url}/socket.io/?EIO=4&transport=polling`);
      assert.notEqual(over.status, 200, 'the 257th session from one address is refused');
      // Closing one session (Engine.IO close packet) makes room again.
      await request(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`, { method: 'POST', body: '1' });
      await h.eventually(async () => (await request(`${srv.url}/socket.io/?EIO=4&transport=polling`)).status === 200,
        5000, 'a session after one closed');
    } finally { await srv.stop(); }
  });
});

describe('a bad value stops the server with a message naming the setting', () => {
  const CASES = [
    ['--rate-limit nope', ['--rate-limit', 'nope'], {}, /rate[-_]limit/i],
    ['--port 70000', ['--port', '70000'], {}, /port/i],
    ['--max-payload=-1', ['--max-payload=-1'], {}, /max[-_]payload/i],
    ['--max-connections-per-ip many', ['--max-connections-per-ip', 'many'], {}, /max[-_]connections[-_]per[-_]ip/i],
    ['--jwt-algorithms XY999', ['--jwt-algorithms', 'XY999'], {}, /jwt[-_]algorithms/i],
    ['--jwt-algorithms none', ['--jwt-algorithms', 'none'], {}, /jwt[-_]algorithms|none/i],
    ['--jwt-leeway soon', ['--jwt-leeway', 'soon'], {}, /jwt[-_]leeway/i],
    ['--tls-cert without --tls-key', ['--tls-cert', '/nonexistent/cert.pem'], {}, /tls[-_](cert|key)/i],
    ['--jwt-public-key missing file', ['--jwt-public-key', '/nonexistent/key.pem'], {}, /jwt[-_]public[-_]key/i],
    ['SOCKEYE_PING_INTERVAL=abc', [], { SOCKEYE_PING_INTERVAL: 'abc' }, /ping[-_]interval/i],
    ['SOCKEYE_RATE_BURST=-3', [], { SOCKEYE_RATE_BURST: '-3' }, /rate[-_]burst/i],
  ];
  for (const [name, flags, env, re] of CASES) {
    test(name, async () => {
      const port = await h.freePort();
      const listen = flags.includes('--port') ? ['--host', '127.0.0.1'] : ['--host', '127.0.0.1', '--port', String(port)];
      const res = await h.runToExit([...listen, '--jwt-secret', h.SECRET, ...flags], { env, ms: 10000 });
      assert.equal(res.timedOut, false, `the server kept running with ${name}:\n${res.output.slice(0, 2000)}`);
      assert.notEqual(res.code, 0, `non-zero exit for ${name}`);
      assert.match(res.output, re, `the message names the setting:\n${res.output.slice(0, 2000)}`);
    });
  }
});

describe('development mode (no key configured)', () => {
  test('prints a ready token, the example page URL and a loud warning; the page is pre-filled', async () => {
    const srv = await h.spawnServer([]);
    try {
      await h.eventually(() => JWT_RE.test(srv.output()), 3000, 'a token in the output');
      const out = srv.output();
      const printed = out.match(JWT_RE)[0];
      assert.match(out, /https?:\/\/[^\s]+:\d+\/?/, 'the URL of the example page');
      assert.match(out, /production/i, 'says it is not for production');
      const page = await request(`${srv.url}/`);
      assert.equal(page.status, 200);
      const filled = page.body.match(/id="token"[^>]*value="([^"]*)"/);
      assert.ok(filled, 'the #token input with a value');
      assert.match(filled[1], JWT_RE, 'the page carries a token');
      for (const t of [printed, filled[1]]) {
        const socket = await connect(srv.url, { auth: { token: t } });
        const got = next(socket, 'message');
        socket.emit('message', { content: 'dev mode' });
        assert.equal((await got).content, 'dev mode');
      }
    } finally { await srv.stop(); }
  });
});

describe('operations (issue 6)', () => {
  test('`sockeye token --sub NAME --ttl 1h` mints a token for the configured secret', async () => {
    const res = await h.runToExit(['token', '--sub', 'alice', '--ttl', '1h'], { env: { SOCKEYE_JWT_SECRET: h.SECRET } });
    assert.equal(res.code, 0, res.output);
    const t = res.output.match(JWT_RE);
    assert.ok(t, `a token in the output: ${res.output}`);
    const claims = JSON.parse(Buffer.from(t[0].split('.')[1], 'base64url'));
    assert.equal(claims.sub, 'alice');
    assert.ok(Math.abs(claims.exp - (jwt.now() + 3600)) < 60, `exp about an hour ahead: ${claims.exp}`);
    const srv = await h.spawnServer(['--jwt-secret', h.SECRET]);
    try {
      const socket = await connect(srv.url, { auth: { token: t[0] } });
      const got = next(socket, 'message');
      socket.emit('message', { content: 'minted' });
      assert.equal((await got).from.sub, 'alice');
    } finally { await srv.stop(); }
  });

  test('SIGTERM: clients are told, the process exits 0', async () => {
    const srv = await h.spawnServer(['--jwt-secret', h.SECRET]);
    const socket = await connect(srv.url, auth());
    const gone = next(socket, 'disconnect', 10000);
    srv.child.kill('SIGTERM');
    const reason = await gone;
    assert.ok(typeof reason === 'string', `disconnect reason ${reason}`);
    await h.eventually(() => srv.exited(), 10000, 'the process to exit');
    assert.deepEqual(srv.exited(), { code: 0, signal: null });
  });
});
