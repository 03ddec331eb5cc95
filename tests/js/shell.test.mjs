// The client shell (static/src/match.js) with every registered game's browser module, as
// static/build.mjs bundles them, on a recording canvas in Node: the module is found by the
// name in the welcome, draws real states of a real match (from the Python game, via
// pygames.py), maps controls to inputs of the schema's arity and ranges, the own player's
// ack is read from its kind's `ack` field, and the end screen shows the game's result
// columns. A game this client does not have, or whose module does not load, is said on
// screen. Also: the build finds every games/*/browser.js and names no game in the shell.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { buildOptions, findGames } from "../../static/build.mjs";
import * as c from "../../static/src/codec.js";
import { ROOT, entityMap, pyGames, recordingContext } from "./bridge.mjs";

// --- a minimal DOM for the shell (no browser in these tests) --------------------------------

function element(tag = "div") {
  const el = {
    tag, style: {}, children: [], textContent: "", className: "", href: "",
    append(...k) { this.children.push(...k); },
    replaceChildren(...k) { this.children = k; },
    remove() { this.removed = true; },
    setAttribute(k, v) { this[k] = v; },
    addEventListener() {}, removeEventListener() {}, focus() {},
    getBoundingClientRect: () => ({ left: 0, top: 0, width: 1280, height: 800 }),
    insertRow() {
      const row = element("tr");
      row.insertCell = () => { const cell = element("td"); row.children.push(cell); return cell; };
      this.children.push(row);
      return row;
    },
  };
  return el;
}
const textOf = (el) => [el.textContent, ...el.children.map(textOf)].join(" ");
const rowsOf = (table) => table.children.map((r) => r.children.map((cell) => cell.textContent));

globalThis.window = { addEventListener() {}, removeEventListener() {}, devicePixelRatio: 1, innerHeight: 800 };
globalThis.document = { createElement: element, body: element("body"), cookie: "" };
globalThis.requestAnimationFrame = () => 0;

const { Match } = await import("../../static/src/match.js");
const { loadGame } = await import("../../static/src/games.js");

let outdir, names, loader, registered;
before(async () => {
  outdir = mkdtempSync(path.join(tmpdir(), "arena-build-"));
  const options = buildOptions({ outdir });
  await Promise.all(options.map((o) => build({ ...o, sourcemap: false, logLevel: "error" })));
  names = findGames().map((g) => g.name);
  loader = (name) => loadGame(name, { games: names, base: pathToFileURL(outdir + path.sep).href });
  registered = pyGames({ op: "games" });
});
after(() => rmSync(outdir, { recursive: true, force: true }));

/** A Match on a recording canvas, with a fake link that records what would be sent. */
function makeMatch(opts = {}) {
  const ctx = recordingContext();
  const canvas = { ...element("canvas"), clientWidth: 1280, clientHeight: 800, width: 1280,
    height: 800, getContext: () => ctx };
  const match = new Match(canvas, { loader, ...opts });
  const sent = [];
  match.link = {
    welcomed: true, status: { state: "open" }, transport: "websocket", rtt: 12, reconnects: 0,
    history: [], closed: null,
    send(bytes) { sent.push(c.decode(bytes)); return true; },
    close(code, reason) { this.closed = { code, reason }; this.status = { state: "closed" }; },
  };
  return { match, ctx, canvas, sent };
}

const waitFor = async (fn, what, ms = 5000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (fn()) return; await new Promise((r) => setTimeout(r, 5)); }
  throw new Error(`timed out waiting for ${what}`);
};

test("the build bundles every games/*/browser.js, and every registered game has one", () => {
  assert.ok(names.length >= 1);
  assert.deepEqual([...names].sort(), Object.keys(registered).sort(),
    "the folder scan and the registry know the same games");
  for (const [name, g] of Object.entries(registered)) {
    assert.equal(path.resolve(g.browser), path.join(ROOT, "games", name, "browser.js"));
    assert.ok(existsSync(path.join(outdir, "games", `${name}.js`)), `${name}.js built`);
  }
  const shell = readFileSync(path.join(outdir, "client.js"), "utf8");
  assert.ok(shell.includes(JSON.stringify(names)), "the game list is compiled into the shell");
});

test("the shell's sources name no game", () => {
  // a game named in code is a quoted name or a path to it; the page's canvas id "arena"
  // (the project's name, like the global `Arena`) is not a game
  const src = path.join(ROOT, "static", "src");
  for (const f of ["client.js", "codec.js", "games.js", "input.js", "kit.js", "match.js", "net.js",
    "predict.js", "render.js", "schema.js", "snapshots.js"]) {
    const text = readFileSync(path.join(src, f), "utf8")
      .replace(/getElementById\("arena"\)|<canvas id=\\?"arena\\?">/g, "");
    for (const name of names) {
      const named = new RegExp(`["'\`/]${name}["'\`/.]`);
      assert.ok(!named.test(text), `static/src/${f} names the game ${name}`);
    }
  }
});

for (const name of findGames().map((g) => g.name)) {
  test(`${name}: the shell loads its module, draws a real match, sends inputs, reads its ack, shows its results`, async () => {
    const real = pyGames({ op: "match", game: name, ticks: 40 });
    const { config, player } = real;
    const { match, ctx, sent } = makeMatch();
    try {
      match.onMessage({ type: c.WELCOME, playerId: player, matchId: "m1", resumeToken: "r", tick: 1, config });
      assert.equal(match.phase, "loading");
      await waitFor(() => match.phase === "playing", "the module to load");
      assert.equal(match.gameName, name);
      // one clock for the local ticks and the frames: the tick's time after the welcome
      const at = (tick) => match.tickStart + (tick * 1000) / config.sim_hz;
      let now = at(0);
      const patches = real.patches.filter((p, i) => i % 2 === 1);
      for (const p of patches) {
        match.onMessage({ type: c.KEYFRAME, tick: p.tick, clock: p.clock, entities: entityMap(p.entities), events: p.events });
        now = at(p.tick);
        ctx.calls.length = 0;
        match.frame(now);
        assert.ok(ctx.calls.length > 10, "the game drew its frame");
      }
      const st = match.debugState();
      assert.equal(st.phase, "playing");
      assert.ok(st.players.some((p) => p.id === player), "the own player is in the state");
      // controls -> inputs: the schema's arity, within its ranges
      match.controls.held.right = true;
      match.controls.keys.add("KeyD");
      match.controls.keys.add("ArrowRight");
      match.controls.pointer = { x: 700, y: 300 };
      match.update(at(real.patches.length + 10));
      const inputs = sent.filter((m) => m.type === c.INPUT);
      assert.ok(inputs.length >= 1, "an input went out");
      const spec = config.schema.inputs;
      for (const m of inputs) {
        assert.equal(m.values.length, spec.length);
        m.values.forEach((v, i) => assert.ok(v >= spec[i].lo && v <= spec[i].hi, `${spec[i].name}=${v}`));
      }
      assert.ok(inputs.at(-1).values.some((v) => v !== 0), "holding a key changes the input");
      // the own ack, from the own kind's `ack` field
      const last = patches.at(-1);
      const ents = entityMap(last.entities);
      const own = ents.get(player).slice();
      const kind = config.schema.entities.find((k) => k.kind === own[0]);
      own[1 + kind.fields.indexOf(kind.ack)] = inputs.at(-1).seq;
      ents.set(player, own);
      match.onMessage({ type: c.KEYFRAME, tick: last.tick + 2, clock: last.clock, entities: ents, events: [] });
      assert.equal(match.debugState().ack, inputs.at(-1).seq);
      // the end: the common columns and the game's own, labelled by the schema
      const cols = config.schema.results;
      const row = (pid, place) => [pid, pid === player ? 1 : 0, `p${pid}`, 10 - place, place, pid !== player,
        ...cols.map((col, i) => i + place)];
      const others = [...ents.keys()].filter((id) => id !== player && id < 1000).slice(0, 1);
      const results = [row(player, 1), ...others.map((id) => row(id, 2))];
      match.onMessage({ type: c.EVENT, tick: last.tick + 3, events: [[c.EV_MATCH_END, "score", results]] });
      assert.equal(match.phase, "ended");
      assert.equal(match.link.closed.code, 1000);
      const table = match.overlay.children.find((k) => k.className === "arena-results");
      const [head, first] = rowsOf(table);
      assert.deepEqual(head, ["#", "Player", "Score", ...cols.map((col) => col.label)]);
      assert.deepEqual(first, ["1", "p" + player, "9", ...cols.map((col, i) => String(i + 1))]);
      assert.ok(textOf(match.overlay).includes("Victory!"));
      assert.deepEqual(match.debugState().results[0].stats,
        Object.fromEntries(cols.map((col, i) => [col.name, i + 1])));
      match.frame(now + 50); // the ended match still draws its last state
    } finally {
      match.destroy();
    }
  });
}

for (const name of findGames().map((g) => g.name)) {
  test(`${name}: a spectator picks a player to follow; the module is made for that player's view`, async () => {
    const real = pyGames({ op: "match", game: name, ticks: 10 });
    const kits = [];
    const recording = async (n) => { const f = await loader(n); return (kit) => { kits.push(kit.playerId); return f(kit); }; };
    const { match, ctx } = makeMatch({ loader: recording });
    try {
      match.onMessage({ type: c.WELCOME, playerId: 0, matchId: "m1", resumeToken: "r", tick: 1, config: real.config });
      await waitFor(() => match.phase === "playing", "the module to load");
      const at = (tick) => match.tickStart + (tick * 1000) / real.config.sim_hz;
      const last = real.patches.at(-1);
      match.onMessage({ type: c.KEYFRAME, tick: last.tick, clock: last.clock, entities: entityMap(last.entities), events: [] });
      const select = document.body.children.find((k) => k.className === "arena-follow");
      assert.ok(select, "a spectator gets a player picker");
      const options = select.children.map((o) => [o.value, o.textContent]);
      assert.deepEqual(options[0], ["0", "Whole field"]);
      assert.ok(options.some(([v, t]) => v === String(real.player) && t === "Follow ann"), JSON.stringify(options));
      assert.ok(options.length >= 3, "every named player is listed");
      const bot = Number(options.find(([, t]) => t.startsWith("Follow bot"))[0]);
      assert.deepEqual(kits, [0]);
      select.value = String(bot);
      select.onchange();
      assert.equal(match.debugState().following, bot);
      assert.equal(match.playerId, 0, "still a spectator: no inputs");
      assert.deepEqual(kits, [0, bot], "the module made anew for the followed player");
      ctx.calls.length = 0;
      match.frame(at(last.tick));
      assert.equal(match.lastView.playerId, bot);
      assert.ok(match.lastView.own && match.lastView.own.own, "the followed entity is the view's own");
      match.follow(0);
      assert.equal(match.debugState().following, 0);
      match.frame(at(last.tick) + 10);
      assert.equal(match.lastView.own, null, "the whole field again");
      match.follow(999);
      assert.equal(match.debugState().following, 0, "an unknown player is not followed");
    } finally {
      match.destroy();
      document.body.children.length = 0;
    }
  });
}

test("a game this client does not have is said on screen, and the link is closed", async () => {
  const config = { ...Object.values(registered)[0].config, game: "nosuchgame" };
  const { match } = makeMatch();
  try {
    match.onMessage({ type: c.WELCOME, playerId: 1, matchId: "m1", resumeToken: "r", tick: 1, config });
    await waitFor(() => match.phase === "error", "the error");
    assert.match(match.error.reason, /Unknown game "nosuchgame"/);
    assert.ok(textOf(match.overlay).includes('Unknown game "nosuchgame"'));
    assert.equal(match.link.closed.code, 1000);
    assert.ok(match.message.title.length > 0, "the canvas behind the dialog says it too");
  } finally {
    match.destroy();
  }
});

test("a module that does not load, or is not a browser module, is said on screen", async () => {
  const config = Object.values(registered)[0].config;
  const cases = [
    [() => loadGame(config.game, { games: [config.game], base: "file:///nonexistent/", importer: (u) => import(u) }),
      /could not be loaded/],
    [() => loadGame(config.game, { games: [config.game], base: "file:///x/",
      importer: () => import("../../static/src/codec.js") }), /has no browser module/],
    [async () => () => ({ draw() {} }), /lacks input/],
  ];
  for (const [factoryLoader, re] of cases) {
    const { match } = makeMatch({ loader: factoryLoader });
    try {
      match.onMessage({ type: c.WELCOME, playerId: 1, matchId: "m1", resumeToken: "r", tick: 1, config });
      await waitFor(() => match.phase === "error", "the error");
      assert.match(match.error.reason, re);
    } finally {
      match.destroy();
    }
  }
});

test("game names are checked before any URL is built from them", async () => {
  let asked = 0;
  const importer = () => { asked++; return {}; };
  for (const bad of ["../x", "Arena", "a/b", "", "x".repeat(17), null]) {
    await assert.rejects(loadGame(bad, { games: [bad], base: "file:///x/", importer }), /Unknown game/);
  }
  assert.equal(asked, 0);
});

test("a game dropped in beside the others plays through the shell: the minimal module of docs/client.md", async () => {
  const doc = readFileSync(path.join(ROOT, "docs", "client.md"), "utf8");
  const code = doc.split("A minimal module")[1].split("```js\n")[1].split("```")[0];
  const root = mkdtempSync(path.join(tmpdir(), "arena-mini-"));
  try {
    mkdirSync(path.join(root, "games", "mini"), { recursive: true });
    writeFileSync(path.join(root, "games", "mini", "browser.js"), code);
    const games = findGames(root);
    assert.deepEqual(games.map((g) => g.name), ["mini"]);
    const [, modules] = buildOptions({ outdir: path.join(root, "out"), games });
    await build({ ...modules, sourcemap: false, logLevel: "error" });
    const base = pathToFileURL(path.join(root, "out") + path.sep).href;
    const { match, ctx, sent } = makeMatch({ loader: (name) => loadGame(name, { games: ["mini"], base }) });
    try {
      const schema = {
        entities: [{ kind: 1, name: "dot", fields: ["x", "y", "ack"], interpolate: ["x", "y"], ack: "ack" }],
        events: [], inputs: [{ name: "mx", lo: -100, hi: 100, wrap: false }, { name: "my", lo: -100, hi: 100, wrap: false }],
        results: [{ name: "dots", label: "Dots" }],
      };
      const config = { game: "mini", sim_hz: 20, patch_hz: 10, width: 100, height: 100, radius: 3, schema };
      match.onMessage({ type: c.WELCOME, playerId: 1, matchId: "m", resumeToken: "r", tick: 1, config });
      await waitFor(() => match.phase === "playing", "the module");
      match.onMessage({ type: c.KEYFRAME, tick: 2, clock: 100, entities: new Map([[1, [1, 10, 10, 0]], [2, [1, 50, 50, 0]]]), events: [] });
      match.controls.held.left = true;
      match.update(match.tickStart + 200);
      ctx.calls.length = 0;
      match.frame(match.tickStart + 200);
      const dots = ctx.calls.filter((k) => k[0] === "arc" && k[3] === config.radius);
      assert.deepEqual(dots.map((k) => [k[1], k[2]]), [[10, 10], [50, 50]], "one dot per entity");
      assert.deepEqual(sent.filter((m) => m.type === c.INPUT).at(-1).values, [-100, 0]);
    } finally {
      match.destroy();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
