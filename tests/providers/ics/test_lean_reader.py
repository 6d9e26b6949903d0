"""The lean reader (caldaemon/providers/ics/lean.py) never changes a result: a local .ics
file read through the provider, where VEVENTs of no series are read from their lines,
gives the same events and the same warnings as the whole file parsed
by icalendar and expanded by recurring-ical-events (or the same refusal). Pinned on every
file of the shared corpus, on the benchmark's practice files and on generated VEVENTs
(folding anywhere, escapes, quoted parameters, CRLF and LF, every kind of time)."""

from __future__ import annotations

import random
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.practice import clinician_ics
from caldaemon.errors import CalendarError
from caldaemon.model import Event, Window
from caldaemon.providers.base import ProviderContext
from caldaemon.providers.ics.document import Document
from caldaemon.providers.ics.parse import blank, parse_file
from caldaemon.providers.ics.provider import IcsProvider
from caldaemon.providers.ics.reader import Reader
from caldaemon.providers.ics.settings import IcsCalendar

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "ics"
CORPUS_FILES = sorted(CORPUS.rglob("*.ics")) if CORPUS.is_dir() else []
TZ = ZoneInfo("Europe/Berlin")
Outcome = tuple[list[Event], list[str]] | str

pytestmark = pytest.mark.filterwarnings("ignore::icalendar.GloballyUniqueTZIDGuessed")


def _sorted(events: list[Event]) -> list[Event]:
    """recurring-ical-events yields a series' moved instances from a set, in no fixed
    order; the events are compared whatever their order."""
    return sorted(events, key=lambda e: (e.id, e.start, e.end))


def through_provider(
    path: Path, window: Window, tz: ZoneInfo, addresses: frozenset[str] = frozenset()
) -> Outcome:
    config = IcsCalendar(provider="ics", id="cal", path=path)
    context = ProviderContext(
        clinician="lee", tz=tz, state_dir=path.parent, self_addresses=addresses
    )
    try:
        listing = IcsProvider(config, context).changes(window, None)
    except CalendarError as exc:
        return str(exc)
    return _sorted(list(listing.events)), list(listing.warnings)


def through_icalendar(
    path: Path, window: Window, tz: ZoneInfo, addresses: frozenset[str] = frozenset()
) -> Outcome:
    """The whole file parsed by icalendar, as the provider read every file before."""
    data = path.read_bytes()
    reader = Reader("cal", str(path), tz, addresses)
    try:
        parsed = parse_file(data, "cal", str(path))
        if blank(data):
            reader.note("the file is empty; read as a calendar without events")
        for skipped in parsed.skipped:
            reader.note(skipped)
        events = reader.events(parsed.calendars, window, parsed.dropped_events)
    except CalendarError as exc:
        return str(exc)
    return _sorted(events), reader.warnings


def plain_blocks(data: bytes, window: Window) -> int:
    return len(Document(data).within(window, plain=True).plain)


@pytest.mark.skipif(not CORPUS_FILES, reason=f"no corpus at {CORPUS}")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[f.name for f in CORPUS_FILES])
def test_lean_reading_changes_nothing_on_a_corpus_file(path: Path) -> None:
    start = datetime(2000, 1, 1, tzinfo=TZ)
    window = Window(start, start + timedelta(days=365 * 40))
    assert through_provider(path, window, TZ) == through_icalendar(path, window, TZ)


@pytest.mark.skipif(not CORPUS_FILES, reason=f"no corpus at {CORPUS}")
def test_the_corpus_has_vevents_the_lean_reader_reads() -> None:
    start = datetime(2000, 1, 1, tzinfo=TZ)
    window = Window(start, start + timedelta(days=365 * 40))
    assert sum(plain_blocks(f.read_bytes(), window) for f in CORPUS_FILES) > 100


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4])
def test_lean_reading_changes_nothing_on_a_practice_file(index: int, tmp_path: Path) -> None:
    text, _ = clinician_ics(index, random.Random(index))
    path = tmp_path / "practice.ics"
    path.write_text(text)
    zone = ZoneInfo("America/Toronto")
    window = Window(datetime(2026, 1, 5, tzinfo=zone), datetime(2027, 1, 5, tzinfo=zone))
    found = through_provider(path, window, zone)
    assert found == through_icalendar(path, window, zone)
    assert isinstance(found, tuple) and len(found[0]) > 1000
    # The one-off sessions (a quarter of the sessions) are read from their lines.
    assert plain_blocks(path.read_bytes(), window) == 250


# -- generated VEVENTs ------------------------------------------------------------------

UIDS = ["a", "b", "a\\,b", "a,b", " a", "c@x", "no-uid-1"]
ZONES = ["Europe/Berlin", "America/Toronto", "Australia/Sydney", "UTC"]
TEXT = st.lists(
    st.sampled_from(list("ab Zé😀,;:\\\"'\t") + ["\\n", "\\N", "\\,", "\\;", "\\\\"]),
    max_size=12,
).map("".join)


def rarely(one_in: int) -> st.SearchStrategy[bool]:
    """True once in ``one_in`` draws (hypothesis favours small integers, so a test of
    ``integers(0, n) == 0`` would come true far more often)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


LENGTHS = [timedelta(minutes=50), timedelta(0), timedelta(days=1), timedelta(hours=-1)]
KINDS = ["date", "utc", "floating", "tzid", "tzid", "quoted"]


@st.composite
def moments(draw: st.DrawFn, name: str, at: datetime, kind: str) -> str:
    """``name`` at ``at`` as a DATE, in UTC, floating, with a TZID; or (one in eight) in
    a form the lean reader leaves to icalendar."""
    stamp = at.strftime("%Y%m%dT%H%M%S")
    zone = draw(st.sampled_from(ZONES))
    if draw(rarely(12)):
        return draw(
            st.sampled_from(
                [
                    f"{name};TZID=Nowhere/Land:{stamp}",
                    f"{name};TZID=Eastern Standard Time:{stamp}",
                    f"{name};TZID={zone}:{at:%Y%m%d}",
                    f"{name};VALUE=DATE:{stamp}",
                    f"{name};TZID={zone}:{stamp}Z",
                    f"{name}:{at:%Y%m}32",
                    f"{name} ;TZID={zone}:{stamp}",
                ]
            )
        )
    if kind == "date":
        return f"{name}{draw(st.sampled_from(['', ';VALUE=DATE']))}:{at:%Y%m%d}"
    if kind == "utc":
        return f"{name}:{stamp}Z"
    if kind == "floating":
        return f"{name}{draw(st.sampled_from(['', ';VALUE=DATE-TIME']))}:{stamp}"
    if kind == "tzid":
        return f"{name};TZID={zone}:{stamp}"
    return f'{name};TZID="{zone}";X-NOTE="a:b;c":{stamp}'


@st.composite
def vevents(draw: st.DrawFn, number: int) -> list[str]:
    lines = ["BEGIN:VEVENT"]
    if not draw(rarely(10)):
        # Mostly a UID of its own; sometimes one that others share or could be read as.
        odd = draw(rarely(5))
        lines.append("UID:" + (draw(st.sampled_from(UIDS)) if odd else f"event-{number}@x"))
    lines.append("DTSTAMP:20260101T000000Z")
    day = date(2026, 3, 1) + timedelta(days=draw(st.integers(0, 20)))
    at = datetime.combine(day, time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))))
    kind = draw(st.sampled_from(KINDS))
    if not draw(rarely(20)):
        lines.append(draw(moments("DTSTART", at, kind)))
    ending = draw(st.sampled_from(["dtend", "dtend", "dtend", "duration", "none", "both"]))
    if ending in ("dtend", "both"):
        later = at + draw(st.sampled_from(LENGTHS))
        if draw(rarely(5)):
            kind = draw(st.sampled_from(KINDS))  # another kind of time than DTSTART's
        lines.append(draw(moments("DTEND", later, kind)))
    if ending in ("duration", "both"):
        lines.append(
            "DURATION:"
            + draw(st.sampled_from(["PT50M", "P1D", "PT24H", "-PT1H", "P1W", "PT0S", "P", "1H"]))
        )
    params = draw(st.sampled_from(["", ";LANGUAGE=de", ';ALTREP="cid:x;y:z"', ";X-A=b,c"]))
    lines.append(f"SUMMARY{params}:{draw(TEXT)}")
    for choices in draw(st.lists(st.sampled_from(OPTIONAL), max_size=5, unique_by=id)):
        lines.append(draw(st.sampled_from(choices)))
    if draw(rarely(8)):
        lines.append(draw(st.sampled_from(REFUSED)))
    lines.append("END:VEVENT")
    return lines


# Properties a VEVENT may have, each with the values it may take.
OPTIONAL = [
    [
        "DESCRIPTION:line one\\nline two\\, with \\;",
        'DESCRIPTION;ALTREP="cid:a:b":second description',
    ],
    ["CATEGORIES:Work,Personal\\,Urgent, #heavy", "CATEGORIES:"],
    ["TRANSP:TRANSPARENT", "TRANSP:OPAQUE", "TRANSP:transparent"],
    ["STATUS:CANCELLED", "STATUS:CONFIRMED"],
    ["CLASS:PRIVATE"],
    ["COLOR:Red"],
    ["X-MICROSOFT-CDO-BUSYSTATUS:OOF", "X-MICROSOFT-CDO-BUSYSTATUS;X=1:oof\\,"],
    ["LOCATION:Room 1\\, upstairs"],
    ["ATTENDEE;PARTSTAT=DECLINED:mailto:me@example.org"],
    ["SEQUENCE:x", "SEQUENCE:2"],
    ["X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC"],
]
# What the lean reader leaves to icalendar.
REFUSED = [
    "CATEGORIES;VALUE=TEXT:x",
    "RRULE:FREQ=DAILY;COUNT=3",
    "RECURRENCE-ID:20260305T100000Z",
    "GEO:1;2",
    "X-CALDAEMON-BUFFER:abc",
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM",
    "NOT A PROPERTY",
    "summary:lower case name",
    "SUMMARY:a second summary",
    "TRANSP;VALUE=TEXT:TRANSPARENT",
]


def fold(line: str, at: list[int]) -> str:
    """``line`` folded (RFC 5545 §3.1) after the given numbers of bytes, which may fall
    inside a multi-byte UTF-8 character, as simple exporters fold."""
    data = line.encode("utf-8")
    pieces, last = [], 0
    for cut in sorted({a for a in at if 0 < a < len(data)}):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return b"\r\n ".join(pieces).decode("utf-8", errors="surrogateescape")


@st.composite
def calendars(draw: st.DrawFn) -> bytes:
    count = draw(st.integers(1, 4))
    events = [draw(vevents(number)) for number in range(count)]
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    head += draw(
        st.sampled_from([[], [], [], [], [], ["METHOD:CANCEL"], ["X-WR-TIMEZONE:Europe/Berlin"]])
    )
    lines = head + [line for event in events for line in event] + ["END:VCALENDAR"]
    folded = [fold(line, draw(st.lists(st.integers(1, 40), max_size=1))) for line in lines]
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    text = newline.join(folded).replace("\r\n", newline) + newline
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode("utf-8", errors="surrogateescape")


@given(
    data=calendars(),
    start=st.integers(-3, 25),
    days=st.integers(1, 10),
    zone=st.sampled_from(ZONES),
    attendees=st.booleans(),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lean_reading_changes_nothing_on_generated_vevents(
    data: bytes, start: int, days: int, zone: str, attendees: bool
) -> None:
    tz = ZoneInfo(zone)
    begin = datetime(2026, 3, 1, tzinfo=tz) + timedelta(days=start, hours=start % 7)
    window = Window(begin, begin + timedelta(days=days))
    addresses = frozenset({"me@example.org"}) if attendees else frozenset()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cal.ics"
        path.write_bytes(data)
        found = through_provider(path, window, tz, addresses)
        assert found == through_icalendar(path, window, tz, addresses)
