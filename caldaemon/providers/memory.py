"""``provider: memory``: a calendar held in this process, by name. It behaves as a calendar
service does (ids, etags that change on every write, a change log behind the sync token,
If-Match on writes, deletions reported as removed ids) and is what the cycle tests and
benchmarks run against when the point is caldaemon's own logic rather than a service's
quirks. Not listed among the providers a clinician chooses from.

A store is found by its name (``store:`` in the config); tests act on it as the calendar's
user would through :class:`MemoryStore`, never through the provider.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from caldaemon.errors import CalendarError, RemoteGone, WriteConflict
from caldaemon.fields import Name
from caldaemon.model import (
    Buffer,
    Create,
    Event,
    Remote,
    Update,
    Window,
    Write,
    WriteResult,
    content_digest,
)
from caldaemon.providers.base import (
    BatchProvider,
    Listing,
    ProviderContext,
    WriteAccess,
    token_fields,
)
from caldaemon.providers.settings import CalendarSettings


class MemoryCalendar(CalendarSettings):
    provider: Literal["memory"]
    store: Name


@dataclass
class _Change:
    version: int
    event_id: str


class MemoryStore:
    """One calendar's events, with a version that grows on every change."""

    _named: ClassVar[dict[str, MemoryStore]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, Event] = {}
        self.version = 0
        self.changes: list[_Change] = []
        # What the service answers every request with while it is down or refusing.
        self.refusal: CalendarError | None = None
        # How many times the calendar was read (one request per listing).
        self.reads = 0
        # What the service says of writing here (a calendar shared read-only says False).
        self.writable = True

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        """The store of this name, made on first use."""
        with cls._named_lock:
            return cls._named.setdefault(name, MemoryStore())

    @classmethod
    def forget(cls, name: str) -> None:
        with cls._named_lock:
            cls._named.pop(name, None)

    def _bump(self, event_id: str) -> str:
        self.version += 1
        self.changes.append(_Change(self.version, event_id))
        return f"v{self.version}"

    def put(self, event: Event) -> Event:
        """Add or replace an event as its user would; it gets a new etag."""
        with self.lock:
            stored = replace(event, etag=self._bump(event.id))
            self.events[event.id] = stored
            return stored

    def remove(self, event_id: str) -> None:
        with self.lock:
            if self.events.pop(event_id, None) is not None:
                self._bump(event_id)

    def get(self, event_id: str) -> Event | None:
        with self.lock:
            return self.events.get(event_id)

    def all(self) -> list[Event]:
        with self.lock:
            return sorted(self.events.values(), key=lambda e: (e.start, e.id))


def buffer_id(identity: str) -> str:
    return f"caldaemon-{identity}"


def _as_listed(event: Event) -> Event:
    """The marker counts as caldaemon's only on the id caldaemon's write gave the event; a
    copy under another id is the user's (DESIGN.md §5)."""
    if event.owner is None:
        return event
    bound = event.id == buffer_id(event.owner)
    return replace(event, owner=event.owner if bound else None, marked=True)


class MemoryProvider(BatchProvider):
    batch_size = 50
    config: MemoryCalendar

    def __init__(self, config: MemoryCalendar, context: ProviderContext) -> None:
        super().__init__(config, context)
        self.store = MemoryStore.named(config.store)

    def describe(self) -> str:
        return f"memory calendar '{self.config.store}'"

    def changes(self, window: Window, token: str | None) -> Listing:
        """Everything in ``window``, or what changed since ``token`` (a version and the
        window it was listed for; another window means a full listing)."""
        known = token_fields(token)
        listed = [window.start.isoformat(), window.end.isoformat()]
        with self.store.lock:
            self.store.reads += 1
            if self.store.refusal is not None:
                raise self.store.refusal
            version, events = self.store.version, self.store.events
            since = known.get("version")
            if not isinstance(since, int) or known.get("window") != listed or since > version:
                found = tuple(
                    _as_listed(e) for e in events.values() if window.overlaps(e.start, e.end)
                )
                return Listing(found, (), self._token(version, listed), full=True)
            # The log is in version order: only its tail since the token is read.
            first = bisect_right(self.store.changes, since, key=lambda c: c.version)
            touched = {c.event_id for c in self.store.changes[first:]}
            current = tuple(
                _as_listed(events[i])
                for i in sorted(touched)
                if i in events and window.overlaps(events[i].start, events[i].end)
            )
            removed = tuple(sorted(i for i in touched if i not in events))
        return Listing(current, removed, self._token(version, listed), full=False)

    def write_access(self) -> WriteAccess:
        with self.store.lock:
            if self.store.refusal is not None:
                raise self.store.refusal
            allowed = self.store.writable
        return WriteAccess(allowed, "the store is " + ("writable" if allowed else "read-only"))

    @staticmethod
    def _token(version: int, window: list[str]) -> str:
        return json.dumps({"version": version, "window": window})

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        with self.store.lock:
            if self.store.refusal is not None:
                return [WriteResult(write, error=self.store.refusal) for write in writes]
            return [self._one(write) for write in writes]

    def _one(self, write: Write) -> WriteResult:
        events = self.store.events
        if isinstance(write, Create):
            event_id = buffer_id(write.identity)
            existing = events.get(event_id)
            if existing is not None:
                if existing.owner != write.identity:
                    return WriteResult(write, error=WriteConflict(self.id, event_id))
                b, now = write.buffer, self.context.now()
                if existing.content != content_digest(b.start, b.end, b.title) and (
                    existing.end <= now
                ):
                    # Ours, not what this create writes, and over: an earlier life of the
                    # buffer (its record pruned). The core writes the next generation.
                    return WriteResult(write, error=RemoteGone(self.id, event_id))
                return WriteResult(write, remote=Remote(event_id, existing.etag))
            return WriteResult(write, remote=self._store(event_id, write.buffer, write.identity))
        existing = events.get(write.remote.id)
        if existing is None:
            return WriteResult(write, error=RemoteGone(self.id, write.remote.id))
        if existing.etag != write.remote.etag:  # If-Match
            return WriteResult(write, error=WriteConflict(self.id, write.remote.id))
        if isinstance(write, Update):
            remote = self._store(write.remote.id, write.buffer, write.identity)
            return WriteResult(write, remote=remote)
        del events[write.remote.id]
        self.store._bump(write.remote.id)
        return WriteResult(write)

    def _store(self, event_id: str, buffer: Buffer, identity: str) -> Remote:
        etag = self.store._bump(event_id)
        self.store.events[event_id] = Event(
            calendar=self.id,
            id=event_id,
            start=buffer.start,
            end=buffer.end,
            title=buffer.title,
            all_day=buffer.all_day,
            owner=identity,
            marked=True,
            etag=etag,
        )
        return Remote(event_id, etag)
