"""Integer counts over a sliding window of ten time slices: what a retry budget and the
adaptive throttle decide on (each amount leaves the window within a tenth of it)."""

from __future__ import annotations

__all__: list[str] = []  # internal: the state of budgets and throttles

SLICES = 10


class Slices:
    """``kinds`` integer counts, each kept per slice of ``slice_ns`` nanoseconds over the
    last ``SLICES`` slices, with their totals over the window."""

    __slots__ = ("counts", "index", "slice_ns", "totals")

    def __init__(self, slice_ns: int, kinds: int) -> None:
        self.slice_ns = slice_ns
        self.counts = [[0] * SLICES for _ in range(kinds)]
        self.totals = [0] * kinds
        self.index = 0  # the slice number (time // slice_ns) of the newest amounts

    def advance(self, now_ns: int) -> int:
        """Drop what is older than the window at ``now_ns``; the slot of the current slice."""
        index = now_ns // self.slice_ns
        steps = index - self.index
        if steps:
            totals = self.totals
            for kind, counts in enumerate(self.counts):
                if steps >= SLICES or steps < 0:  # a jump back only after a clock switch
                    counts[:] = [0] * SLICES
                    totals[kind] = 0
                else:
                    for step in range(1, steps + 1):
                        slot = (self.index + step) % SLICES
                        totals[kind] -= counts[slot]
                        counts[slot] = 0
            self.index = index
        return index % SLICES

    def add(self, slot: int, kind: int, amount: int) -> None:
        """Count ``amount`` of ``kind`` in ``slot`` (from ``advance``)."""
        self.counts[kind][slot] += amount
        self.totals[kind] += amount

    def oldest_first(self, kind: int) -> list[tuple[int, int]]:
        """(nanoseconds after the current slice's start at which it expires, amount) of each
        slice of ``kind``, the oldest first."""
        counts = self.counts[kind]
        return [
            (step * self.slice_ns, counts[(self.index + step) % SLICES])
            for step in range(1, SLICES + 1)
        ]
