// Bundles the browser client from static/src with the npm packages it imports.
// Output: static/build/client.js (served by the lobby and the game node).
import { build } from "esbuild";

await build({
  entryPoints: ["static/src/client.js"],
  bundle: true,
  format: "iife",
  globalName: "Arena",
  target: ["es2019"],
  outfile: "static/build/client.js",
  sourcemap: true,
  logLevel: "warning",
});
