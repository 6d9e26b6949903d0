"""The pure middle of caldaemon: events → classification → rules → violations and wanted
buffers; plus the read-only pass over live calendars that ``check`` and ``events`` run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from . import rules
from .classify import classify_all
from .config import ClinicianSettings, Settings
from .errors import CalendarError
from .model import Classified, Event
from .providers import open_provider
from .providers.base import ProviderContext, Window

log = logging.getLogger("caldaemon")


@dataclass
class Assessment:
    """One clinician's calendars seen at ``now``."""

    clinician: ClinicianSettings
    now: datetime
    classified: list[Classified]
    evaluation: rules.Evaluation
    warnings: list[str] = field(default_factory=list)
    errors: list[CalendarError] = field(default_factory=list)


def busy_calendars(clinician: ClinicianSettings) -> frozenset[str]:
    return frozenset(c.id for c in clinician.calendars if c.use == "busy")


def assess(
    settings: Settings, clinician: ClinicianSettings, events: Iterable[Event], now: datetime
) -> Assessment:
    """Classify and evaluate: pure, no I/O."""
    classified = classify_all(events, settings.classification, busy_calendars(clinician))
    classified.sort(key=lambda c: (c.event.start, c.event.end, c.event.key))
    evaluation = rules.evaluate(
        clinician, settings.classification, classified, now, settings.daemon.horizon
    )
    return Assessment(clinician, now, classified, evaluation)


def provider_context(
    settings: Settings,
    clinician: ClinicianSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> ProviderContext:
    return ProviderContext(
        clinician=clinician.id,
        tz=clinician.tz,
        state_dir=settings.daemon.state_dir,
        self_addresses=frozenset([clinician.email] if clinician.email else []),
        buffers_to=clinician.buffers_to,
        sleep=sleep,
    )


def read_calendars(
    settings: Settings, clinician: ClinicianSettings, window: Window
) -> tuple[list[Event], list[str], list[CalendarError]]:
    """Read every calendar of a clinician in full. One that fails is reported and the
    others still count."""
    events: list[Event] = []
    warnings: list[str] = []
    errors: list[CalendarError] = []
    context = provider_context(settings, clinician)
    for calendar in clinician.calendars:
        provider = open_provider(calendar, context)
        try:
            listing = provider.list(window, None)
        except CalendarError as exc:
            errors.append(exc)
            continue
        finally:
            provider.close()
        events.extend(listing.events)
        warnings.extend(listing.warnings)
    return events, warnings, errors


def check(settings: Settings, now: datetime, clinician_id: str | None = None) -> list[Assessment]:
    """Read the calendars live (no state) and evaluate: what ``caldaemon check`` shows."""
    chosen = [settings.clinician(clinician_id)] if clinician_id else list(settings.clinicians)
    results = []
    for clinician in chosen:
        start, end = rules.window(clinician, now, settings.daemon.horizon)
        events, warnings, errors = read_calendars(settings, clinician, Window(start, end))
        assessment = assess(settings, clinician, events, now)
        assessment.warnings.extend(warnings)
        assessment.errors.extend(errors)
        results.append(assessment)
    return results
