'use strict';
// The example page (examples/websocket-client.html) in Debian's headless Chromium, driven by
// playwright-core the way a person uses it: type a token, connect, join a room, send, and see the
// message arrive in a second browser context. Playwright never downloads a browser here: it
// launches /usr/bin/chromium (SOCKEYE_CHROMIUM overrides), each launch with a fresh temporary
// profile that Playwright creates and deletes.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { describe, test, before, after } = require('node:test');
const { chromium } = require('playwright-core');
const h = require('../lib/harness');
const { REPO_ROOT, INTEROP_DIR, OTHER_SECRET } = require('../lib/config');

const CHROMIUM = process.env.SOCKEYE_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const RESULTS = path.join(INTEROP_DIR, '.results');
const PAGE = path.join(REPO_ROOT, 'examples', 'websocket-client.html');
const VENDOR = path.join(REPO_ROOT, 'examples', 'vendor', 'socket.io.min.js');

let browser;
before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run tests/interop/setup.sh`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60000 });
  fs.mkdirSync(RESULTS, { recursive: true });
});
after(async () => {
  if (browser) await browser.close();
  await h.stopAll();
});

/** Opens a fresh context (its own cookies and storage) and a page in it, logging page errors. */
async function openPage(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { context, page, errors };
}

const logEntry = (page, kind, text) => page.locator(`#log li[data-kind="${kind}"]`, { hasText: text });

describe('the page on its own (static files, no sockeye)', () => {
  let srv;
  let base;
  before(async () => {
    // A tiny static server with the two files the page needs, as sockeye serves them.
    srv = http.createServer((req, res) => {
      const file = req.url === '/' ? PAGE : req.url === '/vendor/socket.io.min.js' ? VENDOR : null;
      if (!file) { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'Content-Type': file === PAGE ? 'text/html; charset=utf-8' : 'text/javascript' });
      res.end(fs.readFileSync(file));
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${srv.address().port}`;
  });
  after(() => new Promise((r) => srv.close(r)));

  test('file:// opens the page: the placeholder is cleared and a missing library is reported', async () => {
    const { context, page } = await openPage(`file://${PAGE}`);
    assert.equal(await page.title(), 'sockeye example client');
    assert.equal(await page.inputValue('#token'), '');
    assert.equal(await page.getAttribute('#status', 'data-state'), 'error');
    await context.close();
  });

  test('served over HTTP: the library loads, every control is labelled, the ids are there', async () => {
    const { context, page, errors } = await openPage(`${base}/`);
    assert.equal(await page.evaluate(() => typeof window.io), 'function');
    assert.equal(await page.getAttribute('#status', 'data-state'), 'disconnected');
    assert.equal(await page.inputValue('#token'), '');
    for (const id of ['token', 'transport', 'connect', 'disconnect', 'refresh', 'status', 'room', 'join',
      'leave', 'rooms', 'content', 'message-room', 'ack', 'send', 'log', 'clear']) {
      assert.equal(await page.locator(`#${id}`).count(), 1, `#${id}`);
    }
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.labels.length === 0).map((e) => e.id));
    assert.deepEqual(unlabelled, [], 'every form control has a label');
    assert.equal(await page.isDisabled('#send'), true, 'send is disabled until connected');
    await page.screenshot({ path: path.join(RESULTS, 'page-static.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('two people chatting through sockeye', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  async function signIn(sub, transport) {
    const p = await openPage(`${url}/`);
    await p.page.fill('#token', h.jwt.sign(h.jwt.claims({ sub }), { secret: h.SECRET }));
    await p.page.selectOption('#transport', transport);
    await p.page.click('#connect');
    await p.page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
    return p;
  }

  test('connect with a token, join a room, send, and see it arrive in the other context', async () => {
    const room = `browser-${Date.now()}`;
    const alice = await signIn('alice', 'polling');
    const bob = await signIn('bob', 'websocket');
    for (const p of [alice, bob]) {
      await p.page.fill('#room', room);
      await p.page.click('#join');
      await logEntry(p.page, 'ack', 'join: ok').waitFor({ timeout: 5000 });
      await p.page.locator('#rooms li', { hasText: room }).waitFor({ timeout: 5000 });
    }
    assert.match(await logEntry(bob.page, 'ack', 'join: ok').textContent(), /"size":2/);

    await alice.page.fill('#content', 'hello bob, from the browser');
    await alice.page.fill('#message-room', room);
    await alice.page.click('#send');
    const atBob = logEntry(bob.page, 'message', 'hello bob, from the browser');
    await atBob.waitFor({ timeout: 5000 });
    assert.match(await atBob.textContent(), new RegExp(`\\[${room}\\] alice: hello bob`));
    await logEntry(alice.page, 'message', 'hello bob, from the browser').waitFor({ timeout: 5000 });
    await logEntry(alice.page, 'ack', 'message: ok').waitFor({ timeout: 5000 });

    // After the upgrade, alice's status names the WebSocket transport.
    await alice.page.waitForSelector('#status:has-text("websocket")', { timeout: 12000 });

    await bob.page.fill('#content', '<img src=x onerror="window.__pwned=1"> reply');
    await bob.page.fill('#message-room', room);
    await bob.page.press('#content', 'Enter');
    await logEntry(alice.page, 'message', '<img src=x').waitFor({ timeout: 5000 });
    assert.equal(await alice.page.evaluate(() => window.__pwned), undefined, 'messages are shown as text');
    assert.equal(await alice.page.locator('#log img').count(), 0);

    await alice.page.screenshot({ path: path.join(RESULTS, 'page-chat.png'), fullPage: true });
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
    await alice.context.close();
    await bob.context.close();
  });

  test('a message without a room is echoed to the sender only', async () => {
    const carol = await signIn('carol', 'websocket');
    const dave = await signIn('dave', 'websocket');
    await carol.page.fill('#content', 'just for me');
    await carol.page.click('#send');
    await logEntry(carol.page, 'message', 'carol: just for me').waitFor({ timeout: 5000 });
    await h.sleep(300);
    assert.equal(await logEntry(dave.page, 'message', 'just for me').count(), 0);
    await carol.context.close();
    await dave.context.close();
  });

  test('errors are shown: in the ack, or as error events without acks', async () => {
    const erin = await signIn('erin', 'websocket');
    await erin.page.fill('#content', 'nobody home');
    await erin.page.fill('#message-room', 'not-joined');
    await erin.page.click('#send');
    await logEntry(erin.page, 'ack', 'NOT_IN_ROOM').waitFor({ timeout: 5000 });
    await erin.page.uncheck('#ack');
    await erin.page.fill('#content', 'nobody home again');
    await erin.page.click('#send');
    await erin.page.locator('#log li[data-kind="error"][data-code="NOT_IN_ROOM"][data-event="message"]').waitFor({ timeout: 5000 });
    await erin.page.click('#leave'); // #room is empty: a VALIDATION error event
    await erin.page.locator('#log li[data-kind="error"][data-code="VALIDATION"][data-event="leave"]').waitFor({ timeout: 5000 });
    await erin.page.click('#disconnect');
    await erin.page.waitForSelector('#status[data-state="disconnected"]', { timeout: 5000 });
    assert.equal(await erin.page.isEnabled('#connect'), true);
    await erin.context.close();
  });

  test('a refused token shows the connect_error reason', async () => {
    const p = await openPage(`${url}/`);
    await p.page.fill('#token', h.jwt.sign(h.jwt.claims(), { secret: OTHER_SECRET }));
    await p.page.click('#connect');
    await p.page.waitForSelector('#status[data-state="refused"]', { timeout: 10000 });
    assert.match(await p.page.textContent('#status'), /bad_signature/);
    await p.page.locator('#log li[data-kind="connect_error"][data-reason="bad_signature"]').waitFor({ timeout: 5000 });
    await p.context.close();
  });
});

describe('cross-origin pages in a real browser (CORS as Chromium enforces it)', () => {
  // The page comes from a tiny static server (another origin) and opens io(<sockeye URL>).
  let srv;
  let pageUrl;
  before(async () => {
    srv = http.createServer((req, res) => {
      const file = req.url === '/' ? PAGE : req.url === '/vendor/socket.io.min.js' ? VENDOR : null;
      if (!file) { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'Content-Type': file === PAGE ? 'text/html; charset=utf-8' : 'text/javascript' });
      res.end(fs.readFileSync(file));
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    pageUrl = `http://localhost:${srv.address().port}/`;
  });
  after(() => new Promise((r) => srv.close(r)));

  /** In the page: connect to `target`, send one message, report what happened. */
  async function tryFromPage(target, transports) {
    const p = await openPage(pageUrl);
    const token = h.jwt.sign(h.jwt.claims({ sub: 'cross' }), { secret: h.SECRET });
    const result = await p.page.evaluate(({ target, transports, token }) => new Promise((resolve) => {
      const s = window.io(target, { auth: { token }, transports, reconnection: false, timeout: 5000 });
      const done = (r) => { s.close(); resolve(r); };
      s.on('connect_error', (e) => done({ connected: false, error: e.message }));
      s.on('connect', () => {
        s.timeout(5000).emit('message', { content: 'from another origin' }, (err, res) => done({ connected: true, ack: err ? String(err) : res }));
      });
      setTimeout(() => done({ connected: false, error: 'timeout' }), 8000);
    }), { target, transports, token });
    await p.context.close();
    return result;
  }

  for (const transports of [['polling'], ['websocket']]) {
    test(`${transports[0]}: --cors-origins * lets a page from another origin connect and chat`, async () => {
      const { url } = await h.server('corsany');
      const r = await tryFromPage(url, transports);
      assert.equal(r.connected, true, JSON.stringify(r));
      assert.equal(r.ack && r.ack.ok, true, JSON.stringify(r));
    });

    test(`${transports[0]}: with no origins configured, a page from another origin is refused`, async () => {
      const { url } = await h.server('default');
      const r = await tryFromPage(url, transports);
      assert.equal(r.connected, false, JSON.stringify(r));
    });

    test(`${transports[0]}: the page's origin listed in --cors-origins connects and chats`, async () => {
      const origin = pageUrl.replace(/\/$/, '');
      const own = await h.spawnServer(['--jwt-secret', h.SECRET, '--cors-origins', `http://other.sockeye.test,${origin}`]);
      try {
        const r = await tryFromPage(own.url, transports);
        assert.equal(r.connected, true, JSON.stringify(r));
        assert.equal(r.ack && r.ack.ok, true, JSON.stringify(r));
      } finally { await own.stop(); }
    });

    test(`${transports[0]}: an origin outside --cors-origins is refused`, async () => {
      const { url } = await h.server('cors');
      const r = await tryFromPage(url, transports);
      assert.equal(r.connected, false, JSON.stringify(r));
    });
  }
});

describe('development mode pre-fills the token', () => {
  let url;
  before(async () => { ({ url } = await h.server('dev')); });

  test('open the page and connect without typing a token', async () => {
    const p = await openPage(`${url}/`);
    assert.match(await p.page.inputValue('#token'), /^eyJ/);
    await p.page.click('#connect');
    await p.page.waitForSelector('#status[data-state="connected"]', { timeout: 10000 });
    await p.context.close();
  });
});
