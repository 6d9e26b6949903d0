"""Spans of time searched by "which overlap [start, end)?": what buffer planning
(:class:`~caldaemon.core.rules.buffers.BusyIndex`) and ``caldaemon slots``
(:mod:`~caldaemon.core.slot_grid`) both ask of busy time, thousands of times a run."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import accumulate


class Intervals:
    """Spans ``[a, b)`` sorted by start, with the running maximum of their ends: a bisect
    finds the last span starting before ``end``, and the scan back stops at the first
    whose running maximum cannot reach ``start`` (spans may nest or overlap). Give UTC
    instants: comparing aware datetimes of different zones costs a ``utcoffset`` call on
    both every time."""

    starts: list[datetime]
    ends: list[datetime]
    max_end: list[datetime]

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        ordered = sorted(spans)
        self._keep([a for a, _ in ordered], [b for _, b in ordered])

    @classmethod
    def of_sorted(cls, starts: list[datetime], ends: list[datetime]) -> Intervals:
        """Spans already sorted (by start, then end), given as their starts and their
        ends: nothing to sort, and no pair made for each."""
        found = cls.__new__(cls)
        found._keep(starts, ends)
        return found

    def _keep(self, starts: list[datetime], ends: list[datetime]) -> None:
        self.starts, self.ends = starts, ends
        self.max_end = list(accumulate(ends, max))

    def overlapping(self, start: datetime, end: datetime) -> Iterator[int]:
        """The positions (in start order) of the spans that overlap ``[start, end)``,
        latest first."""
        index = bisect_left(self.starts, end) - 1
        while index >= 0 and self.max_end[index] > start:
            if self.ends[index] > start:
                yield index
            index -= 1

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The search of :meth:`overlapping`, without a generator: most questions (is the
        # slot after a session free?) are answered at the first or second span.
        index = bisect_left(self.starts, end) - 1
        while index >= 0 and self.max_end[index] > start:
            if self.ends[index] > start:
                return True
            index -= 1
        return False
