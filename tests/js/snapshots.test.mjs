// Tests of static/src/snapshots.js: patch buffering, delta rules, interpolation driven by
// the game's schema (which fields slide, which are held, the game's own rules).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Snapshots, interpolate, lerpAim } from "../../static/src/snapshots.js";
import { makeDelta } from "../../static/src/codec.js";
import { Schema } from "../../static/src/schema.js";

// A small game: kind 1 "player" [x, y, aim, hp, ack, name] with x, y interpolated,
// kind 2 "shot" [x0, y0] nothing interpolated, kind 5 "flag" [x, y] x, y interpolated.
const SCHEMA = new Schema({
  entities: [
    { kind: 1, name: "player", fields: ["x", "y", "aim", "hp", "ack", "name"], interpolate: ["x", "y"], ack: "ack" },
    { kind: 2, name: "shot", fields: ["x0", "y0"], interpolate: [], ack: null },
    { kind: 5, name: "flag", fields: ["x", "y"], interpolate: ["x", "y"], ack: null },
  ],
  events: [], inputs: [], results: [],
});
const player = (x, y, aim = 0, hp = 100) => [1, x, y, aim, hp, 0, "p"];

test("deltas apply only on the patch they were made against", () => {
  const s = new Snapshots(40, 20);
  const e1 = new Map([[1, player(100, 100)]]);
  const e2 = new Map([[1, player(200, 100)]]);
  s.keyframe(10, 800, e1, 0);
  const d = makeDelta(e1, e2);
  assert.equal(s.delta({ tick: 12, base: 10, clock: 798, ...d }, 50), true);
  assert.deepEqual(s.latest.entities.get(1), player(200, 100));
  // a delta against a patch we do not hold is skipped, state unchanged
  assert.equal(s.delta({ tick: 16, base: 14, clock: 794, ...d }, 100), false);
  assert.equal(s.latest.tick, 12);
  assert.equal(s.skipped, 1);
  // a keyframe restarts from anything
  s.keyframe(20, 790, e1, 150);
  assert.equal(s.latest.tick, 20);
});

test("the schema's interpolate fields slide between patches, the others come from the newer", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1, player(1000, 2000, 3000, 100)], [7, [5, 0, 0]]]), 0);
  s.keyframe(12, 798, new Map([[1, player(1200, 2000, -3000, 40)], [7, [5, 100, 50]]]), 50);
  const mid = interpolate(s, 11, SCHEMA);
  const p = mid.entities.get(1);
  assert.deepEqual([p.type, p.kind, p.id, p.name], ["player", 1, 1, "p"]);
  assert.equal(p.x, 1100);
  assert.equal(p.y, 2000);
  assert.equal(p.aim, -3000, "not in interpolate: the newer patch's value");
  assert.equal(p.hp, 40);
  assert.deepEqual(p.raw, player(1200, 2000, -3000, 40));
  const flag = mid.entities.get(7); // any kind, not only players
  assert.deepEqual([flag.x, flag.y], [50, 25]);
  assert.equal(mid.clock, 799);
  // before the first and after the last patch: held, never extrapolated
  assert.equal(interpolate(s, 5, SCHEMA).entities.get(1).x, 1000);
  assert.equal(interpolate(s, 30, SCHEMA).entities.get(1).x, 1200);
});

test("a game's own rules: a lerp per field, and a teleport that does not slide", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1, player(1000, 1000, 3000)]]), 0);
  s.keyframe(12, 798, new Map([[1, player(9000, 9000, -3000)]]), 50);
  const rules = {
    lerp: { aim: lerpAim },
    teleport: (o, e, kind) => Math.abs(e[kind.index.x] - o[kind.index.x]) > 1000,
  };
  assert.equal(interpolate(s, 10.5, SCHEMA, rules).entities.get(1).x, 1000);
  assert.equal(interpolate(s, 11.5, SCHEMA, rules).entities.get(1).x, 9000);
  // aim has a rule though the schema does not interpolate it: the short way round
  assert.ok(Math.abs(interpolate(s, 11, SCHEMA, rules).entities.get(1).aim) > 3000);
});

test("entities the newer patch dropped are listed as gone until its tick", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1000, [2, 10, 20]]]), 0);
  s.keyframe(12, 798, new Map(), 50);
  const at = interpolate(s, 11, SCHEMA);
  assert.equal(at.entities.size, 0);
  assert.deepEqual(at.gone.map((g) => [g.id, g.type, g.x0, g.y0]), [[1000, "shot", 10, 20]]);
  assert.equal(interpolate(s, 12, SCHEMA).gone.length, 0);
});

test("an entity of a kind the schema does not know is kept raw", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[3, [99, 1, 2]]]), 0);
  const e = interpolate(s, 10, SCHEMA).entities.get(3);
  assert.deepEqual([e.type, e.kind, e.raw], ["", 99, [99, 1, 2]]);
});

test("the server tick estimate follows early patches at once and late ones slowly", () => {
  const s = new Snapshots(40, 20, 100);
  s.keyframe(100, 0, new Map(), 1000); // tick 100 at t = 1 s
  assert.equal(s.serverTick(1000), 100);
  assert.equal(s.serverTick(1500), 120);
  s.keyframe(122, 0, new Map(), 1500); // 2 ticks early: jump
  assert.equal(s.serverTick(1500), 122);
  s.keyframe(124, 0, new Map(), 1600); // 2 ticks late: small pull only
  assert.ok(s.serverTick(1600) > 125.5);
  assert.equal(s.renderTick(1600), s.serverTick(1600) - 4); // 100 ms at 40 Hz
});

test("lerpAim wraps", () => {
  assert.equal(lerpAim(0, 1000, 0.5), 500);
  assert.equal(lerpAim(3100, -3100, 0.5), 3141.5);
});

test("a delta that does not fit the held state is skipped, not thrown", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1, player(100, 100)]]), 0);
  const bad = { tick: 12, base: 10, clock: 798, added: new Map(), removed: [],
    updated: new Map([[7, [1, 5]]]) };
  assert.equal(s.delta(bad, 50), false);
  assert.equal(s.latest.tick, 10);
});
