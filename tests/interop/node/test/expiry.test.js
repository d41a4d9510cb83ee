'use strict';
// APP-CONTRACT token expiry while connected (TOKEN_EXPIRED, then a server-side disconnect) and
// the refresh through the `auth` event.

const assert = require('node:assert/strict');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');
const { OTHER_SECRET } = require('../lib/config');

const { jwt, connect, next, collect, ack, assertError, assertAckError } = h;
const now = jwt.now;

after(h.stopAll);
afterEach(h.closeAll);

const sign = (claims) => jwt.sign(claims, { secret: h.SECRET });

/** Waits for TOKEN_EXPIRED and then the server-side disconnect; checks there is no reconnect. */
async function expectExpiry(socket, ms) {
  const errors = collect(socket, 'error');
  const reason = await next(socket, 'disconnect', ms);
  const expired = errors.items.filter((e) => e && e.code === 'TOKEN_EXPIRED');
  assert.equal(expired.length, 1, `one TOKEN_EXPIRED error before the disconnect, got ${JSON.stringify(errors.items)}`);
  assertError(expired[0], 'TOKEN_EXPIRED');
  assert.equal(reason, 'io server disconnect');
  assert.equal(socket.active, false, 'the client does not reconnect on its own');
}

for (const transports of [['websocket'], ['polling']]) {
  describe(`token expiry while connected (${transports[0]})`, () => {
    let url;
    before(async () => { ({ url } = await h.server('default')); });

    test('TOKEN_EXPIRED error, then io server disconnect, and no reconnect', async () => {
      // Reconnection on: the client must still not come back after a server-side disconnect.
      const socket = await connect(url, { transports, reconnection: true, auth: { token: sign(jwt.claims({ exp: now() + 3 })) } });
      const reconnects = collect(socket, 'connect');
      await expectExpiry(socket, 9000);
      await h.sleep(1500);
      assert.equal(reconnects.items.length, 0, 'no reconnect');
    });

    test('a fresh token through the auth event is acknowledged { ok: true, exp } and moves the expiry', async () => {
      const claims = jwt.claims({ exp: now() + 3 });
      const socket = await connect(url, { transports, auth: { token: sign(claims) } });
      const exp = now() + 3600;
      const res = await ack(socket, 'auth', { token: sign({ ...claims, exp, iat: now() }) });
      assert.deepEqual(res, { ok: true, exp });
      const errors = collect(socket, 'error');
      await h.sleep(5000);
      assert.ok(socket.connected, 'still connected after the old expiry');
      assert.deepEqual(errors.items, []);
      const echo = await ack(socket, 'message', { content: 'after refresh' });
      assert.equal(echo.ok, true);
    });
  });
}

describe('refresh moves the expiry, which is then enforced', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('exp now+3, refreshed to now+6: still connected at +4, TOKEN_EXPIRED by +11', async () => {
    const claims = jwt.claims({ exp: now() + 3 });
    const socket = await connect(url, { auth: { token: sign(claims) } });
    const exp = now() + 6;
    assert.deepEqual(await ack(socket, 'auth', { token: sign({ ...claims, exp }) }), { ok: true, exp });
    const errors = collect(socket, 'error');
    await h.sleep(4000);
    assert.ok(socket.connected, 'the first expiry no longer applies');
    assert.deepEqual(errors.items, []);
    await expectExpiry(socket, 8000);
  });
});

describe('refresh refused', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('another sub is refused with reason sub_mismatch, and the old expiry stands', async () => {
    const claims = jwt.claims({ exp: now() + 3 });
    const socket = await connect(url, { auth: { token: sign(claims) } });
    const res = await ack(socket, 'auth', { token: sign(jwt.claims({ exp: now() + 3600 })) });
    assertAckError(res, 'UNAUTHORIZED');
    assert.equal(res.error.reason, 'sub_mismatch', JSON.stringify(res));
    await expectExpiry(socket, 9000);
  });

  const REFUSED = [
    ['bad_signature', () => jwt.sign(jwt.claims(), { secret: OTHER_SECRET })],
    ['expired', () => sign(jwt.claims({ exp: now() - 60 }))],
    ['malformed', () => 'not-a-jwt'],
    ['bad_algorithm', () => jwt.sign(jwt.claims(), { alg: 'none' })],
  ];
  for (const [reason, make] of REFUSED) {
    test(`a refresh token that is ${reason} is acknowledged { ok: false, error: { code, reason, message } }`, async () => {
      const claims = jwt.claims();
      const socket = await connect(url, { auth: { token: sign(claims) } });
      let t = make();
      if (reason !== 'malformed' && reason !== 'bad_algorithm') {
        // Same sub, so that the reason is the one under test.
        const body = { ...JSON.parse(Buffer.from(t.split('.')[1], 'base64url')), sub: claims.sub };
        t = reason === 'bad_signature' ? jwt.sign(body, { secret: OTHER_SECRET }) : sign(body);
      }
      const res = await ack(socket, 'auth', { token: t });
      assertAckError(res, 'UNAUTHORIZED');
      assert.equal(res.error.reason, reason, JSON.stringify(res));
      assert.ok(!JSON.stringify(res).includes(t), 'the token is not echoed back');
      assert.ok(socket.connected, 'a refused refresh keeps the connection');
      assert.equal((await ack(socket, 'message', { content: 'still ok' })).ok, true);
    });
  }

  test('a refused refresh without ack is an error event UNAUTHORIZED with event "auth"', async () => {
    const socket = await connect(url, { auth: { token: sign(jwt.claims()) } });
    const got = next(socket, 'error');
    socket.emit('auth', { token: jwt.sign(jwt.claims(), { secret: OTHER_SECRET }) });
    const error = await got;
    assertError(error, 'UNAUTHORIZED', 'auth');
  });

  test('auth with a payload that is not { token } is refused', async () => {
    const socket = await connect(url, { auth: { token: sign(jwt.claims()) } });
    const res = await ack(socket, 'auth', 'just a string');
    assert.equal(res.ok, false, JSON.stringify(res));
    assert.ok(['VALIDATION', 'UNAUTHORIZED'].includes(res.error && res.error.code), JSON.stringify(res));
  });
});

describe('expiry with leeway (--jwt-leeway 5)', () => {
  let url;
  before(async () => { ({ url } = await h.server('claims')); });

  test('a token 2 s past exp connects, then expires at exp + leeway', async () => {
    const claims = jwt.claims({ exp: now() - 2, iss: 'https://issuer.sockeye.test', aud: 'sockeye-interop' });
    const started = Date.now();
    const socket = await connect(url, { auth: { token: sign(claims) } });
    await expectExpiry(socket, 9000);
    const waited = Date.now() - started;
    assert.ok(waited >= 1000, `the leeway is honoured while connected (disconnected after ${waited} ms)`);
  });
});
