"""History in the event cache (``caldaemon hours``, DESIGN.md §11): past events stay for
``daemon.keep_history`` with their kind and level and without their text; a listing that
starts later never erases them, nor does a feed that stops showing the past; what is
older than ``keep_history`` is pruned; a daemon that was away fills the gap."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from caldaemon.core.assess import window
from caldaemon.model import Event, Window
from caldaemon.providers.base import Listing
from caldaemon.providers.memory import MemoryCalendar, MemoryStore
from caldaemon.providers.registry import open_provider
from caldaemon.service.providers import provider_context
from caldaemon.service.sync import sync_calendar
from caldaemon.state import SCHEMA_VERSION, State
from caldaemon.state.db import Location
from caldaemon.state.schema import MIGRATIONS
from tests.support import TZ, at, make_settings

# The rules look back 14 days (cadence): the window every listing covers.
RULES = {
    "working_hours": {"mon-fri": "09:00-17:00"},
    "cadence": [{"kind": "supervision", "every": "14d"}],
}
START = date(2026, 9, 7)  # a Monday
EVERYTHING = Window(datetime(2020, 1, 1, tzinfo=TZ), datetime(2030, 1, 1, tzinfo=TZ))


def weekly(weeks: int, title: str = "Session #heavy") -> list[Event]:
    """A session every Monday at 09:00 from START."""
    return [
        Event(
            "work",
            f"s{n}",
            at(START + timedelta(weeks=n), "09:00"),
            at(START + timedelta(weeks=n), "09:50"),
            title=title,
        )
        for n in range(weeks)
    ]


@dataclass
class Feed:
    """A calendar read as a feed: every listing is full, of what it shows now."""

    events: list[Event]
    id: str = "work"
    asked: list[Window] = field(default_factory=list)

    def describe(self) -> str:
        return "test feed"

    def changes(self, span: Window, token: str | None) -> Listing:
        self.asked.append(span)
        shown = tuple(e for e in self.events if span.overlaps(e.start, e.end))
        return Listing(shown, (), "token", full=True)


def settings_with(keep: str = "400d"):  # type: ignore[no-untyped-def]
    return make_settings(RULES, daemon={"horizon": "14d", "keep_history": keep})


def sync(settings, state: State, provider, now: datetime) -> None:  # type: ignore[no-untyped-def]
    clinician = settings.clinicians[0]
    needed = Window(*window(clinician, now, settings.daemon.horizon))
    result = sync_calendar(settings, clinician, provider, state, needed, now)
    assert result.ok and result.trusted, result


def cached_ids(state: State) -> list[str]:
    with state.read() as tables:
        return sorted(r.event.id for r in tables.events.recorded("lee", EVERYTHING))


def history_from(state: State) -> datetime | None:
    with state.read() as tables:
        row = tables.calendars.get("lee", "work")
    assert row is not None
    return row.history_from


def test_past_events_survive_listings_that_start_after_them(location: Location) -> None:
    settings, state = settings_with(), State(location)
    feed = Feed(weekly(10))
    first = at(START, "08:00")
    for week in range(10):
        sync(settings, state, feed, first + timedelta(weeks=week))
    assert feed.asked[-1].start > at(START + timedelta(weeks=5), "09:00")
    assert cached_ids(state) == sorted(f"s{n}" for n in range(10))
    # The first listing's start, kept ever since: the cache holds the calendar from then.
    assert history_from(state) == feed.asked[0].start


def test_past_events_a_feed_stops_showing_stay_and_a_coming_one_it_drops_goes(
    location: Location,
) -> None:
    settings, state = settings_with(), State(location)
    feed = Feed(weekly(4))
    now = at(START + timedelta(weeks=2), "08:00")  # s0 and s1 are past, s2 and s3 to come
    sync(settings, state, feed, now)
    assert cached_ids(state) == ["s0", "s1", "s2", "s3"]
    # The practice system shows only what is to come (TheraNest: 60 days ahead), and s3
    # was cancelled by deleting it.
    feed.events = [e for e in feed.events if e.id == "s2"]
    sync(settings, state, feed, now + timedelta(hours=1))
    assert cached_ids(state) == ["s0", "s1", "s2"]


def test_a_past_event_deleted_from_a_calendar_that_shows_the_past_goes(location: Location) -> None:
    settings, state = settings_with(), State(location)
    feed = Feed(weekly(4))
    now = at(START + timedelta(weeks=2), "08:00")
    sync(settings, state, feed, now)
    # s1 is deleted; s0, shown before it, says the calendar still shows that past.
    feed.events = [e for e in feed.events if e.id != "s1"]
    sync(settings, state, feed, now + timedelta(hours=1))
    assert cached_ids(state) == ["s0", "s2", "s3"]


def test_events_older_than_keep_history_are_pruned(location: Location) -> None:
    settings, state = settings_with("30d"), State(location)
    feed = Feed(weekly(12))
    for week in range(12):
        now = at(START + timedelta(weeks=week), "08:00")
        sync(settings, state, feed, now)
    kept = cached_ids(state)
    assert kept == sorted(f"s{n}" for n in range(7, 12))  # Mondays within 30 days
    found = history_from(state)
    assert found is not None and found >= now - timedelta(days=30)


def test_keep_history_of_nothing_keeps_only_what_the_rules_need(location: Location) -> None:
    settings, state = settings_with("0d"), State(location)
    feed = Feed(weekly(6))
    for week in range(6):
        now = at(START + timedelta(weeks=week), "08:00")
        sync(settings, state, feed, now)
    with state.read() as tables:
        ends = [r.event.end for r in tables.events.recorded("lee", EVERYTHING)]
        row = tables.calendars.get("lee", "work")
    assert row is not None and row.window is not None
    assert ends and min(ends) > row.window.start  # nothing before what the rules read


def test_a_daemon_away_longer_than_its_window_lists_from_where_it_left_off(
    location: Location,
) -> None:
    settings, state = settings_with(), State(location)
    feed = Feed(weekly(12))
    left = at(START, "08:00")
    sync(settings, state, feed, left)
    began = history_from(state)
    sync(settings, state, feed, left + timedelta(days=40))
    assert feed.asked[-1].start == left  # not the rules' window (14 days back)
    assert history_from(state) == began
    assert {f"s{n}" for n in range(6)} <= set(cached_ids(state))  # no gap


def test_a_calendar_service_keeps_history_and_a_past_deletion_counts(location: Location) -> None:
    settings, state = settings_with(), State(location)
    clinician = settings.clinicians[0]
    MemoryStore.forget("history-incremental")
    store = MemoryStore.named("history-incremental")
    for event in weekly(6):
        store.put(event)
    calendar = MemoryCalendar(id="work", provider="memory", store="history-incremental")
    provider = open_provider(calendar, provider_context(settings, clinician))
    now = at(START + timedelta(weeks=2), "08:00")
    sync(settings, state, provider, now)
    store.remove("s1")  # a past event deleted (it did not happen)
    sync(settings, state, provider, now + timedelta(hours=1))
    assert cached_ids(state) == ["s0", "s2", "s3", "s4", "s5"]
    for week in range(3, 7):  # the window moves on, past s0 and s2
        sync(settings, state, provider, at(START + timedelta(weeks=week), "08:00"))
    assert cached_ids(state) == ["s0", "s2", "s3", "s4", "s5"]
    MemoryStore.forget("history-incremental")


def test_history_keeps_the_kind_and_level_and_never_a_title(location: Location) -> None:
    settings, state = settings_with(), State(location)
    feed = Feed(weekly(3, title="Session R.T. Canary-7391 #heavy"))
    sync(settings, state, feed, at(START + timedelta(weeks=3), "08:00"))
    with state.read() as tables:
        recorded = tables.events.recorded("lee", EVERYTHING)
    assert {(r.kind, r.level) for r in recorded} == {("session", "high")}
    assert "Canary-7391" not in repr(state.dump())
    assert "R.T." not in repr(state.dump())


def test_the_cycles_prune_forgets_history_of_every_calendar(location: Location) -> None:
    settings, state = settings_with(), State(location)
    sync(settings, state, Feed(weekly(4)), at(START + timedelta(weeks=4), "08:00"))
    with state.transaction() as tables:
        tables.prune(
            "lee",
            at(START + timedelta(weeks=4), "08:00"),
            timedelta(days=7),
            history_before=at(START + timedelta(weeks=2), "00:00"),
        )
    assert cached_ids(state) == ["s2", "s3"]


def test_a_state_of_schema_3_is_upgraded_with_its_cached_events(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    for migration in MIGRATIONS[:3]:
        db.executescript(migration)
    db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    db.execute(
        "INSERT INTO events (clinician, calendar, id, start, end, all_day, tags, cancelled, "
        "busy, declined) VALUES ('lee', 'work', 'old', '2026-09-07T13:00:00+00:00', "
        "'2026-09-07T13:50:00+00:00', 0, '[\"heavy\"]', 0, 1, 0)"
    )
    db.execute("INSERT INTO calendars (clinician, calendar, token) VALUES ('lee', 'work', 't')")
    db.commit()
    db.close()
    state = State(path)
    assert state.schema_version() == SCHEMA_VERSION >= 4
    with state.read() as tables:
        [old] = tables.events.recorded("lee", EVERYTHING)
        row = tables.calendars.get("lee", "work")
    assert (old.event.id, old.kind, old.level) == ("old", None, None)
    # No history is claimed before a listing was stored; the next cycle lists in full.
    assert row is not None and row.history_from is None and row.token is None
