'use strict';
// APP-CONTRACT "Limits and abuse": the per-socket token bucket (RATE_LIMITED) and the disconnect
// after more than 100 drops within 10 s.

const assert = require('node:assert/strict');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { jwt, connect, collect, ack, assertError, assertAckError } = h;

after(h.stopAll);
afterEach(h.closeAll);

const login = (url, opts = {}) => connect(url, { auth: { token: jwt.sign(jwt.claims(), { secret: h.SECRET }) }, ...opts });

describe('token bucket (--rate-limit 2 --rate-burst 5)', () => {
  let url;
  before(async () => { ({ url } = await h.server('ratelimit')); });

  test('a burst of 10 with acks: 5 accepted, the rest RATE_LIMITED in the ack, no error events', async () => {
    const socket = await login(url);
    const errors = collect(socket, 'error');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ack(socket, 'message', { content: `b${i}` })));
    const ok = results.filter((r) => r.ok === true);
    const limited = results.filter((r) => r.ok === false);
    assert.ok(ok.length >= 5 && ok.length <= 6, `5 (or 6 with a refill) accepted, got ${ok.length}: ${JSON.stringify(results)}`);
    for (const r of limited) assertAckError(r, 'RATE_LIMITED', 'message');
    assert.equal(ok.length + limited.length, 10);
    await h.sleep(200);
    assert.deepEqual(errors.items, [], 'acks carry the errors');
  });

  test('without acks: RATE_LIMITED error events name the event, dropped events have no effect', async () => {
    const socket = await login(url);
    const errors = collect(socket, 'error');
    const messages = collect(socket, 'message');
    for (let i = 0; i < 10; i++) socket.emit('message', { content: `n${i}` });
    await errors.until(4, 3000);
    await h.sleep(300);
    for (const e of errors.items) assertError(e, 'RATE_LIMITED', 'message');
    assert.equal(messages.items.length + errors.items.length, 10,
      `every event is either echoed or dropped: ${messages.items.length} echoed, ${errors.items.length} dropped`);
    assert.ok(messages.items.length >= 5 && messages.items.length <= 6, `echoed ${messages.items.length}`);
  });

  test('every event counts, not only message (join too)', async () => {
    const socket = await login(url);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => ack(socket, 'join', `rl-${i}`)));
    const limited = results.filter((r) => r.ok === false);
    assert.ok(limited.length >= 2, JSON.stringify(results));
    for (const r of limited) assertAckError(r, 'RATE_LIMITED', 'join');
  });

  test('the bucket refills at the configured rate', async () => {
    const socket = await login(url);
    await Promise.all(Array.from({ length: 7 }, () => ack(socket, 'message', { content: 'drain' })));
    await h.sleep(1600); // 2 per second: at least 3 tokens back
    const res = await ack(socket, 'message', { content: 'refilled' });
    assert.equal(res.ok, true, JSON.stringify(res));
  });

  test('100 drops or fewer within 10 s keep the socket', async () => {
    const socket = await login(url);
    const disconnects = collect(socket, 'disconnect');
    for (let i = 0; i < 60; i++) socket.emit('message', { content: 'x' }); // about 55 drops
    await h.sleep(1500);
    assert.deepEqual(disconnects.items, [], 'still connected');
    assert.ok(socket.connected);
  });

  test('more than 100 drops within 10 s disconnect the socket', async () => {
    const socket = await login(url);
    const gone = h.next(socket, 'disconnect', 5000);
    for (let i = 0; i < 130; i++) socket.emit('message', { content: 'flood' }); // about 125 drops
    const reason = await gone;
    assert.ok(['io server disconnect', 'transport close'].includes(reason), `disconnect reason ${reason}`);
  });

  test('the rate limit is per socket: a flood on one socket does not limit another', async () => {
    const a = await login(url);
    const b = await login(url);
    await Promise.all(Array.from({ length: 8 }, () => ack(a, 'message', { content: 'a' })));
    const res = await ack(b, 'message', { content: 'b' });
    assert.equal(res.ok, true);
  });
});

describe('defaults (20 per second, burst 40)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('a burst of 40 is accepted; a further burst of 30 is mostly RATE_LIMITED', async () => {
    const socket = await login(url);
    const started = Date.now();
    const first = await Promise.all(Array.from({ length: 40 }, (_, i) => ack(socket, 'message', { content: `d${i}` })));
    assert.equal(first.filter((r) => r.ok).length, 40, JSON.stringify(first.filter((r) => !r.ok)));
    const refill = Math.ceil(((Date.now() - started) / 1000) * 20) + 1; // 20 per second came back meanwhile
    const second = await Promise.all(Array.from({ length: 30 }, (_, i) => ack(socket, 'message', { content: `e${i}` })));
    const limited = second.filter((r) => !r.ok);
    assert.ok(limited.length >= 30 - refill && limited.length > 0,
      `at least ${30 - refill} of 30 limited after the burst (refill ${refill}), got ${limited.length}`);
    for (const r of limited) assertAckError(r, 'RATE_LIMITED', 'message');
  });
});
