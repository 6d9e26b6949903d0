"""``caldaemon mark`` and ``caldaemon ack``: what the clinician tells caldaemon about an
event or a violation, kept in the daemon's state by id (DESIGN.md §10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from caldaemon.cli.app import (
    clinician_option,
    config_option,
    load_settings,
    main,
    now_option,
    parse_date,
    parse_now,
    user_errors,
)
from caldaemon.errors import Error

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings, Settings

# Enough of a fingerprint to name one violation among a clinician's (``check`` shows 8).
MIN_ID = 6


def _clinician(settings: Settings, clinician_id: str | None) -> ClinicianSettings:
    if clinician_id is not None:
        return settings.clinician(clinician_id)
    if len(settings.clinicians) == 1:
        return settings.clinicians[0]
    known = ", ".join(c.id for c in settings.clinicians)
    raise Error(f"several clinicians in the config: say which with --clinician ({known})")


@main.command()
@config_option
@now_option
@clinician_option
@click.option("--clear", "clear", is_flag=True, help="Forget the level given to EVENT_ID.")
@click.argument("event_id")
@click.argument("level", required=False)
@user_errors
def mark(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    clear: bool,
    event_id: str,
    level: str | None,
) -> None:
    """Give EVENT_ID (an id shown by `caldaemon events --json`) the level LEVEL, or
    --clear it. The id of a recurring event's series (its UID) marks every occurrence;
    an occurrence's own id marks only that one. Kept in caldaemon's state; ids only."""
    from caldaemon.model import Window
    from caldaemon.service.read import read_calendars
    from caldaemon.state import State

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    clinician = _clinician(settings, clinician_id)
    if not clear:
        levels = settings.classification.levels
        if level is None or level.lower() not in levels:
            raise Error(f"say which level: one of {', '.join(levels)}")
    horizon = settings.daemon.horizon
    events, _, errors = read_calendars(settings, clinician, Window(now - horizon, now + horizon))
    found = {
        f"{e.calendar}/{event_id}"
        for e in events
        if event_id in (e.id, e.series) or f"{e.calendar}/{e.id}" == event_id
    }
    key = next(iter(found)) if len(found) == 1 else event_id if "/" in event_id else None
    state = State(settings.state_location)
    try:
        with state.transaction() as tables:
            if clear:
                if not tables.marks.clear(clinician.id, key or event_id):
                    raise Error(f"{event_id} has no level given with caldaemon mark")
                click.echo(f"{event_id}: its level is read from the calendar again.")
                return
            if key is None:
                unread = f" ({len(errors)} calendar(s) could not be read)" if errors else ""
                raise Error(f"no event {event_id!r} within {horizon.days} days of now{unread}")
            assert level is not None
            tables.marks.set(clinician.id, key, level.lower(), now)
    finally:
        state.close()
    click.echo(f"{key}: marked {level.lower()}; `caldaemon check` shows what changes.")


@main.command()
@config_option
@now_option
@clinician_option
@click.option(
    "--until",
    "until_text",
    metavar="DATE",
    help="Accept it until this day (YYYY-MM-DD); for good without it.",
)
@click.argument("violation_id")
@user_errors
def ack(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    until_text: str | None,
    violation_id: str,
) -> None:
    """Accept the violation VIOLATION_ID (the id `caldaemon check` shows in brackets, or
    its full fingerprint from `check --json`): no notices about it, listed apart by
    check, not counted in exit codes."""
    from caldaemon.service.read import check as read_and_assess
    from caldaemon.state import State

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    clinician = _clinician(settings, clinician_id)
    until = None if until_text is None else parse_date(until_text, "--until")
    if len(violation_id) < MIN_ID:
        raise Error(f"give at least {MIN_ID} characters of the violation's id")
    [assessment] = read_and_assess(settings, now, clinician.id)
    if assessment.errors:
        raise Error("a calendar could not be read: run `caldaemon check` to see which")
    matching = {
        v.fingerprint
        for v in assessment.evaluation.violations
        if v.fingerprint.startswith(violation_id.lower())
    }
    if len(matching) != 1:
        raise Error(
            f"no violation {violation_id!r} now (see `caldaemon check`)"
            if not matching
            else f"{violation_id!r} names several violations: give more of its id"
        )
    fingerprint = matching.pop()
    state = State(settings.state_location)
    try:
        with state.transaction() as tables:
            tables.acks.add(clinician.id, fingerprint, until, now)
    finally:
        state.close()
    when = f" until {until.isoformat()}" if until else ""
    click.echo(f"{fingerprint[:8]}: accepted{when}; no notices about it.")
