// Tag's browser module (games/tag/browser.js): its movement port against Tag.step itself
// (Python's half-to-even rounding included), and its prediction through the shell's
// timing needing no correction with a steady latency.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { Prediction } from "../../static/src/predict.js";
import { makeMove, pyRound } from "../../games/tag/browser.js";
import { PYTHON, ROOT } from "./bridge.mjs";

function pyTag(moves) {
  const out = execFileSync(PYTHON, [path.join(ROOT, "tests/js/pytag.py")], {
    cwd: ROOT, input: JSON.stringify({ moves }), env: { ...process.env, PYTHONPATH: ROOT },
    timeout: 60000, maxBuffer: 1 << 26,
  });
  return JSON.parse(out.toString());
}

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

const CONFIG = pyTag([]).config;

test("pyRound rounds halves to even, as Python's round()", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 10.5, 11.5, 2.4, 2.6, -2.6].map(pyRound),
    [0, 2, 2, 0, -2, 10, 12, 2, 3, -3]);
});

test("one tick of movement matches Tag.step exactly, as it and not, at the edges too", () => {
  const r = rng(3);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const { width: W, height: H, radius: R } = CONFIG;
  const moves = [];
  for (let i = 0; i < 1500; i++) {
    const edge = r() < 0.3;
    const x = edge ? (r() < 0.5 ? int(R - 5, R + 30) : int(W - R - 30, W - R)) : int(R, W - R);
    const y = edge ? (r() < 0.5 ? int(R - 5, R + 30) : int(H - R - 30, H - R)) : int(R, H - R);
    const [mx, my] = r() < 0.4 ? [[100, 0], [0, -100], [71, 71], [-71, 71], [50, 0], [0, 0]][int(0, 5)]
      : [int(-100, 100), int(-100, 100)];
    moves.push([Math.max(R, Math.min(W - R, x)), Math.max(R, Math.min(H - R, y)), mx, my, int(0, 1)]);
  }
  const { out } = pyTag(moves);
  const move = makeMove(CONFIG, CONFIG.sim_hz);
  moves.forEach(([x, y, mx, my, it], i) => {
    assert.deepEqual(move(x, y, mx, my, it === 1), out[i], `move ${[x, y, mx, my, it]}`);
  });
});

test("with steady latency the prediction needs no correction once the offset is known", () => {
  const move = makeMove(CONFIG, CONFIG.sim_hz);
  const step = (s, v) => move(s[0], s[1], v[0], v[1], false);
  for (const latency of [1, 4]) {
    const pred = new Prediction(step);
    const r = rng(latency);
    const server = { x: 2000, y: 1200, mx: 0, my: 0, ack: 0 };
    const toServer = [], toClient = [], errors = [];
    let seq = 0, cur = [0, 0];
    for (let t = 1; t < 600; t++) {
      if (t % 2 === 0 && r() < 0.3) {
        cur = [[0, 0], [100, 0], [-100, 0], [0, 100], [71, -71], [-50, 30]][Math.floor(r() * 6)];
        seq++;
        toServer.push([t + latency, seq, ...cur]);
        pred.sentInput(seq, t);
      }
      pred.tick(t, seq, cur, true);
      const due = toServer.filter((m) => m[0] <= t);
      for (const m of due) { [, server.ack, server.mx, server.my] = m; toServer.splice(toServer.indexOf(m), 1); }
      [server.x, server.y] = move(server.x, server.y, server.mx, server.my, false);
      toClient.push([t + latency, t, server.x, server.y, server.ack]); // a patch every tick
      while (toClient.length && toClient[0][0] <= t) {
        const [, st, x, y, ack] = toClient.shift();
        errors.push(Math.hypot(...pred.reconcile(st, [x, y], ack, true)));
      }
    }
    assert.ok(errors.length > 500);
    assert.equal(Math.max(...errors.slice(40)), 0, `latency ${latency}`);
  }
});
