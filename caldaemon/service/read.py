"""The read-only pass over live calendars that ``check`` and ``events`` run: every calendar
read in full (no state), then assessed. A calendar that fails is reported and the others
still count."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import Assessment, assess, window
from caldaemon.errors import CalendarError
from caldaemon.model import BufferStatus, Event, Window
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context
from caldaemon.state import State

# Allocations between two collections of the youngest generation while calendars are read
# in bulk (CPython's default: 700). A year of a practice keeps hundreds of thousands of
# objects alive at once, and each full collection walks all of them again: with the
# default, ``check`` over 50,000 sessions spent about a tenth of its CPU collecting.
BULK_YOUNG_COLLECTION = 10_000


def read_calendars(
    settings: Settings, clinician: ClinicianSettings, span: Window
) -> tuple[list[Event], list[str], list[CalendarError]]:
    """Every event of a clinician's calendars in ``span``, the warnings of reading them,
    and the calendars that could not be read."""
    events: list[Event] = []
    warnings: list[str] = []
    errors: list[CalendarError] = []
    context = provider_context(settings, clinician)
    for calendar in clinician.calendars:
        provider = open_provider(calendar, context)
        try:
            listing = provider.changes(span, None)
        except CalendarError as exc:
            errors.append(exc)
            continue
        finally:
            provider.close()
        events.extend(listing.events)
        warnings.extend(listing.warnings)
    return events, warnings, errors


@dataclass(frozen=True)
class Remembered:
    """What the daemon's state says of one clinician that changes what ``check`` shows."""

    left_alone: frozenset[str] = frozenset()  # buffers the user edited or deleted
    marks: dict[str, str] = field(default_factory=dict)  # levels given by caldaemon mark
    acked: frozenset[str] = frozenset()  # violations accepted by caldaemon ack


def check(
    settings: Settings,
    now: datetime,
    clinician_id: str | None = None,
    horizon: timedelta | None = None,
) -> list[Assessment[ClinicianSettings]]:
    """Read the calendars live and evaluate: what ``caldaemon check`` shows. The state is
    only read (when the daemon has one), so what is shown is what ``run`` would do: not
    the buffers the user took over, with the levels marked and the violations accepted."""
    chosen = settings.chosen(clinician_id)
    horizon = horizon or settings.daemon.horizon
    with fewer_collections():
        return [_check_one(settings, clinician, now, horizon) for clinician in chosen]


def _check_one(
    settings: Settings, clinician: ClinicianSettings, now: datetime, horizon: timedelta
) -> Assessment[ClinicianSettings]:
    """One clinician's calendars read and assessed, as :func:`check` shows them."""
    start, end = window(clinician, now, horizon)
    events, warnings, errors = read_calendars(settings, clinician, Window(start, end))
    memory = remembered(settings, clinician.id, now.astimezone(clinician.tz).date())
    assessment = assess(
        clinician,
        settings.classification,
        events,
        now,
        horizon,
        marks=memory.marks,
        acked=memory.acked,
    )
    if memory.left_alone:
        kept = memory.left_alone
        assessment.evaluation = replace(
            assessment.evaluation,
            buffers=tuple(b for b in assessment.evaluation.buffers if b.identity not in kept),
            holds=tuple(b for b in assessment.evaluation.holds if b.identity not in kept),
        )
    assessment.warnings.extend(warnings)
    assessment.errors.extend(errors)
    return assessment


def remembered(settings: Settings, clinician: str, today: date) -> Remembered:
    """What the daemon's state records for ``clinician``; nothing when it has no state."""
    if not settings.has_state:
        return Remembered()
    state = State(settings.state_location, read_only=True)
    try:
        with state.read() as tables:
            owned = tables.buffers.owned(clinician)
            marks = tables.marks.of(clinician)
            acked = tables.acks.active(clinician, today)
    finally:
        state.close()
    taken = {
        b.identity
        for b in owned.values()
        if b.status in (BufferStatus.USER_EDITED, BufferStatus.USER_DELETED)
    }
    return Remembered(frozenset(taken), marks, frozenset(acked))


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage less often while calendars are read and assessed in bulk (see
    :data:`BULK_YOUNG_COLLECTION`); the thresholds before are restored afterwards. What
    is collected does not change: only how often the collector looks."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], BULK_YOUNG_COLLECTION), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
