"""Handoff grants: the lobby's permission for one node to hand one match to another.

A node holds only its own request key (engine.auth.derive_node_key), so it cannot check
another node's signature. The lobby, which holds the master, signs a grant with the
*target's* key: the target checks it with its own key. The grant names the match, the
source and target nodes, the SHA-256 of the exact transfer body and an expiry, so a
grant moves one body of one match to one node, once, shortly (docs/scale-out.md,
"Handoff"). Pure functions, like engine.auth.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

GRANT_VERSION = "g1"
GRANT_TTL = 30  # seconds


class GrantError(ValueError):
    """A grant that must be refused."""


@dataclass(frozen=True)
class Grant:
    m: str      # match id
    src: str    # source node id
    dst: str    # target node id
    sha: str    # SHA-256 (hex) of the transfer body
    exp: int    # Unix time


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str | bytes, message: str) -> bytes:
    k = key.encode() if isinstance(key, str) else key
    return hmac.new(k, message.encode("ascii"), hashlib.sha256).digest()


def issue_grant(target_key: str | bytes, *, match_id: str, src: str, dst: str, sha256: str,
                now: float, ttl: int = GRANT_TTL) -> str:
    """A grant, signed with the target node's request key."""
    payload = _b64e(json.dumps(asdict(Grant(match_id, src, dst, sha256, int(now) + ttl)),
                               separators=(",", ":")).encode())
    signed = f"{GRANT_VERSION}.{payload}"
    return f"{signed}.{_b64e(_mac(target_key, signed))}"


def verify_grant(own_key: str | bytes, grant: object, *, node_id: str, now: float) -> Grant:
    """The claims of a grant signed with `own_key`, fresh, for `node_id`; GrantError else."""
    if not isinstance(grant, str) or len(grant) > 1024:
        raise GrantError("malformed grant")
    parts = grant.split(".")
    if len(parts) != 3 or parts[0] != GRANT_VERSION:
        raise GrantError("malformed grant")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        sig = _b64d(parts[2])
        raw = json.loads(_b64d(parts[1]))
        claims = Grant(**raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise GrantError("malformed grant") from None
    if not hmac.compare_digest(sig, _mac(own_key, signed)):
        raise GrantError("bad grant signature")
    types = {"m": str, "src": str, "dst": str, "sha": str, "exp": int}
    if any(not isinstance(getattr(claims, k), t) for k, t in types.items()):
        raise GrantError("malformed grant")
    if now > claims.exp:
        raise GrantError("grant expired")
    if claims.dst != node_id:
        raise GrantError("grant for another node")
    return claims
