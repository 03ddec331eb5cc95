// Tests of static/src/net.js with a scripted WebSocket: what goes out first, which closes
// end the game and which resume it, and the fallback when the raw websocket fails.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import * as c from "../../static/src/codec.js";
import { NodeLink, SESSION_ID_BYTES, rawWebSocketUrl, sessionId } from "../../static/src/net.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  send(data) { this.sent.push(c.decodeAny(data)); }
  close(code, reason) { this.closed = { code, reason }; }
  // node side
  open() { this.onopen(); }
  deliver(msg) { this.onmessage({ data: c.encode(msg).buffer }); }
  shut(code, reason = "") { this.onclose({ code, reason }); }
  fail() { this.onerror(new Error("refused")); this.onclose({ code: 1006, reason: "" }); }
}

const welcome = (resumeToken = "r1") => ({
  type: c.WELCOME, playerId: 3, matchId: "m1", resumeToken, tick: 5,
  config: { sim_hz: 40, patch_hz: 20, reconnect_window: 20 },
});

let link, statuses, messages, sockjsOpened;
beforeEach(() => {
  FakeSocket.all = [];
  globalThis.WebSocket = FakeSocket;
  statuses = [];
  messages = [];
  sockjsOpened = 0;
});
afterEach(() => {
  if (link) link.close();
  link = null;
  delete globalThis.WebSocket;
});

function make(opts = {}) {
  link = new NodeLink({
    // a long open timeout unless a test is about it: a loaded machine must not fire it
    nodeUrl: "http://127.0.0.1:9/", token: "seat-token", wsOpenTimeout: 60000,
    onMessage: (m) => messages.push(m), onStatus: (s) => statuses.push({ ...s }), ...opts,
  });
  link.openSockJS = () => { sockjsOpened++; }; // no real SockJS session in these tests
  link.start();
  return link;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Wait (polling, with a deadline) until `fn()` is truthy; returns its value. */
async function until(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test("the raw websocket URL follows the node's scheme", () => {
  assert.equal(rawWebSocketUrl("http://h:8001/"), "ws://h:8001/play/websocket");
  assert.equal(rawWebSocketUrl("https://h/x"), "wss://h/x/play/websocket");
});

test("join goes first, then nothing until the welcome, then a ping", () => {
  make();
  const ws = FakeSocket.all[0];
  assert.equal(ws.url, "ws://127.0.0.1:9/play/websocket");
  ws.open();
  assert.deepEqual(ws.sent, [{ type: c.JOIN, token: "seat-token" }]);
  assert.equal(link.send(c.encodeInput(1, [0, 0, 0, 0])), false, "no input before the welcome");
  ws.deliver(welcome());
  assert.equal(ws.sent[1].type, c.PING);
  assert.equal(link.send(c.encodeInput(1, [0, 0, 0, 0])), true);
  assert.deepEqual(ws.sent[2], { type: c.INPUT, seq: 1, values: [0, 0, 0, 0] });
  assert.equal(messages[0].type, c.WELCOME);
  assert.equal(link.transport, "websocket");
});

test("a drop after the welcome resumes with the resume token", async () => {
  make();
  FakeSocket.all[0].open();
  FakeSocket.all[0].deliver(welcome("resume-me"));
  FakeSocket.all[0].shut(1006);
  assert.equal(link.status.state, "reconnecting");
  const ws2 = await until(() => FakeSocket.all[1], "a new socket (first backoff step: 250 ms)");
  ws2.open();
  assert.deepEqual(ws2.sent, [{ type: c.RESUME, token: "resume-me" }]);
  ws2.deliver(welcome("resume-2"));
  assert.equal(link.reconnects, 1);
  assert.equal(link.resumeToken, "resume-2");
});

test("closes that resuming cannot fix end the link", () => {
  for (const code of [1000, 4001, 4004, 4010, 4015, 4016, 4030, 4040]) {
    make();
    FakeSocket.all.at(-1).open();
    FakeSocket.all.at(-1).deliver(welcome());
    FakeSocket.all.at(-1).shut(code, "x");
    assert.equal(link.status.state, "closed", `code ${code}`);
    assert.equal(link.status.code, code);
    link = null;
  }
});

test("a refused join (no seat yet) ends the link with the node's code", () => {
  make();
  FakeSocket.all[0].open();
  FakeSocket.all[0].shut(4011, "Token expired");
  assert.equal(link.status.state, "closed");
  assert.equal(link.status.code, 4011);
});

test("a raw websocket that errors before opening falls back to SockJS for good", async () => {
  make();
  FakeSocket.all[0].fail();
  assert.equal(sockjsOpened, 1);
  assert.equal(link.useRaw, false);
});

test("a raw websocket that never opens falls back after the open timeout", async () => {
  make({ wsOpenTimeout: 50 }); // 3 s by default
  await until(() => sockjsOpened === 1, "the fallback");
  assert.ok(FakeSocket.all[0].closed, "the hanging socket is closed");
});

test("garbage from the node closes the link with 4001", () => {
  make();
  const ws = FakeSocket.all[0];
  ws.open();
  ws.onmessage({ data: new Uint8Array([0xc1]).buffer });
  assert.equal(link.status.state, "closed");
  assert.equal(link.status.code, 4001);
});

test("the reconnect window bounds the retries", async () => {
  make();
  FakeSocket.all[0].open();
  FakeSocket.all[0].deliver({ ...welcome(), config: { reconnect_window: 0.2 } });
  FakeSocket.all[0].shut(1006);
  const retry = await until(() => FakeSocket.all[1], "the retry");
  await sleep(Math.max(0, 250 - (Date.now() - link.droppedAt))); // the window has passed
  retry.shut(1006); // the retry fails too, after the window
  assert.equal(link.status.state, "closed");
  assert.equal(link.status.code, 4015);
});

test("after the raw websocket worked once, a failed reconnect is a drop, not a fallback", async () => {
  make();
  FakeSocket.all[0].open();
  FakeSocket.all[0].deliver(welcome());
  FakeSocket.all[0].shut(1006);
  (await until(() => FakeSocket.all[1], "the first retry")).fail(); // the network is still down
  assert.equal(sockjsOpened, 0);
  assert.equal(link.status.state, "reconnecting");
  (await until(() => FakeSocket.all[2], "the second retry (500 ms)")).open();
  assert.deepEqual(FakeSocket.all[2].sent, [{ type: c.RESUME, token: "r1" }]);
});

test("SockJS session ids carry 128 bits from crypto.getRandomValues", () => {
  assert.equal(SESSION_ID_BYTES, 16);
  const real = globalThis.crypto;
  const asked = [];
  Object.defineProperty(globalThis, "crypto", {
    configurable: true,
    value: { getRandomValues: (a) => { asked.push(a.length); return real.getRandomValues(a); } },
  });
  let ids;
  try {
    ids = Array.from({ length: 200 }, () => sessionId());
  } finally {
    Object.defineProperty(globalThis, "crypto", { configurable: true, value: real });
  }
  assert.deepEqual(new Set(asked), new Set([16]), "16 random bytes per id, from the CSPRNG");
  assert.equal(asked.length, 200);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, ids.length);
  // every hex digit position varies (no fixed prefix or padding eating the entropy)
  for (let i = 0; i < 32; i++) assert.ok(new Set(ids.map((id) => id[i])).size > 4, `digit ${i}`);
});

test("moved then 4031: the link resumes on the new node at once, with the token it gave", () => {
  make();
  const ws = FakeSocket.all[0];
  ws.open();
  ws.deliver(welcome("old-token"));
  ws.deliver({ type: c.MOVED, nodeUrl: "http://127.0.0.1:10/", resumeToken: "moved-token" });
  ws.shut(c.CLOSE.MOVED, "Moved");
  assert.equal(link.status.state, "reconnecting");
  assert.equal(link.status.reason, "moving to another server");
  const ws2 = FakeSocket.all[1];
  assert.ok(ws2, "no backoff: a new socket at once");
  assert.equal(ws2.url, "ws://127.0.0.1:10/play/websocket");
  ws2.open();
  assert.deepEqual(ws2.sent, [{ type: c.RESUME, token: "moved-token" }]);
  ws2.deliver(welcome("moved-token"));
  assert.equal(link.moves, 1);
  assert.equal(link.status.state, "open");
});

test("4031 without a moved message (or with a bad URL) is a drop on the same node", async () => {
  make();
  const ws = FakeSocket.all[0];
  ws.open();
  ws.deliver(welcome("old-token"));
  ws.deliver({ type: c.MOVED, nodeUrl: "javascript:alert(1)", resumeToken: "x".repeat(20) });
  ws.shut(c.CLOSE.MOVED, "Moved");
  const ws2 = await until(() => FakeSocket.all[1], "a new socket after the backoff");
  assert.equal(ws2.url, "ws://127.0.0.1:9/play/websocket");
  ws2.open();
  assert.deepEqual(ws2.sent, [{ type: c.RESUME, token: "old-token" }]);
  assert.equal(link.moves, 0);
});
