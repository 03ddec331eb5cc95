// Tests of the shell's prediction timing (static/src/predict.js) with the Arena's movement
// rule (games/arena/browser.js): the port against games/arena/game.py itself, and
// reconciliation against a simulated server with latency.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Prediction } from "../../static/src/predict.js";
import { Mover, clampMove, makeStep } from "../../games/arena/browser.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PYTHON = existsSync(path.join(ROOT, ".venv/bin/python"))
  ? path.join(ROOT, ".venv/bin/python") : "python3";

function pyArena(mode, moves) {
  const out = execFileSync(PYTHON, [path.join(ROOT, "tests/js/pyarena.py")], {
    cwd: ROOT, input: JSON.stringify({ mode, moves }), env: { ...process.env, PYTHONPATH: ROOT },
    timeout: 30000, maxBuffer: 1 << 26,
  });
  return JSON.parse(out.toString());
}

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
const CONFIG = pyArena("arena", []).config;

function randomMoves(seed, n) {
  const r = rng(seed);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const dirs = [[0, 0], [100, 0], [-100, 0], [0, 100], [0, -100], [71, 71], [-71, 71],
    [71, -71], [-71, -71]];
  const moves = [];
  for (let i = 0; i < n; i++) {
    let x, y;
    if (r() < 0.7) { // near a wall's edge or corner, where the push-out rules matter
      const [wx, wy, ww, wh] = CONFIG.walls[int(0, CONFIG.walls.length - 1)];
      x = int(wx - 30, wx + ww + 30) * 10 + int(0, 9);
      y = int(wy - 30, wy + wh + 30) * 10 + int(0, 9);
    } else {
      x = int(0, CONFIG.width * 10);
      y = int(0, CONFIG.height * 10);
    }
    const [mx, my] = r() < 0.5 ? dirs[int(0, 8)] : [int(-180, 180), int(-180, 180)];
    moves.push([x, y, mx, my]);
  }
  return moves;
}

test("one tick of movement matches Arena._move exactly, walls and bounds included", () => {
  for (const mode of ["arena", "sprint"]) {
    const moves = randomMoves(mode.length, 6000);
    const { config, out } = pyArena(mode, moves);
    const mover = new Mover(config);
    moves.forEach(([x, y, mx, my], i) => {
      assert.deepEqual(mover.move(x, y, ...clampMove(mx, my)), out[i], `move ${[x, y, mx, my]}`);
    });
  }
});

test("walks along walls match the engine tick after tick", () => {
  const mover = new Mover(CONFIG);
  const r = rng(5);
  // 40 walks of 60 ticks, each tick starting where the previous one ended
  const trail = [];
  for (let walk = 0; walk < 40; walk++) {
    let pos = [Math.floor(r() * 16000), Math.floor(r() * 10000)];
    const a = r() * Math.PI * 2;
    const mv = [Math.round(Math.cos(a) * 100), Math.round(Math.sin(a) * 100)];
    for (let i = 0; i < 60; i++) {
      const next = mover.move(pos[0], pos[1], ...clampMove(...mv));
      trail.push([pos[0], pos[1], mv[0], mv[1], next]);
      pos = next;
    }
  }
  const { out } = pyArena("arena", trail.map((t) => t.slice(0, 4)));
  trail.forEach((t, i) => assert.deepEqual(t[4], out[i]));
});

test("clampMove matches the engine's rule", () => {
  assert.deepEqual(clampMove(100, 100), [70, 70]);
  assert.deepEqual(clampMove(71, 71), [71, 71]); // length 100.4: isqrt gives 100, kept
  assert.deepEqual(clampMove(-500, 3), [-100, 3]); // length 100.04: isqrt gives 100
  assert.deepEqual(clampMove(0, 0), [0, 0]);
});

/**
 * A server running the engine's movement with `latency` ticks each way: inputs are
 * coalesced per tick (last wins), patches every `patchEvery` ticks.
 */
function simulate({ latency, patchEvery, ticks, seed, jitter = 0 }) {
  const mover = new Mover(CONFIG);
  const pred = new Prediction(makeStep(CONFIG));
  const r = rng(seed);
  let server = { x: 8000 - 3000, y: 1500, mx: 0, my: 0, ack: 0 };
  const toServer = []; // [arriveTick, seq, mx, my]
  const toClient = []; // [arriveTick, serverTick, x, y, ack]
  let seq = 0, cur = [0, 0];
  const errors = [];
  let local = 0;
  const serverTickAt = (t) => t; // server and client tick clocks run at the same rate
  for (let t = 0; t < ticks; t++) {
    // client tick: maybe change controls and send, then predict one tick
    local++;
    if (t % 2 === 0 && r() < 0.3) {
      const a = Math.floor(r() * 9);
      cur = [[0, 0], [100, 0], [-100, 0], [0, 100], [0, -100], [71, 71], [-71, 71], [71, -71],
        [-71, -71]][a];
      seq++;
      toServer.push([t + latency + Math.floor(r() * (jitter + 1)), seq, cur[0], cur[1]]);
      pred.sentInput(seq, local);
    }
    pred.tick(local, seq, [cur[0], cur[1], 0, 0], true);
    // server tick
    const st = serverTickAt(t);
    const due = toServer.filter((m) => m[0] <= st);
    if (due.length) {
      const last = due.reduce((a, b) => (b[1] > a[1] ? b : a));
      if (last[1] > server.ack) {
        server.mx = last[2]; server.my = last[3]; server.ack = last[1];
      }
      for (const m of due) toServer.splice(toServer.indexOf(m), 1);
    }
    [server.x, server.y] = mover.move(server.x, server.y, server.mx, server.my);
    if (st % patchEvery === 0) toClient.push([t + latency, st, server.x, server.y, server.ack]);
    // client receives patches
    while (toClient.length && toClient[0][0] <= t) {
      const [, stick, x, y, ack] = toClient.shift();
      const [ex, ey] = pred.reconcile(stick, [x, y], ack, true);
      errors.push(Math.hypot(ex, ey));
    }
  }
  return { errors, pred };
}

test("with steady latency the prediction needs no correction once the offset is known", () => {
  for (const latency of [1, 3, 6]) {
    const { errors } = simulate({ latency, patchEvery: 1, ticks: 600, seed: latency });
    const late = errors.slice(60);
    assert.ok(late.length > 400);
    assert.equal(Math.max(...late), 0, `latency ${latency}`);
  }
});

test("with patches every 2 ticks and jitter, corrections stay small", () => {
  const { errors, pred } = simulate({ latency: 4, patchEvery: 2, ticks: 900, seed: 9, jitter: 2 });
  const late = errors.slice(30);
  const step = new Mover(CONFIG).stepLength;
  // a mis-guessed tick costs at most a few ticks of movement, never a runaway
  assert.ok(Math.max(...late) <= 4 * step * 1.5, `max correction ${Math.max(...late)}`);
  assert.ok(pred.valid);
});

test("a dead player is not predicted and restarts from the server's position", () => {
  const pred = new Prediction(makeStep(CONFIG));
  const step = new Mover(CONFIG).stepLength;
  pred.reconcile(10, [5000, 5000], 0, true);
  pred.sentInput(1, 1);
  pred.tick(1, 1, [100, 0, 0, 0], true);
  assert.deepEqual(pred.state, [5000 + step, 5000]);
  pred.reconcile(12, [7000, 3000], 0, false);
  pred.tick(2, 1, [100, 0, 0, 0], false);
  assert.deepEqual([...pred.state, pred.valid], [7000, 3000, false]);
  pred.reconcile(14, [800, 800], 1, true);
  assert.ok(pred.valid);
});

test("the predictor's step clamps the move as the engine does before moving", () => {
  const step = makeStep(CONFIG);
  const mover = new Mover(CONFIG);
  assert.deepEqual(step([5000, 5000], [300, 300, 0, 1]), mover.move(5000, 5000, 70, 70));
  assert.deepEqual(step([5000, 5000], [0, 0, 1234, 1]), [5000, 5000]);
});
