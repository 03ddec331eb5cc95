"""A small seeded RNG (SplitMix64): integers only, identical on every platform and
Python version, never the global `random` module.

One instance per game; everything random in a match (spawn choice, bot decisions) draws
from it in simulation order, so a seed plus the input log replays the match exactly.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1


class Rng:
    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = int(seed) & _MASK

    def next_u64(self) -> int:
        self.state = s = (self.state + 0x9E3779B97F4A7C15) & _MASK
        s = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        s = ((s ^ (s >> 27)) * 0x94D049BB133111EB) & _MASK
        return s ^ (s >> 31)

    def below(self, n: int) -> int:
        """A uniform int in [0, n). The modulo bias is below 2**-40 for n < 2**24."""
        if n <= 0:
            raise ValueError("n must be positive")
        return self.next_u64() % n

    def between(self, lo: int, hi: int) -> int:
        """A uniform int in [lo, hi] (both included)."""
        return lo + self.below(hi - lo + 1)

    def chance(self, num: int, den: int) -> bool:
        """True with probability num/den."""
        return self.below(den) < num
