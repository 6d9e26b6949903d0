"""The clock, injected everywhere: nothing reads the time of day but through a ``Clock``,
so tests and ``--now`` pin it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def pinned_clock(moment: datetime) -> Clock:
    """A clock that always reads ``moment`` (``run --once --now``)."""
    return lambda: moment


def offset_clock(pinned: datetime) -> Clock:
    """A clock that starts at ``pinned`` and runs at real speed (``run --now``)."""
    delta = pinned - system_clock()
    return lambda: system_clock() + delta
