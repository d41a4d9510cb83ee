'use strict';
// APP-CONTRACT "Events from the client" (message), "Events from the server" (message and error
// shapes), validation, UNKNOWN_EVENT, and the rule that an acknowledgement replaces the error event.

const assert = require('node:assert/strict');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { token, jwt, connect, next, collect, ack, none, assertError, assertAckError } = h;

after(h.stopAll);
afterEach(h.closeAll);

function assertMessage(msg, { content, sub, sid, room }) {
  assert.ok(msg && typeof msg === 'object', `message object expected, got ${JSON.stringify(msg)}`);
  assert.ok(typeof msg.id === 'string' || typeof msg.id === 'number', `message.id in ${JSON.stringify(msg)}`);
  assert.ok(String(msg.id).length > 0, 'message.id is not empty');
  assert.equal(msg.content, content);
  assert.ok(msg.from && typeof msg.from === 'object', `message.from in ${JSON.stringify(msg)}`);
  assert.equal(msg.from.sub, sub, `from.sub in ${JSON.stringify(msg)}`);
  assert.equal(msg.from.sid, sid, `from.sid in ${JSON.stringify(msg)}`);
  if (room === undefined) assert.ok(!('room' in msg), `no room key expected in ${JSON.stringify(msg)}`);
  else assert.equal(msg.room, room);
  assert.equal(typeof msg.ts, 'number', `ts is a number in ${JSON.stringify(msg)}`);
  assert.ok(Number.isInteger(msg.ts), 'ts is whole milliseconds');
  assert.ok(Math.abs(msg.ts - Date.now()) < 60000, `ts ${msg.ts} is the server's time in ms since the epoch`);
}

async function user(url, opts = {}) {
  const claims = jwt.claims();
  const socket = await connect(url, { auth: { token: jwt.sign(claims, { secret: h.SECRET }) }, ...opts });
  return { socket, sub: claims.sub };
}

describe('message without a room: echo to the sender alone', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    test(`${transports.join('+')}: the sender receives { id, content, from: { sub, sid }, ts }`, async () => {
      const { socket, sub } = await user(url, { transports });
      const got = next(socket, 'message');
      socket.emit('message', { content: 'hello sockeye' });
      assertMessage(await got, { content: 'hello sockeye', sub, sid: socket.id });
    });
  }

  test('the acknowledgement is { ok: true, id } with the id of the echoed message', async () => {
    const { socket, sub } = await user(url);
    const got = next(socket, 'message');
    const res = await ack(socket, 'message', { content: 'with ack' });
    assert.equal(res.ok, true, JSON.stringify(res));
    const msg = await got;
    assertMessage(msg, { content: 'with ack', sub, sid: socket.id });
    assert.equal(res.id, msg.id);
  });

  test('other clients do not receive the echo', async () => {
    const a = await user(url);
    const b = await user(url);
    const got = next(a.socket, 'message');
    a.socket.emit('message', { content: 'private' });
    await got;
    await none(b.socket, 'message', 300);
  });

  test('ids are unique per message', async () => {
    const { socket } = await user(url);
    const msgs = collect(socket, 'message');
    for (let i = 0; i < 5; i++) socket.emit('message', { content: `m${i}` });
    const items = await msgs.until(5);
    assert.deepEqual(items.map((m) => m.content), ['m0', 'm1', 'm2', 'm3', 'm4'], 'in order');
    assert.equal(new Set(items.map((m) => String(m.id))).size, 5, `ids ${items.map((m) => m.id)}`);
  });

  test('keys beyond content and room are ignored; from is the server\'s', async () => {
    const { socket, sub } = await user(url);
    const got = next(socket, 'message');
    socket.emit('message', { content: 'extra', from: { sub: 'forged', sid: 'forged' }, id: 'x', ts: 1, other: true });
    assertMessage(await got, { content: 'extra', sub, sid: socket.id });
  });

  test('content is Unicode: astral characters survive the round trip', async () => {
    const { socket } = await user(url);
    const content = 'héllo 👋 世界 \u0000 "quoted" \\ </script>';
    const got = next(socket, 'message');
    socket.emit('message', { content });
    assert.equal((await got).content, content);
  });
});

describe('content validation (1 to 4096 code points)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('1 character and 4096 characters are accepted', async () => {
    const { socket } = await user(url);
    for (const content of ['x', 'a'.repeat(4096)]) {
      const res = await ack(socket, 'message', { content });
      assert.equal(res.ok, true, `length ${content.length}: ${JSON.stringify(res).slice(0, 300)}`);
    }
  });

  test('4096 astral code points (8192 UTF-16 units) are accepted: length counts code points', async () => {
    const { socket } = await user(url);
    const content = '😀'.repeat(4096);
    const got = next(socket, 'message');
    const res = await ack(socket, 'message', { content });
    assert.equal(res.ok, true, JSON.stringify(res).slice(0, 300));
    assert.equal((await got).content, content);
  });

  test('empty content is VALIDATION', async () => {
    const { socket } = await user(url);
    assertAckError(await ack(socket, 'message', { content: '' }), 'VALIDATION', 'message');
  });

  test('4097 characters (ASCII or astral) are VALIDATION', async () => {
    const { socket } = await user(url);
    assertAckError(await ack(socket, 'message', { content: 'a'.repeat(4097) }), 'VALIDATION', 'message');
    assertAckError(await ack(socket, 'message', { content: '😀'.repeat(4097) }), 'VALIDATION', 'message');
  });
});

describe('wrong shapes and the error event', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  const BAD = [
    ['a bare string', 'hello'],
    ['a number', 42],
    ['null', null],
    ['an array', [{ content: 'x' }]],
    ['an empty object', {}],
    ['content a number', { content: 5 }],
    ['content null', { content: null }],
    ['content an object', { content: { text: 'x' } }],
    ['room a number', { content: 'x', room: 5 }],
    ['room empty', { content: 'x', room: '' }],
    ['room with a space', { content: 'x', room: 'two words' }],
    ['room too long', { content: 'x', room: 'r'.repeat(129) }],
  ];

  for (const [name, payload] of BAD) {
    test(`message with ${name}: ack { ok: false, error: VALIDATION } and no error event`, async () => {
      const { socket } = await user(url);
      const errors = collect(socket, 'error');
      const messages = collect(socket, 'message');
      assertAckError(await ack(socket, 'message', payload), 'VALIDATION', 'message');
      await h.sleep(300);
      assert.deepEqual(errors.items, [], 'no error event when the ack carries the error');
      assert.deepEqual(messages.items, [], 'an event that caused an error has no other effect');
    });

    test(`message with ${name} without ack: error event { code: VALIDATION, message, event }`, async () => {
      const { socket } = await user(url);
      const messages = collect(socket, 'message');
      const got = next(socket, 'error');
      socket.emit('message', payload);
      assertError(await got, 'VALIDATION', 'message');
      await h.sleep(200);
      assert.deepEqual(messages.items, [], 'an event that caused an error has no other effect');
    });
  }

  test('binary content (a Socket.IO binary event) is VALIDATION', async () => {
    const { socket } = await user(url);
    assertAckError(await ack(socket, 'message', { content: Buffer.from('hi') }), 'VALIDATION', 'message');
  });

  test('a lone surrogate is not a Unicode string: VALIDATION, and the socket stays', async () => {
    const { socket } = await user(url);
    assertAckError(await ack(socket, 'message', { content: 'x\ud800' }), 'VALIDATION', 'message');
    assert.equal((await ack(socket, 'message', { content: 'fine' })).ok, true);
  });

  test('message with no payload at all is VALIDATION', async () => {
    const { socket } = await user(url);
    const got = next(socket, 'error');
    socket.emit('message');
    assertError(await got, 'VALIDATION', 'message');
  });

  test('the socket stays usable after errors', async () => {
    const { socket } = await user(url);
    const got = next(socket, 'error');
    socket.emit('message', 42);
    await got;
    const res = await ack(socket, 'message', { content: 'still here' });
    assert.equal(res.ok, true);
  });
});

describe('UNKNOWN_EVENT', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('an unknown event gets an error event { code: UNKNOWN_EVENT, event }', async () => {
    const { socket } = await user(url);
    const got = next(socket, 'error');
    socket.emit('no-such-event', { content: 'x' });
    assertError(await got, 'UNKNOWN_EVENT', 'no-such-event');
  });

  test('an unknown event with an ack gets the error in the ack and no error event', async () => {
    const { socket } = await user(url);
    const errors = collect(socket, 'error');
    assertAckError(await ack(socket, 'chat', { content: 'x' }), 'UNKNOWN_EVENT', 'chat');
    await h.sleep(300);
    assert.deepEqual(errors.items, []);
  });
});
