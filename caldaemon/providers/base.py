"""The one interface every calendar provider implements (vdirsyncer's Storage, in spirit).

A provider lists what changed since a token and writes caldaemon's own buffer events.
Everything it returns is normalized (:class:`~caldaemon.model.Event`); nothing above it
knows which service a calendar lives on. The same contract test suite runs against every
provider (tests/providers/).
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from caldaemon.errors import Error, TransientError
from caldaemon.model import (
    Buffer,
    Create,
    Delete,
    Event,
    Remote,
    Update,
    Window,
    Write,
    WriteResult,
)
from caldaemon.providers.settings import CalendarSettings

# The owner marker every buffer carries (DESIGN.md §5). ICS/CalDAV: this property;
# Google: extendedProperties.private[OWNER_KEY]; Outlook: a category and an extended property.
# How caldaemon names itself in every HTTP request it sends.
USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"
# Connections a shared HTTP session keeps per host: one per worker thread (the daemon runs
# at most 32, caldaemon/service/jobs.py), so none is opened only to be thrown away.
POOL_SIZE = 32

OWNER_PROPERTY = "X-CALDAEMON-BUFFER"
OWNER_KEY = "caldaemonBuffer"
OWNER_CATEGORY = "caldaemon buffer"
BUFFER_DESCRIPTION = (
    "Time kept free by caldaemon after a session. If you edit this block caldaemon leaves "
    "it alone; if you delete it, it is not put back."
)


def block_dates(buffer: Buffer, tz: tzinfo | None = None) -> tuple[date, date]:
    """The local dates an all-day block covers: its first day and the day after its last
    (exclusive, as Google, Graph and iCalendar date ends are), dated where the clinician
    is (``tz``; the buffer's own zone when not given). An end that is not a midnight still
    covers its day; a block covers at least one day."""
    zone = tz or buffer.start.tzinfo or UTC
    first = buffer.start.astimezone(zone).date()
    finish = buffer.end.astimezone(zone)
    last = finish.date() + (timedelta(days=1) if finish.time() != time_of_day() else timedelta())
    return first, max(last, first + timedelta(days=1))


@dataclass(frozen=True)
class Listing:
    """What a provider read.

    ``full``: ``events`` is everything in the window (replace what you had). Otherwise it
    is what changed since the token, plus the ids in ``removed``; an incremental listing
    that found nothing has both empty. ``token`` is passed back on the next call.
    """

    events: tuple[Event, ...]
    removed: tuple[str, ...]
    token: str | None
    full: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteAccess:
    """What a calendar's service says of caldaemon's right to write to it, learnt without
    writing anything (``caldaemon doctor``). ``allowed`` None: the service does not say.
    ``evidence`` is what it said ("accessRole reader", "canEdit false"), for messages: no
    event text, no credential."""

    allowed: bool | None
    evidence: str


@dataclass(frozen=True)
class ProviderContext:
    """What a provider needs from around it; clock and sleep are injected for tests."""

    clinician: str
    tz: ZoneInfo
    state_dir: Path
    self_addresses: frozenset[str] = frozenset()
    buffers_to: str | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("caldaemon"))

    def now(self) -> datetime:
        """The injected clock's time, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)


class Provider(ABC):
    """A configured calendar. Subclasses set the capability flags."""

    # An instance may set read_only (an ics feed is, an ics file is not).
    read_only: bool = False
    batch: ClassVar[bool] = False
    #: How many writes :meth:`apply` sends per request when ``batch`` is set.
    batch_size: ClassVar[int] = 1

    def __init__(self, config: CalendarSettings, context: ProviderContext) -> None:
        self.config = config
        self.context = context

    @property
    def id(self) -> str:
        return str(self.config.id)

    @abstractmethod
    def describe(self) -> str:
        """Where this calendar is, for messages: a file, a URL, an account. No secrets."""

    @abstractmethod
    def changes(self, window: Window, token: str | None) -> Listing:
        """Events overlapping ``window`` (``token`` None), or the changes since ``token``.

        Raises :class:`~caldaemon.errors.CalendarError` (or its subclasses) when the
        calendar cannot be read; a provider whose token expired answers a full listing.
        """

    @abstractmethod
    def write_access(self) -> WriteAccess:
        """Whether buffers could be written here, asked of the service read-only: a
        permission, never a test write. Raises :class:`~caldaemon.errors.CalendarError`
        when the service cannot be asked."""

    def renew_authorization(self) -> str | None:
        """Refresh the calendar's sign-in now (an OAuth token), as the daemon will when the
        access token expires; what was renewed, for messages (no token), or None when the
        calendar has no such sign-in (a file, a feed, a password). Raises
        :class:`~caldaemon.errors.CalendarError` when it cannot be renewed."""
        return None

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Carry out writes; one result per write, in order. Batch providers override.

        Once a write fails because the service is unreachable (after its own retries), the
        rest are not tried this cycle: each would wait out the same outage again."""
        results: list[WriteResult] = []
        for write in writes:
            outage = next((r.error for r in results if isinstance(r.error, TransientError)), None)
            if outage is not None:
                results.append(WriteResult(write, error=outage))
                continue
            try:
                if isinstance(write, Create):
                    results.append(
                        WriteResult(write, remote=self.create(write.buffer, write.identity))
                    )
                elif isinstance(write, Update):
                    results.append(
                        WriteResult(
                            write, remote=self.update(write.remote, write.buffer, write.identity)
                        )
                    )
                else:
                    self.delete(write.remote)
                    results.append(WriteResult(write))
            except Error as exc:
                results.append(WriteResult(write, error=exc))
        return results

    def create(self, buffer: Buffer, identity: str) -> Remote:
        """Create a buffer event; idempotent for the same ``identity``."""
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        """Change a buffer we own, only if its etag still matches."""
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def delete(self, remote: Remote) -> None:
        """Delete a buffer we own, only if its etag still matches."""
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def close(self) -> None:
        """Release connections; the provider is not used afterwards."""


def token_file(
    configured: Path | None, state_dir: Path, clinician: str, calendar: str, kind: str
) -> Path:
    """Where a calendar's sign-in is kept: the calendar's ``token`` key, else
    ``state_dir/tokens/{clinician}-{calendar}.{kind}.json``."""
    if configured is not None:
        return Path(configured).expanduser()
    return Path(state_dir).expanduser() / "tokens" / f"{clinician}-{calendar}.{kind}.json"


class BatchProvider(Provider):
    """A provider whose writes all go through :meth:`apply`, which sends them in batches
    of ``batch_size``; single writes are batches of one."""

    batch = True

    @abstractmethod
    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        """Carry out writes in batches; one result per write, in order."""

    def create(self, buffer: Buffer, identity: str) -> Remote:
        return _remote_of(self.apply([Create(buffer, identity)])[0])

    def update(self, remote: Remote, buffer: Buffer, identity: str) -> Remote:
        return _remote_of(self.apply([Update(buffer, identity, remote)])[0])

    def delete(self, remote: Remote) -> None:
        result = self.apply([Delete("", remote)])[0]
        if result.error:
            raise result.error


def _remote_of(result: WriteResult) -> Remote:
    if result.error:
        raise result.error
    assert result.remote is not None
    return result.remote


def token_fields(token: str | None) -> dict[str, Any]:
    """A provider's own token (JSON it wrote earlier) as a dict; {} when absent or not
    ours, which makes the next listing a full one."""
    try:
        data = json.loads(token) if token else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
