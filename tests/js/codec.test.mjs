// Unit tests of static/src/codec.js, cross-checked against engine/codec.py (via pycodec.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as c from "../../static/src/codec.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PYTHON = existsSync(path.join(ROOT, ".venv/bin/python"))
  ? path.join(ROOT, ".venv/bin/python") : "python3";

function py(request) {
  const out = execFileSync(PYTHON, [path.join(ROOT, "tests/js/pycodec.py")], {
    cwd: ROOT, input: JSON.stringify(request), env: { ...process.env, PYTHONPATH: ROOT },
    timeout: 20000,
  });
  return JSON.parse(out.toString());
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (h) => new Uint8Array(Buffer.from(h, "hex"));
const entitiesJson = (m) => Object.fromEntries([...m].map(([k, v]) => [String(k), v]));

// Deterministic PRNG for the property-style tests (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("node messages encoded by the Python codec decode to the same fields", () => {
  const cases = py({ op: "server_messages", seed: 7 });
  assert.ok(cases.length > 40);
  for (const k of cases) {
    const msg = c.decode(fromHex(k.hex));
    assert.equal(msg.type, k.type);
    for (const [name, expected] of Object.entries(k.fields)) {
      if (name.startsWith("_")) continue;
      const got = msg[name] instanceof Map ? entitiesJson(msg[name]) : msg[name];
      assert.deepEqual(got, expected, `${name} of type ${k.type}`);
    }
    for (const m of ["entities", "added", "updated"]) {
      if (m in msg) for (const id of msg[m].keys()) assert.equal(typeof id, "number");
    }
  }
});

test("Python deltas applied in JS give the next state", () => {
  const cases = py({ op: "server_messages", seed: 11 }).filter((k) => k.type === c.DELTA);
  assert.equal(cases.length, 40);
  for (const k of cases) {
    const msg = c.decode(fromHex(k.hex));
    const prev = new Map(Object.entries(k.fields._prev).map(([id, f]) => [Number(id), f]));
    const next = c.applyDelta(prev, msg.added, msg.removed, msg.updated);
    assert.deepEqual(entitiesJson(next), k.fields._cur);
    // and the JS delta of the same two states applies back the same way
    const d = c.makeDelta(prev, next);
    assert.deepEqual(entitiesJson(c.applyDelta(prev, d.added, d.removed, d.updated)), k.fields._cur);
  }
});

test("client messages encoded in JS decode in Python, with integer fields", () => {
  const msgs = [
    c.encodeJoin("v1.abc.def"),
    c.encodeResume("resume-token"),
    c.encodeInput(1, [0, 0, 0, 0]),
    c.encodeInput(4294967295, [-100, 71, -3142, 1]),
    c.encodeInput(300, [100, -71, 3142, 0]),
    c.encodePing(4294967295),
    c.encodePing(123456),
    c.encodeLeave(),
    c.encode({ type: c.KEYFRAME, tick: 3, clock: 4, events: [],
      entities: new Map([[7, [1, 5, 6, 0, 100, 0, 0, 0, 5, 2, "ann"]], [1000, [3, 1, 2, 1]]]) }),
    c.encodeInput(2, []), // a game without input fields
    c.encodeInput(3, [5]),
  ];
  const out = py({ op: "decode", hex: msgs.map(hex) });
  assert.deepEqual(out.map((o) => o.type), [1, 2, 3, 3, 3, 4, 4, 5, 11, 3, 3]);
  assert.ok(out.slice(0, 8).every((o) => o.ints));
  assert.deepEqual(out[0].fields, { token: "v1.abc.def" });
  assert.deepEqual(out[1].fields, { token: "resume-token" });
  assert.deepEqual(out[3].fields, { seq: 4294967295, values: [-100, 71, -3142, 1] });
  assert.deepEqual(out[4].fields, { seq: 300, values: [100, -71, 3142, 0] });
  assert.deepEqual(out[5].fields, { t: 4294967295 });
  assert.deepEqual(out[7].fields, {});
  assert.deepEqual(out[8].fields.entities,
    { 7: [1, 5, 6, 0, 100, 0, 0, 0, 5, 2, "ann"], 1000: [3, 1, 2, 1] });
  assert.deepEqual(out[9].fields, { seq: 2, values: [] });
  assert.deepEqual(out[10].fields, { seq: 3, values: [5] });
});

test("the input encoder refuses non-integers instead of sending floats", () => {
  assert.throws(() => c.encodeInput(1, [0.5, 0, 0, 0]), TypeError);
  assert.throws(() => c.encodeInput(1, [0, 0, NaN, 0]), TypeError);
  assert.throws(() => c.encodeInput(1.5, []), TypeError);
});

test("every message round-trips through encode and decode", () => {
  const entities = new Map([[1, [1, 100, 200, -5, 100, 3, 1, 0, 5, 17, "ann"]],
    [1000, [2, 10, 20, 233, -233, 50, 1]], [1001, [3, 8000, 3000, 2]]]);
  const msgs = [
    { type: c.JOIN, token: "t" }, { type: c.RESUME, token: "r" },
    { type: c.INPUT, seq: 5, values: [-100, 0, 1571, 1] },
    { type: c.INPUT, seq: 6, values: [] },
    { type: c.PING, t: 9 }, { type: c.LEAVE },
    { type: c.WELCOME, playerId: 3, matchId: "m", resumeToken: "x", tick: 1,
      config: { sim_hz: 30, walls: [[1, 2, 3, 4]] } },
    { type: c.KEYFRAME, tick: 5, clock: 10, entities, events: [[19, 1]] },
    { type: c.DELTA, tick: 7, base: 5, clock: 8, added: new Map([[1002, [3, 1, 2, 1]]]),
      removed: [1000], updated: new Map([[1, [1, 110, 9, 18]]]), events: [] },
    { type: c.EVENT, tick: 9, events: [[c.EV_MATCH_END, "time", [[1, 5, "ann", 3, 1, false, 1, 0]]]] },
    { type: c.ERROR, code: 4011, reason: "Token expired" },
    { type: c.PONG, t: 77, tick: 900 },
  ];
  for (const m of msgs) assert.deepEqual(c.decode(c.encode(m)), m);
});

test("base64 framing round-trips and rejects garbage", () => {
  const r = rng(3);
  for (let n = 0; n < 200; n++) {
    const bytes = new Uint8Array(Math.floor(r() * 300)).map(() => Math.floor(r() * 256));
    const text = c.toBase64(bytes);
    assert.equal(text, Buffer.from(bytes).toString("base64"));
    assert.deepEqual(c.fromBase64(text), bytes);
  }
  const ping = c.encodePing(5);
  assert.deepEqual(c.decodeAny(c.toBase64(ping)), { type: c.PING, t: 5 });
  for (const bad of ["!!!!", "abc", "a===", "ab=c"]) {
    assert.throws(() => c.decodeAny(bad), (e) => e instanceof c.ProtocolError && e.code === 4001);
  }
});

test("untrusted bytes raise only ProtocolError with the documented codes", () => {
  const r = rng(99);
  for (let n = 0; n < 3000; n++) {
    const bytes = new Uint8Array(1 + Math.floor(r() * 40)).map(() => Math.floor(r() * 256));
    if (r() < 0.5) bytes[0] = 0x90 + Math.floor(r() * 8); // a small array: deeper parsing
    try {
      c.decode(bytes);
    } catch (e) {
      assert.ok(e instanceof c.ProtocolError, `${e} for ${hex(bytes)}`);
      assert.ok([4001, 4002, 4003].includes(e.code));
    }
  }
  const code = (bytes) => { try { c.decode(bytes); } catch (e) { return e.code; } return 0; };
  assert.equal(code(new Uint8Array([0x93, 0x63, 1, 2])), 4003); // [99, 1, 2]
  assert.equal(code(new Uint8Array([0xc1])), 4001); // never-used byte
  assert.equal(code(new Uint8Array([0x91, 0x03])), 4001); // input without fields
  assert.equal(code(new Uint8Array([0x92, 0x0f, 0x01])), 4001); // pong missing tick
  assert.equal(code(new Uint8Array([0x01])), 4001); // not an array
  assert.equal(code(new Uint8Array(c.MAX_INCOMING_BYTES + 1)), 4002);
  assert.equal(code(c.encode({ type: c.PONG, t: 1, tick: 2 })), 0);
});

test("extra trailing fields are ignored", () => {
  const bytes = new Uint8Array([0x94, 0x0f, 0x01, 0x02, 0x03]); // [15, 1, 2, 3]
  assert.deepEqual(c.decode(bytes), { type: c.PONG, t: 1, tick: 2 });
});

test("applyDelta rejects updates that do not fit", () => {
  const base = new Map([[1, [3, 10, 20, 1]]]);
  const bad = (updated) => () => c.applyDelta(base, new Map(), [], updated);
  assert.throws(bad(new Map([[2, [1, 5]]])), c.ProtocolError);
  assert.throws(bad(new Map([[1, [0, 2]]])), c.ProtocolError); // the kind never changes
  assert.throws(bad(new Map([[1, [4, 2]]])), c.ProtocolError);
  assert.deepEqual(c.applyDelta(base, new Map(), [], new Map([[1, [3, 2]]])).get(1), [3, 10, 20, 2]);
  assert.deepEqual(base.get(1), [3, 10, 20, 1], "the old state is not changed");
});

test("an input whose fields are not all integers does not decode", () => {
  const bad = new Uint8Array([0x93, 0x03, 0x01, 0xa1, 0x78]); // [3, 1, "x"]
  assert.throws(() => c.decode(bad), (e) => e instanceof c.ProtocolError && e.code === 4001);
});
