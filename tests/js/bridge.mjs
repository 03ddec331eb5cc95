// Shared by the JS tests: the Python bridges (pygames.py) and a recording 2D canvas context.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PYTHON = existsSync(path.join(ROOT, ".venv/bin/python"))
  ? path.join(ROOT, ".venv/bin/python") : "python3";

/** One request to tests/js/pygames.py (the game registry as the node loads it). */
export function pyGames(request) {
  const out = execFileSync(PYTHON, [path.join(ROOT, "tests/js/pygames.py")], {
    cwd: ROOT, input: JSON.stringify(request), env: { ...process.env, PYTHONPATH: ROOT },
    timeout: 60000, maxBuffer: 1 << 26,
  });
  return JSON.parse(out.toString());
}

/** Entities from JSON (`{"id": fields}`) as the codec gives them (`Map<number, Array>`). */
export const entityMap = (obj) => new Map(Object.entries(obj).map(([k, v]) => [Number(k), v]));

/**
 * A 2D context that accepts every call and property a game may use, records the calls,
 * and fails on a non-finite coordinate (NaN positions are the usual drawing bug).
 */
export function recordingContext() {
  const calls = [];
  const gradient = { addColorStop() {} };
  const target = {
    calls,
    measureText: (t) => ({ width: String(t).length * 7 }),
    createLinearGradient: () => gradient,
    createRadialGradient: () => gradient,
    createPattern: () => ({}),
    getTransform: () => ({ a: 1, b: 0, c: 0, d: 1, e: 0, f: 0 }),
  };
  return new Proxy(target, {
    get(t, key) {
      if (key in t) return t[key];
      return (...args) => {
        for (const a of args) {
          if (typeof a === "number" && !Number.isFinite(a)) {
            throw new Error(`ctx.${String(key)}(${args.join(", ")}): a non-finite number`);
          }
        }
        calls.push([key, ...args]);
      };
    },
    set(t, key, value) { t[key] = value; return true; },
  });
}
