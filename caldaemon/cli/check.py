"""``caldaemon check`` and ``caldaemon events``: the calendars read live, read-only."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from caldaemon.cli.app import (
    clinician_option,
    config_option,
    json_option,
    load_settings,
    main,
    now_option,
    parse_now,
    user_errors,
)

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings
    from caldaemon.core.assess import Assessment


def _print_problems(results: list[Assessment[ClinicianSettings]]) -> int:
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
    place. Changes nothing. Exit 0: all fine; 1: violations; 2: bad config, or a calendar
    that could not be read (nothing is then judged for its clinician)."""
    from caldaemon.cli import render
    from caldaemon.model import Severity
    from caldaemon.service.read import check as read_and_assess
    from caldaemon.service.read import fewer_collections

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    with fewer_collections():  # the whole year stays alive until it is printed
        results = read_and_assess(settings, now, clinician_id)
        problem_code = _print_problems(results)
        shown = render.check_json(now, results) if as_json else render.check_text(results)
    click.echo(shown, nl=not as_json)
    if as_json:
        click.echo()
    # Accepted exceptions (an ok tag, caldaemon ack) are listed apart, not counted.
    errors = any(
        v.severity is Severity.ERROR and not v.accepted
        for r in results
        if not r.errors
        for v in r.evaluation.violations
    )
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
    from caldaemon.cli import render
    from caldaemon.service.read import check as read_and_assess

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    results = read_and_assess(settings, now, clinician_id)
    code = _print_problems(results)
    click.echo(
        render.events_json(now, results, redact) if as_json else render.events_text(results, redact)
    )
    sys.exit(code)
