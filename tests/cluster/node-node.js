#!/usr/bin/env node
// The reference cluster node: Node `socket.io` 4.8.4 + `@socket.io/redis-adapter` 8.3.0, doing
// exactly what CONTRACT.md (the cluster node contract, NODE-CONTRACT.md of issue 12) asks of
// every node. check.js runs it next to sockeye nodes; an all-Node cluster of these is what proves
// the checker right.
//
// Environment: PORT, REDIS_URL, NODE_NAME, REDIS_ADAPTER_MODE (classic|sharded),
// CLUSTER_KEY_PREFIX, CLUSTER_REQUEST_TIMEOUT_MS, CLUSTER_NAMESPACES, CLUSTER_JWT_SECRET (optional).
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function required(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    console.error(`node-node: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const port = Number(required("PORT"));
const redisUrl = required("REDIS_URL");
const nodeName = required("NODE_NAME");
const mode = process.env.REDIS_ADAPTER_MODE || "classic";
const keyPrefix = process.env.CLUSTER_KEY_PREFIX || "socket.io";
const requestTimeout = Number(process.env.CLUSTER_REQUEST_TIMEOUT_MS || 5000);
const namespaces = (process.env.CLUSTER_NAMESPACES || "/").split(",").filter((n) => n !== "");
const jwtSecret = process.env.CLUSTER_JWT_SECRET || "";

if (mode !== "classic" && mode !== "sharded") {
  console.error(`node-node: REDIS_ADAPTER_MODE must be classic or sharded, not ${mode}`);
  process.exit(2);
}

// HS256 JWT check without a library: header.payload.signature, base64url, constant-time compare.
function verifyJwt(token, secret) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, p, s] = parts;
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (!header || header.alg !== "HS256") return null;
  const expected = crypto.createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, "base64url");
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) return null;
  return claims;
}

function list(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

// nsp.to(rooms).except(except), where absent/[] rooms means the whole namespace.
function target(nsp, payload) {
  let op = nsp.to(list(payload && payload.rooms));
  const except = list(payload && payload.except);
  if (except.length > 0) op = op.except(except);
  return op;
}

function fail(ack, err) {
  if (typeof ack === "function") ack({ ok: false, error: err && err.message ? err.message : String(err) });
}

function serve(nsp) {
  nsp.on("cluster:note", (msg) => {
    nsp.local.emit("cluster:server-note", { node: nodeName, from: msg && msg.from, payload: msg && msg.payload });
  });
  nsp.on("cluster:ping", (msg, callback) => {
    if (typeof callback === "function") callback({ node: nodeName, from: msg && msg.from });
  });

  if (jwtSecret) {
    nsp.use((socket, next) => {
      const auth = socket.handshake.auth || {};
      const claims = verifyJwt(auth.token, jwtSecret);
      if (!claims || claims.sub !== auth.name) return next(new Error("unauthorized"));
      next();
    });
  }

  nsp.on("connection", (socket) => {
    const auth = socket.handshake.auth || {};
    socket.data = { name: auth.name, node: nodeName };

    const on = (event, handler) => {
      socket.on(event, async (payload, ack) => {
        if (typeof payload === "function") {
          ack = payload;
          payload = {};
        }
        try {
          await handler(payload || {}, ack);
        } catch (err) {
          fail(ack, err);
        }
      });
    };

    on("cluster:whoami", (_p, ack) => ack({ ok: true, node: nodeName, id: socket.id, nsp: nsp.name }));
    on("cluster:join", async (p, ack) => {
      await socket.join(p.room);
      ack({ ok: true });
    });
    on("cluster:leave", async (p, ack) => {
      await socket.leave(p.room);
      ack({ ok: true });
    });
    on("cluster:broadcast", (p, ack) => {
      target(nsp, p).emit(p.event, p.payload);
      ack({ ok: true });
    });
    on("cluster:broadcast-ack", (p, ack) => {
      target(nsp, p)
        .timeout(Number(p.timeout) || requestTimeout)
        .emit(p.event, p.payload, (err, responses) => {
          ack({ ok: !err, error: err ? err.message : null, responses: responses || [] });
        });
    });
    on("cluster:fetch", async (p, ack) => {
      // The sharded adapter takes its timeout from the operator's flags; classic from requestsTimeout.
      const sockets = await target(nsp, p).timeout(requestTimeout).fetchSockets();
      ack({ ok: true, sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) });
    });
    on("cluster:sockets-join", (p, ack) => {
      target(nsp, p).socketsJoin(p.join);
      ack({ ok: true });
    });
    on("cluster:sockets-leave", (p, ack) => {
      target(nsp, p).socketsLeave(p.leave);
      ack({ ok: true });
    });
    on("cluster:disconnect", (p, ack) => {
      target(nsp, p).disconnectSockets(Boolean(p.close));
      ack({ ok: true });
    });
    on("cluster:server-emit", (p, ack) => {
      if (p.ack) {
        nsp.serverSideEmit("cluster:ping", { from: nodeName }, (err, responses) => {
          ack({ ok: !err, error: err ? err.message : null, responses: responses || [] });
        });
      } else {
        nsp.serverSideEmit("cluster:note", { from: nodeName, payload: p.payload });
        ack({ ok: true });
      }
    });
    on("cluster:server-count", async (_p, ack) => {
      ack({ ok: true, count: await nsp.adapter.serverCount() });
    });
    on("cluster:all-rooms", async (_p, ack) => {
      if (typeof nsp.adapter.allRooms !== "function") throw new Error(`allRooms is not supported in ${mode} mode`);
      const rooms = await nsp.adapter.allRooms();
      ack({ ok: true, rooms: [...rooms] });
    });
  });
}

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  // Redis restarts are part of the check: log and let node-redis reconnect (it resubscribes).
  pub.on("error", (err) => console.error(`node-node ${nodeName}: redis pub: ${err.message}`));
  sub.on("error", (err) => console.error(`node-node ${nodeName}: redis sub: ${err.message}`));
  await Promise.all([pub.connect(), sub.connect()]);

  const adapter =
    mode === "classic"
      ? createAdapter(pub, sub, { key: keyPrefix, requestsTimeout: requestTimeout })
      : createShardedAdapter(pub, sub, { channelPrefix: keyPrefix, subscriptionMode: "dynamic" });

  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter, transports: ["websocket", "polling"] });
  for (const name of namespaces) serve(io.of(name));

  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`node-node ${nodeName}: listening on 127.0.0.1:${port} (${mode}, namespaces ${namespaces.join(" ")})`);
  });

  const stop = () => {
    io.close();
    Promise.allSettled([pub.disconnect(), sub.disconnect()]).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(`node-node ${nodeName}: ${err.stack || err}`);
  process.exit(1);
});
