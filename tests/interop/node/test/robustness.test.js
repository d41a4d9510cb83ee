'use strict';
// APP-CONTRACT "Nothing a client sends can crash the process, stall other clients, or make the
// server hold unbounded memory": garbage on both transports while a stock client keeps chatting.
// run.sh also checks, after all suites, that every scenario server is still running.

const assert = require('node:assert/strict');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');

const { jwt, connect, ack, request, rawWebSocket, pollingHandshake } = h;

after(h.stopAll);
afterEach(h.closeAll);

const auth = () => ({ auth: { token: jwt.sign(jwt.claims(), { secret: h.SECRET }) } });

const GARBAGE_FRAMES = [
  '', '9', '4', '40', '4{', '42', '42[', '42["message"', '42[]', '42[1,2]', '42[null]', '42{"a":1}',
  '4299999999999999999999999["message",{"content":"x"}]', '42-1["message",{"content":"x"}]',
  '451-["message",{"_placeholder":true,"num":0}]', '45999999-["message"]', '4/nope,["message"]', '4/,',
  '41', '43', '433["x"]', '44{}', '46', '47', '5', '6', '3probe', '2probe', '1', '0', 'b', 'bAAAA',
  '\u0000', '\uffff', '4\ud800', `42["${'a'.repeat(500)}"]`, '42["message",{"content":"x","room":"r".repeat(5)}]',
];

describe('garbage in, service goes on', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  test('malformed Engine.IO and Socket.IO frames over WebSocket', async () => {
    const bystander = await connect(url, auth());
    for (const frame of GARBAGE_FRAMES) {
      const { ws } = await rawWebSocket(url);
      ws.send(frame);
      ws.send(Buffer.from([0xff, 0x00, 0x42]));
      await h.sleep(20);
      ws.terminate();
    }
    // The same frames after a successful Socket.IO CONNECT.
    const { ws, messages } = await rawWebSocket(url);
    ws.send(`40${JSON.stringify({ token: jwt.sign(jwt.claims(), { secret: h.SECRET }) })}`);
    await h.eventually(() => messages.length >= 2, 3000, 'CONNECT answer');
    for (const frame of GARBAGE_FRAMES) if (ws.readyState === 1) ws.send(frame);
    await h.sleep(200);
    ws.terminate();
    assert.ok(bystander.connected);
    assert.equal((await ack(bystander, 'message', { content: 'still here' })).ok, true);
  });

  test('malformed polling requests', async () => {
    const bystander = await connect(url, { ...auth(), transports: ['polling'] });
    const base = `${url}/socket.io/`;
    const answers = [];
    for (const q of ['', '?EIO=4', '?transport=polling', '?EIO=4&transport=nope', '?EIO=x&transport=polling',
      '?EIO=4&transport=polling&sid=', '?EIO=4&transport=websocket']) {
      answers.push((await request(`${base}${q}`)).status);
    }
    const { sid } = await pollingHandshake(url);
    const sess = `${base}?EIO=4&transport=polling&sid=${sid}`;
    for (const body of ['', '\x1e\x1e', '4\x1e9\x1e', '40\x1e42[', 'bnotbase64!!', '4'.repeat(10000), '\ud800']) {
      answers.push((await request(sess, { method: 'POST', body })).status);
    }
    answers.push((await request(sess, { method: 'PUT', body: 'x' })).status);
    answers.push((await request(sess, { method: 'DELETE' })).status);
    assert.ok(answers.every((s) => s >= 200 && s < 600), `HTTP answers: ${answers}`);
    assert.ok(answers.every((s) => s !== 500), `no 500 answers: ${answers}`);
    assert.equal((await ack(bystander, 'message', { content: 'still here' })).ok, true);
  });

  test('room members that stop reading do not stall the sender', async () => {
    const bystander = await connect(url, auth());
    const room = `ghosts.${Date.now()}`;
    const ghosts = [];
    for (let i = 0; i < 10; i++) {
      const { ws, messages } = await rawWebSocket(url);
      ws.send(`40${JSON.stringify({ token: jwt.sign(jwt.claims(), { secret: h.SECRET }) })}`);
      await h.eventually(() => messages.length >= 2, 3000, 'CONNECT answer');
      ws.send(`42${JSON.stringify(['join', room])}`);
      ghosts.push(ws);
    }
    await h.sleep(200);
    for (const ws of ghosts) ws._socket.pause(); // stop reading: the server's writes back up
    const joined = await ack(bystander, 'join', room);
    assert.equal(joined.size, 11, JSON.stringify(joined));
    const started = Date.now();
    for (let i = 0; i < 10; i++) {
      assert.equal((await ack(bystander, 'message', { content: 'x'.repeat(4000), room })).ok, true);
    }
    assert.ok(Date.now() - started < 3000, `answered promptly (${Date.now() - started} ms)`);
    for (const ws of ghosts) ws.terminate();
  });
});
