// The browser side of the wire protocol (docs/protocol.md), mirroring engine/codec.py.
//
// Every message is a msgpack array [type, field, ...]. Encoders produce msgpack integers
// only (no floats on the wire). `decode` takes untrusted bytes and throws nothing but
// `ProtocolError`. Entity maps come out as `Map<number, Array>` (msgpack int keys kept).
import { Encoder, Decoder } from "@msgpack/msgpack";

export const PROTOCOL_VERSION = 2;

// Message types.
export const JOIN = 1, RESUME = 2, INPUT = 3, PING = 4, LEAVE = 5;
export const WELCOME = 10, KEYFRAME = 11, DELTA = 12, EVENT = 13, ERROR = 14, PONG = 15;
export const MOVED = 16; // the match goes on on another node: resume there (then 4031)

// The room's own events (codes 1..15 are reserved for the room; a game's are 16..127).
export const EV_JOINED = 1, EV_LEFT = 2, EV_MATCH_END = 3;

// Close codes (docs/protocol.md, "Close codes and limits").
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  BAD_MESSAGE: 4001,
  TOO_LARGE: 4002,
  UNKNOWN_TYPE: 4003,
  INPUT_FLOOD: 4004,
  JOIN_TIMEOUT: 4005,
  PROTOCOL_VIOLATION: 4006,
  INVALID_TOKEN: 4010,
  TOKEN_EXPIRED: 4011,
  TOKEN_USED: 4012,
  WRONG_NODE: 4013,
  NODE_FULL: 4014,
  RESUME_FAILED: 4015,
  REPLACED: 4016,
  SLOW_CONSUMER: 4020,
  SHUTTING_DOWN: 4030,
  MOVED: 4031,
  MATCH_OVER: 4040,
  GAME_FAILED: 4018,
});

/** Close codes after which reconnecting with `resume` cannot help. */
export const FINAL_CLOSE_CODES = new Set([
  CLOSE.NORMAL, CLOSE.BAD_MESSAGE, CLOSE.TOO_LARGE, CLOSE.UNKNOWN_TYPE, CLOSE.INPUT_FLOOD,
  CLOSE.PROTOCOL_VIOLATION, CLOSE.INVALID_TOKEN, CLOSE.TOKEN_EXPIRED, CLOSE.TOKEN_USED,
  CLOSE.WRONG_NODE, CLOSE.NODE_FULL, CLOSE.RESUME_FAILED, CLOSE.REPLACED,
  CLOSE.SHUTTING_DOWN, CLOSE.MATCH_OVER, CLOSE.GAME_FAILED,
]);

/** Largest message (decoded msgpack bytes) the client accepts from a node. Node messages
 * carry the whole state, so this is far above the node's 1024-byte limit for clients. */
export const MAX_INCOMING_BYTES = 1 << 20;

export class ProtocolError extends Error {
  constructor(code, reason) {
    super(`${code} ${reason}`);
    this.code = code;
    this.reason = reason;
  }
}

const encoder = new Encoder();
const decoder = new Decoder({
  mapKeyConverter: (key) => {
    if (typeof key === "string" || typeof key === "number") return key;
    throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad map key");
  },
  maxStrLength: 4096,
  maxBinLength: 0,
  maxExtLength: 0,
});

// --- encoding (client to node) ------------------------------------------------------------

function int(v, name) {
  if (!Number.isInteger(v)) throw new TypeError(`${name} must be an integer, got ${v}`);
  return v;
}

export function encodeJoin(token) {
  return encoder.encode([JOIN, String(token)]);
}

export function encodeResume(token) {
  return encoder.encode([RESUME, String(token)]);
}

/** An input: `[3, seq, *values]`, the values in the order of the game's `schema.inputs`. */
export function encodeInput(seq, values) {
  const msg = [INPUT, int(seq, "seq")];
  for (let i = 0; i < values.length; i++) msg.push(int(values[i], `input value ${i}`));
  return encoder.encode(msg);
}

export function encodePing(t) {
  return encoder.encode([PING, int(t, "t") >>> 0]);
}

export function encodeLeave() {
  return encoder.encode([LEAVE]);
}

/** Encodes any message object as returned by `decode` (tests and dev tools). Entity maps
 * (`Map<number, Array>`) go out as msgpack maps with integer keys, like the Python codec's. */
export function encode(msg) {
  if (msg.type === INPUT) return encodeInput(msg.seq, msg.values);
  const f = FIELDS[msg.type];
  if (!f) throw new TypeError(`unknown message type ${msg.type}`);
  const parts = [header(0x90, 0xdc, f.length + 1), encoder.encode(msg.type)];
  for (const [name] of f) {
    const v = msg[name];
    if (v instanceof Map) {
      parts.push(header(0x80, 0xde, v.size));
      for (const [k, val] of v) parts.push(encoder.encode(k), encoder.encode(val));
    } else {
      parts.push(encoder.encode(v));
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// msgpack array/map header: fix form below 16 entries, else the 16-bit form.
function header(fix, wide, n) {
  if (n < 16) return new Uint8Array([fix + n]);
  if (n > 0xffff) throw new RangeError("too many entries");
  return new Uint8Array([wide, n >> 8, n & 0xff]);
}

// --- decoding (untrusted) ------------------------------------------------------------------

const isInt = (v) => Number.isInteger(v);
const isU16 = (v) => Number.isInteger(v) && v >= 0 && v < 65536;
const isU32 = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isStr = (v) => typeof v === "string";
const isArray = (v) => Array.isArray(v);
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v)
  && !(v instanceof Uint8Array);
const isScalar = (v) => typeof v === "string" || Number.isInteger(v);
const isEvents = (v) => Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length > 0
  && isInt(e[0]));
const isIds = (v) => Array.isArray(v) && v.every(isU16);

function toEntities(v, updated) {
  if (!isMap(v)) return null;
  const out = new Map();
  for (const key of Object.keys(v)) {
    const id = Number(key);
    const fields = v[key];
    if (!isU16(id) || !Array.isArray(fields) || !fields.every(isScalar)) return null;
    if (updated ? fields.length % 2 !== 0 : !(fields.length > 0 && isInt(fields[0]))) return null;
    out.set(id, fields);
  }
  return out;
}
const isEntities = (v) => toEntities(v, false) !== null;
const isUpdated = (v) => toEntities(v, true) !== null;

// Field names and checks per message type, in wire order.
const FIELDS = {
  [JOIN]: [["token", isStr]],
  [RESUME]: [["token", isStr]],
  [INPUT]: [["seq", isInt]], // then the values, flat: see decode and encodeInput
  [PING]: [["t", isU32]],
  [LEAVE]: [],
  [WELCOME]: [["playerId", isU16], ["matchId", isStr], ["resumeToken", isStr], ["tick", isU32],
    ["config", isMap]],
  [KEYFRAME]: [["tick", isU32], ["clock", isU32], ["entities", isEntities], ["events", isEvents]],
  [DELTA]: [["tick", isU32], ["base", isU32], ["clock", isU32], ["added", isEntities],
    ["removed", isIds], ["updated", isUpdated], ["events", isEvents]],
  [EVENT]: [["tick", isU32], ["events", isEvents]],
  [ERROR]: [["code", isU16], ["reason", isStr]],
  [PONG]: [["t", isU32], ["tick", isU32]],
  [MOVED]: [["nodeUrl", isStr], ["resumeToken", isStr]],
};
const ENTITY_FIELDS = new Set(["entities", "added", "updated"]);

/**
 * Decodes one message from msgpack bytes into `{type, ...fields}` with camelCase names
 * (`playerId`, `matchId`, `resumeToken`); entity maps become `Map<number, Array>`.
 * Throws `ProtocolError` (code 4001/4002/4003) and nothing else.
 */
export function decode(bytes, maxSize = MAX_INCOMING_BYTES) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (data.byteLength > maxSize) throw new ProtocolError(CLOSE.TOO_LARGE, "Message too large");
  let obj;
  try {
    obj = decoder.decode(data);
  } catch (e) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
  }
  if (!Array.isArray(obj) || obj.length === 0 || !isInt(obj[0])) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
  }
  const fields = FIELDS[obj[0]];
  if (!fields) throw new ProtocolError(CLOSE.UNKNOWN_TYPE, "Unknown message type");
  if (obj.length - 1 < fields.length) throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
  const msg = { type: obj[0] };
  if (obj[0] === INPUT) { // [3, seq, *values]: the values are the rest
    if (!obj.every(isInt)) throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
    return { type: INPUT, seq: obj[1], values: obj.slice(2) };
  }
  for (let i = 0; i < fields.length; i++) {
    const [name, check] = fields[i];
    const value = obj[i + 1];
    if (!check(value)) throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
    msg[name] = ENTITY_FIELDS.has(name) ? toEntities(value, name === "updated") : value;
  }
  return msg;
}

// --- base64, for SockJS's text framing -----------------------------------------------------

export function toBase64(bytes) {
  let s = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(s);
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function fromBase64(text) {
  if (typeof text !== "string" || !BASE64_RE.test(text)) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, "Bad message");
  }
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A text message is base64 msgpack; binary (ArrayBuffer or Uint8Array) is msgpack. */
export function decodeAny(data, maxSize = MAX_INCOMING_BYTES) {
  if (typeof data === "string") {
    if (data.length > Math.ceil(maxSize / 3) * 4 + 4) {
      throw new ProtocolError(CLOSE.TOO_LARGE, "Message too large");
    }
    return decode(fromBase64(data), maxSize);
  }
  return decode(data, maxSize);
}

// --- state ----------------------------------------------------------------------------------

/**
 * A new entity map: `entities` with a delta applied (docs/protocol.md, "Delta").
 * Throws `ProtocolError` if an update names an unknown entity or a bad field index.
 */
export function applyDelta(entities, added, removed, updated) {
  const out = new Map(entities);
  for (const id of removed) out.delete(id);
  for (const [id, fields] of added) out.set(id, fields.slice());
  for (const [id, changes] of updated) {
    const old = out.get(id);
    if (old === undefined) throw new ProtocolError(CLOSE.BAD_MESSAGE, "Delta does not apply");
    const fields = old.slice();
    for (let i = 0; i < changes.length; i += 2) {
      const index = changes[i];
      if (!Number.isInteger(index) || index <= 0 || index >= fields.length) {
        throw new ProtocolError(CLOSE.BAD_MESSAGE, "Delta does not apply");
      }
      fields[index] = changes[i + 1];
    }
    out.set(id, fields);
  }
  return out;
}

/** (added, removed, updated) turning `prev` into `cur`; the inverse of applyDelta (tests). */
export function makeDelta(prev, cur) {
  const added = new Map(), updated = new Map(), removed = [];
  for (const [id, fields] of cur) {
    const old = prev.get(id);
    if (old === undefined || old.length !== fields.length || old[0] !== fields[0]) {
      added.set(id, fields); // new, or another kind under the same id: send it whole
      continue;
    }
    const changes = [];
    for (let i = 0; i < fields.length; i++) if (fields[i] !== old[i]) changes.push(i, fields[i]);
    if (changes.length) updated.set(id, changes);
  }
  for (const id of prev.keys()) if (!cur.has(id)) removed.push(id);
  return { added, removed, updated };
}
