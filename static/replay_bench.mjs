// The replay player's costs on a long match: `node static/replay_bench.mjs [--game G]
// [--players N] [--repeat R]` builds the frames file of a whole match of the game's first
// mode with N players (default the Arena, its most: 16 "humans", the score limit lifted so it lasts
// its time limit: engine.replay_bench's match) and measures, in Node: reading the file
// (inflate, decode, check every frame), the worst seek (the patch just before a keyframe,
// from nothing cached: its keyframe and every delta after it, then one interpolated frame)
// and a mean seek to random ticks. Prints them and writes reports/replay-player-bench.json.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readFrames } from "./src/frames.js";
import { interpolate } from "./src/snapshots.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const game = arg("game", "arena");
const players = Number(arg("players", 0)); // 0: the mode's most
const repeat = Number(arg("repeat", 5));
const python = path.join(ROOT, ".venv/bin/python");

const script = `
import sys, dataclasses
from engine.frames import build_frames
from engine.recording import load_replay
from engine.registry import registry
from engine.replay_bench import whole_match
gdef = registry().game(${JSON.stringify(game)})
mode = next(iter(gdef.modes.values()))
cfg = mode.config
if hasattr(cfg, "score_limit"):
    cfg = dataclasses.replace(cfg, score_limit=10**6)
data, ticks = whole_match(gdef, mode, cfg, ${players} or mode.max_players, 1, True)
sys.stdout.buffer.write(build_frames(load_replay(data)))
`;
const bytes = new Uint8Array(execFileSync(python, ["-c", script], { cwd: ROOT, maxBuffer: 1 << 28,
  env: { ...process.env, PYTHONPATH: ROOT } }));

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const reads = [];
let tl;
for (let r = 0; r < repeat; r++) {
  const t0 = performance.now();
  tl = await readFrames(bytes);
  reads.push(performance.now() - t0);
}
const keys = tl.patches.map((p, i) => (p.msg.type === 11 ? i : -1)).filter((i) => i > 0);
const seekTo = (t) => {
  const t0 = performance.now();
  interpolate(tl, t, tl.schema, {});
  return performance.now() - t0;
};
const edge = []; // seeks to the patch before each keyframe, from nothing cached
for (let r = 0; r < repeat; r++) {
  for (const k of keys) {
    tl.cache.clear();
    edge.push(seekTo(tl.patches[k - 1].tick + 0.5));
  }
}
edge.sort((a, b) => a - b);
const worst = edge[edge.length - 1], p99 = edge[Math.floor(edge.length * 0.99)];
let seed = 1;
const randomSeeks = [];
for (let i = 0; i < 500; i++) {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  randomSeeks.push(seekTo(tl.first + (seed % (tl.last - tl.first))));
}
const minutes = (tl.last - tl.first) / tl.simHz / 60;
const report = {
  game, players: tl.players.length, minutes, frames_bytes: bytes.length, frames_bytes_per_min: bytes.length / minutes,
  patches: tl.patches.length, keyframe_every: keys[0], read_ms: median(reads),
  worst_seek_ms: worst, keyframe_edge_seek_median_ms: median(edge), keyframe_edge_seek_p99_ms: p99, mean_random_seek_ms: randomSeeks.reduce((a, b) => a + b, 0) / randomSeeks.length,
  node: process.version,
};
console.log(`${game}, ${tl.players.length} players, ${minutes.toFixed(1)} min: frames file ${(bytes.length / 1000).toFixed(0)} kB`
  + ` (${(report.frames_bytes_per_min / 1000).toFixed(0)} kB/min), ${tl.patches.length} patches, a keyframe every ${keys[0]}`);
console.log(`read (inflate, decode, check) ${report.read_ms.toFixed(0)} ms; seek to the patch before a keyframe`
  + ` ${median(edge).toFixed(2)} ms median, ${p99.toFixed(2)} ms p99, ${worst.toFixed(2)} ms worst;`
  + ` mean random seek ${report.mean_random_seek_ms.toFixed(3)} ms`);
mkdirSync(path.join(ROOT, "reports"), { recursive: true });
writeFileSync(path.join(ROOT, "reports", "replay-player-bench.json"), JSON.stringify(report, null, 1));
