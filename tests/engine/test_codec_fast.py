"""`codec.decode`'s one-pass path for keyframes and deltas accepts exactly what the
messages' CHECKS accept, with the same DecodeError codes (property tests against the
plain CHECKS-driven decoder below, the codec's reference behaviour)."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec


def reference_decode(data: bytes, max_size: int = codec.DEFAULT_MAX_SIZE) -> codec.Message:
    """The decoder before the fast path: every field through its CHECKS entry."""
    if len(data) > max_size:
        raise codec.DecodeError(4002, "Message too large")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        raise codec.DecodeError(4001, "Bad message") from None
    if type(obj) is not list or not obj or type(obj[0]) is not int:
        raise codec.DecodeError(4001, "Bad message")
    cls = codec.MESSAGES.get(obj[0])
    if cls is None:
        raise codec.DecodeError(4003, "Unknown message type")
    checks = cls.CHECKS
    values = obj[1:1 + len(checks)]
    if len(values) < len(checks) or not all(check(v) for check, v in zip(checks, values, strict=True)):
        raise codec.DecodeError(4001, "Bad message")
    if cls.REST is not None:   # Input: every trailing value through REST
        rest = obj[1 + len(checks):]
        if not all(cls.REST(v) for v in rest):
            raise codec.DecodeError(4001, "Bad message")
        return cls(*values, tuple(rest))
    if cls is codec.Keyframe:
        values[2] = {k: tuple(v) for k, v in values[2].items()}
    elif cls is codec.Delta:
        values[3] = {k: tuple(v) for k, v in values[3].items()}
    return cls(*values)


def outcome(decoder, data: bytes):
    try:
        return ("ok", decoder(data, 1 << 16))
    except codec.DecodeError as exc:
        return ("error", exc.code, exc.reason)


# Valid state messages, then (half the time) one spot replaced by a value on a boundary the
# checks draw: bool is not int, float is not int, u16/u32 limits, empty or odd-length arrays.
u16 = st.one_of(st.integers(0, 2**16 - 1), st.sampled_from([0, 2**16 - 1]))
u32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**32 - 1]))
fields_ = st.lists(st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=3)), max_size=6)
entity = st.tuples(st.integers(-5, 5), fields_).map(lambda t: [t[0], *t[1]])
entities = st.dictionaries(u16, entity, max_size=5)
updated = st.dictionaries(u16, fields_.map(lambda f: f + f), max_size=5)
events = st.lists(entity, max_size=3)
keyframe = st.tuples(st.just(11), u32, u32, entities, events)
delta = st.tuples(st.just(12), u32, u32, u32, entities, st.lists(u16, max_size=4), updated, events)

bad_scalar = st.sampled_from([-1, 2**16, 2**32, -(2**63), True, False, 1.0, None, "1", b"1", [], {}])
bad_key = st.sampled_from([-1, 2**16, 2**32, True, False, 1.0, None, "1", b"1"])
bad_fields = st.sampled_from([[], ["a", 1], ["a", "b"], ["", 1, 2, 3], [1, 1.5], [1, True], [True], [1, None], [1, [2]], [1, {}],
                              [1, b"x"], [1, 2, 3], [1.0, 2]])


@st.composite
def corrupted(draw, message):
    msg = list(draw(message))
    if draw(st.booleans()):
        return msg
    i = draw(st.integers(1, len(msg) - 1))
    target = msg[i]
    how = draw(st.integers(0, 2))
    if type(target) is dict and how:
        bad = (draw(bad_key), draw(fields_.map(lambda f: [1, 2, *f, *f]))) if how == 1 else \
            (draw(u16), draw(bad_fields))
        target[bad[0]] = bad[1]
    elif type(target) is list and how:
        target.append(draw(bad_fields if how == 1 else bad_scalar))
    else:
        msg[i] = draw(bad_scalar)
    return msg


@pytest.mark.slow  # 2,000 examples, about 10 s
@settings(max_examples=2000, deadline=None)
@given(st.one_of(corrupted(keyframe), corrupted(delta)), st.sampled_from([0] * 6 + [1, 2, 3]), st.lists(bad_scalar, max_size=2))
def test_state_messages_decode_as_the_checks_say(message, cut, extra):
    """Valid, ill-typed, truncated (`cut` fields off) and over-long messages."""
    fields = message[:len(message) - cut] + (extra if not cut else [])
    data = msgpack.packb(fields)
    assert outcome(codec.decode, data) == outcome(reference_decode, data)


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 20), st.lists(st.one_of(bad_scalar, u32, st.integers(-(2**63), 2**64 - 1), fields_), max_size=6))
def test_every_message_type_decodes_as_the_checks_say(kind, rest):
    data = msgpack.packb([kind, *rest])
    assert outcome(codec.decode, data) == outcome(reference_decode, data)


def test_a_valid_delta_decodes_to_tuples():
    data = msgpack.packb([12, 5, 4, 900, {7: [1, 10, 20, "a"]}, [3], {8: [1, 11, 2, 21]}, [[1, 2]]])
    msg = codec.decode(data)
    assert msg == codec.Delta(5, 4, 900, {7: (1, 10, 20, "a")}, [3], {8: [1, 11, 2, 21]}, [[1, 2]])
    assert type(msg.added[7]) is tuple


def test_every_boundary_in_every_field_decodes_as_the_checks_say():
    """Deterministic: each field of a valid keyframe and delta replaced by, or (for maps and
    arrays) extended with, each boundary value in turn; plus truncations."""
    valid = [
        [11, 7, 900, {0: [1, 2, "x"], 65535: [3, -1]}, [[1, 2], [7]]],
        [12, 7, 6, 900, {0: [1, 2, "x"], 65535: [3, -1]}, [0, 65535], {5: [1, 2, 3, "y"], 65535: []},
         [[1, 2], [7]]],
    ]
    boundary_keys = [-1, 0, 2**16 - 1, 2**16, 2**32, True, 1.0, None, "1", b"1"]
    boundary_fields = [[], [1], ["a"], ["a", 1], [1, "a"], [1, 1.5], [1, True], [True, 1], [1, None],
                       [1, [2]], [1, {}], [1, b"x"], [1, 2, 3], [1.0, 2], [1, 2**40]]
    cases = 0
    for message in valid:
        for cut in range(len(message)):
            data = msgpack.packb(message[:cut])
            assert outcome(codec.decode, data) == outcome(reference_decode, data)
        for i in range(1, len(message)):
            for bad in [*boundary_keys, 2**32 - 1, [], {}, *boundary_fields]:
                changed = [*message[:i], bad, *message[i + 1:]]
                variants = [changed]
                if type(message[i]) is dict:
                    variants += [[*message[:i], {**message[i], key: [1, 2]}, *message[i + 1:]]
                                 for key in boundary_keys]
                    variants += [[*message[:i], {**message[i], 9: fields}, *message[i + 1:]]
                                 for fields in boundary_fields]
                elif type(message[i]) is list:
                    variants.append([*message[:i], [*message[i], bad], *message[i + 1:]])
                for variant in variants:
                    data = msgpack.packb(variant)
                    assert outcome(codec.decode, data) == outcome(reference_decode, data), variant
                    cases += 1
    assert cases > 500
