// Bundles the browser client from static/src with the npm packages it imports.
// Output: static/build/client.js (served by the lobby and the game node), global `Arena`.
//   node static/build.mjs            one build (what `make` runs)
//   node static/build.mjs --watch    rebuild on change, for development
import { copyFileSync, mkdirSync } from "node:fs";
import { build, context } from "esbuild";

const options = {
  entryPoints: ["static/src/client.js"],
  bundle: true,
  format: "iife",
  globalName: "Arena",
  target: ["es2019"],
  outfile: "static/build/client.js",
  sourcemap: true,
  minify: true,
  logLevel: "warning",
  // sockjs-client is written for browserify: it reads `global` and `process.env.NODE_ENV`
  // (which also turns its `debug` logging off in the bundle).
  define: { global: "globalThis", "process.env.NODE_ENV": '"production"' },
};

// The game node serves sockjs-client's own bundle to SockJS's iframe transports.
mkdirSync("static/build", { recursive: true });
copyFileSync("node_modules/sockjs-client/dist/sockjs.min.js", "static/build/sockjs.min.js");

if (process.argv.includes("--watch")) {
  const ctx = await context({ ...options, logLevel: "info" });
  await ctx.watch();
} else {
  await build(options);
}
