// Finding a game's browser module: `static/build.mjs` bundles every `games/<name>/browser.js`
// into `static/build/games/<name>.js` and writes the list of names into the shell (the
// `__ARENA_GAMES__` define); the shell imports the one `welcome.config.game` names, from
// `games/` next to its own script. The shell itself names no game.

/* global __ARENA_GAMES__ */
/** The games this client was built with (names, from the folder scan at build time). */
export const GAMES = Object.freeze(typeof __ARENA_GAMES__ !== "undefined" ? __ARENA_GAMES__.slice() : []);

/** The protocol's rule for game names (docs/protocol.md). */
export const GAME_NAME = /^[a-z][a-z0-9_-]{0,15}$/;

/** Where this script was loaded from: game modules sit in `games/` beside it. */
export const SCRIPT_BASE = typeof document !== "undefined" && document.currentScript
  ? document.currentScript.src : (typeof location !== "undefined" ? location.href : "");

export class GameLoadError extends Error {}

/** What every browser module must give (the rest is optional): docs/client.md. */
const REQUIRED = ["draw", "input"];

/**
 * The browser module of game `name`: its default export (a factory `create(kit)`).
 * Throws `GameLoadError` with a message for the player if this client does not have the
 * game, the module does not load, or it does not look like a browser module.
 */
export async function loadGame(name, { games = GAMES, base = SCRIPT_BASE,
  importer = (url) => import(url) } = {}) {
  if (typeof name !== "string" || !GAME_NAME.test(name) || !games.includes(name)) {
    const known = games.length ? games.join(", ") : "none";
    throw new GameLoadError(`Unknown game "${String(name).slice(0, 40)}": this client has ${known}`);
  }
  const url = new URL(`games/${name}.js`, base).href;
  let mod;
  try {
    mod = await importer(url);
  } catch (e) {
    throw new GameLoadError(`The game "${name}" could not be loaded (${(e && e.message) || e})`);
  }
  if (!mod || typeof mod.default !== "function") {
    throw new GameLoadError(`The game "${name}" has no browser module (no default export)`);
  }
  return mod.default;
}

/** Calls a module's factory and checks what it returned. */
export function createGame(factory, kit, name = "") {
  if (typeof factory !== "function") {
    throw new GameLoadError(`The game "${name}" has no browser module (no default export)`);
  }
  const game = factory(kit);
  const missing = REQUIRED.filter((k) => !game || typeof game[k] !== "function");
  if (missing.length) {
    throw new GameLoadError(`The game "${name}" browser module lacks ${missing.join(", ")}`);
  }
  return game;
}
