"""`codec.encode_delta` (what a room sends every patch) gives the very bytes of
`encode(Delta(...))`, and they decode back to the same delta."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec

entity = st.tuples(st.integers(0, 3), st.integers(0, 65535), st.integers(-2**31, 2**31 - 1),
                   st.integers(0, 100))
entities = st.dictionaries(st.integers(0, 65535), entity, max_size=12)
events = st.lists(st.lists(st.one_of(st.integers(0, 255), st.integers(0, 65535)),
                           min_size=1, max_size=4), max_size=4)


@settings(max_examples=100, deadline=None)
@given(prev=entities, cur=entities, tick=st.integers(1, 2**32 - 1),
       clock=st.integers(0, 2**32 - 1), evs=events)
def test_encode_delta_is_encode_of_the_delta(prev, cur, tick, clock, evs) -> None:
    added, removed, updated = codec.make_delta(prev, cur)
    msg = codec.Delta(tick, tick - 1, clock, added, removed, updated, evs)
    fast = codec.encode_delta(tick, tick - 1, clock, added, removed, updated, evs)
    assert fast == codec.encode(msg)
