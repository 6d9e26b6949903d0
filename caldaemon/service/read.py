"""The read-only pass over live calendars that ``check`` and ``events`` run: every calendar
read in full (no state), then assessed. A calendar that fails is reported and the others
still count."""

from __future__ import annotations

from datetime import datetime

from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import Assessment, assess, window
from caldaemon.errors import CalendarError
from caldaemon.model import Event, Window
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context


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
    """Read the calendars live (no state) and evaluate: what ``caldaemon check`` shows."""
    chosen = [settings.clinician(clinician_id)] if clinician_id else list(settings.clinicians)
    horizon = settings.daemon.horizon
    results = []
    for clinician in chosen:
        start, end = window(clinician, now, horizon)
        events, warnings, errors = read_calendars(settings, clinician, Window(start, end))
        assessment = assess(clinician, settings.classification, events, now, horizon)
        assessment.warnings.extend(warnings)
        assessment.errors.extend(errors)
        results.append(assessment)
    return results
