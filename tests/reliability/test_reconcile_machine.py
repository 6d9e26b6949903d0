"""Reconciliation as a hypothesis state machine (issue 10, item 9; as vdirsyncer tests its
sync): random interleavings of what the user does to the session and buffers calendars,
what the server does wrong, and caldaemon's cycles with the clock, the horizon and the
state folder changing under them. The world is in machine_world.py.

Invariants, after every step:
1. No user event is changed or deleted by caldaemon: the user's own events, their copies
   of buffers and the buffers they edited stay as the user left them; the session calendar
   is never written; nothing before now is created, moved or deleted.
2. No duplicate buffer: a cycle never leaves two live events bound to one buffer identity
   (any generation) where there was at most one; a buffer the user deleted is not written
   again.
3. When the disturbances stop, two cycles converge to exactly the buffers DESIGN.md §3
   wants (computed here by the pure core from the calendars as the server holds them),
   except where the user edited or deleted a buffer, and a third cycle writes nothing.

CI runs a bounded, derandomized size. Nightly size, locally::

    CALDAEMON_MACHINE_EXAMPLES=2000 CALDAEMON_MACHINE_STEPS=50 \\
        pytest tests/reliability/test_reconcile_machine.py
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import count

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from caldaemon.errors import TransientError
from caldaemon.model import Event
from tests.reliability.machine_ledger import Ledger
from tests.reliability.machine_world import World, bound, content, note, unstamped
from tests.support import TZ

EXAMPLES = int(os.environ.get("CALDAEMON_MACHINE_EXAMPLES", "40"))
STEPS = int(os.environ.get("CALDAEMON_MACHINE_STEPS", "30"))

# High (15 minutes of grounding time after it), moderate (10 of notes), low (none).
TITLES = ["Session #heavy", "Session #heavy", "Session", "Session #light"]
days = st.integers(0, 13)
slots = st.integers(7 * 12, 18 * 12)  # five-minute slots between 07:00 and 18:00
lengths = st.sampled_from([45, 50, 60])
picks = st.integers(0, 1000)
CALENDARS = st.sampled_from(["practice", "buffers"])


class ReconcileMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.ledger = Ledger()
        self.sessions: dict[str, Event] = {}  # what the user last put, by id
        self.removed: dict[str, Event] = {}  # sessions the user deleted outright
        self.backup: list[Event] | None = None
        self.ids = count()

    # -- helpers ---------------------------------------------------------------------

    def _start(self, day: int, slot: int) -> datetime:
        local = self.world.now.astimezone(TZ)
        midnight = datetime(local.year, local.month, local.day, tzinfo=TZ)
        start = (midnight + timedelta(days=day)).replace(hour=slot // 12, minute=slot % 12 * 5)
        return start if start >= self.world.now else start + timedelta(days=1)

    def _put_session(self, event: Event) -> None:
        self.sessions[event.id] = unstamped(self.world.practice.put(event))

    def _live_sessions(self) -> list[Event]:
        return sorted((e for e in self.sessions.values() if not e.cancelled), key=lambda e: e.id)

    def _buffers(self) -> list[Event]:
        """Caldaemon's marked events on the buffers calendar, any owner (sorted)."""
        return [e for e in self.world.buffers.all() if bound(e)]

    def _cycle(self, minutes: int = 2) -> None:
        world, ledger = self.world, self.ledger
        world.now += timedelta(minutes=minutes)
        calm = not world.disturbed
        listed = world.buffers.refusal is None and not world.glitches["buffers"].hidden
        before = {e.id: e for e in world.buffers.all()}
        wanted = world.wanted()
        ledger.before_cycle(list(before.values()), wanted)
        if calm:
            ledger.before_calm_cycle(list(before.values()), wanted, world.now)
        else:
            glitches = world.glitches["buffers"]
            writes = glitches.writes_down or glitches.answers_lost
            ledger.before_disturbed_cycle(list(before.values()), writes=writes)
        practice = world.practice.version
        report = world.cycle()
        if calm:
            assert report.ok, f"a calm cycle failed: {report.calendar_errors}"
        for done, count_ in (("created", report.created), ("moved", report.updated)):
            if count_:
                note(f"a cycle {done} buffers")
        if report.deleted:
            note("a cycle deleted buffers")
        assert world.practice.version == practice, "caldaemon wrote to the session calendar"
        after = {e.id: e for e in world.buffers.all()}
        answered = not world.glitches["buffers"].answers_lost
        ledger.after_cycle(before, after, world.now, calm=calm, listed=listed, answered=answered)
        world.calm()

    # -- the user, on the session calendar ----------------------------------------------

    @initialize(
        first=st.lists(
            st.tuples(days, slots, lengths, st.sampled_from(TITLES)), min_size=1, max_size=5
        )
    )
    def a_week_of_sessions(self, first: list[tuple[int, int, int, str]]) -> None:
        for day, slot, minutes, title in first:
            self.add_session(day, slot, minutes, title)

    @precondition(lambda self: len(self.sessions) < 10)
    @rule(day=days, slot=slots, minutes=lengths, title=st.sampled_from(TITLES))
    def add_session(self, day: int, slot: int, minutes: int, title: str) -> None:
        start = self._start(day, slot)
        event_id = f"s{next(self.ids)}"
        self._put_session(
            Event("practice", event_id, start, start + timedelta(minutes=minutes), title=title)
        )

    @precondition(lambda self: any(not e.cancelled for e in self.sessions.values()))
    @rule(pick=picks, day=days, slot=slots)
    def move_session(self, pick: int, day: int, slot: int) -> None:
        live = self._live_sessions()
        session = live[pick % len(live)]
        start = self._start(day, slot)
        self._put_session(replace(session, start=start, end=start + (session.end - session.start)))

    @precondition(lambda self: any(not e.cancelled for e in self.sessions.values()))
    @rule(pick=picks, deleted=st.booleans())
    def cancel_session(self, pick: int, deleted: bool) -> None:
        """Marked cancelled (ICS, CalDAV), or deleted outright (Google, Outlook)."""
        live = self._live_sessions()
        session = live[pick % len(live)]
        if deleted:
            self.world.practice.remove(session.id)
            self.removed[session.id] = session
            self.sessions[session.id] = replace(session, cancelled=True)
        else:
            self._put_session(replace(session, cancelled=True))

    @precondition(lambda self: any(e.cancelled for e in self.sessions.values()))
    @rule(pick=picks)
    def restore_session(self, pick: int) -> None:
        cancelled = sorted((e for e in self.sessions.values() if e.cancelled), key=lambda e: e.id)
        session = cancelled[pick % len(cancelled)]
        self.removed.pop(session.id, None)
        self._put_session(replace(session, cancelled=False))

    # -- the user, on the buffers calendar ------------------------------------------------

    @precondition(lambda self: any(bound(e) for e in self.world.buffers.all()))
    @rule(pick=picks, title=st.sampled_from([None, "Grounding walk"]), shift=st.integers(-6, 6))
    def edit_buffer(self, pick: int, title: str | None, shift: int) -> None:
        """A title or a time changed in the calendar app (the marker stays on)."""
        placed = self._buffers()
        event = placed[pick % len(placed)]
        moved = timedelta(minutes=15 * shift)
        edited = replace(
            event, title=title or event.title, start=event.start + moved, end=event.end + moved
        )
        if content(edited) == content(event):
            edited = replace(edited, title=event.title + " (mine)")
        self.ledger.user_put(self.world.buffers.put(edited))

    @precondition(lambda self: any(bound(e) for e in self.world.buffers.all()))
    @rule(pick=picks)
    def delete_buffer(self, pick: int) -> None:
        placed = self._buffers()
        event = placed[pick % len(placed)]
        self.world.buffers.remove(event.id)
        self.ledger.user_removed(event, self.world.now)

    @precondition(lambda self: any(bound(e) for e in self.world.buffers.all()))
    @rule(pick=picks)
    def duplicate_buffer(self, pick: int) -> None:
        """A copy under a new id that keeps the marker: the user's event."""
        placed = self._buffers()
        copy = replace(placed[pick % len(placed)], id=f"copy-{next(self.ids)}")
        self.ledger.user_put(self.world.buffers.put(copy))

    @rule(day=days, slot=slots, minutes=lengths, title=st.sampled_from(["Dentist", "Lunch"]))
    def add_own_event(self, day: int, slot: int, minutes: int, title: str) -> None:
        start = self._start(day, slot)
        end = start + timedelta(minutes=minutes)
        event = Event("buffers", f"own-{next(self.ids)}", start, end, title=title)
        self.ledger.user_put(self.world.buffers.put(event))

    @rule()
    def take_backup(self) -> None:
        self.backup = self.world.buffers.all()

    @precondition(lambda self: self.backup is not None)
    @rule()
    def restore_backup(self) -> None:
        """The backup imported into the calendar: every event in it is put back as it was;
        events made since stay."""
        assert self.backup is not None
        for event in self.backup:
            self.ledger.user_put(self.world.buffers.put(event))

    # -- the server ------------------------------------------------------------------------

    @rule(calendar=CALENDARS, pick=picks)
    def etag_drift(self, calendar: str, pick: int) -> None:
        """The server gives an event a new etag with nothing changed (DESIGN.md §8)."""
        store = self.world.practice if calendar == "practice" else self.world.buffers
        events = store.all()
        if events:
            store.put(events[pick % len(events)])

    @rule(calendar=CALENDARS)
    def cycle_with_an_empty_listing(self, calendar: str) -> None:
        self.world.glitches[calendar].hidden = True
        self._cycle()

    @rule(calendar=CALENDARS)
    def cycle_with_the_sync_token_refused(self, calendar: str) -> None:
        self.world.glitches[calendar].token_refused = True
        self._cycle()

    @rule(calendars=st.sampled_from([("practice",), ("buffers",), ("practice", "buffers")]))
    def cycle_during_an_outage(self, calendars: tuple[str, ...]) -> None:
        for name in calendars:
            store = self.world.practice if name == "practice" else self.world.buffers
            store.refusal = TransientError(name, "memory calendar", "503 Service Unavailable")
        self._cycle()

    @rule(lost=st.booleans())
    def cycle_with_writes_failing(self, lost: bool) -> None:
        """Writes refused with a 5xx after the reads went through, or landed with their
        answers lost."""
        glitches = self.world.glitches["buffers"]
        glitches.answers_lost, glitches.writes_down = lost, not lost
        self._cycle()

    # -- caldaemon -----------------------------------------------------------------------

    @rule(minutes=st.integers(1, 15))
    def cycle(self, minutes: int) -> None:
        self._cycle(minutes)

    @rule(minutes=st.integers(5, 600))
    def cycle_after_the_clock_steps_back(self, minutes: int) -> None:
        self.world.now -= timedelta(minutes=minutes)
        self._cycle(0)

    @rule(hours=st.integers(1, 16))
    def cycle_after_a_night_asleep(self, hours: int) -> None:
        self._cycle(60 * hours)

    @rule(days=st.integers(7, 28))
    def cycle_with_another_horizon(self, days: int) -> None:
        self.world.horizon = timedelta(days=days)
        self._cycle()

    @rule()
    def lose_the_state_folder(self) -> None:
        self.world.lose_state()
        self.ledger.state_lost()

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def the_users_events_are_as_they_left_them(self) -> None:
        for event_id, event in self.ledger.users.items():
            found = self.world.buffers.get(event_id)
            assert found is not None, f"the user's event {event_id} is gone"
            assert unstamped(found) == event, f"the user's event changed: {event} → {found}"
        practice = {e.id: unstamped(e) for e in self.world.practice.all()}
        expected = {i: e for i, e in self.sessions.items() if i not in self.removed}
        assert practice == expected, "the session calendar changed"

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # a failing step is reported as it is
                self._converge()
        finally:
            self.world.close()

    def _converge(self) -> None:
        """The disturbances stop: two cycles settle everything; a third writes nothing."""
        world = self.world
        world.calm()
        self._cycle()
        self._cycle()
        calendar = world.buffers.all()
        wanted = world.wanted()
        exempt = self.ledger.exempt(calendar, world.now)
        current = {  # out of view (past, or beyond the horizon) nothing is changed
            identity: [e for e in events if world.in_view(e)]
            for identity, events in self.ledger.current(calendar, world.now).items()
        }
        for identity, buffer in wanted.items():
            if identity in exempt:
                continue
            events = current.get(identity, [])
            assert len(events) == 1, f"buffer {identity[:8]} wanted once, found {events}"
            expected = (buffer.start, buffer.end, buffer.title, True)
            assert content(events[0]) == expected, f"buffer {identity[:8]} is {events[0]}"
        for identity, events in current.items():
            assert identity in wanted or identity in exempt or not events, (
                f"buffer {identity[:8]} has no session but stays: {events}"
            )
        judged = [i for i in wanted if i not in exempt]
        note(f"converged on {min(len(judged), 3)}{'+' if len(judged) >= 3 else ''} buffers")
        note(f"{min(len(exempt), 2)}{'+' if len(exempt) >= 2 else ''} identities exempt")
        version = world.buffers.version
        self._cycle()
        assert world.buffers.version == version, "a third cycle still wrote"


ReconcileMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize="CALDAEMON_MACHINE_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
TestReconcileMachine = ReconcileMachine.TestCase
