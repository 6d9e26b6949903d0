"""Busy time written in other zones: the buffer search compares instants, whatever zone
each event or the session was written in."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from tests.support import MONDAY, evaluate, make_settings, rules_hit, session

LONDON = ZoneInfo("Europe/London")
SHRINK = {
    "buffers": [
        {
            "after": "high",
            "length": "15m",
            "title": "Grounding time",
            "fit": "shrink",
            "min_length": "5m",
        }
    ]
}


def test_an_event_written_in_london_takes_the_room_after_a_toronto_session():
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    # 14:55 in London is 09:55 in Toronto: five minutes after the session ends.
    call = session(MONDAY, "14:55", "15:30", "Call", calendar="home", tz=LONDON)
    result = evaluate(make_settings(SHRINK), [heavy, call])
    [b] = result.buffers
    assert (b.start, b.end - b.start) == (heavy.end, timedelta(minutes=5))
    [v] = rules_hit(result, "buffers")
    assert "shortened to 5 minutes" in v.message


def test_an_event_in_utc_that_ends_as_the_session_ends_leaves_the_room_free():
    heavy = session(MONDAY, "09:00", "09:50", "#heavy", tz=LONDON)  # 04:00 in Toronto
    earlier = session(MONDAY, "08:00", "09:50", "Other", calendar="home", tz=UTC)
    later = session(MONDAY, "10:05", "11:00", "Other", calendar="home", tz=UTC)
    now = heavy.start - timedelta(hours=1)
    result = evaluate(make_settings(SHRINK), [heavy, earlier, later], now)
    [b] = result.buffers
    assert b.end - b.start == timedelta(minutes=15)
    assert b.start.astimezone(UTC) == heavy.end.astimezone(UTC)
