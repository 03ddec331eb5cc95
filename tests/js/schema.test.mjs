// Tests of static/src/schema.js against every registered game's declared schema (via
// pygames.py): field indexes, the own ack, events by name, results rows with the game's
// columns, and input clamping exactly as engine.game.GameDef.clamp does it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Schema } from "../../static/src/schema.js";
import * as c from "../../static/src/codec.js";
import { pyGames } from "./bridge.mjs";

const GAMES = pyGames({ op: "games" });

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const [name, game] of Object.entries(GAMES)) {
  test(`${name}: input values are clamped and wrapped as the node does`, () => {
    const schema = new Schema(game.schema);
    const r = rng(name.length);
    const values = [];
    for (let n = 0; n < 500; n++) {
      values.push(schema.inputs.map((f) => {
        const span = f.hi - f.lo;
        return Math.floor(f.lo - 3 * span + r() * 7 * span);
      }));
    }
    values.push(schema.inputs.map((f) => f.lo), schema.inputs.map((f) => f.hi),
      schema.inputs.map((f) => f.lo - 1), schema.inputs.map((f) => f.hi + 1));
    assert.deepEqual(values.map((v) => schema.clamp(v)), pyGames({ op: "clamp", game: name, values }));
  });

  test(`${name}: entity kinds name their fields, and a player kind has its ack`, () => {
    const schema = new Schema(game.schema);
    assert.equal(schema.kinds.size, game.schema.entities.length);
    for (const k of game.schema.entities) {
      const kind = schema.kind(k.kind);
      const wire = [k.kind, ...k.fields.map((f, i) => (f === "name" ? "ann" : i * 3))];
      const named = kind.named(wire);
      k.fields.forEach((f, i) => assert.equal(named[f], wire[i + 1]));
      assert.equal(kind.ack === null, k.ack === null);
      if (k.ack) assert.equal(wire[kind.ack], named[k.ack]);
      assert.deepEqual(kind.interpolate.map((i) => k.fields[i - 1]), k.interpolate);
    }
  });

  test(`${name}: events read by name, room events included; results carry the game's columns`, () => {
    const schema = new Schema(game.schema);
    for (const e of game.schema.events) {
      const ev = schema.readEvent([e.code, ...e.fields.map((f, i) => i + 1)]);
      assert.equal(ev.type, e.name);
      e.fields.forEach((f, i) => assert.equal(ev.data[f], i + 1));
    }
    assert.deepEqual(schema.readEvent([c.EV_JOINED, 4, "Zoë"]), { code: 1, type: "joined", data: { player: 4, name: "Zoë" } });
    assert.deepEqual(schema.readEvent([c.EV_LEFT, 4]), { code: 2, type: "left", data: { player: 4 } });
    assert.deepEqual(schema.readEvent([126, 1, 2]), { code: 126, type: "", data: { args: [1, 2] } });
    const stats = game.schema.results.map((col, i) => 10 + i);
    const end = schema.readEvent([c.EV_MATCH_END, "time", [[3, 42, "ann", 7, 1, false, ...stats], "junk"]]);
    assert.equal(end.type, "match_end");
    assert.equal(end.data.reason, "time");
    assert.deepEqual(end.data.results, [{
      playerId: 3, userId: 42, name: "ann", score: 7, placement: 1, bot: false,
      stats: Object.fromEntries(game.schema.results.map((col, i) => [col.name, 10 + i])),
    }]);
    assert.deepEqual(schema.results.map((col) => col.label), game.schema.results.map((col) => col.label));
  });
}

test("a welcome without a schema is refused with a clear error", () => {
  assert.throws(() => new Schema(undefined), /no schema/);
  assert.throws(() => new Schema({ events: [] }), /no schema/);
});
