"""``caldaemon hours``: direct client hours and the hours of each kind per week, per month
and in total, as a table or CSV (DESIGN.md §11): what licensure and supervision logs ask
for. Times, kinds, levels, counts and hours only; never an event's text."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date, datetime, time, timedelta
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
from caldaemon.text import MONTH_NAMES

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings
    from caldaemon.core.hours import HoursLog, Period
    from caldaemon.service.history import Source

# A range longer than this is a typo (and would expand ten years of recurring events).
LONGEST_RANGE = timedelta(days=3660)
# Column titles of the kinds, in core.hours.COUNTED's order.
_TITLES = ("Client", "Supervision", "Peer support", "Admin", "Personal")
_CSV_NAMES = ("client", "supervision", "peer_support", "admin", "personal")


def _date(text: str | None, option: str) -> date | None:
    return None if text is None else parse_date(text, option)


def default_first(last: date) -> date:
    """Twelve calendar months ending with ``last``'s: the first day of the month eleven
    months before it."""
    months = last.year * 12 + last.month - 1 - 11
    return date(months // 12, months % 12 + 1, 1)


def _range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The dates to count, inclusive; nothing after today (hours log what happened)."""
    end = min(last or today, today)
    start = first or default_first(end)
    if start > today:
        raise Error(f"--from {start} is after today ({today}): hours counts what has happened")
    if start > end:
        raise Error(f"--from {start} is after --to {end}")
    if end - start > LONGEST_RANGE:
        raise Error("--from and --to are more than ten years apart")
    return start, end


@main.command()
@config_option
@now_option
@clinician_option
@click.option(
    "--from",
    "from_text",
    metavar="DATE",
    help="First day to count (default: the first day of the month 11 months back).",
)
@click.option("--to", "to_text", metavar="DATE", help="Last day to count (default: today).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row per week and month).")
@click.option(
    "--live",
    is_flag=True,
    help="Read every calendar for the whole range instead of using the daemon's history "
    "(after a change of tags or rules that should apply to the past).",
)
@user_errors
def hours(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    from_text: str | None,
    to_text: str | None,
    as_csv: bool,
    live: bool,
) -> None:
    """Direct client hours (sessions) and the hours of supervision, peer support, admin
    and personal time, per week, per month and in total, with sessions per level: the log
    licensing bodies ask for. By default the last 12 months: from the first day of the
    month 11 months back up to --now (today). An event counts by its part in each period,
    in your time zone; cancelled, declined, free and all-day events never count. Past
    events come from the daemon's history (daemon.keep_history) where it holds them, the
    rest is read live; a calendar that cannot be read shows nothing and exits 2."""
    from caldaemon.core.hours import tally
    from caldaemon.model import Window
    from caldaemon.service.history import gather

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    wanted = (_date(from_text, "--from"), _date(to_text, "--to"))
    logs: list[tuple[ClinicianSettings, HoursLog, list[Source]]] = []
    failed = False
    for clinician in settings.chosen(clinician_id):
        first, last = _range(*wanted, today=now.astimezone(clinician.tz).date())
        begin = datetime.combine(first, time(), clinician.tz)
        end = min(datetime.combine(last + timedelta(days=1), time(), clinician.tz), now)
        found = gather(settings, clinician, Window(begin, end), now, live_only=live)
        for warning in found.warnings:
            click.echo(f"warning: {warning}", err=True)
        for error in found.errors:
            click.echo(f"error: {error}", err=True)
            failed = True
        log = tally(
            clinician.id,
            found.classified,
            tz=clinician.tz,
            week_starts=clinician.rules.week_starts,
            first=first,
            last=last,
            until=now,
            levels=settings.classification.levels,
        )
        logs.append((clinician, log, found.sources))
    if failed:
        # Failing closed: a total without a calendar would look complete.
        click.echo("no hours shown: a calendar could not be read (see above)", err=True)
        sys.exit(2)
    if as_csv:
        click.echo(csv_text([log for _, log, _ in logs]), nl=False)
    else:
        click.echo("\n\n".join(table(c, log, sources) for c, log, sources in logs))


def csv_text(logs: list[HoursLog]) -> str:
    """One header, then per clinician a row per week, per month and the total: ISO dates,
    hours with two decimals (each column of the weeks, and of the months, adds up to the
    total), session counts per level."""
    levels: list[str] = []
    for log in logs:
        levels.extend(level for level in log.levels if level not in levels)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["clinician", "period", "start", "end"]
        + [f"{name}_hours" for name in _CSV_NAMES]
        + ["sessions"]
        + [f"sessions_{level}" for level in levels]
    )
    for log in logs:
        for period in (*log.weeks, *log.months, log.total):
            writer.writerow(
                [log.clinician, period.kind, period.start.isoformat(), period.end.isoformat()]
                + _hours(period)
                + [str(period.session_count)]
                + [str(period.sessions[level]) for level in levels]
            )
    return out.getvalue()


def _hours(period: Period) -> list[str]:
    from caldaemon.core.hours import COUNTED

    return [period.hours(kind) for kind in COUNTED]


def table(clinician: ClinicianSettings, log: HoursLog, sources: list[Source]) -> str:
    """The log as a person reads it: months, then weeks, then the total and the sources."""
    until = log.until.astimezone(clinician.tz)
    lines = [
        f"Hours of {clinician.who}, {_long(log.first)} to {_long(log.last)}, "
        f"counted up to {_long(until.date())} {until:%H:%M} ({clinician.tz.key})",
        "",
    ]
    lines += _block("Month", [(_month_label(p), p) for p in log.months], log.total)
    lines.append("")
    lines += _block("Week", [(_week_label(p), p) for p in log.weeks], log.total)
    lines.append("")
    counts = ", ".join(f"{level} {log.total.sessions[level]}" for level in log.levels)
    lines.append(f"Sessions by level: {counts} (total {log.total.session_count}).")
    lines.append(
        "Hours are elapsed time, each event by its part in each period; rows are rounded "
        "to add up to the total."
    )
    lines.append(f"Read from: {_sources(sources, clinician)}.")
    return "\n".join(lines)


def _block(title: str, rows: list[tuple[str, Period]], total: Period) -> list[str]:
    width = max([len(title), len("Total")] + [len(label) for label, _ in rows])
    header = f"{title:<{width}}" + "".join(f"  {t:>{max(len(t), 6)}}" for t in _TITLES)
    out = [header + "  Sessions"]
    for label, period in [*rows, ("Total", total)]:
        cells = "".join(
            f"  {value:>{max(len(t), 6)}}" for t, value in zip(_TITLES, _hours(period), strict=True)
        )
        out.append(f"{label:<{width}}{cells}  {period.session_count:>8}")
    return out


def _long(day: date) -> str:
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def _month_label(period: Period) -> str:
    label = f"{MONTH_NAMES[period.start.month - 1]} {period.start.year}"
    last_day = (period.start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(1)
    if period.start.day != 1 or period.end != last_day:
        label += f" ({period.start.day}–{period.end.day})"
    return label


def _week_label(period: Period) -> str:
    end = f"{period.end:%m-%d}" if period.end.year == period.start.year else f"{period.end}"
    return f"{period.start}–{end}"


def _sources(sources: list[Source], clinician: ClinicianSettings) -> str:
    """Per calendar, whether its hours came from the daemon's history or a live read."""
    said: dict[str, list[str]] = {}
    for source in sources:
        if source.cached is None:
            how = "read live"
        else:
            start = source.cached.start.astimezone(clinician.tz).date()
            how = f"caldaemon's history from {start}"
            if source.live:
                how += ", read live for the rest"
        said.setdefault(how, []).append(source.calendar)
    return "; ".join(f"{', '.join(names)}: {how}" for how, names in said.items())
