"""``caldaemon report``: the week as a picture (PNG, HTML) and as text or JSON, for one
clinician or, with ``--practice``, a director's view of aggregates (DESIGN.md §11). The
calendars are read live and only read; a calendar that cannot be read means no report for
that clinician (exit 2), never a week that looks emptier than it is."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
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
    from caldaemon.config import Settings
    from caldaemon.reports.week import WeekView

FORMATS = ("text", "json", "html", "png")


def parse_week(text: str | None, now: datetime) -> date:
    return parse_date(text, "--week") if text else now.date()


def week_views(
    settings: Settings, now: datetime, day: date, clinician_id: str | None
) -> tuple[list[WeekView], list[str], list[str]]:
    """The week containing ``day`` for each chosen clinician, read live; the problems
    met; the clinicians whose calendars could not be read (they get no view)."""
    from caldaemon.core.rules.context import week_start
    from caldaemon.service.weekly import read_week

    views: list[WeekView] = []
    problems: list[str] = []
    unread: list[str] = []
    for clinician in settings.chosen(clinician_id):
        start = week_start(day, clinician.rules.week_starts)
        read = read_week(settings, clinician, now, start)
        problems += [f"warning: {w}" for w in read.warnings]
        if read.view is None:
            problems += [f"error: {e}" for e in read.errors]
            unread.append(clinician.id)
            continue
        views.append(read.view)
    return views, problems, unread


@main.command()
@config_option
@now_option
@clinician_option
@click.option("--week", "week_text", metavar="DATE", help="A day of the week to show.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--practice",
    is_flag=True,
    help="Per clinician only aggregates (a director's view): no times, no events.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (PNG and HTML: needed when several clinicians are shown).",
)
@user_errors
def report(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    week_text: str | None,
    fmt: str,
    practice: bool,
    output: Path | None,
) -> None:
    """Show a week: each day's sessions by intensity, buffers and holds, working hours,
    the boundaries crossed, the day's load against its limit, and the week's hours. No
    event text. Exit 2 when a calendar could not be read."""
    from caldaemon.reports.text import week_text as render_text
    from caldaemon.reports.text import weeks_json

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    day = parse_week(week_text, now)
    views, problems, unread = week_views(settings, now, day, clinician_id)
    for line in problems:
        click.echo(line, err=True)
    failed = bool(unread)
    if practice:
        _practice(settings, views, unread, fmt, output, day)
    elif fmt == "text":
        _emit("\n".join(render_text(v) for v in views), output)
    elif fmt == "json":
        _emit(weeks_json(now, views) + "\n", output)
    else:
        _pictures(views, fmt, output, settings.classification.levels)
    sys.exit(2 if failed else 0)


def _practice(
    settings: Settings,
    views: list[WeekView],
    unread: list[str],
    fmt: str,
    output: Path | None,
    day: date,
) -> None:
    from caldaemon.core.rules.context import week_start
    from caldaemon.reports import practice

    if fmt == "png":
        raise Error("--practice: the format is text, html or json (a table, not a picture)")
    rows = {v.clinician: practice.row(v) for v in views}
    for clinician in unread:
        rows[clinician] = practice.unreadable(clinician, settings.clinician(clinician).name or "")
    ordered = [rows[c.id] for c in settings.clinicians if c.id in rows]
    first = settings.clinicians[0].rules.week_starts if settings.clinicians else "mon"
    week = views[0].start if views else week_start(day, first)
    render = {
        "text": practice.practice_text,
        "json": practice.practice_json,
        "html": practice.practice_html,
    }[fmt]
    _emit(render(week, ordered) + "\n", output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


def _pictures(
    views: list[WeekView], fmt: str, output: Path | None, levels: tuple[str, ...]
) -> None:
    from caldaemon.reports.html import week_html
    from caldaemon.reports.picture import week_png

    if output is None and (len(views) > 1 or sys.stdout.isatty()):
        raise Error(f"say where to write the {fmt.upper()}: --output week.{fmt}")
    for view in views:
        png = week_png(view, levels)
        data = png if fmt == "png" else week_html(view, png).encode()
        if output is None:
            sys.stdout.buffer.write(data)
            continue
        path = output
        if len(views) > 1:
            path = output.with_name(f"{output.stem}-{view.clinician}{output.suffix}")
        path.write_bytes(data)
        click.echo(f"{view.clinician}: {path}", err=True)
