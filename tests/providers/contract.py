"""The provider contract: one suite that every provider passes (like vdirsyncer's
StorageTests). A provider's test module subclasses :class:`ProviderContract` and supplies
the fixture ``backend``: an object that makes a fresh calendar, opens the provider on it,
and acts on the calendar as its user would (through the service's own API or files,
never through the provider under test)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest

from caldaemon.errors import RemoteGone, WriteConflict
from caldaemon.model import Buffer, Create, Delete, Update, Window
from caldaemon.providers.base import Provider

TZ = ZoneInfo("America/Toronto")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
WINDOW = Window(datetime(2026, 11, 23, tzinfo=TZ), datetime(2026, 12, 28, tzinfo=TZ))
SELF = "clinician@example.org"


# Friday 4 Dec 2026 is full: its free working hours are held; Saturday is a day off.
FRIDAY = datetime(2026, 12, 4, tzinfo=TZ)
SATURDAY = datetime(2026, 12, 5, tzinfo=TZ)


def hold(start: datetime, end: datetime, *, all_day: bool = False) -> Buffer:
    """A hold over protected time, as the core wants it (DESIGN.md §10)."""
    title = "Day off" if all_day else "Protected time"
    after = f"day/{start:%Y-%m-%d}/{start:%H%M}"
    return Buffer("lee", "work", start, end, title, after, "protect", all_day=all_day)


def day_off(day: datetime = SATURDAY) -> Buffer:
    return hold(day, day + timedelta(days=1), all_day=True)


def working_day_of_holds() -> list[Buffer]:
    """Three free stretches of a full Friday held, and an all-day hold on Saturday."""
    stretches = [(9, 10), (12, 13), (15, 17)]
    timed = [hold(FRIDAY + timedelta(hours=a), FRIDAY + timedelta(hours=b)) for a, b in stretches]
    return [*timed, day_off()]


@dataclass
class UserEvent:
    """An event as its user makes it in their calendar app."""

    uid: str
    start: datetime
    end: datetime
    title: str = "Session #heavy"
    all_day: bool = False
    transparent: bool = False
    cancelled: bool = False
    declined: bool = False
    categories: tuple[str, ...] = ()


class Backend(Protocol):
    read_only: bool

    def provider(self) -> Provider: ...
    def add(self, event: UserEvent) -> str: ...  # returns the id the provider will show
    def change(self, event_id: str, event: UserEvent) -> None: ...
    def remove(self, event_id: str) -> None: ...
    def edit_title(self, event_id: str, title: str) -> None: ...  # as the user would
    def count_with_title(self, title: str) -> int: ...  # events on the calendar with it


def buffer(start: datetime = MONDAY_10 + timedelta(minutes=50), after: str = "work/s1") -> Buffer:
    return Buffer(
        "lee", "work", start, start + timedelta(minutes=15), "Grounding time", after, "high"
    )


def by_id(listing: Any) -> dict[str, Any]:
    return {e.id: e for e in listing.events}


class ProviderContract:
    """Subclass and provide a ``backend`` fixture."""

    # -- reading -----------------------------------------------------------------------

    def test_lists_a_session_with_aware_times_and_its_title(self, backend: Backend) -> None:
        event_id = backend.add(
            UserEvent(
                "s1", MONDAY_10, MONDAY_10 + timedelta(minutes=50), "Session with A.B. #heavy"
            )
        )
        listing = backend.provider().changes(WINDOW, None)
        assert listing.full
        event = by_id(listing)[event_id]
        assert event.start == MONDAY_10 and event.end == MONDAY_10 + timedelta(minutes=50)
        assert event.start.tzinfo is not None
        assert "#heavy" in event.title and event.owner is None
        assert not (event.cancelled or event.declined or event.all_day) and event.busy

    def test_events_outside_the_window_are_not_listed(self, backend: Backend) -> None:
        far = MONDAY_10 + timedelta(days=90)
        far_id = backend.add(UserEvent("far", far, far + timedelta(hours=1)))
        near_id = backend.add(UserEvent("near", MONDAY_10, MONDAY_10 + timedelta(hours=1)))
        ids = set(by_id(backend.provider().changes(WINDOW, None)))
        assert near_id in ids and far_id not in ids

    def test_all_day_free_declined_and_cancelled_are_mapped(self, backend: Backend) -> None:
        day = datetime(2026, 12, 2, tzinfo=TZ)
        ids = {
            "all_day": backend.add(
                UserEvent("ad", day, day + timedelta(days=1), "Off #off", all_day=True)
            ),
            "free": backend.add(
                UserEvent("fr", MONDAY_10, MONDAY_10 + timedelta(hours=1), transparent=True)
            ),
            "declined": backend.add(
                UserEvent("de", MONDAY_10, MONDAY_10 + timedelta(hours=1), declined=True)
            ),
        }
        events = by_id(backend.provider().changes(WINDOW, None))
        all_day = events[ids["all_day"]]
        assert all_day.all_day and all_day.start.astimezone(TZ) == day
        assert all_day.end.astimezone(TZ) == day + timedelta(days=1)
        assert not events[ids["free"]].busy
        assert events[ids["declined"]].declined

    def test_no_change_since_the_token_lists_nothing(self, backend: Backend) -> None:
        backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + timedelta(hours=1)))
        provider = backend.provider()
        first = provider.changes(WINDOW, None)
        second = provider.changes(WINDOW, first.token)
        assert not second.full and second.events == () and second.removed == ()

    def test_changes_since_the_token_are_listed(self, backend: Backend) -> None:
        kept = backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + timedelta(hours=1)))
        gone = backend.add(
            UserEvent("s2", MONDAY_10 + timedelta(days=1), MONDAY_10 + timedelta(days=1, hours=1))
        )
        provider = backend.provider()
        first = provider.changes(WINDOW, None)
        moved = MONDAY_10 + timedelta(hours=3)
        backend.change(kept, UserEvent("s1", moved, moved + timedelta(hours=1)))
        backend.remove(gone)
        second = provider.changes(WINDOW, first.token)
        if second.full:
            ids = by_id(second)
            assert gone not in ids and ids[kept].start == moved
        else:
            assert by_id(second)[kept].start == moved
            assert gone in second.removed or (
                by_id(second).get(gone, None) is not None and (by_id(second)[gone].cancelled)
            )

    def test_the_service_says_whether_buffers_may_be_written_without_a_write(
        self, backend: Backend
    ) -> None:
        backend.add(UserEvent("s1", MONDAY_10, MONDAY_10 + timedelta(minutes=50)))
        provider = backend.provider()
        before = provider.changes(WINDOW, None).events
        access = provider.write_access()
        assert access.allowed is (not backend.read_only) and access.evidence
        assert provider.changes(WINDOW, None).events == before

    # -- writing -----------------------------------------------------------------------

    def _writable(self, backend: Backend) -> Provider:
        if backend.read_only:
            pytest.skip("read-only provider")
        return backend.provider()

    def test_a_created_buffer_is_listed_with_its_owner_and_etag(self, backend: Backend) -> None:
        provider = self._writable(backend)
        b = buffer()
        [result] = provider.apply([Create(b, b.identity)])
        assert result.error is None and result.remote is not None
        listed = by_id(provider.changes(WINDOW, None))[result.remote.id]
        assert listed.owner == b.identity and listed.etag == result.remote.etag
        assert (listed.start, listed.end) == (b.start, b.end) and listed.busy
        assert listed.title == "Grounding time"

    def test_an_all_day_hold_is_listed_as_whole_days_owned_and_busy(self, backend: Backend) -> None:
        provider = self._writable(backend)
        day = datetime(2026, 12, 4, tzinfo=TZ)
        hold = Buffer(
            "lee",
            "work",
            day,
            day + timedelta(days=1),
            "Protected time",
            "2026-12-04",
            "off",
            all_day=True,
        )
        [result] = provider.apply([Create(hold, hold.identity)])
        assert result.error is None and result.remote is not None
        listed = by_id(provider.changes(WINDOW, None))[result.remote.id]
        assert listed.all_day and listed.busy and listed.owner == hold.identity
        assert (listed.start.astimezone(TZ), listed.end.astimezone(TZ)) == (hold.start, hold.end)
        [deleted] = provider.apply([Delete(hold.identity, result.remote)])
        assert deleted.error is None
        assert result.remote.id not in by_id(provider.changes(WINDOW, None))

    def test_creating_the_same_buffer_twice_makes_one_event(self, backend: Backend) -> None:
        provider = self._writable(backend)
        b = buffer()
        [first] = provider.apply([Create(b, b.identity)])
        [second] = provider.apply([Create(b, b.identity)])
        assert second.error is None and second.remote.id == first.remote.id
        assert backend.count_with_title("Grounding time") == 1

    def test_update_moves_a_buffer_only_with_the_current_etag(self, backend: Backend) -> None:
        provider = self._writable(backend)
        b = buffer()
        [created] = provider.apply([Create(b, b.identity)])
        moved = buffer(start=b.start + timedelta(hours=2))
        [updated] = provider.apply([Update(moved, b.identity, created.remote)])
        assert updated.error is None and updated.remote.etag != created.remote.etag
        assert by_id(provider.changes(WINDOW, None))[created.remote.id].start == moved.start
        [stale] = provider.apply([Update(b, b.identity, created.remote)])
        assert isinstance(stale.error, WriteConflict)

    def test_a_user_edit_changes_the_etag_and_blocks_our_writes(self, backend: Backend) -> None:
        provider = self._writable(backend)
        b = buffer()
        [created] = provider.apply([Create(b, b.identity)])
        backend.edit_title(created.remote.id, "Grounding walk")
        listed = by_id(provider.changes(WINDOW, None))[created.remote.id]
        assert listed.etag != created.remote.etag
        [delete] = provider.apply([Delete(b.identity, created.remote)])
        assert isinstance(delete.error, WriteConflict)
        assert backend.count_with_title("Grounding walk") == 1

    def test_delete_removes_the_buffer_and_a_second_delete_finds_it_gone(
        self, backend: Backend
    ) -> None:
        provider = self._writable(backend)
        b = buffer()
        [created] = provider.apply([Create(b, b.identity)])
        [deleted] = provider.apply([Delete(b.identity, created.remote)])
        assert deleted.error is None
        assert created.remote.id not in by_id(provider.changes(WINDOW, None))
        [again] = provider.apply([Delete(b.identity, created.remote)])
        assert isinstance(again.error, RemoteGone)

    def test_several_writes_in_one_apply_each_get_a_result(self, backend: Backend) -> None:
        provider = self._writable(backend)
        buffers = [
            buffer(start=MONDAY_10 + timedelta(days=d), after=f"work/s{d}") for d in range(3)
        ]
        results = provider.apply([Create(b, b.identity) for b in buffers])
        assert [r.error for r in results] == [None, None, None]
        assert len({r.remote.id for r in results}) == 3
