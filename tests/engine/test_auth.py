"""Seat tokens and signed internal requests (engine/auth.py)."""

import pytest

from engine import auth

SECRET = "s3cret"


def issue(**kw):
    args = dict(user_id=7, name="Ann", match_id="m1", node_id="node-1", now=1000, mode="duel",
                bots=2, seats=2)
    args.update(kw)
    return auth.issue_seat_token(SECRET, **args)


def test_token_round_trip():
    claims = auth.verify_seat_token(SECRET, issue(), node_id="node-1", now=1010)
    assert (claims.u, claims.n, claims.m, claims.node, claims.role) == (7, "Ann", "m1", "node-1", "player")
    assert (claims.seats, claims.bots, claims.exp, claims.mode) == (2, 2, 1030, "duel")
    assert len(claims.jti) == 24


@pytest.mark.parametrize(
    ("token", "node", "now", "code"),
    [
        (issue(), "node-1", 1031, 4011),
        (issue(), "node-2", 1000, 4013),
        (issue().replace("v1.", "v2.", 1), "node-1", 1000, 4010),
        (issue()[:-3] + "AAA", "node-1", 1000, 4010),
        (auth.issue_seat_token("other", user_id=7, name="Ann", match_id="m1", node_id="node-1", now=1000,
                                mode="duel"),
         "node-1", 1000, 4010),
        ("garbage", "node-1", 1000, 4010),
        ("v1.!!!.###", "node-1", 1000, 4010),
        (12, "node-1", 1000, 4010),
    ],
)
def test_token_rejections(token, node, now, code):
    with pytest.raises(auth.TokenError) as exc:
        auth.verify_seat_token(SECRET, token, node_id=node, now=now)
    assert exc.value.code == code


def test_token_with_forged_payload_is_refused():
    version, payload, signature = issue().split(".")
    other_payload = issue(user_id=8).split(".")[1]
    with pytest.raises(auth.TokenError):
        auth.verify_seat_token(SECRET, f"{version}.{other_payload}.{signature}", node_id="node-1", now=1000)


def test_signed_request_round_trip_and_tampering():
    body = b'{"match_id": "m1"}'
    headers = auth.sign_request(SECRET, node_id="node-1", method="POST", path="/api/internal/results",
                                body=body, now=5000)
    node, nonce = auth.verify_request(SECRET, headers=headers, method="POST",
                                      path="/api/internal/results", body=body, now=5030)
    assert node == "node-1" and nonce == headers["X-Arena-Nonce"]
    with pytest.raises(ValueError, match="signature"):
        auth.verify_request(SECRET, headers=headers, method="POST", path="/api/internal/results",
                            body=body + b" ", now=5000)
    with pytest.raises(ValueError, match="stale"):
        auth.verify_request(SECRET, headers=headers, method="POST", path="/api/internal/results",
                            body=body, now=5061)
    with pytest.raises(ValueError, match="missing"):
        auth.verify_request(SECRET, headers={}, method="POST", path="/x", body=body, now=5000)
