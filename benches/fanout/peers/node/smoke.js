// Smoke check of a peer (or sockeye) with the stock socket.io-client: two clients join a room,
// one sends, both must receive. Usage: node smoke.js http://127.0.0.1:PORT [token]
"use strict";
const { io } = require("socket.io-client");

const url = process.argv[2] || "http://127.0.0.1:3001";
const token = process.argv[3];
if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/?$/.test(url)) {
  console.error("refusing non-loopback url");
  process.exit(2);
}
const opts = { transports: ["websocket"], reconnection: false, auth: token ? { token } : {} };
const timer = setTimeout(() => {
  console.error("timeout");
  process.exit(1);
}, 5000);

const a = io(url, opts);
const b = io(url, opts);
let got = 0;
function onMsg(who) {
  return (m) => {
    console.log(who, "got", JSON.stringify(m));
    got += 1;
    if (got === 2) {
      clearTimeout(timer);
      a.close();
      b.close();
      process.exit(0);
    }
  };
}
a.on("message", onMsg("a"));
b.on("message", onMsg("b"));
a.on("connect_error", (e) => console.error("connect_error", e.message, e.data));
(async () => {
  const connected = (s) => (s.connected ? Promise.resolve() : new Promise((r) => s.once("connect", r)));
  await Promise.all([connected(a), connected(b)]);
  console.log("join a", JSON.stringify(await a.emitWithAck("join", "r1")));
  console.log("join b", JSON.stringify(await b.emitWithAck("join", { room: "r1" })));
  console.log("send", JSON.stringify(await a.emitWithAck("message", { content: "hello", room: "r1" })));
})();
