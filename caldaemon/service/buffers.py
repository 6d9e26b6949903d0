"""Carrying out a reconciliation plan (:mod:`caldaemon.core.reconcile`) on the buffers
calendar: the plan's adoptions and the intent of every write are committed first, then
the writes go out in batches, then their results are recorded. The single place where
planned writes are sent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from caldaemon import failpoints
from caldaemon.core.reconcile import Evidence, Plan, plan
from caldaemon.errors import (
    CalendarError,
    CalendarPaused,
    LeaseLost,
    RemoteGone,
    WriteConflict,
)
from caldaemon.model import (
    Buffer,
    BufferStatus,
    Create,
    Delete,
    Event,
    Update,
    Write,
    WriteResult,
    parse_written_identity,
)
from caldaemon.providers.base import Provider
from caldaemon.state import State, Tables
from caldaemon.state.events import Cached

log = logging.getLogger("caldaemon.cycle")


@dataclass
class Outcome:
    """What reconciling one clinician's buffers did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    held_deletes: int = 0
    # The calendar refused the writes for a while (usage limits, a revoked sign-in): it
    # is paused as a failed read would be.
    refused: CalendarPaused | None = None


@dataclass(frozen=True)
class Target:
    """The buffers calendar of one clinician, as this cycle read it."""

    clinician: str
    calendar: str
    provider: Callable[[], Provider]
    evidence: Evidence


def reconcile(
    state: State,
    target: Target,
    desired: list[Buffer],
    events: list[Event],
    *,
    now: datetime,
    view_end: datetime,
    max_deletes: int,
    dry_run: bool,
    deadline: datetime,
    clock: Callable[[], datetime],
) -> Outcome:
    outcome = Outcome()
    clinician, calendar = target.clinician, target.calendar
    with state.read() as tables:
        owned = tables.buffers.owned(clinician, calendar)
    listed = [e for e in events if e.calendar == calendar]
    actions = plan(
        desired,
        owned,
        listed,
        now,
        view_end=view_end,
        evidence=target.evidence,
        max_deletes=max_deletes,
    )
    outcome.held_deletes = actions.held_deletes
    if actions.held_deletes:
        log.warning(
            "%s: %d buffer deletions held back (max_deletes_per_cycle)",
            clinician,
            actions.held_deletes,
        )
    if actions.empty:
        return outcome
    if dry_run:
        for write in actions.writes:
            log.warning("dry run: would %s", _describe(write))
        return outcome
    _record_plan(state, clinician, calendar, actions, now, clock())
    if not actions.writes:
        return outcome
    provider = target.provider()
    failpoints.reach("before-write")
    results: list[WriteResult] = []
    size = max(provider.batch_size, 1)
    for offset in range(0, len(actions.writes), size):
        if clock() > deadline:
            log.warning("%s: the cycle ran out of time; the other writes wait", clinician)
            break
        try:
            results.extend(provider.apply(actions.writes[offset : offset + size]))
        except CalendarError as exc:
            log.warning("%s: writing buffers to %s failed: %s", clinician, calendar, exc)
            break
        if any(isinstance(r.error, CalendarError) for r in results):
            break  # the calendar is unreachable or refusing: the rest waits a cycle
    outcome.refused = next((r.error for r in results if isinstance(r.error, CalendarPaused)), None)
    failpoints.reach("after-write")
    with state.transaction() as tables:
        for result in results:
            _record_result(tables, clinician, calendar, result, now, outcome, actions.duplicates)
    failpoints.reach("after-commit")
    return outcome


def _record_plan(
    state: State, clinician: str, calendar: str, actions: Plan, now: datetime, moment: datetime
) -> None:
    """Adoptions, new statuses and the intent of every write, committed before any write
    is sent (see core/reconcile.py on crash safety); on a shared state, only while this
    instance still holds the clinician at ``moment``
    (:meth:`caldaemon.state.leases.Leases.confirm`)."""
    with state.transaction() as tables:
        if state.holder is not None and not tables.leases.confirm(clinician, state.holder, moment):
            raise LeaseLost(clinician)
        for adopt in actions.adopt:
            if adopt.buffer is not None:
                tables.buffers.save(
                    clinician,
                    calendar,
                    adopt.identity,
                    adopt.buffer,
                    remote_id=adopt.remote.id,
                    etag=adopt.remote.etag,
                    generation=adopt.generation,
                    status=adopt.status,
                    now=now,
                )
            else:
                tables.buffers.settle(
                    clinician,
                    adopt.identity,
                    status=adopt.status,
                    remote_id=adopt.remote.id,
                    etag=adopt.remote.etag,
                    now=now,
                )
            _log_status(clinician, adopt.identity, adopt.status)
        for mark in actions.marks:
            tables.buffers.set_status(clinician, mark.identity, mark.status, now)
            _log_status(clinician, mark.identity, mark.status)
        tables.buffers.forget(clinician, actions.forget)
        for write in actions.writes:
            identity = parse_written_identity(write.identity)[0]
            if isinstance(write, Create):
                tables.buffers.intend_create(
                    clinician,
                    calendar,
                    identity,
                    write.buffer,
                    generation=actions.generations[identity],
                    now=now,
                )
            elif isinstance(write, Update):
                tables.buffers.intend_update(clinician, identity, write.buffer)
            elif write.identity not in actions.duplicates:
                tables.buffers.intend_delete(clinician, identity)


def _log_status(clinician: str, identity: str, status: BufferStatus) -> None:
    if status in (BufferStatus.USER_EDITED, BufferStatus.USER_DELETED):
        log.info(
            "%s: buffer %s is %s; caldaemon leaves it alone",
            clinician,
            identity[:8],
            status.replace("_", " "),
        )


def _record_result(
    tables: Tables,
    clinician: str,
    calendar: str,
    result: WriteResult,
    now: datetime,
    outcome: Outcome,
    duplicates: set[str],
) -> None:
    """A write's result. Refusals prove nothing about the user: a precondition that
    failed (412) or an event that was not there is settled by the next listing, from
    content (DESIGN.md §5)."""
    write = result.write
    identity, generation = parse_written_identity(write.identity)
    if isinstance(write, Delete) and write.identity in duplicates:
        # Another generation of a recorded buffer: its record is about the live one.
        if result.error is None or isinstance(result.error, RemoteGone):
            tables.events.remove(clinician, calendar, [write.remote.id])
            outcome.deleted += result.error is None
        return
    if isinstance(write, Delete):
        if result.error is None or isinstance(result.error, RemoteGone):
            # Kept as ``deleted``: if the session comes back, so does the buffer.
            tables.buffers.deleted(clinician, identity, now)
            tables.events.remove(clinician, calendar, [write.remote.id])
            outcome.deleted += result.error is None
        return
    if isinstance(write, Create) and isinstance(result.error, RemoteGone):
        # The id belongs to a deleted event: the next cycle writes the next generation.
        tables.buffers.set_status(clinician, identity, BufferStatus.DELETED, now)
        return
    if isinstance(write, Create) and isinstance(result.error, WriteConflict):
        # Its id holds an event that is not a buffer of caldaemon's: never overwrite it.
        tables.buffers.set_status(clinician, identity, BufferStatus.USER_EDITED, now)
        return
    if result.error is not None:
        # The intent stays recorded; the next cycle's listing settles it. A refused
        # precondition is routine (services change etags on their own): not a warning.
        level = logging.INFO if isinstance(result.error, WriteConflict) else logging.WARNING
        log.log(level, "%s: %s failed: %s", clinician, _describe(write), result.error)
        return
    assert result.remote is not None
    tables.buffers.save(
        clinician,
        calendar,
        identity,
        write.buffer,
        remote_id=result.remote.id,
        etag=result.remote.etag,
        generation=generation,
        now=now,
    )
    # Mirrored in the cache so the next plan sees it even before the calendar's next
    # listing reports it.
    mirrored = Event(
        calendar=calendar,
        id=result.remote.id,
        start=write.buffer.start,
        end=write.buffer.end,
        title=write.buffer.title,
        owner=write.identity,
        marked=True,
        etag=result.remote.etag,
    )
    tables.events.store(clinician, [Cached(mirrored, title_matches=False)])
    if isinstance(write, Create):
        outcome.created += 1
    else:
        outcome.updated += 1


def _describe(write: Write) -> str:
    if isinstance(write, Delete):
        return f"delete buffer {write.identity[:8]}"
    verb = "create" if isinstance(write, Create) else "move"
    b = write.buffer
    return f"{verb} buffer {write.identity[:8]} {b.start.isoformat()}–{b.end.isoformat()}"
