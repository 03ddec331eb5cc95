"""The codec: round trips, deltas, and untrusted bytes (property tests)."""

import base64

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
name = st.text(max_size=24)

# entity shapes like a game's: a player-like kind with a name, two all-int kinds
player = st.tuples(st.just(1), *[i32] * 9, name)
projectile = st.tuples(st.just(2), *[i32] * 6)
pickup = st.tuples(st.just(3), i32, i32, st.integers(1, 2))
entity = st.one_of(player, projectile, pickup)
entities = st.dictionaries(u16, entity, max_size=40)
event = st.lists(i32, min_size=1, max_size=5)
events = st.lists(event, max_size=5)


@st.composite
def state_pairs(draw):
    """Two states sharing some ids, as consecutive patches do."""
    a = draw(entities)
    b = {}
    for eid, fields in a.items():
        fate = draw(st.sampled_from(["keep", "move", "drop", "replace"]))
        if fate == "keep":
            b[eid] = fields
        elif fate == "move":
            b[eid] = (fields[0], draw(i32), draw(i32), *fields[3:])
        elif fate == "replace":
            b[eid] = draw(entity)
    b.update(draw(entities))
    return a, b


messages = st.one_of(
    st.builds(codec.Join, st.text(max_size=300)),
    st.builds(codec.Resume, st.text(max_size=100)),
    st.builds(codec.Input, u32, st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8).map(tuple)),
    st.builds(codec.Ping, u32),
    st.builds(codec.Leave),
    st.builds(codec.Welcome, u16, st.text(max_size=40), st.text(max_size=40), u32,
              st.dictionaries(st.text(max_size=10), st.one_of(i32, st.text(max_size=5)), max_size=5)),
    st.builds(codec.Keyframe, u32, u32, entities, events),
    st.builds(codec.Delta, u32, u32, u32, entities, st.lists(u16, max_size=10),
              st.dictionaries(u16, st.lists(i32, max_size=3).map(lambda v: v + v), max_size=5), events),
    st.builds(codec.Event, u32, events),
    st.builds(codec.Error, u16, st.text(max_size=50)),
    st.builds(codec.Pong, u32, u32),
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_every_message_round_trips(msg):
    data = codec.encode(msg)
    assert codec.decode(data, max_size=1 << 20) == msg
    assert codec.decode_text(codec.to_text(data), max_size=1 << 20) == msg
    assert codec.decode_any(data, max_size=1 << 20) == msg


@settings(max_examples=300, deadline=None)
@given(state_pairs())
def test_apply_delta_of_two_states_gives_the_second(pair):
    a, b = pair
    added, removed, updated = codec.make_delta(a, b)
    assert codec.apply_delta(a, added, removed, updated) == b
    # and it survives the wire
    msg = codec.decode(codec.encode(codec.Delta(2, 1, 0, added, removed, updated, [])), 1 << 20)
    assert codec.apply_delta(a, msg.added, msg.removed, msg.updated) == b


def test_delta_carries_only_what_changed():
    a = {1: (1, 100, 100, 0, 100, 0, 0, 0, 5, 0, "ann"), 2: (3, 50, 50, 1), 3: (2, 0, 0, 5, 5, 1, 1)}
    b = {1: (1, 110, 100, 0, 100, 0, 0, 0, 5, 1, "ann"), 2: (3, 50, 50, 1), 4: (3, 9, 9, 2)}
    added, removed, updated = codec.make_delta(a, b)
    assert added == {4: (3, 9, 9, 2)}
    assert removed == [3]
    assert updated == {1: [1, 110, 9, 1]}
    assert codec.make_delta(b, b) == ({}, [], {})


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data):
    try:
        codec.decode(data)
    except codec.DecodeError as exc:
        assert exc.code in (4001, 4002, 4003)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_decode_error(text):
    try:
        codec.decode_text(text)
    except codec.DecodeError as exc:
        assert exc.code in (4001, 4002, 4003)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats()
                    | st.text(max_size=5) | st.binary(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.integers(0, 5) | st.text(max_size=3), inner, max_size=3),
                    max_leaves=12))
def test_well_formed_msgpack_of_wrong_shape_raises_only_decode_error(obj):
    for candidate in (obj, [3, obj], [1, obj], [11, 1, 1, obj, []], [12, 1, 1, 1, obj, [], {}, []]):
        try:
            codec.decode(msgpack.packb(candidate), max_size=1 << 16)
        except codec.DecodeError as exc:
            assert exc.code in (4001, 4003)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc1", 4001),  # never-used msgpack byte
        (msgpack.packb({"t": 1}), 4001),  # not an array
        (msgpack.packb([]), 4001),
        (msgpack.packb([99, 1]), 4003),  # unknown type
        (msgpack.packb([3]), 4001),  # input without seq
        (msgpack.packb([3, -1, 0]), 4001),  # seq is not u32
        (msgpack.packb([3, 2**32, 0]), 4001),
        (msgpack.packb([3, 1.0, 0]), 4001),
        (msgpack.packb([3, 1, 2, 3, "x", 0]), 4001),  # a value is a string
        (msgpack.packb([3, 1, True, 3, 4, 0]), 4001),  # bool is not an int here
        (msgpack.packb([3, 1, 2, 3, 0.5]), 4001),
        (msgpack.packb([1, "x" * 3000]), 4002),  # too large
        (msgpack.packb([12, 2, 1, 0, {}, [], {1: [1]}, []]), 4001),  # odd updated list
    ],
)
def test_documented_errors(data, code):
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode(data)
    assert exc.value.code == code


def test_text_errors():
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode_text("not base64!")
    assert exc.value.code == 4001
    with pytest.raises(codec.DecodeError) as exc:
        codec.decode_text(base64.b64encode(b"\x00" * 2000).decode())
    assert exc.value.code == 4002


def test_input_carries_any_number_of_int_values():
    """The codec checks types only; arity and ranges are the game's (the node checks them)."""
    assert codec.decode(msgpack.packb([3, 7])) == codec.Input(7, ())
    assert codec.decode(msgpack.packb([3, 7, -5, 2**40, 0])) == codec.Input(7, (-5, 2**40, 0))
    assert type(codec.decode(msgpack.packb([3, 1, 2])).values) is tuple
    assert msgpack.unpackb(codec.encode(codec.Input(9, (1, -2)))) == [3, 9, 1, -2]


def test_room_events_are_reserved_low_codes():
    assert (codec.EV_JOINED, codec.EV_LEFT, codec.EV_MATCH_END) == (1, 2, 3)
    assert codec.ROOM_EVENT_MAX == 15 and codec.PROTOCOL_VERSION == 2


def test_extra_trailing_fields_are_ignored():
    assert codec.decode(msgpack.packb([4, 7, "future"])) == codec.Ping(7)


def test_apply_rejects_update_of_unknown_entity():
    with pytest.raises(codec.DecodeError):
        codec.apply_delta({}, {}, [], {5: [1, 2]})
    with pytest.raises(codec.DecodeError):
        codec.apply_delta({5: (1, 2)}, {}, [], {5: [0, 2]})  # the kind cannot change by update
