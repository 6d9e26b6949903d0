"""The ledger of the reconciliation state machine: what the test knows, from the user's own
actions and from what changed on the buffers calendar during each cycle, about whose each
event is and what caldaemon can remember. It never reads caldaemon's state; it judges as
DESIGN.md §5 says a person would: the content caldaemon last wrote to an id is caldaemon's,
any other content the user gave that id is the user's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from caldaemon.model import Buffer, Event
from caldaemon.state.db import KEEP_PAST_BUFFERS
from tests.reliability.machine_world import (
    Content,
    bound,
    content,
    generation_of,
    identity_of,
    note,
    unstamped,
)


@dataclass
class Record:
    """What caldaemon remembers of one buffer identity, as far as the test can tell."""

    event_id: str  # the id its generation's writes produce
    generation: int
    # The slot it last wrote: once it has begun the buffer is history; the record is
    # dropped a day after it ended (documented).
    start: datetime
    end: datetime
    live: bool  # bound to an event on the calendar (neither side deleted it)


@dataclass
class Ledger:
    # The user's events as the user left them (their own, their copies of buffers, the
    # buffers whose content they changed): caldaemon must never touch these.
    users: dict[str, Event] = field(default_factory=dict)
    # The content caldaemon last wrote to each id.
    written: dict[str, Content] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    # Identities whose future buffer the user deleted while caldaemon certainly knew it:
    # never written again (DESIGN.md §3) until that buffer's slot is history (then its
    # session, moved into the future, gets a new one).
    deleted: set[str] = field(default_factory=set)
    # Identities where caldaemon cannot tell, or the test cannot predict, what is right:
    # exempt from convergence, never from "the user's events are untouched".
    ambiguous: set[str] = field(default_factory=set)
    # Buffers caldaemon left in the past when their session moved into the future.
    history: set[str] = field(default_factory=set)
    # A write's fate is unknown to caldaemon (refused, or its answer lost) until a calm
    # cycle settles the intent it recorded.
    doubt: bool = False
    # Buffers moved by an update whose answer was lost: their content before it. The user
    # putting that content back is indistinguishable, for caldaemon, from the update not
    # having landed (it then sends it again).
    unanswered: dict[str, Content] = field(default_factory=dict)

    # -- the user --------------------------------------------------------------------

    def user_put(self, event: Event) -> None:
        """The user wrote ``event``: an edit, a copy, their own, a restored backup."""
        if not bound(event):
            self.users[event.id] = unstamped(event)
            return
        identity = identity_of(event)
        if self.unanswered.get(event.id) == content(event):
            self.users.pop(event.id, None)
            self.ambiguous.add(identity)
            return
        record = self.records.get(identity)
        # What caldaemon remembers as its content for this buffer: another generation
        # than its record's (a restored backup) is judged against the record's content.
        mine = event.id if record is None else record.event_id
        if self.written.get(mine) == content(event):
            # Caldaemon's own content is back: its buffer again (an edit undone, a backup).
            self.users.pop(event.id, None)
            if record is not None and record.event_id == event.id:
                self.deleted.discard(identity)
        else:
            self.users[event.id] = unstamped(event)

    def user_removed(self, event: Event, now: datetime) -> None:
        self.users.pop(event.id, None)
        if not bound(event):
            return
        identity = identity_of(event)
        record = self.records.get(identity)
        written = self.written.get(event.id)
        # A deletion caldaemon will certainly judge as the user's: its live record is
        # bound to this id, nothing of it is in doubt, and the slot is not history.
        certain = (
            record is not None
            and record.live
            and record.generation == generation_of(event)
            and written is not None
            and written[0] >= now
            and event.id not in self.history
            and identity not in self.ambiguous
            and not self.doubt
        )
        if record is not None and record.generation == generation_of(event):
            record.live = False
        note(f"user deleted a buffer ({'certain' if certain else 'ambiguous'})")
        (self.deleted if certain else self.ambiguous).add(identity)

    def state_lost(self) -> None:
        """Caldaemon forgets everything, the user's deletions with it (nothing on the
        calendar remembers them); every marked event is judged afresh."""
        self.records.clear()
        self.deleted.clear()
        self.ambiguous.clear()
        self.doubt = False
        self.unanswered.clear()

    # -- caldaemon's cycles ---------------------------------------------------------------

    def before_cycle(self, calendar: Sequence[Event], wanted: dict[str, Buffer]) -> None:
        """Another generation of a recorded buffer that holds what caldaemon would write
        now is a copy caldaemon made (DESIGN.md §5), whoever put it back."""
        for identity, events in by_identity(calendar).items():
            record, buffer = self.records.get(identity), wanted.get(identity)
            if record is None or buffer is None:
                continue
            for event in events:
                same = content(event) == (buffer.start, buffer.end, buffer.title, True)
                if event.id != record.event_id and same:
                    self.users.pop(event.id, None)

    def before_calm_cycle(
        self, calendar: Sequence[Event], wanted: dict[str, Buffer], now: datetime
    ) -> None:
        """With no record, caldaemon adopts the newest marked event of a wanted buffer as
        its own only if it holds what it would write now; otherwise it is the user's edit
        and left alone (DESIGN.md §5). One in the past is history: a new life follows."""
        for identity, events in by_identity(calendar).items():
            buffer = wanted.get(identity)
            if identity in self.records or identity in self.ambiguous or buffer is None:
                continue
            newest = max(events, key=generation_of)
            if newest.start < now:
                continue
            self.records[identity] = Record(
                newest.id, generation_of(newest), buffer.start, buffer.end, live=True
            )
            # What caldaemon now remembers as its own content for that id, either way.
            self.written[newest.id] = (buffer.start, buffer.end, buffer.title, True)
            if content(newest) == self.written[newest.id]:
                note("state lost: a marked event adopted")
                self.users.pop(newest.id, None)
            else:
                note("state lost: a marked event left alone as the user's")
                self.users[newest.id] = unstamped(newest)

    def before_disturbed_cycle(self, calendar: Sequence[Event], *, writes: bool) -> None:
        """Caldaemon may judge marked events it has no record of on partial evidence (an
        empty listing, a stale cache): the test does not predict how."""
        self.ambiguous.update(i for i in by_identity(calendar) if i not in self.records)
        self.doubt = self.doubt or writes

    def after_cycle(
        self,
        before: dict[str, Event],
        after: dict[str, Event],
        now: datetime,
        *,
        calm: bool,
        listed: bool,
        answered: bool,
    ) -> None:
        """Check what one cycle changed on the buffers calendar, and learn from it."""
        for event_id in sorted(after.keys() - before.keys()):
            self._created(after[event_id], after, now)
        for event_id in after.keys() & before.keys():
            old, new = before[event_id], after[event_id]
            if old != new:
                assert event_id not in self.users, f"caldaemon changed the user's event {old}"
                assert bound(old) and bound(new), f"caldaemon changed {old} into {new}"
                assert old.start >= now and new.start >= now, (
                    f"caldaemon moved a buffer in the past: {old} into {new}"
                )
                if not answered:
                    self.unanswered[event_id] = content(old)
                self.written[event_id] = content(new)
                self.records[identity_of(new)] = Record(
                    event_id, generation_of(new), new.start, new.end, live=True
                )
        for event_id in before.keys() - after.keys():
            old = before[event_id]
            assert event_id not in self.users, f"caldaemon deleted the user's event {old}"
            assert bound(old), f"caldaemon deleted {old}"
            assert old.start >= now, f"caldaemon deleted a buffer in the past: {old}"
            record = self.records.get(identity_of(old))
            if record is not None and record.generation == generation_of(old):
                record.live = False
        no_new_duplicates(before, after, now, set(self.users) | self.history)
        for identity, record in list(self.records.items()):
            if record.end < now - KEEP_PAST_BUFFERS:  # forgotten, as documented
                del self.records[identity]
                self.deleted.discard(identity)
        if listed:  # an event of a record shows up again: adopted (DESIGN.md §5)
            for event in after.values():
                record = self.records.get(identity_of(event)) if bound(event) else None
                if record is not None and record.generation == generation_of(event):
                    record.live = True
        if calm:
            self.doubt = False
            self.unanswered.clear()

    def _created(self, event: Event, calendar: dict[str, Event], now: datetime) -> None:
        assert bound(event), f"caldaemon wrote an event not bound to its marker: {event}"
        identity = identity_of(event)
        assert event.start >= now, f"caldaemon created a buffer in the past: {event}"
        if identity in self.deleted:
            # Only once the deleted buffer's slot has begun (history): its session, moved
            # into the future, then gets a new buffer; the deletion was of the old one.
            assert self.records[identity].start < now, (
                f"caldaemon recreated buffer {identity[:8]} the user deleted: {event}"
            )
            self.deleted.discard(identity)
        self.written[event.id] = content(event)
        self.records[identity] = Record(
            event.id, generation_of(event), event.start, event.end, live=True
        )
        if generation_of(event) > 0:
            note("a buffer came back as a new generation")
        self.history.update(
            e.id
            for e in by_identity(list(calendar.values())).get(identity, [])
            if e.id != event.id and e.start < now
        )

    # -- convergence -----------------------------------------------------------------------

    def exempt(self, calendar: Sequence[Event], now: datetime) -> set[str]:
        """Identities convergence does not judge: the user's, those the user deleted, the
        ambiguous, and those with a current marked event caldaemon has no record of."""
        found = self.deleted | self.ambiguous
        for identity, events in by_identity(calendar).items():
            users = any(e.id in self.users for e in events)
            unrecorded = identity not in self.records and any(e.start >= now for e in events)
            if users or unrecorded:
                found.add(identity)
        return found

    def current(self, calendar: Sequence[Event], now: datetime) -> dict[str, list[Event]]:
        """Caldaemon's buffers from now on, by identity, without what it left as history."""
        live = live_buffers(calendar, now)
        return {i: [e for e in events if e.id not in self.history] for i, events in live.items()}


def by_identity(calendar: Sequence[Event]) -> dict[str, list[Event]]:
    """Events bound to caldaemon's marker, by buffer identity (any generation)."""
    found: dict[str, list[Event]] = defaultdict(list)
    for event in calendar:
        if bound(event):
            found[identity_of(event)].append(event)
    return found


def live_buffers(calendar: Sequence[Event], now: datetime) -> dict[str, list[Event]]:
    """Bound events from ``now`` on, by identity: those before now are history, never
    changed (a session moved into the future needs a new buffer beside its old one)."""
    return {
        identity: current
        for identity, events in by_identity(calendar).items()
        if (current := [e for e in events if e.start >= now])
    }


def no_new_duplicates(
    before: dict[str, Event], after: dict[str, Event], now: datetime, aside: set[str]
) -> None:
    """A cycle never leaves two live buffers of one identity where there was at most one
    (a backup the user restored may have brought an old generation back beside it).
    ``aside``: marked events that are not caldaemon's live buffers: the user's (edited),
    and those it left as history (a clock stepped back may show them after now again)."""

    def live(calendar: dict[str, Event]) -> dict[str, list[Event]]:
        kept = [e for i, e in calendar.items() if i not in aside]
        return live_buffers(kept, now)

    was = live(before)
    for identity, events in live(after).items():
        assert len(events) <= max(1, len(was.get(identity, ()))), (
            f"duplicate buffer {identity[:8]} after a cycle: {sorted(e.id for e in events)}"
        )
