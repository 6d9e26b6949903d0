"""Reconciliation, planned as a pure function: the buffers the rules want, against the
buffers caldaemon owns, against what the calendar shows → writes (DESIGN.md §5).

Safety comes first. An event is changed or deleted only when it carries the owner
marker *and* is recorded as ours, and only with the etag we wrote: a different etag means
the user edited it, and it is left alone from then on. A buffer the user deleted is not
recreated. Nothing that started before now is touched. When the listing cannot be
trusted (it failed, or came back empty where we knew events) nothing is deleted, and
never more than ``max_deletes`` in one cycle.

Crash safety: before a write is sent its intent is recorded (status ``creating`` or
``deleting``, or the ``pending`` times of an update). A cycle that finds an intent whose
write did land adopts the result instead of mistaking it for a user's change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from caldaemon.model import (
    Buffer,
    BufferStatus,
    Create,
    Delete,
    Event,
    OwnedBuffer,
    Remote,
    Update,
    Write,
)


@dataclass(frozen=True)
class Adopt:
    """A buffer on the calendar with our marker whose write was never committed (a crash
    between the two): recorded as ours, with the times it actually has."""

    identity: str
    buffer: Buffer
    remote: Remote


@dataclass(frozen=True)
class Mark:
    """The user took a buffer over: it is never touched again."""

    identity: str
    status: BufferStatus


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    adopt: list[Adopt] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    held_deletes: int = 0

    @property
    def empty(self) -> bool:
        return not (self.writes or self.adopt or self.marks or self.forget)


def _as_found(buffer: Buffer, remote: Event) -> Buffer:
    return Buffer(
        buffer.clinician,
        buffer.calendar,
        remote.start,
        remote.end,
        buffer.title,
        buffer.after,
        buffer.rule,
    )


def plan(
    desired: Sequence[Buffer],
    owned: Mapping[str, OwnedBuffer],
    listed: Mapping[str, Event],
    now: datetime,
    *,
    listing_trusted: bool,
    max_deletes: int,
) -> Plan:
    """``listed``: events on the buffers calendar that carry our marker, by identity."""
    result = Plan()
    wanted = {b.identity: b for b in desired if b.start >= now}
    for identity, buffer in wanted.items():
        record, remote = owned.get(identity), listed.get(identity)
        if record is None or record.status in (
            BufferStatus.CREATING,
            BufferStatus.DELETING,
            BufferStatus.DELETED,
        ):
            if remote is not None:
                result.adopt.append(
                    Adopt(identity, _as_found(buffer, remote), Remote(remote.id, remote.etag))
                )
            elif record is None or record.status == BufferStatus.DELETED or listing_trusted:
                revive = record is not None and record.status in (
                    BufferStatus.DELETING,
                    BufferStatus.DELETED,
                )
                result.writes.append(Create(buffer, identity, revive=revive))
            continue
        if record.status != BufferStatus.ACTIVE:
            continue
        if remote is None:
            if listing_trusted:
                result.marks.append(Mark(identity, BufferStatus.USER_DELETED))
            continue
        if remote.etag != record.etag:
            if record.pending == (remote.start, remote.end):
                result.adopt.append(
                    Adopt(identity, _as_found(buffer, remote), Remote(remote.id, remote.etag))
                )
            else:
                result.marks.append(Mark(identity, BufferStatus.USER_EDITED))
            continue
        if record.start >= now and (record.start, record.end, record.title) != (
            buffer.start,
            buffer.end,
            buffer.title,
        ):
            result.writes.append(Update(buffer, identity, Remote(record.remote_id, record.etag)))

    deletes: list[Delete] = []
    for identity, record in owned.items():
        if identity in wanted or record.status not in (
            BufferStatus.ACTIVE,
            BufferStatus.CREATING,
            BufferStatus.DELETING,
        ):
            continue
        remote = listed.get(identity)
        if remote is None:
            if record.status == BufferStatus.DELETING:
                result.marks.append(Mark(identity, BufferStatus.DELETED))  # our delete landed
            elif record.status == BufferStatus.CREATING:
                result.forget.append(identity)  # our create never landed
            elif listing_trusted and record.start >= now:
                result.marks.append(Mark(identity, BufferStatus.USER_DELETED))
            continue
        if record.start < now and record.status == BufferStatus.ACTIVE:
            continue
        ours = record.status == BufferStatus.CREATING or remote.etag == record.etag
        if not ours:
            result.marks.append(Mark(identity, BufferStatus.USER_EDITED))
        elif listing_trusted:
            deletes.append(Delete(identity, Remote(remote.id, remote.etag)))
    deletes.sort(key=lambda d: owned[d.identity].start)
    result.writes.extend(deletes[:max_deletes])
    result.held_deletes = max(0, len(deletes) - max_deletes)
    return result
