// Node socket.io 4.x peer for sockeye's fan-out benchmark.
//
// Implements the two events of the benchmark contract (see benches/fanout/README.md):
//   join    room name (string) or { room }  -> ack { ok: true, room, size }
//   message { content, room }               -> every member of `room` (sender included) receives
//           event `message` { id, content, from: { sub, sid }, room, ts }; ack { ok: true, id }
// No authentication: a token in the handshake auth payload is ignored. Listens on 127.0.0.1:$PORT.
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3001);
const host = process.env.HOST || "127.0.0.1";
const ROOM_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const SUB = "bench";

const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 1e6,
  pingInterval: 25000,
  pingTimeout: 20000,
});

// Message ids in sockeye's format (a random 32-bit prefix in hex, a dash, a decimal counter), so
// that every server sends payloads of the same size.
const idPrefix = crypto.randomBytes(4).toString("hex");
let seq = 0;
function nextId() {
  seq += 1;
  return `${idPrefix}-${seq}`;
}

function errorAck(code, message) {
  return { ok: false, error: { code, message } };
}

io.on("connection", (socket) => {
  socket.on("join", (arg, ack) => {
    const room = typeof arg === "string" ? arg : arg && arg.room;
    if (typeof room !== "string" || !ROOM_RE.test(room)) {
      if (typeof ack === "function") ack(errorAck("VALIDATION", "invalid room name"));
      return;
    }
    socket.join(room);
    if (typeof ack === "function") {
      const members = io.of("/").adapter.rooms.get(room);
      ack({ ok: true, room, size: members ? members.size : 0 });
    }
  });

  socket.on("message", (arg, ack) => {
    const content = arg && arg.content;
    const room = arg && arg.room;
    if (typeof content !== "string" || content.length === 0) {
      if (typeof ack === "function") ack(errorAck("VALIDATION", "content must be a string"));
      return;
    }
    const id = nextId();
    const payload = { id, content, from: { sub: SUB, sid: socket.id }, ts: Date.now() };
    if (typeof room === "string") {
      if (!socket.rooms.has(room)) {
        if (typeof ack === "function") ack(errorAck("NOT_IN_ROOM", "not in room"));
        return;
      }
      payload.room = room;
      io.to(room).emit("message", payload);
    } else {
      socket.emit("message", payload);
    }
    if (typeof ack === "function") ack({ ok: true, id });
  });
});

httpServer.listen(port, host, () => {
  process.stderr.write(`node socket.io peer listening on http://${host}:${port}\n`);
});

function shutdown() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
