"""Seat tokens and signed internal requests: the one implementation of both formats.

Pure functions: the caller passes the secret and the current time, so the lobby, the
game node and the tests share the code without sharing a clock. The formats are
specified in docs/protocol.md ("Seat tokens", "Node and lobby: internal HTTP").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

TOKEN_VERSION = "v1"
NAME_MAX = 24
ROLES = ("player", "spectator")


class TokenError(Exception):
    """A seat token that must be refused; `code` is the close code of docs/protocol.md."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SeatClaims:
    u: int
    n: str
    m: str
    node: str
    role: str
    mode: str
    seats: int
    bots: int
    exp: int
    jti: str


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str | bytes, message: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message.encode("ascii"), hashlib.sha256).digest()


class SealError(ValueError):
    """A sealed token that must be refused: `reason` is "malformed" or "signature"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def seal(secret: str | bytes, version: str, claims: dict) -> str:
    """`<version>.<payload>.<signature>`: payload the base64url (no padding) of the claims'
    compact JSON, signature base64url of HMAC-SHA256(secret, "<version>.<payload>").
    The format of seat tokens and handoff grants (engine.grants)."""
    payload = _b64e(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{version}.{payload}"
    return f"{signed}.{_b64e(_mac(secret, signed))}"


def unseal(secret: str | bytes, version: str, token: object, *, max_len: int) -> dict:
    """The claims of a token sealed with `secret` and `version`; SealError else. Their
    types are the caller's to check."""
    if not isinstance(token, str) or len(token) > max_len:
        raise SealError("malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != version:
        raise SealError("malformed")
    try:
        signature = _b64d(parts[2])
        claims = json.loads(_b64d(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SealError("malformed") from None
    if not hmac.compare_digest(signature, _mac(secret, f"{parts[0]}.{parts[1]}")):
        raise SealError("signature")
    if not isinstance(claims, dict):
        raise SealError("malformed")
    return claims


def issue_seat_token(
    secret: str | bytes,
    *,
    user_id: int,
    name: str,
    match_id: str,
    node_id: str,
    now: float,
    mode: str,
    ttl: int = 30,
    role: str = "player",
    seats: int = 1,
    bots: int = 0,
    jti: str | None = None,
) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    claims = SeatClaims(
        u=int(user_id),
        n=str(name)[:NAME_MAX],
        m=str(match_id),
        node=str(node_id),
        role=role,
        mode=mode,
        seats=int(seats),
        bots=int(bots),
        exp=int(now) + int(ttl),
        jti=jti or secrets.token_hex(12),
    )
    return seal(secret, TOKEN_VERSION, asdict(claims))


def verify_seat_token(secret: str | bytes, token: object, *, node_id: str, now: float) -> SeatClaims:
    """Check signature, shape, expiry and node. Single use is the node's job (it keeps the jti)."""
    try:
        claims = SeatClaims(**unseal(secret, TOKEN_VERSION, token, max_len=2048))
    except (SealError, TypeError):
        raise TokenError(4010, "Invalid token") from None
    types = {"u": int, "n": str, "m": str, "node": str, "role": str, "mode": str,
             "seats": int, "bots": int, "exp": int, "jti": str}
    if any(not isinstance(getattr(claims, k), t) for k, t in types.items()) or claims.role not in ROLES:
        raise TokenError(4010, "Invalid token")
    if now > claims.exp:
        raise TokenError(4011, "Token expired")
    if claims.node != node_id:
        raise TokenError(4013, "Wrong node")
    return claims


# --- signed internal requests (node <-> lobby) ------------------------------------

REQUEST_MAX_SKEW = 60  # seconds
NODE_KEY_LABEL = "arena-node-key-v1"


def derive_node_key(master: str | bytes, node_id: str) -> str:
    """One node's request key: HMAC-SHA256(master NODE_SECRET, label + node id), in hex.

    The lobby holds the master and derives the key of whichever node a request names; a
    node holds only its own key, so it cannot sign as another node.
    """
    key = master.encode() if isinstance(master, str) else master
    return hmac.new(key, f"{NODE_KEY_LABEL}\n{node_id}".encode(), hashlib.sha256).hexdigest()


def _request_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    head = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n".encode()
    return head + body


def sign_request(secret: str | bytes, *, node_id: str, method: str, path: str, body: bytes,
                 now: float, nonce: str | None = None) -> dict[str, str]:
    """Headers that authenticate one internal request."""
    key = secret.encode() if isinstance(secret, str) else secret
    timestamp = str(int(now))
    nonce = nonce or secrets.token_hex(16)
    signature = hmac.new(key, _request_message(method, path, timestamp, nonce, body),
                         hashlib.sha256).hexdigest()
    return {
        "X-Arena-Node": node_id,
        "X-Arena-Timestamp": timestamp,
        "X-Arena-Nonce": nonce,
        "X-Arena-Signature": signature,
    }


def verify_request(secret: str | bytes, *, headers, method: str, path: str, body: bytes,
                   now: float) -> tuple[str, str]:
    """Return (node_id, nonce) of a correctly signed, fresh request, else raise ValueError.

    The caller must still refuse a nonce it has seen within REQUEST_MAX_SKEW seconds.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    node_id = headers.get("X-Arena-Node", "")
    timestamp = headers.get("X-Arena-Timestamp", "")
    nonce = headers.get("X-Arena-Nonce", "")
    signature = headers.get("X-Arena-Signature", "")
    if not (node_id and timestamp.isdigit() and nonce and len(nonce) <= 64 and signature):
        raise ValueError("missing or malformed signature headers")
    if abs(now - int(timestamp)) > REQUEST_MAX_SKEW:
        raise ValueError("stale timestamp")
    expected = hmac.new(key, _request_message(method, path, timestamp, nonce, body),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("bad signature")
    return node_id, nonce
