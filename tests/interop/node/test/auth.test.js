'use strict';
// APP-CONTRACT "Authentication": the three token sources, their precedence, every refusal reason
// as a connect_error, and the configured validation (issuer, audience, leeway, algorithms, keys).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, test, before, after, afterEach } = require('node:test');
const h = require('../lib/harness');
const { OTHER_SECRET, readKey } = require('../lib/config');

const { token, jwt, assertUnauthorized, connect } = h;
const now = jwt.now;

after(h.stopAll);
afterEach(h.closeAll);

const TRANSPORTS = ['polling', 'websocket'];
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

describe('token sources (default server)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  for (const transport of TRANSPORTS) {
    const base = { transports: [transport] };

    test(`${transport}: auth.token is accepted`, async () => {
      const s = await connect(url, { ...base, auth: { token: token() } });
      assert.ok(s.connected && typeof s.id === 'string');
    });

    test(`${transport}: Authorization: Bearer header is accepted`, async () => {
      await connect(url, { ...base, extraHeaders: bearer(token()) });
    });

    test(`${transport}: the bearer scheme is case-insensitive`, async () => {
      await connect(url, { ...base, extraHeaders: { Authorization: `bearer ${token()}` } });
      await connect(url, { ...base, extraHeaders: { Authorization: `BEARER ${token()}` } });
    });

    test(`${transport}: ?token= query parameter is accepted`, async () => {
      await connect(url, { ...base, query: { token: token() } });
    });

    test(`${transport}: no token at all is refused as missing`, async () => {
      await assertUnauthorized(url, base, 'missing');
      await assertUnauthorized(url, { ...base, auth: {} }, 'missing');
    });
  }

  test('websocket-only: the header on the WebSocket upgrade request is a source', async () => {
    // With transports ['websocket'] the upgrade request is the one that opens the session.
    const bad = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await assertUnauthorized(url, { transports: ['websocket'], extraHeaders: bearer(bad) }, 'bad_signature', bad);
  });

  test('auth.token wins over a bad header and a bad query token', async () => {
    const bad = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await connect(url, { auth: { token: token() }, extraHeaders: bearer(bad), query: { token: bad } });
  });

  test('an invalid auth.token is refused even when a valid header follows', async () => {
    const bad = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await assertUnauthorized(url, { auth: { token: bad }, extraHeaders: bearer(token()) }, 'bad_signature', bad);
  });

  test('the header wins over a bad query token', async () => {
    const bad = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await connect(url, { extraHeaders: bearer(token()), query: { token: bad } });
  });

  test('an invalid header token is refused even when a valid query token follows', async () => {
    const bad = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await assertUnauthorized(url, { extraHeaders: bearer(bad), query: { token: token() } }, 'bad_signature', bad);
  });

  test('auth.token null is absent: the next source decides', async () => {
    await connect(url, { auth: { token: null }, extraHeaders: bearer(token()) });
    await connect(url, { auth: { token: null }, query: { token: token() } });
  });

  test('an empty auth.token string is present and malformed', async () => {
    await assertUnauthorized(url, { auth: { token: '' }, extraHeaders: bearer(token()) }, 'malformed');
  });

  test('a non-string auth.token is present and malformed', async () => {
    for (const value of [42, true, { jwt: token() }, [token()]]) {
      await assertUnauthorized(url, { auth: { token: value }, query: { token: token() } }, 'malformed');
    }
  });

  test('other Authorization schemes are ignored', async () => {
    await connect(url, { extraHeaders: { Authorization: 'Basic dXNlcjpwYXNz' }, query: { token: token() } });
    await assertUnauthorized(url, { extraHeaders: { Authorization: 'Basic dXNlcjpwYXNz' } }, 'missing');
  });

  test('an empty Bearer header is present and malformed', async () => {
    await assertUnauthorized(url, { extraHeaders: { Authorization: 'Bearer ' }, query: { token: token() } }, 'malformed');
  });

  test('an empty ?token= is not a source', async () => {
    await assertUnauthorized(url, { query: { token: '' } }, 'missing');
    await connect(url, { query: { token: '' }, extraHeaders: bearer(token()) });
  });
});

describe('refusal reasons (default server: HS256, no iss/aud, leeway 0)', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  for (const transport of TRANSPORTS) {
    test(`${transport}: the refusal is a connect_error { message, data: { code, reason } }`, async () => {
      const t = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
      const err = await assertUnauthorized(url, { transports: [transport], auth: { token: t } }, 'bad_signature', t);
      assert.ok(!err.message.includes(t), 'the token must not appear in the message');
    });
  }

  test('malformed: not a JWT', async () => {
    for (const t of ['not-a-jwt', 'a.b', 'a.b.c.d', 'eyJhbGciOiJIUzI1NiJ9.%%%.sig', 'x'.repeat(300)]) {
      await assertUnauthorized(url, { auth: { token: t } }, 'malformed', t);
    }
  });

  test('malformed: header or payload not JSON', async () => {
    const head = jwt.b64url('{"alg":"HS256"');
    const body = jwt.b64url({ sub: 'x', exp: now() + 60 });
    await assertUnauthorized(url, { auth: { token: `${head}.${body}.c2ln` } }, 'malformed');
  });

  test('malformed: exp missing', async () => {
    const t = token({ exp: undefined });
    await assertUnauthorized(url, { auth: { token: t } }, 'malformed', t);
  });

  test('malformed: exp of the wrong type', async () => {
    const t = token({ exp: String(now() + 3600) });
    await assertUnauthorized(url, { auth: { token: t } }, 'malformed', t);
  });

  test('malformed: nbf of the wrong type', async () => {
    const t = token({ nbf: 'yesterday' });
    await assertUnauthorized(url, { auth: { token: t } }, 'malformed', t);
  });

  test('bad_signature: another secret', async () => {
    const t = jwt.sign(jwt.claims(), { secret: OTHER_SECRET });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_signature', t);
  });

  test('bad_signature: claims changed after signing', async () => {
    const [head, , sig] = token().split('.');
    const forged = `${head}.${jwt.b64url(jwt.claims({ sub: 'admin' }))}.${sig}`;
    await assertUnauthorized(url, { auth: { token: forged } }, 'bad_signature', forged);
  });

  test('expired', async () => {
    const t = token({ exp: now() - 60, iat: now() - 120 });
    await assertUnauthorized(url, { auth: { token: t } }, 'expired', t);
  });

  test('expired: leeway is 0 s by default', async () => {
    const t = token({ exp: now() - 3, iat: now() - 120 });
    await assertUnauthorized(url, { auth: { token: t } }, 'expired', t);
  });

  test('not_yet_valid: nbf in the future', async () => {
    const t = token({ nbf: now() + 600 });
    await assertUnauthorized(url, { auth: { token: t } }, 'not_yet_valid', t);
  });

  test('nbf in the past is honoured and accepted', async () => {
    await connect(url, { auth: { token: token({ nbf: now() - 10 }) } });
  });

  test('bad_algorithm: HS384 and HS512 when only HS256 is configured', async () => {
    for (const alg of ['HS384', 'HS512']) {
      const t = token({}, { alg });
      await assertUnauthorized(url, { auth: { token: t } }, 'bad_algorithm', t);
    }
  });

  test('bad_algorithm: alg none, with or without a signature', async () => {
    const unsigned = jwt.sign(jwt.claims(), { alg: 'none' });
    await assertUnauthorized(url, { auth: { token: unsigned } }, 'bad_algorithm');
    const [, body, sig] = token().split('.');
    const noneHead = jwt.b64url({ alg: 'none', typ: 'JWT' });
    await assertUnauthorized(url, { auth: { token: `${noneHead}.${body}.${sig}` } }, 'bad_algorithm');
    const upper = jwt.b64url({ alg: 'NONE', typ: 'JWT' });
    await assertUnauthorized(url, { auth: { token: `${upper}.${body}.` } }, 'bad_algorithm');
  });

  test('bad_algorithm: RS256 when only HS256 is configured', async () => {
    const t = jwt.sign(jwt.claims(), { alg: 'RS256', key: readKey('rs256-private.pem') });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_algorithm', t);
  });

  test('the refusal reason is the same through every source', async () => {
    const t = token({ exp: now() - 60 });
    await assertUnauthorized(url, { extraHeaders: bearer(t) }, 'expired', t);
    await assertUnauthorized(url, { query: { token: t } }, 'expired', t);
    await assertUnauthorized(url, { transports: ['polling'], extraHeaders: bearer(t) }, 'expired', t);
  });
});

describe('issuer, audience and leeway (--jwt-issuer/--jwt-audience/--jwt-leeway 5)', () => {
  const ISS = 'https://issuer.sockeye.test';
  const AUD = 'sockeye-interop';
  const good = (o = {}) => token({ iss: ISS, aud: AUD, ...o });
  let url;
  before(async () => { ({ url } = await h.server('claims')); });

  test('the right iss and aud are accepted', async () => {
    await connect(url, { auth: { token: good() } });
  });

  test('aud as an array that contains the audience is accepted', async () => {
    await connect(url, { auth: { token: good({ aud: ['someone-else', AUD] }) } });
  });

  test('bad_issuer', async () => {
    const t = good({ iss: 'https://evil.test' });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_issuer', t);
  });

  test('bad_audience', async () => {
    const t = good({ aud: 'another-service' });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_audience', t);
    const t2 = good({ aud: ['a', 'b'] });
    await assertUnauthorized(url, { auth: { token: t2 } }, 'bad_audience', t2);
  });

  test('malformed: iss or aud missing when configured', async () => {
    await assertUnauthorized(url, { auth: { token: good({ iss: undefined }) } }, 'malformed');
    await assertUnauthorized(url, { auth: { token: good({ aud: undefined }) } }, 'malformed');
  });

  test('malformed: iss or aud of the wrong type', async () => {
    await assertUnauthorized(url, { auth: { token: good({ iss: 42 }) } }, 'malformed');
    await assertUnauthorized(url, { auth: { token: good({ aud: 42 }) } }, 'malformed');
  });

  test('leeway: exp 2 s ago is accepted with a 5 s leeway; 60 s ago is expired', async () => {
    await connect(url, { auth: { token: good({ exp: now() - 2 }) } });
    await assertUnauthorized(url, { auth: { token: good({ exp: now() - 60 }) } }, 'expired');
  });

  test('leeway: nbf 2 s ahead is accepted with a 5 s leeway; 60 s ahead is not_yet_valid', async () => {
    await connect(url, { auth: { token: good({ nbf: now() + 2 }) } });
    await assertUnauthorized(url, { auth: { token: good({ nbf: now() + 60 }) } }, 'not_yet_valid');
  });
});

describe('configured algorithms (--jwt-algorithms HS256,HS512)', () => {
  let url;
  before(async () => { ({ url } = await h.server('multialg')); });

  test('HS256 and HS512 are accepted', async () => {
    await connect(url, { auth: { token: token({}, { alg: 'HS256' }) } });
    await connect(url, { auth: { token: token({}, { alg: 'HS512' }) } });
  });

  test('HS384 is bad_algorithm; none is bad_algorithm', async () => {
    await assertUnauthorized(url, { auth: { token: token({}, { alg: 'HS384' }) } }, 'bad_algorithm');
    await assertUnauthorized(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'none' }) } }, 'bad_algorithm');
  });
});

describe('public key (--jwt-public-key PEM --jwt-algorithms RS256)', () => {
  let url;
  before(async () => { ({ url } = await h.server('rsa')); });
  const rs = (o = {}, key = readKey('rs256-private.pem'), alg = 'RS256') => jwt.sign(jwt.claims(o), { alg, key });

  test('an RS256 token signed by the matching private key is accepted', async () => {
    await connect(url, { auth: { token: rs() } });
  });

  test('PS256 (also configured) with the same key is accepted', async () => {
    await connect(url, { auth: { token: rs({}, undefined, 'PS256') } });
  });

  test('bad_signature: RS256 signed by another key', async () => {
    const t = rs({}, readKey('other-private.pem'));
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_signature', t);
  });

  test('bad_algorithm: HS256 signed with the public key as the secret (key confusion)', async () => {
    const t = jwt.sign(jwt.claims(), { alg: 'HS256', secret: readKey('rs256-public.pem') });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_algorithm', t);
  });

  test('bad_algorithm: RS384 when only RS256 is configured; none', async () => {
    await assertUnauthorized(url, { auth: { token: rs({}, undefined, 'RS384') } }, 'bad_algorithm');
    await assertUnauthorized(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'none' }) } }, 'bad_algorithm');
  });

  test('expired RS256', async () => {
    await assertUnauthorized(url, { auth: { token: rs({ exp: now() - 60 }) } }, 'expired');
  });
});

describe('EC and EdDSA public keys (--jwt-public-key with ES256 / EdDSA)', () => {
  const fresh = (type, opts) => crypto.generateKeyPairSync(type, opts).privateKey.export({ type: 'pkcs8', format: 'pem' });

  test('ES256: the matching key is accepted, another key is bad_signature, HS256 is bad_algorithm', async () => {
    const { url } = await h.server('ec');
    await connect(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'ES256', key: readKey('es256-private.pem') }) } });
    const other = jwt.sign(jwt.claims(), { alg: 'ES256', key: fresh('ec', { namedCurve: 'P-256' }) });
    await assertUnauthorized(url, { auth: { token: other } }, 'bad_signature', other);
    await assertUnauthorized(url, { auth: { token: token() } }, 'bad_algorithm');
  });

  test('EdDSA: the matching key is accepted, another key is bad_signature, RS256 is bad_algorithm', async () => {
    const { url } = await h.server('eddsa');
    await connect(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'EdDSA', key: readKey('ed25519-private.pem') }) } });
    const other = jwt.sign(jwt.claims(), { alg: 'EdDSA', key: fresh('ed25519') });
    await assertUnauthorized(url, { auth: { token: other } }, 'bad_signature', other);
    const rs = jwt.sign(jwt.claims(), { alg: 'RS256', key: readKey('rs256-private.pem') });
    await assertUnauthorized(url, { auth: { token: rs } }, 'bad_algorithm', rs);
  });
});

describe('JWKS (--jwt-jwks with one RS256 key, kid "interop-rs256")', () => {
  let url;
  before(async () => { ({ url } = await h.server('jwks')); });
  const header = { kid: 'interop-rs256' };

  test('an RS256 token whose kid names the key is accepted', async () => {
    await connect(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'RS256', key: readKey('rs256-private.pem'), header }) } });
  });

  test('bad_signature: the right kid, another key', async () => {
    const t = jwt.sign(jwt.claims(), { alg: 'RS256', key: readKey('other-private.pem'), header });
    await assertUnauthorized(url, { auth: { token: t } }, 'bad_signature', t);
  });

  test('bad_algorithm: HS256 and none', async () => {
    await assertUnauthorized(url, { auth: { token: token({}, { header }) } }, 'bad_algorithm');
    await assertUnauthorized(url, { auth: { token: jwt.sign(jwt.claims(), { alg: 'none', header }) } }, 'bad_algorithm');
  });
});

describe('the header and query of the request that opened the Engine.IO session count', () => {
  let url;
  before(async () => { ({ url } = await h.server('default')); });

  /** Polls until the Socket.IO answer to CONNECT arrives; returns that packet's text. */
  async function connectAnswer(sess) {
    for (let i = 0; i < 5; i++) {
      const res = await h.request(sess);
      assert.equal(res.status, 200, res.body);
      const packet = res.body.split('\x1e').find((p) => p.startsWith('40') || p.startsWith('44'));
      if (packet) return packet;
    }
    throw new Error('no CONNECT answer');
  }
  const reasonOf = (packet) => {
    assert.ok(packet.startsWith('44'), `CONNECT_ERROR expected, got ${packet}`);
    return JSON.parse(packet.slice(2)).data.reason;
  };
  const session = (open, extra = '') => `${url}/socket.io/?EIO=4&transport=polling&sid=${open.sid}${extra}`;

  test('Bearer on the polling handshake; CONNECT posted later without it: accepted', async () => {
    const open = await h.pollingHandshake(url, { headers: bearer(token()) });
    assert.equal((await h.request(session(open), { method: 'POST', body: '40' })).status, 200);
    assert.match(await connectAnswer(session(open)), /^40\{"sid":"/);
  });

  test('?token= on the polling handshake; CONNECT posted later without it: accepted', async () => {
    const res = await h.request(`${url}/socket.io/?EIO=4&transport=polling&token=${token()}`);
    assert.equal(res.status, 200, res.body);
    const withToken = JSON.parse(res.body.slice(1));
    await h.request(session(withToken), { method: 'POST', body: '40' });
    assert.match(await connectAnswer(session(withToken)), /^40\{"sid":"/);
  });

  test('a Bearer header only on the later POST is not a source: missing', async () => {
    const open = await h.pollingHandshake(url);
    await h.request(session(open), { method: 'POST', headers: bearer(token()), body: '40' });
    assert.equal(reasonOf(await connectAnswer(session(open))), 'missing');
  });

  test('a ?token= only on the later POST is not a source: missing', async () => {
    const open = await h.pollingHandshake(url);
    await h.request(session(open, `&token=${token()}`), { method: 'POST', body: '40' });
    assert.equal(reasonOf(await connectAnswer(session(open))), 'missing');
  });

  test('after an upgrade, the header of the WebSocket upgrade request is not a source: missing', async () => {
    const open = await h.pollingHandshake(url);
    const WebSocket = require('ws');
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${open.sid}`,
      { headers: bearer(token()) });
    const frames = [];
    ws.on('message', (d) => frames.push(d.toString()));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send('2probe');
    await h.eventually(() => frames.includes('3probe'), 3000, '3probe');
    ws.send('5');
    ws.send('40');
    await h.eventually(() => frames.some((f) => f.startsWith('4')), 3000, 'CONNECT answer over WebSocket');
    const packet = frames.find((f) => f.startsWith('4'));
    assert.equal(reasonOf(packet), 'missing');
    ws.close();
  });
});
