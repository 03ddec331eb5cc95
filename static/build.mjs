// Bundles the browser client: the shell from static/src with the npm packages it imports,
// and every game's browser module found as games/<name>/browser.js.
// Output (served by the lobby and the game node):
//   static/build/client.js          the shell, a script defining the global `Arena`
//   static/build/games/<name>.js    one ES module per game, imported by the shell by name
//   static/build/replay.js          the replay player, a script defining `ArenaReplay`
//   node static/build.mjs            one build (what `make` runs)
//   node static/build.mjs --watch    rebuild on change, for development (restart for a new game)
import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, context } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const GAME_NAME = /^[a-z][a-z0-9_-]{0,15}$/; // as games.js and the engine's define()

/** [{name, entry}] for every games/<name>/browser.js under `root`, sorted by name. */
export function findGames(root = ROOT) {
  const dir = path.join(root, "games");
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const entry = path.join(dir, name, "browser.js");
    if (!existsSync(entry)) continue;
    if (!GAME_NAME.test(name)) throw new Error(`games/${name}: not a valid game name (${GAME_NAME})`);
    out.push({ name, entry });
  }
  return out;
}

/** The two esbuild configurations: the shell (iife) and the games (ES modules). */
export function buildOptions({ root = ROOT, outdir = path.join(root, "static", "build"),
  games = findGames(root) } = {}) {
  const common = {
    bundle: true,
    target: ["es2020"], // dynamic import() of the game modules
    sourcemap: true,
    minify: true,
    logLevel: "warning",
    // sockjs-client is written for browserify: it reads `global` and `process.env.NODE_ENV`
    // (which also turns its `debug` logging off in the bundle).
    define: { global: "globalThis", "process.env.NODE_ENV": '"production"' },
  };
  const shell = {
    ...common,
    entryPoints: [path.join(root, "static", "src", "client.js")],
    format: "iife",
    globalName: "Arena",
    outfile: path.join(outdir, "client.js"),
    define: { ...common.define, __ARENA_GAMES__: JSON.stringify(games.map((g) => g.name)) },
  };
  const modules = {
    ...common,
    entryPoints: Object.fromEntries(games.map((g) => [g.name, g.entry])),
    format: "esm",
    outdir: path.join(outdir, "games"),
  };
  const replay = { ...shell, entryPoints: [path.join(root, "static", "src", "replay.js")],
    globalName: "ArenaReplay", outfile: path.join(outdir, "replay.js") };
  return games.length ? [shell, modules, replay] : [shell, replay];
}

async function main() {
  const outdir = path.join(ROOT, "static", "build");
  // The game node serves sockjs-client's own bundle to SockJS's iframe transports.
  mkdirSync(outdir, { recursive: true });
  copyFileSync(path.join(ROOT, "node_modules/sockjs-client/dist/sockjs.min.js"),
    path.join(outdir, "sockjs.min.js"));
  const all = buildOptions({ outdir });
  if (process.argv.includes("--watch")) {
    for (const o of all) await (await context({ ...o, logLevel: "info" })).watch();
  } else {
    await Promise.all(all.map((o) => build(o)));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
