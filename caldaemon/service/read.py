"""The read-only pass over live calendars that ``check`` and ``events`` run: every calendar
read in full (no state), then assessed. A calendar that fails is reported and the others
still count."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import Assessment, assess, window
from caldaemon.errors import CalendarError
from caldaemon.model import BufferStatus, Event, Window
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context
from caldaemon.state import State


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


def check(
    settings: Settings, now: datetime, clinician_id: str | None = None
) -> list[Assessment[ClinicianSettings]]:
    """Read the calendars live and evaluate: what ``caldaemon check`` shows. The state is
    only read (when the daemon has one), so the buffers shown are those ``run`` would
    place: not those the user edited or deleted."""
    chosen = [settings.clinician(clinician_id)] if clinician_id else list(settings.clinicians)
    horizon = settings.daemon.horizon
    left_alone = _left_alone(settings)
    results = []
    for clinician in chosen:
        start, end = window(clinician, now, horizon)
        events, warnings, errors = read_calendars(settings, clinician, Window(start, end))
        assessment = assess(clinician, settings.classification, events, now, horizon)
        theirs = left_alone.get(clinician.id, frozenset())
        if theirs:
            buffers = tuple(b for b in assessment.evaluation.buffers if b.identity not in theirs)
            assessment.evaluation = replace(assessment.evaluation, buffers=buffers)
        assessment.warnings.extend(warnings)
        assessment.errors.extend(errors)
        results.append(assessment)
    return results


def _left_alone(settings: Settings) -> dict[str, frozenset[str]]:
    """By clinician: the buffers the user took over (edited or deleted), as the daemon's
    state records them; none when there is no state yet."""
    if not settings.state_file.exists():
        return {}
    state = State(settings.state_file, read_only=True)
    try:
        with state.read() as tables:
            owned = tables.buffers.all()
    finally:
        state.close()
    theirs: dict[str, set[str]] = {}
    for buffer in owned:
        if buffer.status in (BufferStatus.USER_EDITED, BufferStatus.USER_DELETED):
            theirs.setdefault(buffer.clinician, set()).add(buffer.identity)
    return {clinician: frozenset(ids) for clinician, ids in theirs.items()}
