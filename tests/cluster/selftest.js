#!/usr/bin/env node
// Proves the checker can fail: runs check.js with one deliberately broken copy of node-node.js as
// n2 (the others stay correct Node nodes) and requires that exactly the scenario the defect breaks
// reports FAIL, and that check.js exits 1. Each mutant runs only its scenario (--only), so this
// takes about a minute. Usage: node selftest.js [mutant ...]
"use strict";

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const here = __dirname;
const source = fs.readFileSync(path.join(here, "node-node.js"), "utf8");
const dir = path.join(here, ".logs", "mutants");
fs.mkdirSync(dir, { recursive: true });

// [name, mode, scenario, text in node-node.js, replacement, check that must FAIL]
const mutants = [
  ["dup-broadcast", "classic", "room-broadcast",
    "target(nsp, p).emit(p.event, p.payload);", "target(nsp, p).emit(p.event, p.payload); target(nsp, p).emit(p.event, p.payload);",
    /^FAIL room-broadcast\/r1\/from-n2 /m],
  ["local-only-broadcast", "sharded", "broadcast-all",
    "target(nsp, p).emit(p.event, p.payload);", "target(nsp, p).local.emit(p.event, p.payload);",
    /^FAIL broadcast-all\/from-n2 /m],
  ["except-ignored", "classic", "except",
    "if (except.length > 0) op = op.except(except);", "",
    /^FAIL except\/r1-except-r2\/from-n2 /m],
  ["binary-as-json", "classic", "binary",
    "target(nsp, p).emit(p.event, p.payload);", "target(nsp, p).emit(p.event, JSON.parse(JSON.stringify(p.payload)));",
    /^FAIL binary\/from-n2 /m],
  ["ack-dropped", "sharded", "broadcast-ack",
    "responses: responses || [] });\n        });\n    });\n    on(\"cluster:fetch\"", "responses: (responses || []).slice(1) });\n        });\n    });\n    on(\"cluster:fetch\"",
    /^FAIL broadcast-ack\/r1\/from-n2 /m],
  ["data-without-node", "classic", "fetch-sockets",
    "socket.data = { name: auth.name, node: nodeName };", "socket.data = { name: auth.name };",
    /^FAIL fetch-sockets\/all\/from-n1 /m],
  ["disconnect-everyone", "sharded", "disconnect-sockets",
    "target(nsp, p).disconnectSockets(Boolean(p.close));", "nsp.disconnectSockets(Boolean(p.close));",
    /^FAIL disconnect-sockets\/in-v-n2\/from-n2 /m],
  ["note-twice", "classic", "server-side-emit",
    "nsp.local.emit(\"cluster:server-note\", { node: nodeName, from: msg && msg.from, payload: msg && msg.payload });",
    "for (let i = 0; i < 2; i++) nsp.local.emit(\"cluster:server-note\", { node: nodeName, from: msg && msg.from, payload: msg && msg.payload });",
    /^FAIL server-side-emit\/from-n1 /m],
  ["second-leaks-to-root", "classic", "namespaces",
    "target(nsp, p).emit(p.event, p.payload);", "target(nsp, p).emit(p.event, p.payload); if (nsp.name === \"/second\") target(nsp.server.of(\"/\"), p).emit(p.event, p.payload);",
    /^FAIL namespaces\/second-all\/from-n2 /m],
  ["no-resubscribe", "classic", "redis-restart",
    "sub.on(\"error\"", "sub.on(\"ready\", () => { if (sub.readyOnce) sub.disconnect().catch(() => {}); sub.readyOnce = true; });\n  sub.on(\"error\"",
    /^FAIL redis-restart\/resubscribed /m],
];

const picked = process.argv.slice(2);
let failures = 0;
for (const [name, mode, scenario, find, replace, mustFail] of mutants) {
  if (picked.length && !picked.includes(name)) continue;
  if (!source.includes(find)) {
    console.log(`FAIL selftest/${name}: node-node.js no longer contains the text this mutant changes`);
    failures++;
    continue;
  }
  const file = path.join(dir, `mutant-${name}.js`);
  fs.writeFileSync(file, source.replace(find, replace));
  const run = spawnSync(process.execPath, [path.join(here, "check.js"), `--only=${scenario}`], {
    env: { ...process.env, MODE: mode, NODES: `node,script=${file},node` },
    encoding: "utf8",
    timeout: 120000,
  });
  const out = `${run.stdout}${run.stderr}`;
  const fails = out.split("\n").filter((l) => l.startsWith("FAIL ")).length;
  const ok = run.status === 1 && mustFail.test(out);
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} selftest/${name} (${mode}, ${scenario}): check.js exit ${run.status}, ${fails} FAIL lines${ok ? "" : `, wanted ${mustFail}`}`);
  if (!ok) console.log(out.split("\n").map((l) => `    | ${l}`).join("\n"));
}
console.log(`SUMMARY selftest: ${failures ? `${failures} mutant(s) not caught` : "every mutant caught"}`);
process.exit(failures ? 1 : 0);
