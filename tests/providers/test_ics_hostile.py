"""Hostile calendars and feeds (issue 11; DESIGN.md §5 "Failing closed", §7): each row
says what caldaemon must do with it: load it (with warnings), or refuse it with one line
naming the calendar's file or host. Never a traceback (an exception other than
CalendarError), never a hang (each row has a generous deadline; the worst wall time is
printed with -s), never unbounded memory (the peak of Python's allocations is checked).

Feeds are served by a local server whose routes trickle, stall, redirect, or answer
what is not a calendar; the server's threads may wait, the tests never sleep."""

from __future__ import annotations

import gzip
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caldaemon.errors import CalendarError, TransientError
from tests.providers.ics_support import (
    CALENDAR,
    HEAD,
    TAIL,
    WINDOW,
    FeedHandler,
    FeedServer,
    answer,
    bomb,
    chain,
    cut,
    drip,
    drip_headers,
    huge,
    no_hang,
    provider,
    redirect,
    stall,
    vevent,
)

# Peak Python allocations of one row; the hostile inputs are up to 64 MB, so this
# catches a file or feed inflated without bound, not ordinary parsing.
MAX_PEAK = 1024 * 2**20
TIMES: dict[str, float] = {}
PEAKS: dict[str, float] = {}


ROUTES: dict[str, Callable[[FeedHandler], None]] = {
    "/lee.ics": answer(CALENDAR),
    "/moved.ics": redirect("/lee.ics", 301),
    "/drip.ics": drip,
    "/drip-headers.ics": drip_headers,
    "/stall.ics": stall,
    "/huge.ics": huge,
    "/loop.ics": redirect("/loop.ics"),
    "/ping.ics": redirect("/pong.ics", 307),
    "/pong.ics": redirect("/ping.ics", 308),
    **{f"/chain/{n}.ics": chain(n) for n in range(20)},
    "/ftp.ics": redirect("ftp://127.0.0.1/lee.ics"),
    "/file.ics": redirect("file:///etc/passwd"),
    "/elsewhere.ics": redirect("http://localhost/lee.ics"),
    "/html.ics": answer(
        b"<!DOCTYPE html><html><body>Sign in</body></html>", **{"Content-Type": "text/html"}
    ),
    "/garbage.ics": answer(os.urandom(4096), **{"Content-Type": "application/octet-stream"}),
    "/empty.ics": answer(b""),
    "/text.ics": answer(CALENDAR, **{"Content-Type": "text/plain"}),
    "/gzip.ics": answer(gzip.compress(CALENDAR), **{"Content-Encoding": "gzip"}),
    "/bomb.ics": answer(bomb(), **{"Content-Encoding": "gzip"}),
    "/brotli.ics": answer(b"\x1b\x00", **{"Content-Encoding": "br"}),
    "/cut.ics": cut,
}

Loaded = int  # the number of events a row loads
Refused = tuple[type[CalendarError], str]  # the error and a phrase of its reason

FEEDS: list[tuple[str, str, Loaded | Refused]] = [
    ("plain feed", "/lee.ics", 2),
    ("redirect within the host", "/moved.ics", 2),
    ("calendar served as text/plain", "/text.ics", 2),
    ("gzip body", "/gzip.ics", 2),
    ("drip: a byte every 0.2 s", "/drip.ics", (TransientError, "no complete answer within 1s")),
    ("drip of headers", "/drip-headers.ics", (TransientError, "no complete answer")),
    ("stall before answering", "/stall.ics", (TransientError, "no complete answer")),
    ("huge body", "/huge.ics", (CalendarError, "larger than 64 MB")),
    ("redirect to itself", "/loop.ics", (CalendarError, "redirects in a loop")),
    ("redirect ping-pong", "/ping.ics", (CalendarError, "redirects in a loop")),
    ("endless redirects", "/chain/0.ics", (CalendarError, "redirects more than 5 times")),
    ("redirect to ftp", "/ftp.ics", (CalendarError, "not http(s)")),
    ("redirect to file", "/file.ics", (CalendarError, "not http(s)")),
    ("redirect to another host", "/elsewhere.ics", (CalendarError, "another host")),
    ("HTML login page", "/html.ics", (CalendarError, "a web page")),
    ("garbage", "/garbage.ics", (CalendarError, "application/octet-stream")),
    ("empty 200", "/empty.ics", (CalendarError, "nothing")),
    ("gzip bomb", "/bomb.ics", (CalendarError, "larger than 64 MB")),
    ("unknown compression", "/brotli.ics", (CalendarError, "compressed in a way")),
    ("body cut short", "/cut.ics", (TransientError, "not valid HTTP")),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer(ROUTES) as running:
        yield running


def outcome(name: str, action: Callable[[], object]) -> tuple[object, float]:
    """What ``action`` returned or the CalendarError it raised, under a deadline; its
    wall time goes into TIMES, and the peak of its Python allocations is returned."""
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with no_hang(60):
            try:
                result: object = action()
            except CalendarError as exc:
                result = exc
    finally:
        TIMES[name] = time.perf_counter() - began
        peak = PEAKS[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


def check(result: object, peak: float, expected: Loaded | Refused, source: str) -> None:
    assert peak < MAX_PEAK, f"{peak / 2**20:.0f} MB"
    if isinstance(expected, int):
        assert not isinstance(result, Exception), result
        assert len(result.events) == expected  # type: ignore[attr-defined]
        return
    kind, phrase = expected
    assert isinstance(result, kind), result
    message = str(result)
    assert message.startswith(f"{source}: ") and "\n" not in message, message
    assert phrase in message, message


@pytest.mark.parametrize(("name", "path", "expected"), FEEDS, ids=[f[0] for f in FEEDS])
def test_a_hostile_feed_loads_or_is_refused_in_one_line_in_bounded_time(
    server: FeedServer, name: str, path: str, expected: Loaded | Refused
) -> None:
    # The timeout bounds the whole request: 1 s where the server trickles or stalls.
    timeout = 1 if "no complete answer" in str(expected) else 10
    ics = provider(url=f"{server.url}{path}?token=s3cret", timeout=timeout)
    result, peak = outcome(name, lambda: ics.changes(WINDOW, None))
    check(result, peak, expected, ics.describe())
    assert "s3cret" not in str(result)


# -- files -----------------------------------------------------------------------------

FREEBUSY = (
    b"BEGIN:VFREEBUSY\r\nDTSTART:20260112T090000Z\r\nDTEND:20260112T100000Z\r\n"
    b"FREEBUSY:20260112T100000Z/20260112T090000Z\r\nEND:VFREEBUSY\r\n"
)
EVERY_BY = "RRULE:FREQ=YEARLY;" + ";".join(
    f"{part}={','.join(str(n) for n in values)}"
    for part, values in (
        ("BYMONTH", range(1, 13)),
        ("BYMONTHDAY", range(1, 29)),
        ("BYHOUR", range(24)),
        ("BYMINUTE", range(60)),
    )
)
FILES: list[tuple[str, bytes, Loaded | Refused, str | None]] = [
    (
        "RRULE:FREQ=SECONDLY without end",
        HEAD + vevent("r", "RRULE:FREQ=SECONDLY") + TAIL,
        0,
        "skipped event 1: its RRULE repeats too often",
    ),
    (
        "RRULE expanding every BYxxx",
        HEAD + vevent("r", EVERY_BY) + TAIL,
        0,
        "skipped event 1: it repeats more than 10,000 times in the window",
    ),
    (
        "deeply nested components",
        HEAD + b"BEGIN:X-A\r\n" * 50_000 + b"END:X-A\r\n" * 50_000 + TAIL,
        (CalendarError, "nested more than"),
        None,
    ),
    ("a line of 10 MB", HEAD + vevent("l", "DESCRIPTION:" + "x" * 10_000_000) + TAIL, 1, None),
    (
        "a folded line of 10 MB",
        HEAD + vevent("f", "DESCRIPTION:" + "x\r\n " * 3_000_000) + TAIL,
        1,
        None,
    ),
    ("invalid UTF-8", HEAD + vevent("u").replace(b"Session", b"\xff\xfe\xc3(") + TAIL, 1, None),
    (
        "NUL bytes in a value",
        HEAD + vevent("n").replace(b"Session", b"Ses\x00sion") + TAIL,
        1,
        None,
    ),
    (
        "NUL bytes ending every line",
        (HEAD + vevent() + TAIL).replace(b"\r\n", b"\x00\r\n"),
        (CalendarError, "not a readable iCalendar file"),
        None,
    ),
    ("binary garbage", bytes(range(256)) * 400, (CalendarError, "iCalendar file"), None),
    (
        "DTEND before DTSTART",
        HEAD + vevent("b").replace(b"T145000Z", b"T130000Z") + vevent("ok") + TAIL,
        1,
        "skipped event 1: its DTEND lies before its DTSTART",
    ),
    (
        "negative DURATION",
        HEAD + vevent("d").replace(b"DTEND:20260112T145000Z", b"DURATION:-PT1H") + TAIL,
        0,
        "skipped event 1: its DURATION is negative",
    ),
    ("empty file", b"", 0, "the file is empty"),
    ("blank file with a byte-order mark", b"\xef\xbb\xbf\r\n \r\n", 0, "the file is empty"),
    (
        "unreadable VFREEBUSY (Google export)",
        HEAD + FREEBUSY + vevent() + TAIL,
        1,
        "skipped a VFREEBUSY (line 4): it cannot be read (a period that ends before it starts)",
    ),
    (
        "unreadable PERIOD in an event",
        HEAD
        + vevent("p", "RDATE;VALUE=PERIOD:20260113T100000Z/20260113T090000Z")
        + vevent("ok")
        + TAIL,
        1,
        "skipped event 1: a period (RDATE, DTEND or DURATION) that ends before it starts",
    ),
    ("a calendar cut short", (HEAD + vevent() + TAIL)[:-40], (CalendarError, "incomplete"), None),
    (
        "CALSCALE of another calendar",
        HEAD.replace(b"VERSION", b"CALSCALE:X-HOSTILE\r\nVERSION") + vevent() + TAIL,
        (CalendarError, "CALSCALE is not GREGORIAN"),
        None,
    ),
    (
        "more events than any clinician's calendar",
        HEAD + b"BEGIN:VEVENT\r\nEND:VEVENT\r\n" * 50_001 + TAIL,
        (CalendarError, "more than 50,000 events"),
        None,
    ),
    (
        "a file over 64 MB",
        HEAD + b"X-PADDING:" + b"x" * (64 * 2**20) + b"\r\n" + TAIL,
        (CalendarError, "larger than 64 MB"),
        None,
    ),
]


@pytest.mark.parametrize(("name", "data", "expected", "warning"), FILES, ids=[f[0] for f in FILES])
def test_a_hostile_calendar_loads_or_is_refused_in_one_line_in_bounded_time(
    tmp_path: Path, name: str, data: bytes, expected: Loaded | Refused, warning: str | None
) -> None:
    path = tmp_path / "practice.ics"
    path.write_bytes(data)
    ics = provider(path)
    result, peak = outcome(name, lambda: ics.changes(WINDOW, None))
    check(result, peak, expected, str(path))
    if warning is not None:
        assert any(w.startswith(f"{path}: {warning}") for w in result.warnings), result.warnings  # type: ignore[attr-defined]


# -- a privacy canary ------------------------------------------------------------------

CANARY = "JaneCanaryDoe"
# Every field of an event a client's name can stand in.
EVERY_FIELD = [
    f"UID:{CANARY}@practice.example",
    f"SUMMARY:Session with {CANARY}",
    f"DESCRIPTION:{CANARY}, 555-0100",
    f"LOCATION:{CANARY}'s home",
    f"COMMENT:{CANARY}",
    f"CONTACT:{CANARY}",
    f"CATEGORIES:{CANARY},intake",
    f"RESOURCES:{CANARY}",
    f"URL:https://practice.example/{CANARY}",
    f"ATTACH:https://practice.example/{CANARY}.pdf",
    f"RELATED-TO:{CANARY}",
    f"COLOR:{CANARY}",
    f"ORGANIZER;CN={CANARY}:mailto:{CANARY}@example.org",
    f"ATTENDEE;CN={CANARY};PARTSTAT=ACCEPTED:mailto:{CANARY}@example.org",
    f"X-CLIENT-NAME:{CANARY}",
]
# Each value that cannot be read, holding the canary.
UNREADABLE = [
    ("DTSTART", f"DTSTART:2026{CANARY}"),
    ("DTEND", f"DTEND:{CANARY}"),
    ("DURATION", f"DURATION:P{CANARY}"),
    ("TZID of DTSTART", f"DTSTART;TZID={CANARY}:20260112T090000"),
    ("TZID of DTEND", f'DTEND;TZID="(UTC+01:00) {CANARY}":20260112T150000'),
    ("RRULE", f"RRULE:FREQ={CANARY}"),
    ("RRULE part", f"RRULE:FREQ=WEEKLY;BYDAY={CANARY}"),
    ("EXDATE", f"EXDATE:{CANARY}"),
    ("RDATE", f"RDATE:{CANARY}"),
    ("RDATE period", f"RDATE;VALUE=PERIOD:{CANARY}/20260113T090000Z"),
    ("RECURRENCE-ID", f"RECURRENCE-ID:{CANARY}"),
    ("a malformed line", f"{CANARY} called about the accident"),
    ("a malformed parameter", f'SUMMARY;X-A="{CANARY}:x'),
]
CALENDAR_LEVEL = [
    ("X-WR-TIMEZONE", f"X-WR-TIMEZONE:{CANARY}"),
    ("CALSCALE", f"CALSCALE:{CANARY}"),
    ("a malformed line outside events", f"{CANARY} called"),
    ("an unreadable VFREEBUSY", f"BEGIN:VFREEBUSY\r\nFREEBUSY:{CANARY}\r\nEND:VFREEBUSY"),
    ("an unreadable VTODO", f"BEGIN:VTODO\r\nDUE:{CANARY}\r\nEND:VTODO"),
    ("a component of its own", f"BEGIN:X-{CANARY}\r\nX-A:{CANARY}\r\nEND:X-{CANARY}"),
    (
        "a time zone of its own",
        f"BEGIN:VTIMEZONE\r\nTZID:{CANARY}\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000"
        f"\r\nTZOFFSETFROM:{CANARY}\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE",
    ),
]


def canary_calendar(event_line: str = "", calendar_line: str = "") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//canary//EN"]
    lines += [calendar_line] if calendar_line else []
    lines += ["BEGIN:VEVENT", "DTSTAMP:20260101T000000Z", *EVERY_FIELD]
    if not event_line.startswith(("DTSTART", "DURATION")):
        lines.append("DTSTART:20260112T140000Z")
    if not event_line.startswith(("DTEND", "DURATION")):
        lines.append("DTEND:20260112T145000Z")
    lines += [event_line] if event_line else []
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode()


CANARY_CASES = [
    ("every field", canary_calendar()),
    *((f"unreadable {name}", canary_calendar(event_line=line)) for name, line in UNREADABLE),
    *((name, canary_calendar(calendar_line=line)) for name, line in CALENDAR_LEVEL),
]


@pytest.mark.parametrize(("name", "data"), CANARY_CASES, ids=[c[0] for c in CANARY_CASES])
def test_nothing_of_an_event_reaches_a_warning_or_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, data: bytes
) -> None:
    """DESIGN.md §7: an unreadable value is described, never quoted."""
    path = tmp_path / "practice.ics"
    path.write_bytes(data)
    try:
        texts = list(provider(path).changes(WINDOW, None).warnings)
    except CalendarError as exc:
        texts = [str(exc), exc.reason]
    texts.append(caplog.text)
    assert not any(CANARY.lower() in text.lower() for text in texts), texts


def test_the_worst_wall_time_is_reported() -> None:
    """Not an assertion (machines differ): the figures for the issue's note (-s shows
    them). Times are measured under tracemalloc, which slows parsing two to three times."""
    if TIMES:
        name, worst = max(TIMES.items(), key=lambda item: item[1])
        print(f"\nworst wall time of a hostile calendar or feed: {worst:.2f} s ({name})")
        name, peak = max(PEAKS.items(), key=lambda item: item[1])
        print(f"largest peak of Python allocations: {peak / 2**20:.0f} MB ({name})")
