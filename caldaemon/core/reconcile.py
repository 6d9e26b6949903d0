"""Reconciliation, planned as a pure function: the buffers the rules want, against the
buffers caldaemon owns, against what the calendar shows → writes and new statuses
(DESIGN.md §5). **The calendar is the truth; state is a memory of what caldaemon wrote.**

Evidence. A record's event is the listed event whose marker is bound to the record's
written identity (the provider sets ``Event.owner`` only when id and marker agree) and, once
caldaemon knows its id, has that id. Its content (instants, title, busy) is compared with
what caldaemon last wrote: an etag alone says nothing (services change them on their
own). Absence counts only when the listing is complete and trusted and the record's slot
lies inside the window it covered ("judged absent"); otherwise absence proves nothing.
Records before ``now`` or from ``view_end`` on are out of view: never changed, marked or
deleted (a shorter horizon or a clock step is no deletion).

The buffer lifecycle. ``W``: the rules want the buffer; ``L``: its event is listed;
``same``: L's content is what caldaemon last wrote (or the update under way landed);
``gone``: judged absent. Statuses are recomputed from evidence every cycle, so no guess
outlives the evidence ("user deleted" reverses when the event reappears)::

    record        evidence           wanted (W)                    not wanted
    ------------  -----------------  ----------------------------  -------------------------
    none          L, content = W     adopt: active                 leave alone (not ours to
                  L, content ≠ W     adopt: user_edited            judge without a record)
                  L, begun           create (next generation)      -
                  none               create (generation 0)         -
    creating      L, same            adopt: active                 delete
                  L, not same        adopt: user_edited            adopt: user_edited
                  gone               create again (same id, as     forget (never landed)
                                     first sent; W moved: update)
                  gone, slot begun   create (next generation)      forget
                    and W moved
                  unknown            wait                          wait
    active        L, same            update if W moved             delete (capped)
                  L, same, begun     create (next generation)      leave alone (history)
                  L, not same        mark user_edited              mark user_edited
                  gone               mark user_deleted             mark user_deleted
    deleting      L, same            adopt: active                 delete again
                  L, not same        adopt: user_edited            adopt: user_edited
                  gone               create (next generation)      mark deleted
    deleted       L (restored)       adopt: active / user_edited   adopt: active / edited
                  none               create (next generation)      -
    user_edited   L, same            adopt: active (edit undone)   adopt: active
                  L, not same        leave alone                   leave alone
                  gone               mark user_deleted             mark user_deleted
    user_deleted  L                  adopt: active / user_edited   adopt: active / edited
                  none               leave alone (not recreated)   -

A buffer that comes back after caldaemon deleted it is created as the next generation,
under a new id: a deleted event is never updated back to life (Google answers 403, Graph
keeps the old transactionId). So is a buffer wanted again in the future whose record and
event lie wholly in the past, or whose record was pruned and whose event has begun (a
session moved from last week to next, or away while its buffer ran): the past event stays
as it was.

A create sent again (its answer was lost and a trusted listing did not show it) repeats
what the first one sent, not what is wanted now: every provider answers a create that
meets its own live event "already there", so only then does the record say what the
calendar holds, whichever of the two landed. A session moved in between follows as an
update. Where the first slot has begun or left the view, the next generation is created
at the wanted slot instead (nothing is written before now).

Only one generation of a buffer lives on the calendar. Another generation of a recorded
buffer (a backup restored an old one; a create after the state was lost found nothing
yet) is a duplicate caldaemon made: when a trusted listing shows it unchanged (the
content caldaemon wrote or would write) and in view, it is deleted without touching the
record; changed, it is the user's. An event whose listed slot has passed is never
deleted, whatever its record says (an update whose answer was lost may have moved it).

Crash safety: before a write is sent its intent is recorded (status ``creating`` or
``deleting``, or the ``pending`` times of an update); the table above settles an intent
whose write did or did not land.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    Window,
    Write,
    content_digest,
    parse_written_identity,
    written_identity,
)

Status = BufferStatus


@dataclass(frozen=True)
class Adopt:
    """Record what the calendar shows as the buffer ``identity``: its event ``remote``, its
    generation and ``status``; ``buffer`` replaces the recorded content (None: keep it)."""

    identity: str
    generation: int
    status: BufferStatus
    remote: Remote
    buffer: Buffer | None = None


@dataclass(frozen=True)
class Mark:
    """A new status for a recorded buffer, from the evidence."""

    identity: str
    status: BufferStatus


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    adopt: list[Adopt] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    # Generation of each Create, by identity (the intent records it before the write).
    generations: dict[str, int] = field(default_factory=dict)
    # Written identities of deletes of duplicate generations: no record changes.
    duplicates: set[str] = field(default_factory=set)
    held_deletes: int = 0

    @property
    def empty(self) -> bool:
        return not (self.writes or self.adopt or self.marks or self.forget)


@dataclass(frozen=True)
class Evidence:
    """What one listing can say: the window it covered, and whether absence counts."""

    window: Window | None
    trusted: bool

    def judged_absent(self, record: OwnedBuffer) -> bool:
        return (
            self.trusted
            and self.window is not None
            and self.window.start <= record.start
            and record.end <= self.window.end
        )


def plan(
    desired: Sequence[Buffer],
    owned: Mapping[str, OwnedBuffer],
    listed: Sequence[Event],
    now: datetime,
    *,
    view_end: datetime,
    evidence: Evidence,
    max_deletes: int,
) -> Plan:
    """``listed``: the events of the buffers calendar; only those whose marker is bound
    (``owner`` set) are evidence."""
    result = Plan()
    bound: dict[str, Event] = {}
    for event in listed:
        if event.owner is not None:
            bound.setdefault(event.owner, event)
    wanted = {b.identity: b for b in desired if now <= b.start < view_end}
    deletes: list[tuple[datetime, Delete]] = []
    view = Window(now, view_end)
    for identity, buffer in wanted.items():
        record = owned.get(identity)
        if record is None:
            _unrecorded(identity, buffer, bound, now, result)
        elif _bygone(record, _event_of(record, bound), now):
            _create_next(identity, buffer, record.generation, bound, result)
        else:
            _recorded(record, buffer, _event_of(record, bound), evidence, view, result, deletes)
    for identity, record in owned.items():
        if identity in wanted or not now <= record.start < view_end:
            continue
        _recorded(record, None, _event_of(record, bound), evidence, view, result, deletes)
    if evidence.trusted:
        for owner, event in bound.items():
            if now <= event.start < view_end and _duplicate(owner, event, owned, wanted):
                deletes.append((event.start, Delete(owner, Remote(event.id, event.etag))))
                result.duplicates.add(owner)
    deletes.sort(key=lambda item: item[0])
    result.writes.extend(delete for _, delete in deletes[:max_deletes])
    result.held_deletes = max(0, len(deletes) - max_deletes)
    return result


def _event_of(record: OwnedBuffer, bound: Mapping[str, Event]) -> Event | None:
    """The listed event that is this record's: marker bound to its written identity and,
    once caldaemon knows its id, that id."""
    event = bound.get(record.written)
    if event is None or (record.remote_id and event.id != record.remote_id):
        return None
    return event


def _bygone(record: OwnedBuffer, event: Event | None, now: datetime) -> bool:
    """The record, and its event if listed, ended before now: history, never changed. So
    is its event, unchanged, once it has begun while the buffer is wanted from now on (the
    session moved away while its buffer ran): the wanted one cannot wait for it to end."""
    if event is not None and event.start < now and event.content == record.content:
        return True
    return record.end <= now and (event is None or event.end <= now)


def _create_next(
    identity: str, buffer: Buffer, after: int, bound: Mapping[str, Event], result: Plan
) -> None:
    """Create ``buffer`` as a generation after ``after`` and after any listed one."""
    listed = [
        parse_written_identity(owner)[1]
        for owner in bound
        if parse_written_identity(owner)[0] == identity
    ]
    generation = max([after, *listed]) + 1
    result.writes.append(Create(buffer, written_identity(identity, generation)))
    result.generations[identity] = generation


def _duplicate(
    owner: str, event: Event, owned: Mapping[str, OwnedBuffer], wanted: Mapping[str, Buffer]
) -> bool:
    """Another generation of a recorded buffer, unchanged from what caldaemon wrote or
    would write: a copy caldaemon made, not the user."""
    identity, generation = parse_written_identity(owner)
    record = owned.get(identity)
    if record is None or generation == record.generation:
        return False
    expected = {record.content}
    if identity in wanted:
        expected.add(_content(wanted[identity]))
    return event.content in expected


def _unrecorded(
    identity: str, buffer: Buffer, bound: Mapping[str, Event], now: datetime, result: Plan
) -> None:
    """No record (a first buffer, or the state was lost or pruned): adopt a marked event
    only when it holds what caldaemon would write now; otherwise it is the user's edit. One
    that has begun is history (a session moved away while its buffer ran, or from the past
    into the future): nothing before now is judged, and the wanted buffer, which starts
    from now on, cannot be it. The buffer is created as the generation after it."""
    found = [
        (parse_written_identity(owner)[1], event)
        for owner, event in bound.items()
        if parse_written_identity(owner)[0] == identity
    ]
    live = [(generation, event) for generation, event in found if event.start >= now]
    if not live:
        generation = max((g for g, _ in found), default=-1) + 1
        result.writes.append(Create(buffer, written_identity(identity, generation)))
        result.generations[identity] = generation
        return
    generation, event = max(live, key=lambda item: item[0])
    status = Status.ACTIVE if event.content == _content(buffer) else Status.USER_EDITED
    remote = Remote(event.id, event.etag)
    result.adopt.append(Adopt(identity, generation, status, remote, buffer))


def _content(buffer: Buffer) -> str:
    return content_digest(buffer.start, buffer.end, buffer.title)


def _recorded(
    record: OwnedBuffer,
    buffer: Buffer | None,
    event: Event | None,
    evidence: Evidence,
    view: Window,
    result: Plan,
    deletes: list[tuple[datetime, Delete]],
) -> None:
    """``view``: from now to the horizon's end (what may be written)."""
    identity, status = record.identity, record.status
    now = view.start
    gone = event is None and evidence.judged_absent(record)
    if event is None:
        if buffer is not None and (
            status is Status.DELETED or (status is Status.DELETING and gone)
        ):
            # Our delete landed (its answer may have been lost): the next generation.
            generation = record.generation + 1
            result.writes.append(Create(buffer, written_identity(identity, generation)))
            result.generations[identity] = generation
        elif not gone or status in (Status.DELETED, Status.USER_DELETED):
            return
        elif status is Status.CREATING:
            if buffer is not None:
                _create_again(record, buffer, view, result)
            else:
                result.forget.append(identity)
        elif status is Status.DELETING:
            result.marks.append(Mark(identity, Status.DELETED))
        else:
            result.marks.append(Mark(identity, Status.USER_DELETED))
        return

    remote = Remote(event.id, event.etag)
    landed = _landed_update(record, buffer, event)
    if event.start < now:
        # Its slot has passed (an update whose answer was lost moved it there): history.
        if landed is not None:
            result.adopt.append(Adopt(identity, record.generation, Status.ACTIVE, remote, landed))
        return
    if event.content != record.content and landed is None:
        if status is not Status.USER_EDITED:
            result.adopt.append(Adopt(identity, record.generation, Status.USER_EDITED, remote))
        return
    if buffer is None and status in (Status.ACTIVE, Status.DELETING, Status.CREATING):
        if status is not Status.ACTIVE or evidence.trusted:
            deletes.append((record.start, Delete(record.written, remote)))
        return
    if status is not Status.ACTIVE or landed is not None:
        result.adopt.append(Adopt(identity, record.generation, Status.ACTIVE, remote, landed))
        return
    if buffer is not None and record.start >= now and _content(buffer) != record.content:
        result.writes.append(Update(buffer, record.written, remote))


def _create_again(record: OwnedBuffer, buffer: Buffer, view: Window, result: Plan) -> None:
    """A create a trusted listing does not show, sent again. It repeats what the first one
    wrote: the answer "already there" (the first landed after all, the listing missed it)
    and a create that lands now then both leave the calendar holding what the record says,
    and a session moved since follows as an update. Where that slot has begun or left the
    view nothing is written: the next generation takes the wanted slot, beside what the
    first create may have left there as history."""
    identity = record.identity
    if _content(buffer) != record.content and not view.start <= record.start < view.end:
        generation = record.generation + 1
        result.writes.append(Create(buffer, written_identity(identity, generation)))
        result.generations[identity] = generation
        return
    first = replace(buffer, start=record.start, end=record.end, title=record.title)
    result.writes.append(Create(first, record.written))
    result.generations[identity] = record.generation


def _landed_update(record: OwnedBuffer, buffer: Buffer | None, event: Event) -> Buffer | None:
    """What an update under way wrote, when the calendar shows it landed (the crash came
    before its result was recorded)."""
    if record.pending is None:
        return None
    start, end = record.pending
    base = buffer or Buffer(
        record.clinician, record.calendar, record.start, record.end, record.title, record.after, ""
    )
    for title in dict.fromkeys((base.title, record.title)):
        written = replace(base, start=start, end=end, title=title)
        if event.content == _content(written):
            return written
    return None
