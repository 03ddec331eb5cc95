// Tests of static/src/snapshots.js: patch buffering, delta rules, interpolation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Snapshots, interpolate, lerpAim } from "../../static/src/snapshots.js";
import { makeDelta } from "../../static/src/codec.js";

const player = (x, y, aim = 0, flags = 5) => [1, x, y, aim, 100, 0, 0, 0, flags, 0, "p"];

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

test("players are interpolated between the patches around the render tick", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1, player(1000, 2000, 3000)]]), 0);
  s.keyframe(12, 798, new Map([[1, player(1200, 2000, -3000)]]), 50);
  const mid = interpolate(s, 11);
  assert.equal(mid.players.length, 1);
  assert.equal(mid.players[0].x, 110);
  assert.equal(mid.players[0].y, 200);
  // aim goes the short way round through +-pi, not through 0
  assert.ok(Math.abs(mid.players[0].aim) > 3000);
  assert.equal(mid.clock, 799);
  // before the first and after the last patch: held, never extrapolated
  assert.equal(interpolate(s, 5).players[0].x, 100);
  assert.equal(interpolate(s, 30).players[0].x, 120);
});

test("a respawn jump is not slid across the map", () => {
  const s = new Snapshots(40, 20);
  s.keyframe(10, 800, new Map([[1, player(1000, 1000)]]), 0);
  s.keyframe(12, 798, new Map([[1, player(9000, 9000)]]), 50);
  assert.equal(interpolate(s, 10.5).players[0].x, 100);
  assert.equal(interpolate(s, 11.5).players[0].x, 900);
});

test("projectiles fly from their launch, and finish the flight they were removed in", () => {
  const s = new Snapshots(40, 20);
  const shot = [2, 1000, 500, 100, -50, 9, 1];
  s.keyframe(10, 800, new Map([[1000, shot]]), 0);
  s.keyframe(12, 798, new Map(), 50);
  const at = interpolate(s, 11);
  assert.equal(at.projectiles.length, 1);
  assert.equal(at.projectiles[0].x, (1000 + 100 * 2) / 10);
  assert.equal(at.projectiles[0].y, (500 - 50 * 2) / 10);
  assert.equal(interpolate(s, 12).projectiles.length, 0);
  // not drawn before it was fired
  s.keyframe(14, 796, new Map([[1001, [2, 0, 0, 10, 10, 14, 1]]]), 100);
  assert.equal(interpolate(s, 13.5).projectiles.length, 0);
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
