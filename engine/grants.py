"""Handoff grants: the lobby's permission for one node to hand one match to another.

A node holds only its own request key (engine.auth.derive_node_key), so it cannot check
another node's signature. The lobby, which holds the master, signs a grant with the
*target's* key: the target checks it with its own key. The grant names the match, the
source and target nodes, the SHA-256 of the exact transfer body and an expiry, so a
grant moves one body of one match to one node, once, shortly (docs/scale-out.md,
"Handoff"). Pure functions, like engine.auth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.auth import SealError, seal, unseal

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


def issue_grant(target_key: str | bytes, *, match_id: str, src: str, dst: str, sha256: str,
                now: float, ttl: int = GRANT_TTL) -> str:
    """A grant, signed with the target node's request key."""
    return seal(target_key, GRANT_VERSION, asdict(Grant(match_id, src, dst, sha256,
                                                       int(now) + ttl)))


def verify_grant(own_key: str | bytes, grant: object, *, node_id: str, now: float) -> Grant:
    """The claims of a grant signed with `own_key`, fresh, for `node_id`; GrantError else."""
    try:
        claims = Grant(**unseal(own_key, GRANT_VERSION, grant, max_len=1024))
    except SealError as e:
        raise GrantError("bad grant signature" if e.reason == "signature"
                         else "malformed grant") from None
    except TypeError:
        raise GrantError("malformed grant") from None
    types = {"m": str, "src": str, "dst": str, "sha": str, "exp": int}
    if any(not isinstance(getattr(claims, k), t) for k, t in types.items()):
        raise GrantError("malformed grant")
    if now > claims.exp:
        raise GrantError("grant expired")
    if claims.dst != node_id:
        raise GrantError("grant for another node")
    return claims
