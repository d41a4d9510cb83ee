'use strict';
// APP-CONTRACT "Transport": polling, WebSocket and the upgrade with a stock client; the Engine.IO
// handshake defaults; the heartbeat; TLS; maxPayload on both transports.

const assert = require('node:assert/strict');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { jwt, connect, next, ack, request, pollingHandshake, rawWebSocket, closed } = h;

after(h.stopAll);
afterEach(h.closeAll);

const auth = () => ({ auth: { token: jwt.sign(jwt.claims(), { secret: h.SECRET }) } });

describe('transports with socket.io-client', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('polling only: connects, stays on polling, echoes', async () => {
    const socket = await connect(url, { ...auth(), transports: ['polling'] });
    assert.equal(socket.io.engine.transport.name, 'polling');
    assert.equal((await ack(socket, 'message', { content: 'poll' })).ok, true);
    await h.sleep(300);
    assert.equal(socket.io.engine.transport.name, 'polling');
  });

  test('websocket only: connects over WebSocket and echoes', async () => {
    const socket = await connect(url, { ...auth(), transports: ['websocket'] });
    assert.equal(socket.io.engine.transport.name, 'websocket');
    const got = next(socket, 'message');
    socket.emit('message', { content: 'ws' });
    assert.equal((await got).content, 'ws');
  });

  test('polling then upgrade: the client upgrades to WebSocket and keeps its socket', async () => {
    const socket = await connect(url, { ...auth(), transports: ['polling', 'websocket'] });
    const id = socket.id;
    if (socket.io.engine.transport.name !== 'websocket') {
      const t = await next(socket.io.engine, 'upgrade', 12000);
      assert.equal(t.name, 'websocket');
    }
    assert.equal(socket.io.engine.transport.name, 'websocket');
    assert.equal(socket.id, id);
    const got = next(socket, 'message');
    assert.equal((await ack(socket, 'message', { content: 'upgraded' })).ok, true);
    assert.equal((await got).content, 'upgraded');
  });

  test('messages sent during the upgrade are not lost', async () => {
    const socket = await connect(url, { ...auth(), transports: ['polling', 'websocket'] });
    const results = [];
    for (let i = 0; i < 20; i++) {
      results.push(ack(socket, 'message', { content: `u${i}` }));
      await h.sleep(10);
    }
    const all = await Promise.all(results);
    assert.equal(all.filter((r) => r.ok).length, 20, JSON.stringify(all));
  });

  test('a client disconnect is clean, and the same client can connect again', async () => {
    const socket = await connect(url, auth());
    const gone = next(socket, 'disconnect');
    socket.disconnect();
    assert.equal(await gone, 'io client disconnect');
    await connect(url, auth());
  });
});

describe('Engine.IO handshake (defaults of the reference server)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('polling open packet: sid, upgrades [websocket], pingInterval 25000, pingTimeout 20000, maxPayload 1000000', async () => {
    const open = await pollingHandshake(url);
    assert.equal(typeof open.sid, 'string');
    assert.deepEqual(open.upgrades, ['websocket']);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.equal(open.maxPayload, 1000000);
  });

  test('websocket open packet: no upgrades, the same timings', async () => {
    const { ws, open } = await rawWebSocket(url);
    assert.deepEqual(open.upgrades, []);
    assert.equal(open.pingInterval, 25000);
    assert.equal(open.pingTimeout, 20000);
    assert.equal(open.maxPayload, 1000000);
    ws.close();
  });

  test('Socket.IO v5 over a raw WebSocket: CONNECT with auth answers 0{"sid"}', async () => {
    const { ws, messages } = await rawWebSocket(url);
    const t = jwt.sign(jwt.claims(), { secret: h.SECRET });
    ws.send(`40${JSON.stringify({ token: t })}`);
    await h.eventually(() => messages.length >= 2, 3000, 'Socket.IO CONNECT answer');
    assert.match(messages[1], /^40\{"sid":"[^"]+"/);
    ws.close();
  });

  test('a Socket.IO CONNECT without a token over a raw WebSocket gets 44 CONNECT_ERROR', async () => {
    const { ws, messages } = await rawWebSocket(url);
    ws.send('40');
    await h.eventually(() => messages.length >= 2, 3000, 'Socket.IO CONNECT_ERROR');
    assert.ok(messages[1].startsWith('44'), messages[1]);
    const body = JSON.parse(messages[1].slice(2));
    assert.deepEqual(body, { message: 'unauthorized', data: { code: 'UNAUTHORIZED', reason: 'missing' } });
    ws.close();
  });

  test('the default maxPayload (1,000,000 bytes) closes a polling session with 413', async () => {
    const { sid } = await pollingHandshake(url);
    const res = await request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: `4${'x'.repeat(1000100)}`,
    });
    assert.equal(res.status, 413);
  });

  test('an upgrade that never completes is dropped after the 10 s upgrade timeout; polling goes on', async () => {
    const WebSocket = require('ws');
    const { sid } = await pollingHandshake(url);
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
    const frames = [];
    ws.on('message', (d) => frames.push(d.toString()));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send('2probe');
    await h.eventually(() => frames.includes('3probe'), 3000, '3probe');
    const started = Date.now();
    await closed(ws, 16000); // never sends "5"
    const waited = Date.now() - started;
    assert.ok(waited > 8000 && waited < 15000, `upgrade dropped after ${waited} ms, expected about 10 s`);
    const sess = `${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const post = await request(sess, { method: 'POST', body: `40${JSON.stringify({ token: jwt.sign(jwt.claims(), { secret: h.SECRET }) })}` });
    assert.equal(post.status, 200, 'the polling session is still open');
    let body = '';
    for (let i = 0; i < 3 && !body.includes('40{'); i++) body += (await request(sess)).body;
    assert.match(body, /40\{"sid":"/);
  });

  test('an unknown sid is refused with 400', async () => {
    const res = await request(`${url}/socket.io/?EIO=4&transport=polling&sid=doesnotexist`);
    assert.equal(res.status, 400);
  });

  test('EIO=3 is refused', async () => {
    const res = await request(`${url}/socket.io/?EIO=3&transport=polling`);
    assert.equal(res.status, 400);
  });
});

describe('heartbeat (--ping-interval 400 --ping-timeout 600, milliseconds)', () => {
  let url;
  before(async () => { ({ url } = await h.server('heartbeat')); });

  test('the handshake announces the configured timings', async () => {
    const open = await pollingHandshake(url);
    assert.equal(open.pingInterval, 400);
    assert.equal(open.pingTimeout, 600);
  });

  for (const transports of [['websocket'], ['polling']]) {
    test(`${transports[0]}: a stock client that answers pings stays connected over many intervals`, async () => {
      const socket = await connect(url, { ...auth(), transports });
      const disconnects = h.collect(socket, 'disconnect');
      await h.sleep(2500);
      assert.deepEqual(disconnects.items, []);
      assert.equal((await ack(socket, 'message', { content: 'alive' })).ok, true);
    });
  }

  test('a raw WebSocket that never answers pings is closed after interval + timeout', async () => {
    const { ws, messages } = await rawWebSocket(url);
    const result = await closed(ws, 4000);
    assert.ok(messages.includes('2'), `the server pinged: ${JSON.stringify(messages)}`);
    assert.ok(result, 'closed');
  });
});

describe('maxPayload (--max-payload 2000)', () => {
  let url;
  before(async () => { ({ url } = await h.server('payload')); });

  test('the handshake announces maxPayload 2000', async () => {
    assert.equal((await pollingHandshake(url)).maxPayload, 2000);
  });

  test('a polling POST over maxPayload gets 413 and closes that session', async () => {
    const { sid } = await pollingHandshake(url);
    const res = await request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
      method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: `4${'x'.repeat(3000)}`,
    });
    assert.equal(res.status, 413);
    const after = await request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.ok(after.status === 400 || (after.status === 200 && after.body.startsWith('1')),
      `the session is closed: GET answered ${after.status} ${after.body.slice(0, 100)}`);
  });

  test('a WebSocket frame over maxPayload closes with 1009', async () => {
    const { ws } = await rawWebSocket(url);
    const done = closed(ws, 4000);
    ws.send(`4${'x'.repeat(3000)}`);
    assert.equal((await done).code, 1009);
  });

  test('the rest of the server goes on unharmed', async () => {
    const bystander = await connect(url, auth());
    const { ws } = await rawWebSocket(url);
    const done = closed(ws, 4000);
    ws.send(`4${'y'.repeat(5000)}`);
    await done;
    const { sid } = await pollingHandshake(url);
    await request(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: `4${'z'.repeat(5000)}` });
    assert.ok(bystander.connected);
    assert.equal((await ack(bystander, 'message', { content: 'fine' })).ok, true);
    await connect(url, auth());
  });

  test('--max-content-length 16: 16 code points pass, 17 are VALIDATION', async () => {
    const socket = await connect(url, auth());
    assert.equal((await ack(socket, 'message', { content: '😀'.repeat(16) })).ok, true);
    h.assertAckError(await ack(socket, 'message', { content: 'a'.repeat(17) }), 'VALIDATION', 'message');
  });
});

describe('TLS (--tls-cert/--tls-key)', () => {
  let url;
  before(async () => { ({ url } = await h.server('tls')); });

  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    test(`${transports.join('+')} over HTTPS/WSS with the test CA`, async () => {
      assert.ok(url.startsWith('https://'));
      const socket = await connect(url, { ...auth(), transports });
      const got = next(socket, 'message');
      socket.emit('message', { content: 'over tls' });
      assert.equal((await got).content, 'over tls');
    });
  }

  test('plain HTTP to the TLS port does not get a Socket.IO session', async () => {
    const res = await request(`${url.replace('https:', 'http:')}/socket.io/?EIO=4&transport=polling`).catch((e) => e);
    assert.ok(res instanceof Error || res.status !== 200, 'no cleartext handshake');
  });
});
