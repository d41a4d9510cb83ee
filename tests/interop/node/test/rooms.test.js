'use strict';
// APP-CONTRACT rooms: join/leave with acknowledgements and sizes, room broadcasts (sender
// included), NOT_IN_ROOM, FORBIDDEN for another socket's id room, room-name validation.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { jwt, connect, next, collect, ack, none, assertError, assertAckError } = h;

after(h.stopAll);
afterEach(h.closeAll);

const roomName = (tag = 'room') => `${tag}-${crypto.randomBytes(4).toString('hex')}`;

async function user(url, opts = {}) {
  const claims = jwt.claims();
  const socket = await connect(url, { auth: { token: jwt.sign(claims, { secret: h.SECRET }) }, ...opts });
  return { socket, sub: claims.sub };
}

describe('join and leave', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('join by name and by { room }: ack { ok: true, room, size } with members after joining', async () => {
    const room = roomName();
    const a = await user(url);
    const b = await user(url, { transports: ['polling'] });
    assert.deepEqual(await ack(a.socket, 'join', room), { ok: true, room, size: 1 });
    assert.deepEqual(await ack(b.socket, 'join', { room }), { ok: true, room, size: 2 });
  });

  test('keys beyond room are ignored', async () => {
    const room = roomName();
    const a = await user(url);
    assert.deepEqual(await ack(a.socket, 'join', { room, size: 99, extra: true }), { ok: true, room, size: 1 });
    assert.deepEqual(await ack(a.socket, 'leave', { room, extra: true }), { ok: true, room });
  });

  test('joining twice does not count the socket twice', async () => {
    const room = roomName();
    const a = await user(url);
    assert.deepEqual(await ack(a.socket, 'join', room), { ok: true, room, size: 1 });
    assert.deepEqual(await ack(a.socket, 'join', room), { ok: true, room, size: 1 });
  });

  test('leave by name and by { room }: ack { ok: true, room }', async () => {
    const room = roomName();
    const a = await user(url);
    await ack(a.socket, 'join', room);
    assert.deepEqual(await ack(a.socket, 'leave', room), { ok: true, room });
    await ack(a.socket, 'join', room);
    assert.deepEqual(await ack(a.socket, 'leave', { room }), { ok: true, room });
  });

  test('leaving a room the socket is not in succeeds', async () => {
    const room = roomName('never-joined');
    const a = await user(url);
    assert.deepEqual(await ack(a.socket, 'leave', room), { ok: true, room });
  });

  test('sizes follow joins, leaves and disconnects', async () => {
    const room = roomName();
    const a = await user(url);
    const b = await user(url);
    const c = await user(url);
    assert.equal((await ack(a.socket, 'join', room)).size, 1);
    assert.equal((await ack(b.socket, 'join', room)).size, 2);
    await ack(a.socket, 'leave', room);
    assert.equal((await ack(c.socket, 'join', room)).size, 2, 'b and c after a left');
    b.socket.close();
    await h.sleep(300);
    assert.equal((await ack(a.socket, 'join', room)).size, 2, 'a and c after b disconnected');
  });

  test('room names: 128 characters and every allowed character are accepted', async () => {
    const a = await user(url);
    for (const room of ['r'.repeat(128), 'Az09_-.:', 'x', `chat:${roomName()}`]) {
      const res = await ack(a.socket, 'join', room);
      assert.deepEqual(res, { ok: true, room, size: 1 }, `join ${room}`);
    }
  });

  const BAD_ROOMS = [
    ['empty', ''],
    ['129 characters', 'r'.repeat(129)],
    ['a space', 'two words'],
    ['a slash', 'a/b'],
    ['non-ASCII', 'café'],
    ['an emoji', 'room😀'],
    ['a newline', 'a\nb'],
    ['a number', 42],
    ['null', null],
    ['an array', ['lobby']],
    ['an empty object', {}],
    ['{ room } with a number', { room: 42 }],
    ['{ room } with a bad name', { room: 'bad room' }],
  ];
  for (const event of ['join', 'leave']) {
    for (const [name, payload] of BAD_ROOMS) {
      test(`${event} with ${name}: VALIDATION in the ack, no error event`, async () => {
        const a = await user(url);
        const errors = collect(a.socket, 'error');
        assertAckError(await ack(a.socket, event, payload), 'VALIDATION', event);
        await h.sleep(150);
        assert.deepEqual(errors.items, []);
      });
    }
    test(`${event} with a bad name without ack: error event VALIDATION with event '${event}'`, async () => {
      const a = await user(url);
      const got = next(a.socket, 'error');
      a.socket.emit(event, 'bad room');
      assertError(await got, 'VALIDATION', event);
    });
  }

  test('a room name that failed validation was not joined', async () => {
    const a = await user(url);
    await ack(a.socket, 'join', 'bad room');
    assertAckError(await ack(a.socket, 'message', { content: 'x', room: 'bad room' }), 'VALIDATION', 'message');
  });
});

describe('room broadcasts', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('every member receives the message, the sender too; non-members do not', async () => {
    const room = roomName();
    const a = await user(url);
    const b = await user(url, { transports: ['polling'] });
    const c = await user(url, { transports: ['polling', 'websocket'] });
    const outsider = await user(url);
    for (const u of [a, b, c]) await ack(u.socket, 'join', room);
    const gots = [a, b, c].map((u) => next(u.socket, 'message'));
    const res = await ack(a.socket, 'message', { content: 'to the room', room });
    assert.equal(res.ok, true, JSON.stringify(res));
    for (const got of gots) {
      const msg = await got;
      assert.equal(msg.content, 'to the room');
      assert.equal(msg.room, room);
      assert.deepEqual(msg.from, { sub: a.sub, sid: a.socket.id });
      assert.equal(msg.id, res.id, 'the same message id for every member and the ack');
      assert.equal(typeof msg.ts, 'number');
    }
    await none(outsider.socket, 'message', 300);
  });

  test('fan-out: 30 members on mixed transports each receive every message, in order', async () => {
    const room = roomName('fanout');
    const members = [];
    for (let i = 0; i < 30; i++) {
      const transports = [['websocket'], ['polling'], ['polling', 'websocket']][i % 3];
      members.push(await user(url, { transports }));
    }
    for (const m of members) await ack(m.socket, 'join', room);
    const inboxes = members.map((m) => collect(m.socket, 'message'));
    const sender = members[0];
    for (let i = 0; i < 5; i++) assert.equal((await ack(sender.socket, 'message', { content: `f${i}`, room })).ok, true);
    for (const [i, inbox] of inboxes.entries()) {
      const got = await inbox.until(5, 5000);
      assert.deepEqual(got.map((m) => m.content), ['f0', 'f1', 'f2', 'f3', 'f4'], `member ${i}`);
    }
  });

  test('a message to a room the sender is not in is NOT_IN_ROOM (ack), and reaches nobody', async () => {
    const room = roomName();
    const a = await user(url);
    const b = await user(url);
    await ack(b.socket, 'join', room);
    const errors = collect(a.socket, 'error');
    assertAckError(await ack(a.socket, 'message', { content: 'let me in', room }), 'NOT_IN_ROOM', 'message');
    await none(b.socket, 'message', 300);
    assert.deepEqual(errors.items, [], 'no error event when the ack carries the error');
  });

  test('NOT_IN_ROOM without ack is an error event with event "message"', async () => {
    const a = await user(url);
    const got = next(a.socket, 'error');
    a.socket.emit('message', { content: 'x', room: roomName('nobody') });
    assertError(await got, 'NOT_IN_ROOM', 'message');
  });

  test('after leave, the socket neither sends to nor receives from the room', async () => {
    const room = roomName();
    const a = await user(url);
    const b = await user(url);
    await ack(a.socket, 'join', room);
    await ack(b.socket, 'join', room);
    await ack(a.socket, 'leave', room);
    assertAckError(await ack(a.socket, 'message', { content: 'x', room }), 'NOT_IN_ROOM', 'message');
    const gotB = next(b.socket, 'message');
    await ack(b.socket, 'message', { content: 'after leave', room });
    assert.equal((await gotB).content, 'after leave');
    await none(a.socket, 'message', 300);
  });

  test('rooms are per socket: two sockets of the same user are separate members', async () => {
    const room = roomName();
    const claims = jwt.claims();
    const t = jwt.sign(claims, { secret: h.SECRET });
    const s1 = await connect(url, { auth: { token: t } });
    const s2 = await connect(url, { auth: { token: t } });
    assert.equal((await ack(s1, 'join', room)).size, 1);
    await none(s2, 'message', 100);
    assertAckError(await ack(s2, 'message', { content: 'x', room }), 'NOT_IN_ROOM', 'message');
    assert.equal((await ack(s2, 'join', room)).size, 2);
  });
});

describe('the socket id room', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('joining another socket\'s id room is FORBIDDEN (ack)', async () => {
    const a = await user(url);
    const b = await user(url);
    assertAckError(await ack(a.socket, 'join', b.socket.id), 'FORBIDDEN', 'join');
    assertAckError(await ack(a.socket, 'join', { room: b.socket.id }), 'FORBIDDEN', 'join');
  });

  test('FORBIDDEN without ack is an error event, and the join had no effect', async () => {
    const a = await user(url);
    const b = await user(url);
    const got = next(a.socket, 'error');
    a.socket.emit('join', b.socket.id);
    assertError(await got, 'FORBIDDEN', 'join');
    assertAckError(await ack(a.socket, 'message', { content: 'x', room: b.socket.id }), 'NOT_IN_ROOM', 'message');
    await none(b.socket, 'message', 200);
  });

  test('a valid room name that is no socket\'s id can be joined, even if it is 20 characters long', async () => {
    // Socket ids are 20 characters of [A-Za-z0-9_-]; the contract reserves only the ids of
    // existing sockets (FORBIDDEN), every other name of 1 to 128 allowed characters is a room.
    const a = await user(url);
    for (const room of ['abcdefghijklmnopqrst', `r-${Date.now()}-abcdef`.slice(0, 20), 'AAAAAAAAAAAAAAAAAAAA']) {
      assert.equal(room.length, 20);
      assert.deepEqual(await ack(a.socket, 'join', room), { ok: true, room, size: 1 }, `join ${room}`);
    }
  });

  test('a socket is in its own id room: it can send there and receives it', async () => {
    const a = await user(url);
    const got = next(a.socket, 'message');
    const res = await ack(a.socket, 'message', { content: 'to myself', room: a.socket.id });
    assert.equal(res.ok, true, JSON.stringify(res));
    const msg = await got;
    assert.equal(msg.room, a.socket.id);
  });
});
