#!/usr/bin/env node
// The cluster checker (issue 12): starts its own redis-server, three cluster nodes (any mix of the
// Node reference node `node-node.js` and sockeye's `cluster-node` example), connects real
// socket.io-client 4.8 clients to each and runs every scenario of NODE-CONTRACT.md's
// "What is checked" table, judging only what the clients see (and Redis' subscription counts).
//
//   MODE=classic|sharded NODES=node,sockeye,node node check.js [--jwt-secret[=SECRET]] [--only=a,b]
//
// `sockeye` runs $SOCKEYE_CLUSTER_NODE (default <repo>/target/release/examples/cluster-node), `node`
// runs node-node.js. One line per check, `PASS|FAIL <check> <mode> <nodes>`, then a SUMMARY line;
// the exit status is 1 when any check failed, 2 when the cluster could not be set up at all.
// Logs of redis and every node: tests/cluster/.logs/<mode>-<nodes>/ (kept, printed on failure).
"use strict";

const { spawn, execFile } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const { io } = require("socket.io-client");

// ---------------------------------------------------------------------------------------------
// Configuration

const here = __dirname;
const repoRoot = path.resolve(here, "..", "..");
const MODE = process.env.MODE || "classic";
const SPEC = (process.env.NODES || "node,node,node").split(",").map((s) => s.trim()).filter(Boolean);
const SOCKEYE_BIN = path.resolve(
  repoRoot,
  process.env.SOCKEYE_CLUSTER_NODE || path.join("target", "release", "examples", "cluster-node"),
);
const PREFIX = "socket.io";
const NODE_REQUEST_TIMEOUT_MS = 2000; // CLUSTER_REQUEST_TIMEOUT_MS given to every node
const ASK_TIMEOUT_MS = 5000; // how long the checker waits for a node's ack in normal scenarios
const ARRIVAL_TIMEOUT_MS = 5000; // how long an expected delivery may take
const QUIET_MS = 250; // "exactly once" is judged this long after the last expected arrival
const NOBODY_MS = 500; // when nobody is expected to receive, wait this long for strays
const RESUBSCRIBE_LIMIT_MS = 10000; // redis-restart: every node resubscribed within this
const HUNG_LIMIT_MS = 10000; // node-hung: requests answered within this
const NSPS = ["/", "/second"];

const argv = process.argv.slice(2);
let jwtSecret = "";
let only = null;
for (const arg of argv) {
  if (arg === "--jwt-secret") jwtSecret = crypto.randomBytes(24).toString("hex");
  else if (arg.startsWith("--jwt-secret=")) jwtSecret = arg.slice("--jwt-secret=".length);
  else if (arg.startsWith("--only=")) only = new Set(arg.slice("--only=".length).split(","));
  else if (arg === "-h" || arg === "--help") {
    console.log("usage: MODE=classic|sharded NODES=node,sockeye,node node check.js [--jwt-secret[=S]] [--only=scenario,...]");
    process.exit(0);
  } else {
    console.error(`check: unknown argument ${arg}`);
    process.exit(2);
  }
}
if (MODE !== "classic" && MODE !== "sharded") {
  console.error(`check: MODE must be classic or sharded, not ${MODE}`);
  process.exit(2);
}
// `script=<file.js>` runs another Node script as a node (selftest.sh's deliberately broken nodes).
if (SPEC.length !== 3 || SPEC.some((k) => k !== "node" && k !== "sockeye" && !k.startsWith("script="))) {
  console.error(`check: NODES must be three of node|sockeye|script=<file>, e.g. node,sockeye,node (got ${process.env.NODES})`);
  process.exit(2);
}
const NODES_LABEL = SPEC.join(",");
const LABEL = `${MODE} ${NODES_LABEL}${jwtSecret ? " jwt" : ""}`;
const kindLabel = (k) => (k.startsWith("script=") ? path.basename(k, ".js") : k);
const logDir = path.join(here, ".logs", `${MODE}-${SPEC.map(kindLabel).join("-")}${jwtSecret ? "-jwt" : ""}`);

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();

async function waitFor(predicate, limitMs, stepMs = 10) {
  const deadline = now() + limitMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (now() >= deadline) return null;
    await sleep(stepMs);
  }
}

function freePorts(count) {
  // Hold every listener open until all are bound so the ports are distinct.
  return new Promise((resolve, reject) => {
    const servers = [];
    const ports = [];
    const next = () => {
      if (servers.length === count) {
        let closed = 0;
        for (const s of servers) s.close(() => ++closed === count && resolve(ports));
        return;
      }
      const s = net.createServer();
      s.on("error", reject);
      s.listen(0, "127.0.0.1", () => {
        servers.push(s);
        ports.push(s.address().port);
        next();
      });
    };
    next();
  });
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object" && !Buffer.isBuffer(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
const same = (a, b) => canonical(a) === canonical(b);
const short = (value) => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > 400 ? `${text.slice(0, 400)}...` : text;
};
function sameSet(a, b) {
  const sa = [...new Set(a)].sort();
  const sb = [...new Set(b)].sort();
  return a.length === sa.length && same(sa, sb);
}

function jwt(sub, secret) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const iat = Math.floor(now() / 1000);
  const body = `${enc({ alg: "HS256", typ: "JWT" })}.${enc({ sub, iat, exp: iat + 3600 })}`;
  return `${body}.${crypto.createHmac("sha256", secret).update(body).digest("base64url")}`;
}

let tagCounter = 0;
const newTag = (what) => `${what}-${++tagCounter}-${crypto.randomBytes(3).toString("hex")}`;

// ---------------------------------------------------------------------------------------------
// Processes: redis-server and the cluster nodes. Everything is stopped by PID on exit.

const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGCONT");
      process.kill(child.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function spawnLogged(cmd, args, opts, logFile) {
  const out = fs.openSync(logFile, "a");
  const child = spawn(cmd, args, { ...opts, stdio: ["ignore", out, out] });
  fs.closeSync(out);
  children.add(child);
  child.exitInfo = null;
  child.exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      children.delete(child);
      child.exitInfo = { code, signal };
      resolve(child.exitInfo);
    });
    child.once("error", (err) => {
      children.delete(child);
      child.exitInfo = { code: null, signal: null, error: err.message };
      resolve(child.exitInfo);
    });
  });
  return child;
}

function tail(file, lines = 25) {
  try {
    const text = fs.readFileSync(file, "utf8").trimEnd().split("\n");
    return text.slice(-lines).map((l) => `    | ${l}`).join("\n");
  } catch {
    return "    | (no log)";
  }
}

class RedisServer {
  constructor(port) {
    this.port = port;
    this.log = path.join(logDir, "redis.log");
    this.proc = null;
  }
  async start() {
    this.proc = spawnLogged(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
      { cwd: logDir },
      this.log,
    );
    const up = await waitFor(async () => this.proc.exitInfo || (await this.cli("PING")) === "PONG", 10000, 50);
    if (up !== true) throw new Error(`redis-server on port ${this.port} did not start: ${JSON.stringify(this.proc.exitInfo)}\n${tail(this.log)}`);
  }
  async kill() {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }
  cli(...args) {
    return new Promise((resolve) => {
      execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(this.port), ...args], { timeout: 2000 }, (err, stdout) => {
        resolve(err ? null : stdout.trim());
      });
    });
  }
  // Subscribers of one channel (PUBSUB NUMSUB / SHARDNUMSUB), null when Redis cannot be asked.
  async subscribers(channel) {
    const out = await this.cli("PUBSUB", MODE === "sharded" ? "SHARDNUMSUB" : "NUMSUB", channel);
    if (out === null) return null;
    const lines = out.split("\n");
    const n = Number(lines[lines.length - 1]);
    return Number.isInteger(n) ? n : null;
  }
}

const requestChannel = (nsp) => (MODE === "sharded" ? `${PREFIX}#${nsp}#` : `${PREFIX}-request#${nsp}#`);
const responseChannel = (nsp) => `${PREFIX}-response#${nsp}#`;
const roomChannel = (nsp, room) => `${PREFIX}#${nsp}#${room}#`;

class ClusterNode {
  constructor(index, kind, port, redisPort) {
    this.index = index;
    this.kind = kind;
    this.name = `n${index + 1}`;
    this.port = port;
    this.redisPort = redisPort;
    this.log = path.join(logDir, `${this.name}-${kindLabel(kind)}.log`);
    this.state = "new"; // running | stopped | killed
    this.proc = null;
  }
  get running() {
    return this.state === "running";
  }
  async start() {
    const env = {
      ...process.env,
      PORT: String(this.port),
      REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
      NODE_NAME: this.name,
      REDIS_ADAPTER_MODE: MODE,
      CLUSTER_KEY_PREFIX: PREFIX,
      CLUSTER_REQUEST_TIMEOUT_MS: String(NODE_REQUEST_TIMEOUT_MS),
      CLUSTER_NAMESPACES: NSPS.join(","),
    };
    delete env.CLUSTER_JWT_SECRET;
    if (jwtSecret) env.CLUSTER_JWT_SECRET = jwtSecret;
    const [cmd, args] =
      this.kind === "node"
        ? [process.execPath, [path.join(here, "node-node.js")]]
        : this.kind === "sockeye"
          ? [SOCKEYE_BIN, []]
          : [process.execPath, [path.resolve(this.kind.slice("script=".length))]];
    fs.writeFileSync(this.log, `# ${this.kind}: ${cmd} ${args.join(" ")} PORT=${this.port}\n`);
    this.proc = spawnLogged(cmd, args, { cwd: repoRoot, env }, this.log);
    const up = await waitFor(async () => this.proc.exitInfo || (await tcpOpen(this.port)), 20000, 50);
    if (up !== true) throw new Error(`${this.name} (${this.kind}) did not listen on ${this.port}: ${JSON.stringify(this.proc.exitInfo)}\n${tail(this.log)}`);
    this.state = "running";
  }
  signal(sig) {
    this.proc.kill(sig);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

class Client {
  constructor(node, nsp, short, baseRooms) {
    this.node = node;
    this.nsp = nsp;
    this.short = short; // c0 | c1 | c2 | s0 | s1 | v-n1 ...
    this.name = `${node.name}-${short}`;
    this.rooms = new Set(baseRooms); // what the checker made it join (its own id is added by the node)
    this.received = [];
    this.disconnects = [];
    this.sock = null;
    this.expectDisconnect = false;
  }
  get id() {
    return this.sock && this.sock.id;
  }
  get connected() {
    return Boolean(this.sock && this.sock.connected);
  }
  connect(authOverride) {
    const auth = authOverride || { name: this.name, ...(jwtSecret ? { token: jwt(this.name, jwtSecret) } : {}) };
    const sock = io(`http://127.0.0.1:${this.node.port}${this.nsp}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: 5000,
      auth,
    });
    this.sock = sock;
    sock.onAny((event, ...args) => this.received.push({ event, args, t: now() }));
    sock.on("cluster:ask", (payload, ack) => {
      if (typeof ack === "function") ack({ name: this.name, tag: payload && payload.tag });
    });
    sock.on("disconnect", (reason) => this.disconnects.push({ reason, t: now() }));
    return new Promise((resolve, reject) => {
      sock.once("connect", () => resolve(this));
      sock.once("connect_error", (err) => reject(new Error(`${this.name}: connect_error ${err.message}`)));
    });
  }
  // Sends `event` with an ack; a missing ack becomes { ok: false, noAck: true }.
  async request(event, payload = {}, limitMs = ASK_TIMEOUT_MS) {
    try {
      return await this.sock.timeout(limitMs).emitWithAck(event, payload);
    } catch (err) {
      return { ok: false, noAck: true, error: `checker: no ack to ${event} from ${this.name} within ${limitMs} ms (${err.message})` };
    }
  }
  close() {
    if (this.sock) this.sock.close();
  }
}

function tagOf(entry) {
  const first = entry.args[0];
  if (!first || typeof first !== "object") return undefined;
  if (entry.event === "cluster:server-note") return first.payload && first.payload.tag;
  return first.tag;
}
const matching = (client, tag) => client.received.filter((e) => tagOf(e) === tag);

// ---------------------------------------------------------------------------------------------
// The cluster under check

const state = {
  redis: null,
  nodes: [],
  clients: [], // c0..c2 and s0..s1 of every node
  victims: [],
};

const clientsOf = (node, nsp) => state.clients.filter((c) => c.node === node && (!nsp || c.nsp === nsp));
const client = (node, short) => state.clients.find((c) => c.node === node && c.short === short);
const runningNodes = () => state.nodes.filter((n) => n.running);
// Everyone whose deliveries are counted: connected clients of running nodes, both namespaces.
const population = () => [...state.clients, ...state.victims].filter((c) => c.node.running && c.connected);
const members = (nsp, room, nodes = runningNodes()) =>
  state.clients.filter((c) => c.nsp === nsp && nodes.includes(c.node) && (room === null || c.rooms.has(room)));

// Waits until every expected client got `tag`, then QUIET_MS more, and judges exactly-once.
async function judgeDeliveries(tag, expected, { from = population } = {}) {
  const problems = [];
  if (expected.length > 0) {
    await waitFor(() => expected.every((c) => matching(c, tag).length > 0), ARRIVAL_TIMEOUT_MS);
    const arrivals = expected.flatMap((c) => matching(c, tag).map((e) => e.t));
    const last = arrivals.length ? Math.max(...arrivals) : now();
    await sleep(Math.max(0, last + QUIET_MS - now()));
  } else {
    await sleep(NOBODY_MS);
  }
  for (const c of from()) {
    const got = matching(c, tag).length;
    const want = expected.includes(c) ? 1 : 0;
    if (got !== want) problems.push(`${c.name}${c.nsp === "/" ? "" : c.nsp} got it ${got}x (want ${want})`);
  }
  for (const c of expected) {
    if (!from().includes(c)) problems.push(`${c.name} was expected but is not connected`);
  }
  return problems;
}

const okProblems = (what, resp) =>
  resp && resp.ok === true ? [] : [`${what} answered ${short(resp)} (want ok: true)`];

async function broadcastAndJudge(origin, { rooms, except, event = "cluster:msg", extra = {} }, expected, what) {
  const tag = newTag(what);
  const resp = await origin.request("cluster:broadcast", { rooms, except, event, payload: { tag, ...extra } });
  const problems = okProblems(`cluster:broadcast from ${origin.name}`, resp);
  if (problems.length) return problems;
  return judgeDeliveries(tag, expected);
}

// Expected fetchSockets answer for a set of clients, compared exactly (ids, rooms, data).
function fetchProblems(resp, expected, what) {
  if (!resp || resp.ok !== true) return [`${what}: answered ${short(resp)} (want ok: true)`];
  if (!Array.isArray(resp.sockets)) return [`${what}: sockets is ${short(resp.sockets)}`];
  const problems = [];
  const byId = new Map();
  for (const s of resp.sockets) {
    if (!s || typeof s.id !== "string") {
      problems.push(`${what}: malformed socket ${short(s)}`);
      continue;
    }
    if (byId.has(s.id)) problems.push(`${what}: socket ${s.id} listed twice`);
    byId.set(s.id, s);
  }
  for (const c of expected) {
    const s = byId.get(c.id);
    if (!s) {
      problems.push(`${what}: ${c.name} (${c.id}) missing`);
      continue;
    }
    byId.delete(c.id);
    const wantRooms = [c.id, ...c.rooms];
    if (!Array.isArray(s.rooms) || !sameSet(s.rooms, wantRooms)) {
      problems.push(`${what}: ${c.name} rooms ${short(s.rooms)} (want ${short(wantRooms.sort())})`);
    }
    const wantData = { name: c.name, node: c.node.name };
    if (!same(s.data, wantData)) problems.push(`${what}: ${c.name} data ${short(s.data)} (want ${short(wantData)})`);
  }
  for (const [id, s] of byId) {
    const who = [...state.clients, ...state.victims].find((c) => c.id === id);
    problems.push(`${what}: unexpected socket ${who ? who.name : id} ${short(s)}`);
  }
  return problems;
}

// Broadcast with ack: answered ok, one response from each expected client, and each got it once.
async function broadcastAckProblems(origin, rooms, expected, { wantOk = true, limitMs = ASK_TIMEOUT_MS + 5000, timeout = 3000 } = {}) {
  const tag = newTag("bcast-ack");
  const t0 = now();
  const resp = await origin.request("cluster:broadcast-ack", { rooms, event: "cluster:ask", payload: { tag }, timeout }, limitMs);
  const elapsed = now() - t0;
  const problems = [];
  if (resp.noAck) return [resp.error];
  if (elapsed > HUNG_LIMIT_MS) problems.push(`answered after ${elapsed} ms (limit ${HUNG_LIMIT_MS})`);
  if (resp.ok !== wantOk) problems.push(`ok=${resp.ok} error=${short(resp.error)} (want ok=${wantOk})`);
  if (!wantOk && (typeof resp.error !== "string" || resp.error === "")) problems.push(`no error text: ${short(resp.error)}`);
  const responses = Array.isArray(resp.responses) ? resp.responses : [];
  if (!Array.isArray(resp.responses)) problems.push(`responses is ${short(resp.responses)}`);
  const names = responses.map((r) => r && r.name);
  const wantNames = expected.map((c) => c.name);
  if (!sameSet(names, wantNames)) problems.push(`responses from ${short(names.slice().sort())} (want each once: ${short(wantNames.sort())})`);
  const wrongTag = responses.filter((r) => !r || r.tag !== tag);
  if (wrongTag.length) problems.push(`responses with another tag: ${short(wrongTag)}`);
  problems.push(...(await judgeDeliveries(tag, expected)));
  return problems;
}

async function serverEmitAckProblems(origin, others, { wantOk = true, limitMs = ASK_TIMEOUT_MS + 6000 } = {}) {
  const t0 = now();
  const resp = await origin.request("cluster:server-emit", { ack: true }, limitMs);
  const elapsed = now() - t0;
  if (resp.noAck) return [resp.error];
  const problems = [];
  if (elapsed > HUNG_LIMIT_MS) problems.push(`answered after ${elapsed} ms (limit ${HUNG_LIMIT_MS})`);
  if (resp.ok !== wantOk) problems.push(`ok=${resp.ok} error=${short(resp.error)} (want ok=${wantOk})`);
  if (!wantOk && (typeof resp.error !== "string" || resp.error === "")) problems.push(`no error text: ${short(resp.error)}`);
  const responses = Array.isArray(resp.responses) ? resp.responses : [];
  const want = others.map((n) => ({ node: n.name, from: origin.node.name }));
  const key = (r) => canonical(r);
  if (!sameSet(responses.map(key), want.map(key))) {
    problems.push(`responses ${short(responses)} (want one per other node: ${short(want)})`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Reporting

const results = [];
async function check(name, fn) {
  const t0 = now();
  let problems;
  try {
    problems = await fn();
  } catch (err) {
    problems = [`checker error: ${err.stack || err}`];
  }
  const ms = now() - t0;
  const ok = problems.length === 0;
  results.push({ name, ok, problems, ms });
  const line = `${ok ? "PASS" : "FAIL"} ${name} ${MODE} ${NODES_LABEL}${jwtSecret ? " jwt" : ""} (${ms} ms)`;
  console.log(ok ? line : `${line}\n${problems.map((p) => `    - ${p}`).join("\n")}`);
  return ok;
}
const wants = (scenario) => !only || only.has(scenario);

// ---------------------------------------------------------------------------------------------
// Setup

async function setup() {
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  if (SPEC.includes("sockeye") && !fs.existsSync(SOCKEYE_BIN)) {
    throw new Error(
      `sockeye cluster node ${SOCKEYE_BIN} does not exist: build it with ` +
        "`cargo build --release -p sockeye-server --example cluster-node` or set SOCKEYE_CLUSTER_NODE",
    );
  }
  const [redisPort, ...nodePorts] = await freePorts(1 + SPEC.length);
  state.redis = new RedisServer(redisPort);
  await state.redis.start();
  state.nodes = SPEC.map((kind, i) => new ClusterNode(i, kind, nodePorts[i], redisPort));
  await Promise.all(state.nodes.map((n) => n.start()));

  for (const node of state.nodes) {
    state.clients.push(
      new Client(node, "/", "c0", ["r1"]),
      new Client(node, "/", "c1", ["r1", "r2"]),
      new Client(node, "/", "c2", ["r2", `only-${node.name}`]),
      new Client(node, "/second", "s0", ["r1"]),
      new Client(node, "/second", "s1", []),
    );
  }
  await Promise.all(state.clients.map((c) => c.connect()));
  for (const c of state.clients) {
    for (const room of c.rooms) {
      const resp = await c.request("cluster:join", { room });
      if (!resp || resp.ok !== true) throw new Error(`${c.name}: cluster:join ${room} answered ${short(resp)}`);
    }
  }
  // Readiness, judged by the topology checks right after: every node subscribed.
  await waitFor(async () => (await subscriptionProblems()).length === 0, 15000, 50);
}

// What Redis must show while every node runs: request channels (and classic response channels)
// subscribed once per running node, and in sharded mode each room channel once per node with a
// member (dynamic subscriptions; NODE-CONTRACT "topology", WIRE.md §1.2, §1.7, §2).
async function subscriptionProblems(nodes = runningNodes()) {
  const problems = [];
  const want = async (channel, n) => {
    const got = await state.redis.subscribers(channel);
    if (got !== n) problems.push(`${MODE === "sharded" ? "SHARDNUMSUB" : "NUMSUB"} ${channel} = ${got} (want ${n})`);
  };
  for (const nsp of NSPS) {
    await want(requestChannel(nsp), nodes.length);
    if (MODE === "classic") await want(responseChannel(nsp), nodes.length);
  }
  if (MODE === "sharded") {
    const rooms = new Map();
    for (const c of [...state.clients, ...state.victims].filter((c) => nodes.includes(c.node) && c.connected)) {
      for (const room of c.rooms) {
        const key = `${c.nsp}\u0000${room}`;
        if (!rooms.has(key)) rooms.set(key, new Set());
        rooms.get(key).add(c.node);
      }
    }
    for (const [key, holders] of rooms) {
      const [nsp, room] = key.split("\u0000");
      await want(roomChannel(nsp, room), holders.size);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const origins = () => runningNodes();
const others = (node) => runningNodes().filter((n) => n !== node);
const nextNode = (node, k = 1) => state.nodes[(node.index + k) % state.nodes.length];

async function topology() {
  for (const node of state.nodes) {
    await check(`topology/served-by/${node.name}`, async () => {
      const problems = [];
      for (const c of clientsOf(node)) {
        const resp = await c.request("cluster:whoami");
        const want = { ok: true, node: node.name, id: c.id, nsp: c.nsp };
        const got = resp && { ok: resp.ok, node: resp.node, id: resp.id, nsp: resp.nsp };
        if (!same(got, want)) problems.push(`${c.name} whoami ${short(resp)} (want ${short(want)})`);
      }
      return problems;
    });
  }
  await check(`topology/${MODE === "sharded" ? "shardnumsub" : "numsub"}`, () => subscriptionProblems());
  for (const node of state.nodes) {
    await check(`topology/server-count/${node.name}`, async () => {
      const problems = [];
      for (const c of [client(node, "c0"), client(node, "s0")]) {
        const resp = await c.request("cluster:server-count");
        if (!resp || resp.ok !== true || resp.count !== state.nodes.length) {
          problems.push(`${c.name} (${c.nsp}) server-count ${short(resp)} (want count ${state.nodes.length})`);
        }
      }
      return problems;
    });
  }
}

async function roomBroadcast() {
  for (const o of origins()) {
    await check(`room-broadcast/r1/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c0"), { rooms: ["r1"] }, members("/", "r1"), "r1"),
    );
    const t = nextNode(o);
    await check(`room-broadcast/only-${t.name}/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c1"), { rooms: [`only-${t.name}`] }, [client(t, "c2")], "only"),
    );
    // A socket id is a room: io.to(<remote socket id>) (WIRE.md §1.3, §2 "interop trap").
    await check(`room-broadcast/socket-id-on-${t.name}/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c0"), { rooms: [client(t, "c1").id] }, [client(t, "c1")], "sid"),
    );
  }
}

async function multiRoom() {
  for (const o of origins()) {
    await check(`multi-room/r1+r2/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c2"), { rooms: ["r1", "r2"] }, [...new Set([...members("/", "r1"), ...members("/", "r2")])], "multi"),
    );
  }
}

async function broadcastAll() {
  for (const o of origins()) {
    await check(`broadcast-all/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c1"), { rooms: [] }, members("/", null), "all"),
    );
  }
}

async function except() {
  for (const o of origins()) {
    await check(`except/r1-except-r2/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c0"), { rooms: ["r1"], except: ["r2"] }, members("/", "r1").filter((c) => !c.rooms.has("r2")), "exc-room"),
    );
    const victim = client(nextNode(o), "c0");
    await check(`except/r1-except-remote-id/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c1"), { rooms: ["r1"], except: [victim.id] }, members("/", "r1").filter((c) => c !== victim), "exc-id"),
    );
  }
}

function binaryPayload() {
  const big = Buffer.alloc(300);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
  const small = Buffer.from([0, 1, 2, 0x7b, 0xc4, 0xff]);
  return { big, small, extra: { buf: big, nested: { list: [1, "two", { bin: small }], text: "ok" } } };
}
const asBuffer = (v) =>
  Buffer.isBuffer(v) ? v : v instanceof ArrayBuffer ? Buffer.from(v) : ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null;

async function binary() {
  for (const o of origins()) {
    await check(`binary/from-${o.name}`, async () => {
      const { big, small, extra } = binaryPayload();
      const tag = newTag("bin");
      const origin = client(o, "c0");
      const resp = await origin.request("cluster:broadcast", { rooms: [], event: "cluster:bin", payload: { tag, ...extra } });
      const problems = okProblems(`cluster:broadcast from ${origin.name}`, resp);
      if (problems.length) return problems;
      const expected = members("/", null);
      problems.push(...(await judgeDeliveries(tag, expected)));
      for (const c of expected) {
        for (const e of matching(c, tag)) {
          const p = e.args[0];
          const buf = asBuffer(p.buf);
          if (!buf || !buf.equals(big)) problems.push(`${c.name}: buf is ${buf ? `${buf.length} bytes, not equal` : short(p.buf)}`);
          const n = p.nested;
          const inner = n && Array.isArray(n.list) && n.list[2] ? asBuffer(n.list[2].bin) : null;
          if (!n || n.text !== "ok" || n.list[0] !== 1 || n.list[1] !== "two" || !inner || !inner.equals(small)) {
            problems.push(`${c.name}: nested is ${short(n)} (want {list:[1,"two",{bin:<${small.toString("hex")}>}],text:"ok"})`);
          }
        }
      }
      return problems;
    });
  }
}

async function broadcastAck() {
  for (const o of origins()) {
    await check(`broadcast-ack/r1/from-${o.name}`, () => broadcastAckProblems(client(o, "c0"), ["r1"], members("/", "r1")));
  }
}

async function fetchSockets() {
  for (const o of origins()) {
    await check(`fetch-sockets/all/from-${o.name}`, async () => {
      const resp = await client(o, "c1").request("cluster:fetch", {});
      return fetchProblems(resp, members("/", null), "fetchSockets()");
    });
    await check(`fetch-sockets/in-r2-except-r1/from-${o.name}`, async () => {
      const resp = await client(o, "c0").request("cluster:fetch", { rooms: ["r2"], except: ["r1"] });
      return fetchProblems(resp, members("/", "r2").filter((c) => !c.rooms.has("r1")), "in(r2).except(r1)");
    });
  }
}

async function allRooms() {
  for (const o of origins()) {
    await check(`all-rooms/from-${o.name}`, async () => {
      const resp = await client(o, "c0").request("cluster:all-rooms");
      if (!resp || resp.ok !== true || !Array.isArray(resp.rooms)) return [`answered ${short(resp)} (want ok: true, rooms)`];
      const want = new Set();
      for (const c of members("/", null)) {
        want.add(c.id);
        for (const r of c.rooms) want.add(r);
      }
      const got = new Set(resp.rooms);
      const missing = [...want].filter((r) => !got.has(r));
      const extra = [...got].filter((r) => !want.has(r));
      const problems = [];
      if (missing.length) problems.push(`missing rooms ${short(missing)}`);
      if (extra.length) problems.push(`unexpected rooms ${short(extra)}`);
      if (got.size !== resp.rooms.length) problems.push(`duplicates in ${short(resp.rooms)}`);
      return problems;
    });
  }
}

async function waitShardSubscribers(room, n) {
  if (MODE !== "sharded") return [];
  const ok = await waitFor(async () => (await state.redis.subscribers(roomChannel("/", room))) === n, 3000, 20);
  return ok ? [] : [`SHARDNUMSUB ${roomChannel("/", room)} = ${await state.redis.subscribers(roomChannel("/", room))} (want ${n}; dynamic subscription, WIRE.md §2)`];
}

async function socketsJoinLeave() {
  for (const o of origins()) {
    const t = nextNode(o); // the node whose socket is moved
    const h = nextNode(o, 2); // the third node, which observes
    const moved = client(t, "c2");
    const room = `j-${o.name}`;
    await check(`sockets-join/from-${o.name}-on-${t.name}-seen-by-${h.name}`, async () => {
      const resp = await client(o, "c0").request("cluster:sockets-join", { rooms: [`only-${t.name}`], join: room });
      let problems = okProblems("cluster:sockets-join", resp);
      if (problems.length) return problems;
      moved.rooms.add(room);
      const observer = client(h, "c0");
      let last = null;
      await waitFor(async () => {
        last = await observer.request("cluster:fetch", { rooms: [room] });
        return fetchProblems(last, [moved], "").length === 0;
      }, 3000, 50);
      problems = fetchProblems(last, [moved], `fetchSockets in(${room}) from ${h.name}`);
      problems.push(...(await waitShardSubscribers(room, 1)));
      if (problems.length) return problems;
      return broadcastAndJudge(observer, { rooms: [room] }, [moved], "joined");
    });
    await check(`sockets-leave/from-${o.name}-on-${t.name}-seen-by-${h.name}`, async () => {
      const resp = await client(o, "c1").request("cluster:sockets-leave", { rooms: [`only-${t.name}`], leave: room });
      let problems = okProblems("cluster:sockets-leave", resp);
      if (problems.length) return problems;
      moved.rooms.delete(room);
      const observer = client(h, "c1");
      let last = null;
      await waitFor(async () => {
        last = await observer.request("cluster:fetch", { rooms: [room] });
        return fetchProblems(last, [], "").length === 0;
      }, 3000, 50);
      problems = fetchProblems(last, [], `fetchSockets in(${room}) from ${h.name}`);
      if (problems.length) return problems;
      return broadcastAndJudge(observer, { rooms: [room] }, [], "left");
    });
    if (MODE === "sharded") {
      // Dynamic mode: the room channel is SUNSUBSCRIBEd when its last local member leaves (WIRE.md §2).
      await check(`sockets-leave/from-${o.name}-on-${t.name}-unsubscribed`, () => waitShardSubscribers(room, 0));
    }
  }
}

async function disconnectSockets() {
  // One victim per (origin, node): v-<origin> on every node, in room v-<origin>.
  for (const o of state.nodes) {
    for (const node of state.nodes) {
      state.victims.push(new Client(node, "/", `v-${o.name}`, [`v-${o.name}`]));
    }
  }
  await Promise.all(state.victims.map((v) => v.connect()));
  for (const v of state.victims) {
    const resp = await v.request("cluster:join", { room: `v-${v.short.slice(2)}` });
    if (!resp || resp.ok !== true) throw new Error(`${v.name}: cluster:join answered ${short(resp)}`);
  }
  if (MODE === "sharded") await waitFor(async () => (await subscriptionProblems()).length === 0, 3000, 20);
  for (const o of origins()) {
    await check(`disconnect-sockets/in-v-${o.name}/from-${o.name}`, async () => {
      const targets = state.victims.filter((v) => v.short === `v-${o.name}`);
      const bystanders = [...state.clients, ...state.victims.filter((v) => !targets.includes(v))].filter((c) => c.connected);
      const resp = await client(o, "c2").request("cluster:disconnect", { rooms: [`v-${o.name}`], close: false });
      const problems = okProblems("cluster:disconnect", resp);
      if (problems.length) return problems;
      await waitFor(() => targets.every((v) => v.disconnects.length > 0), ARRIVAL_TIMEOUT_MS);
      await sleep(QUIET_MS);
      for (const v of targets) {
        if (v.disconnects.length === 0) problems.push(`${v.name} was not disconnected`);
        else if (v.disconnects[0].reason !== "io server disconnect") problems.push(`${v.name} disconnect reason ${v.disconnects[0].reason} (want io server disconnect)`);
      }
      for (const b of bystanders) {
        if (!b.connected) problems.push(`${b.name}${b.nsp === "/" ? "" : b.nsp} was disconnected too (${short(b.disconnects)})`);
      }
      return problems;
    });
  }
  for (const v of state.victims) v.close();
  state.victims = [];
}

async function serverSideEmit() {
  for (const o of origins()) {
    await check(`server-side-emit/from-${o.name}`, async () => {
      const tag = newTag("sse");
      const origin = client(o, "c0");
      const resp = await origin.request("cluster:server-emit", { payload: { tag } });
      const problems = okProblems("cluster:server-emit", resp);
      if (problems.length) return problems;
      const expected = others(o).flatMap((n) => clientsOf(n, "/"));
      problems.push(...(await judgeDeliveries(tag, expected)));
      for (const c of expected) {
        for (const e of matching(c, tag)) {
          if (e.event !== "cluster:server-note") problems.push(`${c.name} got event ${e.event}`);
          const want = { node: c.node.name, from: o.name, payload: { tag } };
          if (!same(e.args[0], want)) problems.push(`${c.name} got ${short(e.args[0])} (want ${short(want)})`);
        }
      }
      return problems;
    });
    await check(`server-side-emit-ack/from-${o.name}`, () => serverEmitAckProblems(client(o, "c0"), others(o)));
  }
}

async function namespaces() {
  for (const o of origins()) {
    await check(`namespaces/second-r1/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "s0"), { rooms: ["r1"] }, members("/second", "r1"), "ns-r1"),
    );
    await check(`namespaces/second-all/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "s1"), { rooms: [] }, members("/second", null), "ns-all"),
    );
    await check(`namespaces/second-fetch/from-${o.name}`, async () => {
      const resp = await client(o, "s1").request("cluster:fetch", {});
      return fetchProblems(resp, members("/second", null), "/second fetchSockets()");
    });
    await check(`namespaces/second-server-side-emit/from-${o.name}`, async () => {
      const tag = newTag("ns-sse");
      const resp = await client(o, "s0").request("cluster:server-emit", { payload: { tag } });
      const problems = okProblems("cluster:server-emit", resp);
      if (problems.length) return problems;
      return judgeDeliveries(tag, others(o).flatMap((n) => clientsOf(n, "/second")));
    });
  }
}

// Broadcasts from every node reach r1 members of the running nodes once, and fetchSockets
// from every node is complete: the cluster works (after a disruption).
async function clusterWorks(prefix) {
  for (const o of origins()) {
    await check(`${prefix}/room-broadcast/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c0"), { rooms: ["r1"] }, members("/", "r1"), `${prefix}-r1`),
    );
  }
  for (const o of origins()) {
    await check(`${prefix}/fetch-sockets/from-${o.name}`, async () => {
      const resp = await client(o, "c1").request("cluster:fetch", {});
      return fetchProblems(resp, members("/", null), "fetchSockets()");
    });
  }
}

async function redisRestart() {
  let resubscribedIn = null;
  await check("redis-restart/resubscribed", async () => {
    await state.redis.kill();
    await state.redis.start();
    const t0 = now();
    let problems = [];
    const ok = await waitFor(async () => {
      problems = await subscriptionProblems();
      return problems.length === 0;
    }, RESUBSCRIBE_LIMIT_MS, 50);
    resubscribedIn = now() - t0;
    if (!ok) return [`not every node resubscribed within ${RESUBSCRIBE_LIMIT_MS} ms of the restart:`, ...problems];
    console.log(`    (every node resubscribed ${resubscribedIn} ms after the restart)`);
    return [];
  });
  await clusterWorks("redis-restart");
  for (const o of origins()) {
    await check(`redis-restart/server-count/${o.name}`, async () => {
      const resp = await client(o, "c0").request("cluster:server-count");
      return resp && resp.ok === true && resp.count === state.nodes.length ? [] : [`server-count ${short(resp)} (want ${state.nodes.length})`];
    });
  }
}

async function nodeHung() {
  const hung = state.nodes[1];
  hung.signal("SIGSTOP");
  hung.state = "stopped";
  try {
    const alive = runningNodes();
    // Every request kind from every reachable node, at once (each waits for its own timeout).
    await Promise.all(
      alive.map(async (o) => {
        const peers = alive.filter((n) => n !== o);
        await Promise.all([
          check(`node-hung/fetch-sockets-times-out/from-${o.name}`, async () => {
            const t0 = now();
            const resp = await client(o, "c1").request("cluster:fetch", {}, HUNG_LIMIT_MS + 5000);
            const elapsed = now() - t0;
            if (resp.noAck) return [resp.error];
            const problems = [];
            if (elapsed > HUNG_LIMIT_MS) problems.push(`answered after ${elapsed} ms (limit ${HUNG_LIMIT_MS})`);
            if (resp.ok !== false || typeof resp.error !== "string" || !resp.error) {
              problems.push(`answered ${short(resp)} (want ok: false with a timeout error: ${hung.name} is subscribed but stopped)`);
            }
            return problems;
          }),
          check(`node-hung/broadcast-ack-partial/from-${o.name}`, () =>
            broadcastAckProblems(client(o, "c0"), ["r1"], members("/", "r1"), { wantOk: false, limitMs: HUNG_LIMIT_MS + 5000 }),
          ),
          check(`node-hung/server-side-emit-ack-partial/from-${o.name}`, () =>
            serverEmitAckProblems(client(o, "c2"), peers, { wantOk: false, limitMs: HUNG_LIMIT_MS + 5000 }),
          ),
        ]);
      }),
    );
    for (const o of alive) {
      await check(`node-hung/room-broadcast/from-${o.name}`, () =>
        broadcastAndJudge(client(o, "c0"), { rooms: ["r1"] }, members("/", "r1"), "hung-r1"),
      );
    }
  } finally {
    hung.signal("SIGCONT");
    hung.state = "running";
  }
  await check(`node-hung/${hung.name}-resumed-connected`, async () =>
    clientsOf(hung).filter((c) => !c.connected).map((c) => `${c.name} disconnected: ${short(c.disconnects)}`),
  );
  await check(`node-hung/${hung.name}-resumed-fetch-sockets`, async () => {
    let last = null;
    // n2 first works through what queued up while it was stopped.
    await waitFor(async () => {
      last = await client(hung, "c1").request("cluster:fetch", {});
      return fetchProblems(last, members("/", null), "").length === 0;
    }, 5000, 100);
    return fetchProblems(last, members("/", null), `fetchSockets() from ${hung.name}`);
  });
  await clusterWorks("node-hung/after-resume");
}

async function nodeKilled() {
  const dead = state.nodes[1];
  dead.signal("SIGKILL");
  await dead.proc.exited;
  dead.state = "killed";
  const survivors = runningNodes();
  await check(`node-killed/${MODE === "sharded" ? "shardnumsub" : "numsub"}`, async () => {
    let problems = [];
    await waitFor(async () => {
      problems = await subscriptionProblems(survivors);
      return problems.length === 0;
    }, 10000, 50);
    return problems;
  });
  for (const o of survivors) {
    await check(`node-killed/server-count/${o.name}`, async () => {
      const problems = [];
      for (const c of [client(o, "c0"), client(o, "s0")]) {
        const resp = await c.request("cluster:server-count");
        if (!resp || resp.ok !== true || resp.count !== survivors.length) problems.push(`${c.name} (${c.nsp}) ${short(resp)} (want count ${survivors.length})`);
      }
      return problems;
    });
  }
  for (const o of survivors) {
    const peers = survivors.filter((n) => n !== o);
    await check(`node-killed/fetch-sockets/from-${o.name}`, async () => {
      const resp = await client(o, "c1").request("cluster:fetch", {});
      return fetchProblems(resp, members("/", null), "fetchSockets()");
    });
    await check(`node-killed/broadcast-ack/from-${o.name}`, () => broadcastAckProblems(client(o, "c0"), ["r1"], members("/", "r1")));
    await check(`node-killed/server-side-emit-ack/from-${o.name}`, () => serverEmitAckProblems(client(o, "c2"), peers));
    await check(`node-killed/room-broadcast/from-${o.name}`, () =>
      broadcastAndJudge(client(o, "c0"), { rooms: ["r1"] }, members("/", "r1"), "killed-r1"),
    );
  }
}

async function jwtChecks() {
  for (const node of state.nodes) {
    await check(`jwt/refused/${node.name}`, async () => {
      const problems = [];
      const cases = [
        ["no token", { name: `${node.name}-intruder` }],
        ["wrong secret", { name: `${node.name}-intruder`, token: jwt(`${node.name}-intruder`, "not-the-secret") }],
        ["sub is another name", { name: `${node.name}-intruder`, token: jwt("somebody-else", jwtSecret) }],
      ];
      for (const [what, auth] of cases) {
        for (const nsp of NSPS) {
          const c = new Client(node, nsp, "intruder", []);
          try {
            await c.connect(auth);
            problems.push(`${what} on ${nsp}: connected (want connect_error)`);
          } catch {
            /* refused, as wanted */
          } finally {
            c.close();
          }
        }
      }
      return problems;
    });
  }
}

async function main() {
  const t0 = now();
  console.log(`# cluster check: MODE=${MODE} NODES=${NODES_LABEL}${jwtSecret ? " (JWT)" : ""}; logs in ${path.relative(repoRoot, logDir)}`);
  try {
    await setup();
  } catch (err) {
    console.log(`FAIL setup ${MODE} ${NODES_LABEL}${jwtSecret ? " jwt" : ""}\n    - ${err.message}`);
    for (const n of state.nodes) console.log(`  ${n.name} (${n.kind}) log:\n${tail(n.log)}`);
    console.log(`SUMMARY ${LABEL}: 0 passed, 1 failed (setup) in ${((now() - t0) / 1000).toFixed(1)} s`);
    process.exit(2);
  }
  const scenarios = [
    ["topology", topology],
    ["jwt", jwtSecret ? jwtChecks : null],
    ["room-broadcast", roomBroadcast],
    ["multi-room", multiRoom],
    ["broadcast-all", broadcastAll],
    ["except", except],
    ["binary", binary],
    ["broadcast-ack", broadcastAck],
    ["fetch-sockets", fetchSockets],
    ["all-rooms", MODE === "classic" ? allRooms : null],
    ["sockets-join-leave", socketsJoinLeave],
    ["disconnect-sockets", disconnectSockets],
    ["server-side-emit", serverSideEmit],
    ["namespaces", namespaces],
    ["redis-restart", redisRestart],
    ["node-hung", nodeHung],
    ["node-killed", nodeKilled],
  ];
  for (const [name, run] of scenarios) {
    if (!run || !wants(name)) continue;
    try {
      await run();
    } catch (err) {
      await check(`${name}/scenario`, async () => [`scenario aborted: ${err.stack || err}`]);
    }
    for (const n of state.nodes) {
      if (n.state !== "killed" && n.proc.exitInfo) {
        await check(`${name}/${n.name}-still-running`, async () => [`${n.name} (${n.kind}) exited ${JSON.stringify(n.proc.exitInfo)}\n${tail(n.log)}`]);
        n.state = "killed";
      }
    }
  }
  await check("connections/stable", async () =>
    state.clients
      .filter((c) => c.node.state !== "killed" && (c.disconnects.length > 0 || !c.connected))
      .map((c) => `${c.name}${c.nsp === "/" ? "" : c.nsp} disconnected: ${short(c.disconnects)}`),
  );

  for (const c of state.clients) c.close();
  for (const n of state.nodes) if (n.proc && !n.proc.exitInfo) n.signal("SIGKILL");
  await Promise.all(state.nodes.map((n) => n.proc && n.proc.exited));
  await state.redis.kill();

  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    const kinds = [...new Set(state.nodes.filter((n) => n.kind === "sockeye").map((n) => n.name))];
    console.log(`# ${failed.length} failed; logs: ${path.relative(repoRoot, logDir)}${kinds.length ? ` (sockeye nodes: ${kinds.join(", ")})` : ""}`);
  }
  console.log(`SUMMARY ${LABEL}: ${results.length - failed.length} passed, ${failed.length} failed in ${((now() - t0) / 1000).toFixed(1)} s`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((err) => {
  console.error(`check: ${err.stack || err}`);
  process.exit(2);
});
