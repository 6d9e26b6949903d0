"""Every real-world calendar of ../shared/corpus/ics, configured as a clinician's `ics`
calendar: caldaemon loads and evaluates it (skipping single broken events, and events
that end before they start, with a warning naming the file and the event's number), or
refuses the whole file with one line naming it. Never a
traceback. Where icalendar + recurring-ical-events expand a file (or a series of it),
caldaemon sees the same occurrences."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from click.testing import CliRunner

from caldaemon.cli import main
from caldaemon.errors import CalendarError
from caldaemon.model import Window
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics.parse import parse_file
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.settings import IcsCalendar

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ics"
if not CORPUS.is_dir():
    pytest.skip(f"no corpus at {CORPUS}", allow_module_level=True)

# The reference parse warns about vendor-prefixed TZIDs; caldaemon silences that itself.
pytestmark = pytest.mark.filterwarnings("ignore::icalendar.GloballyUniqueTZIDGuessed")
FILES = sorted(CORPUS.rglob("*.ics"))
TZ = ZoneInfo("Europe/Berlin")
Key = tuple[str, datetime]


def _first_day(data: bytes) -> date:
    """The earliest date an event of the file names, so the window covers its events."""
    found = re.findall(rb"(?m)^(?:DTSTART|RDATE|RECURRENCE-ID)[^:\r\n]*:(\d{8})", data)
    days = sorted(d for d in found if 1900 < int(d[:4]) < 2200)
    text = days[0].decode() if days else "20200101"
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _window(path: Path) -> Window:
    start = datetime.combine(_first_day(path.read_bytes()), time(), TZ) - timedelta(days=2)
    return Window(start, start + timedelta(days=730))


def _moment(value: date | datetime) -> datetime:
    """As caldaemon normalizes: dates are local midnight, floating times local time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=TZ)
    return datetime.combine(value, time(), TZ)


def _expand(calendar: Any, window: Window) -> Counter[Key]:
    query = recurring_ical_events.of(calendar)
    return Counter(
        (str(o.get("UID", "")), _moment(o["DTSTART"].dt))
        for o in query.between(window.start, window.end)
    )


def _alone(calendar: icalendar.Component, vevents: list[Any]) -> icalendar.Calendar:
    """A copy of ``calendar`` (its properties and time zones) with only ``vevents``."""
    single = icalendar.Calendar()
    for key, value in calendar.items():
        single[key] = value
    for component in (*calendar.walk("VTIMEZONE"), *vevents):
        single.add_component(component)
    return single


def _backwards(vevent: Any) -> bool:
    """Whether DTEND lies before DTSTART: recurring-ical-events turns such an event
    around, caldaemon skips it with a warning."""
    start, end = vevent.get("DTSTART"), vevent.get("DTEND")
    try:
        return _moment(end.dt) < _moment(start.dt)
    except Exception:
        return False


def reference(path: Path, window: Window) -> tuple[Counter[Key], list[list[int]]]:
    """Occurrences per the reference libraries, series by series (a series is the VEVENTs
    of one UID in one calendar; each VEVENT without a UID is its own), and for each
    series that they cannot expand, or that ends before it starts, the numbers of its
    VEVENTs (1 = the file's first). A file that icalendar cannot read as a whole is read
    as caldaemon reads it, without the components that cannot be read alone."""
    data = path.read_bytes()
    try:
        calendars = icalendar.Calendar.from_ical(data, multiple=True)
        dropped: frozenset[int] = frozenset()
    except Exception:
        try:
            parsed = parse_file(data, "cal", str(path))
        except CalendarError:
            return Counter(), []
        calendars, dropped = parsed.calendars, parsed.dropped_events
    found: Counter[Key] = Counter()
    failed: list[list[int]] = []
    number = 0
    for calendar in calendars:
        series: dict[tuple[str, int], list[tuple[int, Any]]] = {}
        for n, vevent in enumerate(calendar.walk("VEVENT")):
            number += 1
            while number in dropped:
                number += 1
            uid = vevent.get("UID")
            key = ("(no UID)", n) if uid is None else (str(uid), 0)
            series.setdefault(key, []).append((number, vevent))
        for members in series.values():
            numbers = [n for n, _ in members]
            vevents = [v for _, v in members]
            if any(_backwards(v) for v in vevents):
                failed.append(numbers)
                continue
            try:
                found += _expand(_alone(calendar, vevents), window)
            except Exception:
                failed.append(numbers)
    return found, failed


def provider(path: Path, tmp_path: Path) -> IcsProvider:
    config = IcsCalendar(provider="ics", id="cal", path=path)
    return IcsProvider(config, ProviderContext(clinician="lee", tz=TZ, state_dir=tmp_path))


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_same_occurrences_as_the_reference(path: Path, tmp_path: Path) -> None:
    window = _window(path)
    expected, failed = reference(path, window)
    try:
        listing = provider(path, tmp_path).changes(window, None)
    except CalendarError as exc:
        # A refusal is only for a file the reference reads no event from either.
        assert not expected, f"refused ({exc}) but the reference reads {len(expected)}"
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    uids = ((e.series or e.id, e.start) for e in listing.events)
    seen = Counter(("" if uid.startswith("no-uid-") else uid, start) for uid, start in uids)
    assert seen == expected
    assert len({e.id for e in listing.events}) == len(listing.events)  # ids are unique
    for numbers in failed:
        named = tuple(f"{path}: skipped event {n}: " for n in numbers)
        assert any(w.startswith(named) for w in listing.warnings), numbers
    for warning in listing.warnings:
        assert warning.startswith(f"{path}: ") and "\n" not in warning


CONFIG = """\
timezone: Europe/Berlin
daemon: {{horizon: 90d, state_dir: "{state}"}}
classification:
  sessions: {{calendars: [practice]}}
clinicians:
  - id: lee
    email: lee@example.org
    rules: standard
    buffers_to: buffers
    calendars:
      - {{id: practice, provider: ics, path: "{path}"}}
      - {{id: buffers, provider: ics, path: "{buffers}"}}
rule_sets:
  standard:
    working_hours: {{mon-fri: "09:00-17:00"}}
    days_off: [sun]
    max_sessions_per_day: 3
    max_sessions_per_week: 10
    level_limits: {{high: {{max_per_day: 1, latest_start: "15:00"}}}}
    breaks: {{after_sessions: 2, min_break: 15m}}
    no_back_to_back: {{level: moderate, min_gap: 30m}}
    max_daily_load: 6
    buffers: [{{after: low, length: 15m, title: Notes}}]
    cadence: [{{kind: supervision, every: 14d}}]
    double_booked: true
"""


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_cli_evaluates_or_refuses_cleanly(path: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(state=tmp_path / "state", path=path, buffers=tmp_path / "buffers.ics")
    )
    now = (_window(path).start + timedelta(days=2, hours=8)).replace(tzinfo=None).isoformat()
    codes = []
    for command in ("events", "check"):
        result = CliRunner().invoke(main, [command, "--config", str(config), "--now", now])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert "Traceback" not in result.output
        lines = result.stderr.splitlines()
        if result.exit_code == 2:
            assert len(lines) == 1 and str(path) in lines[0], result.stderr
        else:
            assert result.exit_code in (0, 1) if command == "check" else result.exit_code == 0
            for line in lines:
                assert line.startswith(f"warning: {path}: "), line
        codes.append(result.exit_code == 2)
    assert codes[0] == codes[1]
