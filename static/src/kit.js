// The kit a game's browser module gets from the shell: the match's config and schema, and
// drawing and input helpers, so that a module needs no import of its own (docs/client.md).
import { aimOf } from "./input.js";
import { lerpAim } from "./snapshots.js";
import { Schema } from "./schema.js";
import { FONT, background, clip, drawMatchHud, fitWorld, playerColor, roundRect } from "./render.js";

/**
 * @param config `welcome.config` (the game's client_config plus the room's keys)
 * @param playerId the own player id (0 for a spectator)
 */
export function makeKit(config, playerId = 0) {
  const schema = config.schema instanceof Schema ? config.schema : new Schema(config.schema);
  return {
    config, schema, playerId,
    FONT, background, clip, drawMatchHud, fitWorld, playerColor, roundRect, aimOf, lerpAim,
  };
}
