// Client hot-path costs, in Node (no browser): `node static/bench.mjs [--json PATH]`.
// Prints one line per figure and writes a JSON report (default reports/client-bench.json).
// Never asserted anywhere: a benchmark, not a test.
import { readFileSync, readdirSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import * as c from "./src/codec.js";
import { Prediction } from "./src/predict.js";
import { Schema } from "./src/schema.js";
import { Snapshots, interpolate, lerpAim } from "./src/snapshots.js";
import { Mover, makeStep } from "../games/arena/browser.js";

// The Arena's schema (games/arena/__init__.py) and its interpolation rules: the figures
// are for the Arena, the costliest state the project has.
const SCHEMA = new Schema({
  entities: [
    { kind: 1, name: "player", fields: ["x", "y", "aim", "hp", "score", "kills", "deaths", "flags", "ack", "name"], interpolate: ["x", "y"], ack: "ack" },
    { kind: 2, name: "projectile", fields: ["x0", "y0", "vx", "vy", "born", "owner"] },
    { kind: 3, name: "pickup", fields: ["x", "y", "sort"] },
  ],
});
const RULES = { lerp: { aim: lerpAim } };

const CONFIG = {
  sim_hz: 40, patch_hz: 20, width: 1600, height: 1000, player_radius: 16, player_speed: 240,
  walls: [[740, 440, 120, 120], [300, 200, 240, 40], [1060, 200, 240, 40], [300, 760, 240, 40],
    [1060, 760, 240, 40], [200, 420, 40, 160], [1360, 420, 40, 160], [560, 460, 40, 80],
    [1000, 460, 40, 80]],
};

function state(t) {
  const m = new Map();
  for (let id = 1; id <= 16; id++) {
    m.set(id, [1, 1000 + id * 700 + t * 7, 1000 + id * 400 + (t % 50) * 3, (t * 37 + id) % 3142,
      100 - (t % 5) * 20, id + (t >> 6), t >> 7, t >> 8, 5, t * 2 + id, `player-${id}`]);
  }
  for (let k = 0; k < 40; k++) {
    const id = 1000 + ((t >> 2) + k) % 200; // a few added and removed each patch
    m.set(id, [2, 4000 + k * 100, 3000, 170, -40, t - (k % 20), (k % 16) + 1]);
  }
  for (let k = 0; k < 8; k++) m.set(1200 + k, [3, 1500 + k * 1500, 3000, 1 + (k % 2)]);
  return m;
}

function time(label, n, fn) {
  for (let i = 0; i < Math.min(n, 200); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`${label.padEnd(44)} ${us.toFixed(2).padStart(9)} µs`);
  return Math.round(us * 100) / 100;
}

const report = { node: process.version, figures: {} };
const f = report.figures;

const modules = existsSync("static/build/games")
  ? readdirSync("static/build/games").filter((n) => n.endsWith(".js")).sort() : [];
const bundles = [["bundle", "static/build/client.js"],
  ...modules.map((n) => [`module_${n.slice(0, -3)}`, `static/build/games/${n}`])];
for (const [key, file] of bundles) {
  if (!existsSync(file)) continue;
  const bytes = readFileSync(file);
  f[`${key}_bytes`] = bytes.length;
  f[`${key}_gzip_bytes`] = gzipSync(bytes).length;
  console.log(`${`bundle (${file})`.padEnd(44)} ${bytes.length} B, ${f[`${key}_gzip_bytes`]} B gzipped`);
}

const s0 = state(100), s1 = state(102);
const key = c.encode({ type: c.KEYFRAME, tick: 100, clock: 5000, entities: s0, events: [] });
const d = c.makeDelta(s0, s1);
const delta = c.encode({ type: c.DELTA, tick: 102, base: 100, clock: 4998, events: [[16, 3, 4, 20]], ...d });
const delta64 = c.toBase64(delta);
f.keyframe_bytes = key.length;
f.delta_bytes = delta.length;
console.log(`${"keyframe / delta size (16 players, 40 shots)".padEnd(44)} ${key.length} B / ${delta.length} B`);
f.decode_keyframe_us = time("decode keyframe", 5000, () => c.decode(key));
f.decode_delta_us = time("decode delta (binary)", 20000, () => c.decode(delta));
f.decode_delta_base64_us = time("decode delta (SockJS base64)", 20000, () => c.decodeAny(delta64));
const dm = c.decode(delta);
f.apply_delta_us = time("applyDelta", 20000, () => c.applyDelta(s0, dm.added, dm.removed, dm.updated));

const snaps = new Snapshots(40, 20);
for (let t = 0; t < 30; t++) snaps.keyframe(100 + t * 2, 5000 - t * 2, state(100 + t * 2), t * 50);
f.interpolate_us = time("interpolate (one frame's entities)", 20000, (i) => interpolate(snaps, 130 + (i % 20) * 0.1, SCHEMA, RULES));

const mover = new Mover(CONFIG);
f.move_us = time("Mover.move, next to a wall", 200000, (i) => mover.move(7400 - 165, 4800 + (i % 100), 100, 0));
const pred = new Prediction(makeStep(CONFIG));
for (let t = 1; t <= 256; t++) { pred.sentInput(t, t); pred.tick(t, t, [71, 71, 0, 0], true); }
pred.reconcile(300, [5000, 5000], 236, true); // offset 64: each patch replays 20 local ticks
f.reconcile_us = time("Prediction.reconcile (20-tick replay)", 20000, () => pred.reconcile(300, [5000, 5000], 236, true));

const out = process.argv.includes("--json") ? process.argv[process.argv.indexOf("--json") + 1]
  : "reports/client-bench.json";
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 1));
console.log(`report: ${out}`);
