"""Sliding windows of call outcomes, for failure-rate decisions (the circuit breaker's).

Both keep running totals (``calls``, ``failed``, ``slow``) so a decision reads three ints;
neither grows with the number of calls.
"""

from __future__ import annotations

__all__ = ["CountWindow", "TimeWindow"]


class CountWindow:
    """The outcomes of the last ``size`` calls, as a ring of bit flags (1 failed, 2 slow)."""

    __slots__ = ("_next", "_ring", "_size", "calls", "failed", "slow")

    def __init__(self, size: int) -> None:
        self._ring = bytearray(size)
        self._size = size
        self.clear()

    def clear(self) -> None:
        self._ring[:] = bytes(len(self._ring))
        self._next = 0
        self.calls = self.failed = self.slow = 0

    def evict(self, now: float) -> None:
        """Nothing ages out of a count window."""

    def record(self, now: float, failed: bool, slow: bool) -> None:
        ring, i = self._ring, self._next
        if self.calls == self._size:
            old = ring[i]
            if old:
                self.failed -= old & 1
                self.slow -= old >> 1
        else:
            self.calls += 1
        if failed or slow:
            ring[i] = failed | (slow << 1)
            self.failed += failed
            self.slow += slow
        else:
            ring[i] = 0
        i += 1
        self._next = 0 if i == self._size else i


class TimeWindow:
    """The outcomes of the last ``duration`` seconds in ``buckets`` buckets: O(buckets) memory.

    The window is the current bucket and the ``buckets - 1`` before it, so it spans between
    ``duration - duration / buckets`` and ``duration`` seconds.
    """

    __slots__ = ("_counts", "_head", "_width", "calls", "failed", "slow")

    def __init__(self, duration: float, buckets: int) -> None:
        self._width = duration / buckets
        # Per bucket: [calls, failed, slow].
        self._counts = [[0, 0, 0] for _ in range(buckets)]
        self.clear()

    def clear(self) -> None:
        for bucket in self._counts:
            bucket[:] = (0, 0, 0)
        self._head = -1  # index of the newest bucket, counted from time 0
        self.calls = self.failed = self.slow = 0

    def evict(self, now: float) -> None:
        """Empty the buckets that fell out of the window by ``now``."""
        index = int(now // self._width)
        steps = min(index - self._head, len(self._counts))
        for step in range(1, steps + 1):
            bucket = self._counts[(self._head + step) % len(self._counts)]
            self.calls -= bucket[0]
            self.failed -= bucket[1]
            self.slow -= bucket[2]
            bucket[:] = (0, 0, 0)
        self._head = max(self._head, index)

    def record(self, now: float, failed: bool, slow: bool) -> None:
        if int(now // self._width) != self._head:  # a new bucket begins: older ones may age out
            self.evict(now)
        bucket = self._counts[self._head % len(self._counts)]
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        self.calls += 1
        self.failed += failed
        self.slow += slow
