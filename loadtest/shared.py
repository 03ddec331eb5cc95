"""What the bots of one room in one worker process share: the last delta decoded and applied.

A node encodes each patch once and writes the same bytes to every player of the room in
step (game_server/room.py), so the bots of a room that live in one process would decode
the same payload and apply it to equal states, each on its own. Instead the first bot to
receive a new delta decodes it (`loadtest.bot.plain_delta`), applies it to its state
without changing that state (`apply_copy`) and publishes the outcome here: the payload,
its decoded fields, the state it was applied to and the state that came out (or None if
the delta did not apply; the last `KEEP` payloads). Another bot of the room then takes
that outcome only if the payload it received is byte-identical and its own state is one that payload was applied
to (the same object, or an equal one: a bot seated later by a keyframe), which
by determinism gives it the very result its own decode and apply would. Anything else (a
bot behind or ahead, another payload, a keyframe, a bot whose state differs) decodes and
applies on its own. States are never changed in place once a bot holds them, so bots at
different versions can share entity tuples safely.
"""

from __future__ import annotations

from engine import codec

_DOES_NOT_APPLY = "Delta does not apply"


def apply_copy(entities: dict, added: dict, removed: list, updated: dict) -> dict:
    """`codec.apply_delta(entities, added, removed, updated)`: a new state, `entities`
    untouched, every entity a tuple; the same errors (and an `updated` entry that is not
    a list of index/value pairs is refused too). tests/loadtest/test_shared.py compares
    both over played matches and bad deltas."""
    out = entities.copy()
    for eid in removed:
        out.pop(eid, None)
    if added:
        out.update(zip(added, map(tuple, added.values()), strict=True))
    get = out.get
    for eid, changes in updated.items():
        old = get(eid)
        if old is None or type(changes) is not list:
            raise codec.DecodeError(4001, _DOES_NOT_APPLY)
        fields = list(old)
        size = len(fields)
        pairs = iter(changes)
        try:
            for index in pairs:
                if type(index) is not int or not 0 < index < size:
                    raise codec.DecodeError(4001, _DOES_NOT_APPLY)
                fields[index] = next(pairs)
        except StopIteration:
            raise codec.DecodeError(4001, _DOES_NOT_APPLY) from None
        out[eid] = tuple(fields)
    return out


KEEP = 4   # payloads a room keeps: a bot a few patches behind the others still finds its own
BASES = 3  # states one payload's outcome is kept for (a bot whose state differs adds its own)
MISSING = object()  # no outcome kept for this state


class SharedRoom:
    """The last deltas of one room as this process's bots decoded them (see the module):
    payload -> [its wire array, state applied to, state that came out (None: it did not
    apply), another state applied to, what came out, ...]."""

    __slots__ = ("key", "users", "outcomes")

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.users = 0
        self.outcomes: dict[bytes, list] = {}

    def publish(self, raw: bytes, obj: list, base: dict, result: dict | None) -> None:
        """Keep what applying `raw` (wire array `obj`) to `base` gave (the oldest payload
        kept goes once there are `KEEP`)."""
        outcomes = self.outcomes
        kept = outcomes.get(raw)
        if kept is None:
            outcomes[raw] = [obj, base, result]
            if len(outcomes) > KEEP:
                del outcomes[next(iter(outcomes))]
        elif len(kept) < 1 + 2 * BASES:
            kept += (base, result)


def outcome_for(kept: list, state: dict):
    """What applying the kept payload to `state` gave (None: it did not apply), if it was
    applied to this state (the same object, else an equal one), else `MISSING`."""
    n = len(kept)
    for i in range(1, n, 2):
        if kept[i] is state:
            return kept[i + 1]
    for i in range(1, n, 2):
        if kept[i] == state:
            return kept[i + 1]
    return MISSING


class SharedRooms:
    """One process's rooms, by (node URL, match id), while a bot of it plays there."""

    def __init__(self) -> None:
        self.rooms: dict[tuple, SharedRoom] = {}

    def join(self, key: tuple) -> SharedRoom:
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = SharedRoom(key)
        room.users += 1
        return room

    def leave(self, room: SharedRoom) -> None:
        room.users -= 1
        if room.users <= 0 and self.rooms.get(room.key) is room:
            del self.rooms[room.key]
