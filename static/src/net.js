// The connection to a game node: binary raw websocket first, SockJS as the fallback,
// `join` then `resume` after drops, pings for the round-trip time.
//
// Transport choice (docs/client.md):
//   1. `ws(s)://node/play/websocket`, binary msgpack frames. If it errors before opening
//      or has not opened within `wsOpenTimeout` ms, it is abandoned for this page.
//   2. `sockjs-client` on `node/play` (base64 msgpack), which tries its own websocket,
//      then xhr-streaming, then xhr-polling.
// After a drop the connection comes back with `resume(resume_token)` on the same kind of
// transport, with backoff, until the node's reconnect window has passed.
// `moved(node_url, resume_token)` then close 4031 (a draining node handed the match to
// another node): the link resumes on that node at once, the seat and the match go on.
import SockJS from "sockjs-client";
import {
  CLOSE, FINAL_CLOSE_CODES, PONG, WELCOME, ERROR, EVENT, EV_MATCH_END, MOVED,
  decodeAny, encodeJoin, encodeLeave, encodePing, encodeResume, toBase64,
} from "./codec.js";

export const SOCKJS_TRANSPORTS = ["websocket", "xhr-streaming", "xhr-polling"];
/** Bytes of randomness in a SockJS session id (the id is their hex: 32 characters). A
 * session id is a bearer secret for that session: sockjs-client's default is ~40 bits. */
export const SESSION_ID_BYTES = 16;
const PING_EVERY = 2000; // ms
const SILENCE_LIMIT = 5000; // ms without any message from the node: the link is dead
const BACKOFF = [250, 500, 1000, 2000]; // ms between reconnect attempts, then the last again

/** The raw websocket URL for a node base URL (http -> ws, https -> wss). */
export function rawWebSocketUrl(nodeUrl) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const u = new URL(nodeUrl.replace(/\/+$/, "") + "/play/websocket", base);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/** A SockJS session id: 128 bits from the platform's CSPRNG, as 32 lowercase hex digits. */
export function sessionId() {
  const bytes = new Uint8Array(SESSION_ID_BYTES);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * One seat's link to a node.
 *
 * Callbacks: `onMessage(msg)` for every decoded node message, `onStatus(status)` whenever
 * `status` changes: {state: "connecting" | "open" | "reconnecting" | "closed", transport,
 * code, reason}. `state` "closed" is final.
 */
export class NodeLink {
  constructor({ nodeUrl, token, onMessage, onStatus, wsOpenTimeout = 3000,
    sockjsTransports = SOCKJS_TRANSPORTS, rawWebSocket = true }) {
    this.nodeUrl = nodeUrl.replace(/\/+$/, "");
    this.token = token;
    this.onMessage = onMessage || (() => {});
    this.onStatus = onStatus || (() => {});
    this.wsOpenTimeout = wsOpenTimeout;
    this.sockjsTransports = sockjsTransports;
    this.useRaw = rawWebSocket && typeof WebSocket === "function";
    this.rawWorked = false; // a raw websocket opened on this page at least once
    this.resumeToken = null;
    this.reconnectWindow = 20000; // ms, replaced by welcome.config.reconnect_window
    this.status = { state: "connecting", transport: "", code: 0, reason: "" };
    this.rtt = null; // ms, smoothed
    this.lastRtt = null;
    this.serverTick = 0; // from the last pong
    this.reconnects = 0;
    this.moves = 0; // `moved` followed: the match went on on another node
    this.movedTo = null; // {nodeUrl, resumeToken} of a `moved` not yet followed
    this.bytesIn = 0;
    this.messagesIn = 0;
    this.sock = null; // {send(bytes), close(code, reason), kind}
    this.welcomed = false; // a welcome arrived on the current socket
    this.ended = false; // match_end seen: a close after it is normal
    this.closed = false;
    this.droppedAt = 0;
    this.attempt = 0;
    this.lastHeard = 0;
    this.lastPing = 0;
    this.history = []; // recent status changes, for tests and bug reports
    this.pingTimer = null;
    this.retryTimer = null;
  }

  start() {
    this.open();
    this.pingTimer = setInterval(() => this.tickTimers(), 500);
  }

  /** Send one encoded message; false unless seated on an open socket (then it is dropped). */
  send(bytes) {
    if (!this.sock || !this.sock.ready || !this.welcomed) return false;
    this.sock.send(bytes);
    return true;
  }

  /** Leave the match for good. */
  leave() {
    this.send(encodeLeave());
    this.close(CLOSE.NORMAL, "left");
  }

  /** Stop everything; no reconnect. */
  close(code = CLOSE.NORMAL, reason = "closed") {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.retryTimer);
    if (this.sock) this.sock.close(code, reason);
    this.sock = null;
    this.setStatus({ state: "closed", code, reason });
  }

  /**
   * Drop the current socket as a network failure would (tests, and the silence watchdog):
   * the socket is abandoned and closed without `leave`, and the seat is resumed.
   */
  drop() {
    const sock = this.sock;
    if (!sock) return;
    sock.abort();
    this.socketClosed(sock, 1006, "dropped");
  }

  get transport() {
    return this.status.transport;
  }

  // --- internals --------------------------------------------------------------------------

  setStatus(change) {
    this.status = { ...this.status, ...change };
    this.history.push(`${Math.round(performance.now())} ${this.status.state} ${this.status.transport} ${this.status.code || ""}`.trim());
    if (this.history.length > 50) this.history.shift();
    this.onStatus(this.status);
  }

  open() {
    if (this.closed) return;
    this.welcomed = false;
    if (this.useRaw) this.openRaw();
    else this.openSockJS();
  }

  firstMessage() {
    return this.resumeToken ? encodeResume(this.resumeToken) : encodeJoin(this.token);
  }

  openRaw() {
    let ws;
    try {
      ws = new WebSocket(rawWebSocketUrl(this.nodeUrl));
    } catch (e) {
      this.rawFailed(null);
      return;
    }
    ws.binaryType = "arraybuffer";
    let opened = false;
    let gone = false;
    const sock = {
      kind: "websocket",
      ready: false,
      send: (bytes) => ws.send(bytes),
      close: (code, reason) => { gone = true; try { ws.close(code, reason); } catch (e) { ws.close(); } },
      abort: () => { gone = true; clearTimeout(timer); ws.close(); },
    };
    const timer = setTimeout(() => {
      if (!opened && !gone) { gone = true; ws.close(); this.rawFailed(sock); }
    }, this.wsOpenTimeout);
    ws.onopen = () => {
      if (gone) return;
      opened = true;
      this.rawWorked = true;
      clearTimeout(timer);
      sock.ready = true;
      this.opened(sock);
    };
    ws.onmessage = (e) => { if (!gone) this.received(e.data); };
    ws.onerror = () => {
      if (!opened && !gone) { gone = true; clearTimeout(timer); this.rawFailed(sock); }
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (!opened) {
        if (!gone) { gone = true; this.rawFailed(sock); }
        return;
      }
      if (gone) return;
      gone = true;
      this.socketClosed(sock, e.code, e.reason);
    };
    this.sock = sock;
  }

  /**
   * A raw websocket did not open. If none ever did on this page, websockets are blocked
   * here: SockJS from now on. If one did, the network is down: a drop like any other.
   */
  rawFailed(sock) {
    if (this.closed) return;
    if (this.rawWorked) {
      this.socketClosed(sock, 1006, "could not connect");
      return;
    }
    this.useRaw = false;
    this.openSockJS();
  }

  openSockJS() {
    let sj;
    try {
      sj = new SockJS(this.nodeUrl + "/play", null, { transports: this.sockjsTransports,
        sessionId });
    } catch (e) {
      this.socketClosed(null, 2000, String(e && e.message));
      return;
    }
    let gone = false;
    const sock = {
      kind: "sockjs",
      ready: false,
      send: (bytes) => sj.send(toBase64(bytes)),
      close: (code, reason) => { gone = true; sj.close(code, reason); },
      abort: () => { gone = true; sj.close(); },
    };
    sj.onopen = () => {
      if (gone) return;
      sock.ready = true;
      sock.kind = `sockjs/${sj.transport}`;
      this.opened(sock);
    };
    sj.onmessage = (e) => { if (!gone) this.received(e.data); };
    sj.onclose = (e) => {
      if (gone) return;
      gone = true;
      this.socketClosed(sock, e.code, e.reason);
    };
    this.sock = sock;
  }

  opened(sock) {
    this.lastHeard = Date.now();
    sock.send(this.firstMessage());
    this.setStatus({ state: "open", transport: sock.kind, code: 0, reason: "" });
  }

  received(data) {
    this.lastHeard = Date.now();
    this.messagesIn++;
    this.bytesIn += typeof data === "string" ? data.length : data.byteLength;
    let msg;
    try {
      msg = decodeAny(data);
    } catch (e) {
      // A node never sends garbage; if it does, this link cannot be trusted.
      if (this.sock) this.sock.close(CLOSE.BAD_MESSAGE, "Bad message");
      this.close(CLOSE.BAD_MESSAGE, `bad message from node: ${e.message}`);
      return;
    }
    if (msg.type === WELCOME) {
      this.welcomed = true;
      this.attempt = 0;
      this.droppedAt = 0;
      this.lastPing = Date.now();
      this.send(encodePing(this.lastPing >>> 0));
      this.resumeToken = msg.resumeToken;
      const w = msg.config && msg.config.reconnect_window;
      if (Number.isFinite(w) && w > 0) this.reconnectWindow = w * 1000;
    } else if (msg.type === PONG) {
      const sample = ((Date.now() >>> 0) - msg.t) >>> 0;
      if (sample < 60000) {
        this.lastRtt = sample;
        this.rtt = this.rtt === null ? sample : Math.round(this.rtt * 0.7 + sample * 0.3);
      }
      this.serverTick = msg.tick;
    } else if (msg.type === EVENT || msg.events) {
      if ((msg.events || []).some((e) => e[0] === EV_MATCH_END)) this.ended = true;
    } else if (msg.type === ERROR) {
      this.lastError = { code: msg.code, reason: msg.reason };
    } else if (msg.type === MOVED) {
      if (/^https?:\/\//.test(msg.nodeUrl)) {
        this.movedTo = { nodeUrl: msg.nodeUrl.replace(/\/+$/, ""), resumeToken: msg.resumeToken };
      }
    }
    this.onMessage(msg);
  }

  socketClosed(sock, code, reason) {
    if (this.closed) return;
    if (sock && this.sock !== sock) return; // an older socket, already replaced
    this.sock = null;
    const hadSeat = this.resumeToken !== null;
    const moved = this.movedTo;
    if (moved && !this.ended) { // resume on the new node now, with the token it gave
      this.movedTo = null;
      this.nodeUrl = moved.nodeUrl;
      this.resumeToken = moved.resumeToken;
      this.moves++;
      this.attempt = 0;
      if (!this.droppedAt) this.droppedAt = Date.now();
      this.setStatus({ state: "reconnecting", code, reason: "moving to another server" });
      this.reconnects++;
      this.open();
      return;
    }
    if (this.ended || FINAL_CLOSE_CODES.has(code) || (!hadSeat && this.welcomed)) {
      this.close(code, reason || "closed");
      return;
    }
    if (!hadSeat && code >= 4000 && code !== 4999) {
      this.close(code, reason); // the join itself was refused
      return;
    }
    if (!this.droppedAt) this.droppedAt = Date.now();
    if (Date.now() - this.droppedAt > this.reconnectWindow) {
      this.close(CLOSE.RESUME_FAILED, "reconnect window passed");
      return;
    }
    const delay = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt++;
    this.setStatus({ state: "reconnecting", code, reason: reason || "connection lost" });
    this.retryTimer = setTimeout(() => {
      this.reconnects++;
      this.open();
    }, delay);
  }

  tickTimers() {
    const now = Date.now();
    if (this.sock && this.sock.ready && this.welcomed) {
      if (now - this.lastHeard > SILENCE_LIMIT) {
        this.drop(); // half-open link: close it and resume on a new one
        return;
      }
      if (now - this.lastPing >= PING_EVERY) {
        this.lastPing = now;
        this.send(encodePing(now >>> 0));
      }
    }
  }
}
