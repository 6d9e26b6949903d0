"""The ``caldaemon`` command (DESIGN.md §4). Heavy modules are imported inside commands
so ``caldaemon --help`` starts fast."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__

if TYPE_CHECKING:
    from .config import Settings

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $CALDAEMON_CONFIG, else ~/.config/caldaemon/config.yaml).",
)
now_option = click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="Pretend it is this moment, e.g. 2026-11-30T08:00 (naive times use the config's zone).",
)
clinician_option = click.option(
    "--clinician", "clinician_id", metavar="ID", help="Only this clinician."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def user_errors(command: F) -> F:
    """Print caldaemon's errors as their message (no traceback) and exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import Error

        try:
            return command(*args, **kwargs)
        except Error as exc:
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _load(config_path: str | None) -> Settings:
    from . import config

    return config.load(config_path)


def _now(text: str | None, settings: Settings) -> datetime:
    from .errors import Error

    if not text:
        return datetime.now(settings.tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Error(f"--now: {text!r} is not an ISO 8601 time like 2026-11-30T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="caldaemon")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """caldaemon keeps a therapist's calendar inside the boundaries they set: it checks
    the schedule against your rules, places grounding and notes time after sessions, and
    sends kind notices when a boundary is crossed."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _print_problems(results: list[Any]) -> int:
    for result in results:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
    return 2 if any(r.errors for r in results) else 0


@main.command()
@config_option
@now_option
@clinician_option
@json_option
@user_errors
def check(
    config_path: str | None, now_text: str | None, clinician_id: str | None, as_json: bool
) -> None:
    """Read the calendars and show boundary violations and the buffers caldaemon would
    place. Changes nothing. Exit 0: all fine; 1: violations; 2: bad config or input."""
    from . import engine, report
    from .model import Severity

    settings = _load(config_path)
    now = _now(now_text, settings)
    results = engine.check(settings, now, clinician_id)
    problem_code = _print_problems(results)
    click.echo(
        report.check_json(now, results) if as_json else report.check_text(results), nl=not as_json
    )
    if as_json:
        click.echo()
    errors = any(v.severity is Severity.ERROR for r in results for v in r.evaluation.violations)
    sys.exit(problem_code or (1 if errors else 0))


@main.command()
@config_option
@now_option
@clinician_option
@json_option
@click.option("--redact", is_flag=True, help="Leave event titles out.")
@user_errors
def events(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    as_json: bool,
    redact: bool,
) -> None:
    """Show each event in the window with its kind, level and what decided them."""
    from . import engine, report

    settings = _load(config_path)
    now = _now(now_text, settings)
    results = engine.check(settings, now, clinician_id)
    code = _print_problems(results)
    click.echo(
        report.events_json(now, results, redact) if as_json else report.events_text(results, redact)
    )
    sys.exit(code)


@main.command()
@config_option
@json_option
@user_errors
def validate(config_path: str | None, as_json: bool) -> None:
    """Check the config file; print every problem with file:line, or a short summary.
    Exit 0: valid; 2: problems."""
    import json

    from .config_checks import RULE_IDS
    from .errors import ConfigError

    try:
        settings = _load(config_path)
    except ConfigError as exc:
        if not as_json:
            raise
        problems = [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message}
            for p in exc.problems
        ]
        click.echo(json.dumps({"ok": False, "problems": problems}))
        sys.exit(2)
    calendars = sum(len(c.calendars) for c in settings.clinicians)
    keys = {r for c in settings.clinicians for r in c.rules.model_fields_set}
    rules = sorted(
        r
        for r in RULE_IDS
        if r.split(".")[0] in keys
        and (r != "double_booked" or any(c.rules.double_booked for c in settings.clinicians))
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "config": str(settings.path),
                    "problems": [],
                    "clinicians": [c.id for c in settings.clinicians],
                    "calendars": calendars,
                    "rules": rules,
                }
            )
        )
        return
    click.echo(f"{settings.path}: ok")
    click.echo(
        f"  {len(settings.clinicians)} clinician(s): {', '.join(c.id for c in settings.clinicians)}"
    )
    click.echo(f"  {calendars} calendar(s); rules checked: {', '.join(rules) or 'none'}")


@main.command()
@config_option
@click.option("--once", is_flag=True, help="One cycle for every clinician, then exit.")
@click.option("--dry-run", is_flag=True, help="Log what would be done; write and send nothing.")
@now_option
@user_errors
def run(config_path: str | None, once: bool, dry_run: bool, now_text: str | None) -> None:
    """Run the service: poll calendars, place buffers, send notices."""
    from . import daemon

    settings = _load(config_path)
    clock = daemon.system_clock
    if now_text:
        pinned = _now(now_text, settings)
        clock = (lambda: pinned) if once else daemon.offset_clock(pinned)
    service = daemon.Daemon(config_path, dry_run=dry_run, clock=clock, settings=settings)
    if not once:
        sys.exit(service.serve())
    try:
        reports = service.once()
    finally:
        service.close()
    for report in reports:
        failed = ", ".join(str(e) for e in report.calendar_errors)
        click.echo(
            f"{report.clinician}: {report.calendars_ok} calendar(s) read"
            f"{f', {len(report.calendar_errors)} failed ({failed})' if failed else ''}; "
            f"{report.violations} violation(s), {report.notices} notice(s) queued; "
            f"buffers: {report.created} placed, {report.updated} moved, "
            f"{report.deleted} removed"
            + (" (dry run: nothing written or sent)" if service.cycle.dry_run else "")
        )
    if not service.cycle.dry_run and service.mailer is not None:
        click.echo(
            "notices: sent by email"
            if settings.notices.email
            else f"notices: written to {settings.daemon.state_dir / 'notices'}"
        )


@main.command()
@config_option
@json_option
@user_errors
def status(config_path: str | None, as_json: bool) -> None:
    """Show each calendar's last sync and error, open violations, and the outbox."""
    from . import status as status_module

    settings = _load(config_path)
    click.echo(status_module.render(settings, as_json))


@main.group()
def auth() -> None:
    """Sign a calendar account in (Google or Microsoft 365) and store its token."""


def _calendar_for(
    settings: Settings, clinician_id: str, calendar_id: str | None, provider: str
) -> tuple[Any, Any]:
    from .errors import Error

    clinician = settings.clinician(clinician_id)
    candidates = [
        c
        for c in clinician.calendars
        if c.provider == provider and (calendar_id is None or c.id == calendar_id)
    ]
    if len(candidates) != 1:
        known = ", ".join(c.id for c in clinician.calendars if c.provider == provider) or "none"
        if calendar_id is not None:
            problem = f"{clinician_id} has no {provider} calendar '{calendar_id}'"
        elif candidates:
            problem = f"{clinician_id} has several {provider} calendars; choose one with --calendar"
        else:
            problem = f"{clinician_id} has no {provider} calendar to sign in"
        raise Error(f"{problem} ({provider} calendars: {known})")
    return clinician, candidates[0]


def _resume(settings: Settings, clinician_id: str, calendar_id: str) -> None:
    """A calendar paused for an expired authorization is read again from the next cycle."""
    from .daemon import state_path
    from .state import State

    if state_path(settings).exists():
        state = State(state_path(settings))
        try:
            with state.transaction() as db:
                db.execute(
                    "UPDATE calendars SET paused=NULL, last_error_at=NULL WHERE "
                    "clinician=? AND calendar=?",
                    (clinician_id, calendar_id),
                )
                db.execute(
                    "DELETE FROM problems WHERE key LIKE ?",
                    (f"calendar:{clinician_id}/{calendar_id}:%",),
                )
        finally:
            state.close()


@auth.command("google")
@config_option
@click.option("--clinician", "clinician_id", required=True, metavar="ID")
@click.option("--calendar", "calendar_id", metavar="ID", help="Which Google calendar (if several).")
@click.option(
    "--port",
    default=8085,
    show_default=True,
    help="Local port for Google's redirect (forward it when signing in over SSH).",
)
@user_errors
def auth_google(
    config_path: str | None, clinician_id: str, calendar_id: str | None, port: int
) -> None:
    """Sign in to Google Calendar (installed-app flow; prints the URL to open)."""
    from .providers.google_auth import authorize

    settings = _load(config_path)
    clinician, calendar = _calendar_for(settings, clinician_id, calendar_id, "google")
    token = authorize(settings, clinician, calendar, port=port, echo=click.echo)
    _resume(settings, clinician.id, calendar.id)
    click.echo(f"Signed in. The token is kept in {token}.")


@auth.command("outlook")
@config_option
@click.option("--clinician", "clinician_id", required=True, metavar="ID")
@click.option(
    "--calendar", "calendar_id", metavar="ID", help="Which Outlook calendar (if several)."
)
@user_errors
def auth_outlook(config_path: str | None, clinician_id: str, calendar_id: str | None) -> None:
    """Sign in to Microsoft 365 / Outlook (device-code flow; prints the code to enter)."""
    from .providers.outlook_auth import authorize

    settings = _load(config_path)
    clinician, calendar = _calendar_for(settings, clinician_id, calendar_id, "outlook")
    token = authorize(settings, clinician, calendar, echo=click.echo)
    _resume(settings, clinician.id, calendar.id)
    click.echo(f"Signed in. The token cache is kept in {token}.")
