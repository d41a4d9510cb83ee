'use strict';
// APP-CONTRACT CORS, the HTTP endpoints beside Socket.IO (/, /healthz, /readyz, /metrics, the
// vendored client library), and the per-address connection cap.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');
const { REPO_ROOT, INTEROP_DIR } = require('../lib/config');

const { jwt, connect, refused, ack, request, rawWebSocket } = h;

after(h.stopAll);
afterEach(h.closeAll);

const auth = () => ({ auth: { token: jwt.sign(jwt.claims(), { secret: h.SECRET }) } });
const HANDSHAKE = '/socket.io/?EIO=4&transport=polling';
const EVIL = 'http://evil.sockeye.test';
const ALLOWED = 'http://allowed.sockeye.test';

async function wsStatus(url, headers) {
  try {
    const { ws } = await rawWebSocket(url, { headers });
    ws.close();
    return 101;
  } catch (err) {
    if (err.status) return err.status;
    throw err;
  }
}

describe('CORS with no origins configured (default server)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('requests without Origin (non-browser clients) work', async () => {
    assert.equal((await request(`${url}${HANDSHAKE}`)).status, 200);
    assert.equal(await wsStatus(url, {}), 101);
  });

  test('a cross-origin polling handshake is refused with 403', async () => {
    const res = await request(`${url}${HANDSHAKE}`, { headers: { Origin: EVIL } });
    assert.equal(res.status, 403);
    assert.ok(!res.headers['access-control-allow-origin'], 'no CORS grant');
  });

  test('a cross-origin WebSocket upgrade is refused with 403', async () => {
    assert.equal(await wsStatus(url, { Origin: EVIL }), 403);
  });

  test('same-origin requests always work (Origin equal to the server origin)', async () => {
    assert.equal((await request(`${url}${HANDSHAKE}`, { headers: { Origin: url } })).status, 200);
    assert.equal(await wsStatus(url, { Origin: url }), 101);
  });

  test('a cross-origin POST to an existing session is refused with 403', async () => {
    const { sid } = await h.pollingHandshake(url);
    const res = await request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: 'POST', headers: { Origin: EVIL, 'Content-Type': 'text/plain' }, body: '40',
    });
    assert.equal(res.status, 403);
  });

  test('a stock client sending a foreign Origin is refused on both transports', async () => {
    for (const transports of [['polling'], ['websocket']]) {
      const err = await refused(url, { ...auth(), transports, extraHeaders: { Origin: EVIL } });
      assert.ok(err instanceof Error, `${transports}: ${err && err.message}`);
    }
  });
});

describe('CORS with --cors-origins http://allowed.sockeye.test', () => {
  let url;
  before(async () => { ({ url } = await h.server('cors')); });

  test('the allowed origin gets the handshake and a matching Access-Control-Allow-Origin', async () => {
    const res = await request(`${url}${HANDSHAKE}`, { headers: { Origin: ALLOWED } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], ALLOWED);
  });

  test('the allowed origin may upgrade to WebSocket', async () => {
    assert.equal(await wsStatus(url, { Origin: ALLOWED }), 101);
  });

  test('a preflight from the allowed origin succeeds; from another origin it is 403', async () => {
    const pre = (origin) => request(`${url}${HANDSHAKE}`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    const ok = await pre(ALLOWED);
    assert.ok(ok.status >= 200 && ok.status < 300, `preflight status ${ok.status}`);
    assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
    assert.equal((await pre(EVIL)).status, 403);
  });

  test('other origins are refused with 403 on polling and on the WebSocket upgrade', async () => {
    assert.equal((await request(`${url}${HANDSHAKE}`, { headers: { Origin: EVIL } })).status, 403);
    assert.equal(await wsStatus(url, { Origin: EVIL }), 403);
    assert.equal((await request(`${url}${HANDSHAKE}`, { headers: { Origin: `${ALLOWED}.evil.test` } })).status, 403,
      'a suffix of an allowed origin is not allowed');
  });

  test('requests without Origin are not affected', async () => {
    assert.equal((await request(`${url}${HANDSHAKE}`)).status, 200);
    await connect(url, auth());
  });

  test('a stock client from the allowed origin connects on both transports', async () => {
    for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
      const socket = await connect(url, { ...auth(), transports, extraHeaders: { Origin: ALLOWED } });
      assert.equal((await ack(socket, 'message', { content: 'cors' })).ok, true);
    }
  });
});

describe('CORS with --cors-origins * (development)', () => {
  let url;
  before(async () => { ({ url } = await h.server('corsany')); });

  test('any origin is allowed on polling and WebSocket', async () => {
    const res = await request(`${url}${HANDSHAKE}`, { headers: { Origin: EVIL } });
    assert.equal(res.status, 200);
    assert.ok(['*', EVIL].includes(res.headers['access-control-allow-origin']), JSON.stringify(res.headers));
    assert.equal(await wsStatus(url, { Origin: EVIL }), 101);
  });
});

describe('HTTP endpoints', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('GET /healthz and GET /readyz answer 200', async () => {
    assert.equal((await request(`${url}/healthz`)).status, 200);
    assert.equal((await request(`${url}/readyz`)).status, 200);
  });

  test('GET / is the example page, with the token placeholder replaced', async () => {
    const res = await request(`${url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] || '', /^text\/html/);
    for (const id of ['token', 'transport', 'connect', 'disconnect', 'status', 'room', 'join', 'leave', 'content', 'send', 'log']) {
      assert.ok(res.body.includes(`id="${id}"`), `#${id} in the page`);
    }
    assert.ok(!res.body.includes('__SOCKEYE_DEV_TOKEN__'), 'the placeholder is replaced');
    assert.match(res.body, /id="token"[^>]*value=""/, 'no token pre-filled when a key is configured');
    assert.ok(res.body.includes('/vendor/socket.io.min.js'));
  });

  test('GET /vendor/socket.io.min.js serves the vendored client library', async () => {
    const res = await request(`${url}/vendor/socket.io.min.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] || '', /javascript/);
    const vendored = fs.readFileSync(path.join(REPO_ROOT, 'examples', 'vendor', 'socket.io.min.js'), 'utf8');
    assert.equal(res.body, vendored);
  });

  test('the vendored library is the npm socket.io-client dist file, byte for byte', () => {
    const vendored = fs.readFileSync(path.join(REPO_ROOT, 'examples', 'vendor', 'socket.io.min.js'));
    const npm = fs.readFileSync(path.join(INTEROP_DIR, 'node', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js'));
    assert.ok(vendored.equals(npm), 'examples/vendor/socket.io.min.js differs from node_modules/socket.io-client');
  });

  test('GET /metrics is Prometheus text with the contract\'s metric names and labels', async () => {
    const socket = await connect(url, { ...auth(), transports: ['websocket'] });
    const poller = await connect(url, { ...auth(), transports: ['polling'] });
    await ack(socket, 'join', 'metrics-room');
    await ack(socket, 'message', { content: 'count me' });
    await ack(socket, 'message', { content: '' }); // one VALIDATION error
    await ack(poller, 'message', { content: 'me too' });
    const res = await request(`${url}/metrics`);
    assert.equal(res.status, 200);
    // The Prometheus text format, or OpenMetrics text, which Prometheus reads as well.
    assert.match(res.headers['content-type'] || '', /^(text\/plain|application\/openmetrics-text)/);
    const lines = res.body.split('\n').filter((l) => l && !l.startsWith('#'));
    const series = (name) => lines.filter((l) => l === name || l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    const value = (line) => Number(line.trim().split(/\s+/).at(-1));
    for (const name of ['sockeye_connections', 'sockeye_sockets', 'sockeye_rooms', 'sockeye_events_received_total',
      'sockeye_events_sent_total', 'sockeye_errors_total', 'sockeye_bytes_received_total', 'sockeye_bytes_sent_total']) {
      assert.ok(series(name).length > 0, `${name} in /metrics:\n${res.body.slice(0, 3000)}`);
    }
    const ws = series('sockeye_connections').find((l) => /transport="websocket"/.test(l));
    const polling = series('sockeye_connections').find((l) => /transport="polling"/.test(l));
    assert.ok(ws && value(ws) >= 1, `sockeye_connections{transport="websocket"} >= 1: ${series('sockeye_connections')}`);
    assert.ok(polling && value(polling) >= 1, `sockeye_connections{transport="polling"} >= 1: ${series('sockeye_connections')}`);
    const sockets = series('sockeye_sockets').find((l) => /namespace="\/"/.test(l));
    assert.ok(sockets && value(sockets) >= 2, `sockeye_sockets{namespace="/"} >= 2: ${series('sockeye_sockets')}`);
    assert.ok(series('sockeye_rooms').some((l) => value(l) >= 1), `sockeye_rooms >= 1: ${series('sockeye_rooms')}`);
    const validation = series('sockeye_errors_total').find((l) => /code="VALIDATION"/.test(l));
    assert.ok(validation && value(validation) >= 1, `sockeye_errors_total{code="VALIDATION"}: ${series('sockeye_errors_total')}`);
    for (const name of ['sockeye_events_received_total', 'sockeye_events_sent_total', 'sockeye_bytes_received_total', 'sockeye_bytes_sent_total']) {
      const total = series(name).reduce((sum, l) => sum + value(l), 0);
      assert.ok(total > 0, `${name} > 0`);
    }
  });
});

describe('connection cap per address (--max-connections-per-ip 3)', () => {
  let url;
  before(async () => { ({ url } = await h.server('cap')); });

  test('the 4th connection from one address is refused; closing one makes room', async () => {
    const sockets = [];
    for (let i = 0; i < 3; i++) sockets.push(await connect(url, auth()));
    const err = await refused(url, auth());
    assert.ok(err instanceof Error);
    for (const s of sockets) assert.ok(s.connected, 'the first three stay connected');
    sockets[0].close();
    await h.eventually(async () => {
      try { return await connect(url, auth()); } catch { return null; }
    }, 5000, 'a connection after one closed');
  });

  test('polling sessions count as well', async () => {
    await h.sleep(500);
    const polling = { ...auth(), transports: ['polling'] };
    for (let i = 0; i < 3; i++) await connect(url, { ...polling, ...auth() });
    const err = await refused(url, { ...polling, ...auth() });
    assert.ok(err instanceof Error);
  });

  test('X-Forwarded-For is ignored without --trust-proxy', async () => {
    await h.sleep(500);
    const sockets = [];
    for (let i = 0; i < 3; i++) {
      sockets.push(await connect(url, { ...auth(), extraHeaders: { 'X-Forwarded-For': `203.0.113.${i + 1}` } }));
    }
    await refused(url, { ...auth(), extraHeaders: { 'X-Forwarded-For': '203.0.113.99' } });
    assert.ok(sockets.every((s) => s.connected));
  });
});

describe('behind a proxy (--trust-proxy --max-connections-per-ip 2)', () => {
  let url;
  before(async () => { ({ url } = await h.server('capproxy')); });
  const from = (ip) => ({ ...auth(), extraHeaders: { 'X-Forwarded-For': ip } });

  test('the cap counts the X-Forwarded-For address', async () => {
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await connect(url, from(ip));
    await connect(url, from('198.51.100.9'));
    await connect(url, from('198.51.100.9'));
    const err = await refused(url, from('198.51.100.9'));
    assert.ok(err instanceof Error);
  });
});

describe('a limit of 0 turns it off (--rate-limit 0 --max-connections-per-ip 0 --max-content-length 0)', () => {
  let url;
  before(async () => { ({ url } = await h.server('nolimits')); });

  test('no rate limit: a burst of 150 events is accepted', async () => {
    const socket = await connect(url, auth());
    const results = await Promise.all(Array.from({ length: 150 }, (_, i) => ack(socket, 'message', { content: `n${i}` })));
    assert.equal(results.filter((r) => r.ok).length, 150, JSON.stringify(results.find((r) => !r.ok)));
    assert.ok(socket.connected);
  });

  test('no content length limit: 10,000 characters are accepted; empty content is still VALIDATION', async () => {
    const socket = await connect(url, auth());
    assert.equal((await ack(socket, 'message', { content: 'c'.repeat(10000) })).ok, true);
    h.assertAckError(await ack(socket, 'message', { content: '' }), 'VALIDATION', 'message');
  });

  test('no connection cap: 40 connections from one address', async () => {
    const all = await Promise.all(Array.from({ length: 40 }, () => connect(url, auth())));
    assert.ok(all.every((s) => s.connected));
  });
});
