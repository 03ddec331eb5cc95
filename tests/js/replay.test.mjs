// The replay player (static/src/frames.js, playback.js, viewer.js) on real frames files:
// for every registered game, a messy match (joins, leaves, reconnects, inputs) is recorded
// as a node records it and turned into its frames file by engine.frames.build_frames
// (tests/js/pyreplay.py); the player reads it, seeks to every patch in any order and gets
// the game's own state there (from the original match), plays it with the game's built
// browser module on a recording canvas following each player, and ends on the match's
// results. Damaged files give FramesError only.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { deflateSync } from "node:zlib";
import { build } from "esbuild";
import { Encoder } from "@msgpack/msgpack";
import { buildOptions, findGames } from "../../static/build.mjs";
import { PYTHON, ROOT, entityMap, recordingContext } from "./bridge.mjs";

globalThis.window = { addEventListener() {}, removeEventListener() {}, devicePixelRatio: 1, innerHeight: 800 };
globalThis.document = { createElement: () => ({ style: {} }), body: {}, cookie: "" };
globalThis.requestAnimationFrame = () => 0;

const { FramesError, Timeline, readFrames } = await import("../../static/src/frames.js");
const { Playback, SPEEDS, parseShare, shareLink, clockText } = await import("../../static/src/playback.js");
const { ReplaySession } = await import("../../static/src/viewer.js");
const { loadGame } = await import("../../static/src/games.js");

const GAMES = findGames().map((g) => g.name);

function pyReplay(request) {
  const out = execFileSync(PYTHON, [path.join(ROOT, "tests/js/pyreplay.py")], {
    cwd: ROOT, input: JSON.stringify(request), env: { ...process.env, PYTHONPATH: ROOT },
    timeout: 60000, maxBuffer: 1 << 28,
  });
  return JSON.parse(out.toString());
}

let outdir, loader;
const real = {};
before(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), "arena-replay-build-"));
  const [, modules] = buildOptions({ outdir });
  await build({ ...modules, sourcemap: false, logLevel: "error" });
  loader = (name) => loadGame(name, { games: GAMES, base: pathToFileURL(outdir + path.sep).href });
  for (const name of GAMES) {
    const r = pyReplay({ op: "frames", game: name, seed: 3, seconds: 20 });
    r.bytes = Uint8Array.from(Buffer.from(r.frames, "base64"));
    real[name] = r;
  }
});
after(() => rmSync(outdir, { recursive: true, force: true }));

const canvasOf = (ctx) => ({ clientWidth: 1280, clientHeight: 800, width: 1280, height: 800,
  getContext: () => ctx });

/** A results row `[player_id, user_id, name, score, placement, bot, *stats]` as read. */
const rowOf = (timeline, r) => timeline.schema.readResult(r);

test("the player's sources name no game", () => {
  for (const f of ["frames.js", "playback.js", "viewer.js", "replay.js"]) {
    const text = readFileSync(path.join(ROOT, "static", "src", f), "utf8");
    for (const name of GAMES) {
      assert.ok(!new RegExp(`["'\`/]${name}["'\`/.]`).test(text), `static/src/${f} names the game ${name}`);
    }
  }
});

for (const name of GAMES) {
  test(`${name}: a frames file from build_frames seeks to the game's own state at every patch, in any order`, async () => {
    const r = real[name];
    const tl = await readFrames(r.bytes);
    assert.equal(tl.game, name);
    assert.deepEqual(tl.patches.map((p) => p.tick), r.ticks);
    assert.ok(tl.patches.filter((p) => p.msg.type === 11).length >= 2, "several keyframes");
    const truth = (tick) => entityMap(r.states[String(tick)]);
    // forward, as playing does
    for (const tick of r.ticks) assert.deepEqual(tl.stateAt(tl.indexAt(tick)).entities, truth(tick), `tick ${tick}`);
    // random jumps, back and forth, at and between patch ticks
    let seed = 7;
    const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let k = 0; k < 200; k++) {
      const i = rand(r.ticks.length);
      const t = r.ticks[i] + (rand(2) ? 0.5 : 0);
      const s = tl.stateAt(tl.indexAt(t));
      assert.equal(s.tick, r.ticks[i]);
      assert.deepEqual(s.entities, truth(r.ticks[i]), `jump to ${t}`);
    }
    assert.equal(tl.indexAt(-5), 0);
    assert.equal(tl.indexAt(1e9), r.ticks.length - 1);
    // a seek applies at most the deltas of one keyframe interval
    const every = tl.patches.findIndex((p, i) => i > 0 && p.msg.type === 11);
    tl.cache.clear();
    const applied = tl.stats.applied;
    tl.stateAt(every - 1);
    assert.equal(tl.stats.applied - applied, every - 1);
    // the end: the match's results, as its match_end said
    assert.equal(tl.reason, r.end_reason);
    assert.deepEqual(tl.results, r.results.map((row) => rowOf(tl, row)));
    const end = tl.scoreboardAt(tl.last);
    assert.ok(end.final);
    assert.deepEqual(end.rows, tl.results);
    // the scoreboard of a moment is the last one written at or before it
    for (const s of tl.scoreboard) {
      assert.deepEqual(tl.scoreboardAt(s.tick).rows, s.rows);
    }
    assert.equal(tl.scoreboardAt(tl.first - 1).rows.length, 0);
    // every player who joined can be followed, named as they joined
    for (const [pid, pname] of Object.entries(r.names)) {
      const p = tl.players.find((q) => q.id === Number(pid));
      assert.ok(p, `player ${pid} listed`);
      assert.equal(p.name, pname);
    }
  });

  test(`${name}: the game's own module draws the replay, following each player, to the end`, async () => {
    const r = real[name];
    const tl = await readFrames(r.bytes);
    const ctx = recordingContext();
    const session = new ReplaySession(canvasOf(ctx), tl, { loader });
    assert.equal(session.frame(0), null, "a loading screen before the module");
    await session.load();
    assert.ok(session.game && typeof session.game.draw === "function");
    // spectating: the whole field, nobody own
    session.seek(tl.first);
    let view = session.lastView;
    assert.equal(view.own, null);
    assert.equal(view.playerId, 0);
    assert.ok(ctx.calls.length > 0, "the module drew");
    // follow every player at a moment where they are on the field
    for (const p of tl.players) {
      const i = r.ticks.findIndex((t) => r.states[String(t)][String(p.id)] !== undefined);
      if (i < 0) continue;
      session.follow(p.id);
      session.seek(r.ticks[i] + 0.5);
      view = session.lastView;
      assert.equal(view.playerId, p.id);
      assert.ok(view.own && view.own.own && view.own.id === p.id, `following ${p.id}`);
      assert.equal(session.debugState().follow, p.id);
    }
    session.follow(99999); // nobody by that id: the whole field
    assert.equal(session.playerId, 0);
    // play through at 8x, a frame every 16 ms of a fake clock, with the events as they come
    session.follow(tl.players[0].id);
    const seen = [];
    const game = session.game;
    const event = game.event;
    game.event = (ev, v) => { seen.push(ev.type); if (event) event(ev, v); };
    const pb = session.playback;
    pb.seek(tl.first, 0);
    pb.setSpeed(8, 0);
    pb.play(0);
    session.playedTo = null;
    let at = 0, frames = 0;
    while (pb.playing && frames < 100000) {
      at += 16;
      view = session.frame(at);
      frames++;
      assert.ok(view.tick >= tl.first && view.tick <= tl.last);
      assert.ok(Number.isFinite(view.clock) && view.clock >= 0);
    }
    assert.ok(!pb.playing, "the clock stops at the end");
    const expect = Math.ceil(((tl.last - tl.first) * 1000) / (tl.simHz * 8 * 16));
    assert.ok(Math.abs(frames - expect) <= 2, `8x: ${frames} frames for ${expect}`);
    assert.equal(view.phase, "ended");
    assert.equal(view.tick, tl.last);
    assert.ok(seen.includes("joined"), "the room's events reach the module");
    const st = session.debugState();
    assert.equal(st.phase, "ended");
    assert.ok(st.final);
    assert.deepEqual(st.scoreboard, tl.results);
    assert.equal(st.game, name);
    // play again from the start
    session.playback.play(at);
    assert.equal(session.playback.tick(at), tl.first);
  });
}

test("seeking costs at most one keyframe interval of deltas (figure printed)", async () => {
  const name = GAMES.includes("arena") ? "arena" : GAMES[0];
  const tl = await readFrames(real[name].bytes);
  const session = new ReplaySession(canvasOf(recordingContext()), tl, { loader });
  await session.load();
  // the worst case: the patch just before a keyframe, from an empty cache
  const keys = tl.patches.map((p, i) => (p.msg.type === 11 ? i : -1)).filter((i) => i > 0);
  let worst = 0;
  for (const k of keys) {
    tl.cache.clear();
    const t0 = performance.now();
    session.seek(tl.patches[k - 1].tick + 0.5);
    worst = Math.max(worst, performance.now() - t0);
  }
  console.log(`# ${name}: worst seek (state from its keyframe + one drawn frame) ${worst.toFixed(2)} ms,`
    + ` ${tl.patches.length} patches, a keyframe every ${keys[0]}`);
  assert.ok(session.stats.seeks === keys.length && session.stats.maxSeekMs > 0);
});

test("the playback clock: speeds, pause, the end, seeking out of range", () => {
  const pb = new Playback(2, 602, 30);
  assert.equal(pb.tick(0), 2);
  pb.play(1000);
  assert.equal(pb.tick(2000), 32);
  pb.setSpeed(0.25, 2000);
  assert.equal(pb.tick(3000), 32 + 7.5);
  pb.setSpeed(5, 3000); // not offered: the nearest speed
  assert.equal(pb.speed, 4);
  pb.pause(4000);
  assert.equal(pb.tick(9000), 39.5 + 120);
  assert.deepEqual(SPEEDS, [0.25, 0.5, 1, 2, 4, 8]);
  pb.seek(-50, 9000);
  assert.equal(pb.tick(9000), 2);
  pb.seek(1e9, 9000);
  assert.equal(pb.tick(9000), 602);
  assert.ok(pb.ended(9000));
  pb.seek(Number.NaN, 9000);
  assert.equal(pb.tick(9000), 2);
  pb.seek(600, 0);
  pb.setSpeed(8, 0);
  pb.play(0);
  assert.equal(pb.tick(100000), 602, "stops at the last tick");
  assert.equal(clockText(95 * 30, 30), "1:35");
});

test("the share link: ?t= and #t=, and the followed player", () => {
  assert.deepEqual(parseShare("http://h/matches/m1/replay/?t=1200"), { tick: 1200, player: null });
  assert.deepEqual(parseShare("http://h/matches/m1/replay/#t=30&p=2"), { tick: 30, player: 2 });
  assert.deepEqual(parseShare("http://h/matches/m1/replay/?t=-1&p=x"), { tick: null, player: null });
  assert.deepEqual(parseShare("not a url"), { tick: null, player: null });
  const url = shareLink("http://h/matches/m1/replay/?t=5#t=9", 1234.6, 3);
  assert.equal(url, "http://h/matches/m1/replay/?t=1235&p=3");
  assert.deepEqual(parseShare(url), { tick: 1235, player: 3 });
  assert.equal(shareLink("http://h/r/", 10), "http://h/r/?t=10");
});

test("damaged, foreign and random bytes give FramesError only", async () => {
  const good = real[GAMES[0]].bytes;
  const enc = new Encoder();
  const raw = new Uint8Array((await import("node:zlib")).inflateSync(good));
  const doc = (await import("@msgpack/msgpack")).decode(raw);
  const variants = {
    empty: new Uint8Array(0),
    "cut short": good.slice(0, good.length >> 1),
    "random zlib": deflateSync(Buffer.from("hello frames")),
    "a replay file's format": deflateSync(enc.encode({ format: "replay", version: 1 })),
    "another version": enc.encode({ ...doc, version: 2 }),
    "no frames": enc.encode({ ...doc, frames: [], ticks: [] }),
    "ticks do not match": enc.encode({ ...doc, ticks: doc.ticks.map((t) => t + 1) }),
    "a delta first": enc.encode({ ...doc, frames: doc.frames.slice(1), ticks: doc.ticks.slice(1), keyframes: [] }),
    "a delta without its base": enc.encode({ ...doc, frames: [doc.frames[0], ...doc.frames.slice(2)], ticks: [doc.ticks[0], ...doc.ticks.slice(2)] }),
    "garbage frame": enc.encode({ ...doc, frames: [doc.frames[0], new Uint8Array([0xc1, 1, 2])], ticks: doc.ticks.slice(0, 2) }),
    "no schema": enc.encode({ ...doc, config: { ...doc.config, schema: null } }),
  };
  let seed = 11;
  for (let k = 0; k < 30; k++) {
    const b = new Uint8Array(1 + (k * 37) % 300);
    for (let i = 0; i < b.length; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; b[i] = seed >> 16; }
    variants[`random ${k}`] = b;
  }
  for (const [what, bytes] of Object.entries(variants)) {
    await assert.rejects(readFrames(bytes), (e) => e instanceof FramesError, what);
  }
  // not zlib-wrapped (a proxy inflated it): read as is
  const tl = await readFrames(raw);
  assert.ok(tl instanceof Timeline && tl.patches.length === real[GAMES[0]].ticks.length);
});
