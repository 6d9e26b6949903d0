"""The world of the reconciliation state machine (test_reconcile_machine.py): a practice
calendar and a buffers calendar held by the memory provider, the server misbehaving on
demand, an injected clock, the horizon, and the state folder that can be lost."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

from hypothesis import currently_in_test_context, event

from caldaemon import config
from caldaemon.config import ClinicianSettings, Settings
from caldaemon.core.assess import assess
from caldaemon.errors import TransientError
from caldaemon.model import Buffer, Event, Window, Write, WriteResult, parse_written_identity
from caldaemon.providers.base import Listing, Provider
from caldaemon.providers.memory import MemoryCalendar, MemoryProvider, MemoryStore, buffer_id
from caldaemon.service.cycle import Cycle, CycleReport
from caldaemon.service.providers import Providers, provider_context
from caldaemon.state import State
from tests.support import TZ

# Monday 30 Nov 2026, 08:00 in Toronto: nothing depends on today's date.
START = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
CLINICIAN = "lee"
_machines = count()

Content = tuple[datetime, datetime, str, bool]


def note(what: str) -> None:
    """Counted in ``--hypothesis-show-statistics`` (what the runs exercised); a no-op when
    the machine is driven by a plain test."""
    if currently_in_test_context():
        event(what)


def content(event: Event) -> Content:
    """What a person sees of an event and what caldaemon compares (DESIGN.md §5)."""
    return (event.start, event.end, event.title, event.busy)


def bound(event: Event) -> bool:
    """Carries caldaemon's marker on the id caldaemon's write of that marker produces."""
    return event.owner is not None and event.id == buffer_id(event.owner)


def identity_of(event: Event) -> str:
    assert event.owner is not None
    return parse_written_identity(event.owner)[0]


def generation_of(event: Event) -> int:
    assert event.owner is not None
    return parse_written_identity(event.owner)[1]


def as_listed(event: Event) -> Event:
    """The event as the memory provider lists it (a copy's marker binds to nothing)."""
    if event.owner is None:
        return event
    return replace(event, owner=event.owner if bound(event) else None, marked=True)


def unstamped(event: Event) -> Event:
    """An event without its etag: servers change etags on their own (DESIGN.md §8)."""
    return replace(event, etag=None)


# -- the server's misbehaviour ---------------------------------------------------------


@dataclass
class Glitches:
    """What one memory calendar's server does wrong during the next cycle."""

    hidden: bool = False  # a listing comes back empty (and with no token to resume from)
    token_refused: bool = False  # the stored sync token is refused: a full listing
    writes_down: bool = False  # 5xx on every write after the reads went through
    answers_lost: bool = False  # writes land, their answers are lost (a timeout)

    @property
    def disturbing(self) -> bool:
        return self.hidden or self.writes_down or self.answers_lost


_GLITCHES: dict[str, Glitches] = {}


class MisbehavingMemoryProvider(MemoryProvider):
    """The memory provider with the server's misbehaviour of the moment. The provider's own
    code runs unchanged; only what the "server" answers is altered."""

    def _glitches(self) -> Glitches:
        return _GLITCHES.get(self.config.store, Glitches())

    def changes(self, window: Window, token: str | None) -> Listing:
        glitches = self._glitches()
        if glitches.hidden:
            with self.store.lock:
                self.store.reads += 1
                if self.store.refusal is not None:
                    raise self.store.refusal
            # An empty calendar, with no token to resume from (one saying "nothing since
            # now" would hide the events for good, which no real server does).
            return Listing((), (), None, full=True)
        return super().changes(window, None if glitches.token_refused else token)

    def apply(self, writes: Sequence[Write]) -> list[WriteResult]:
        glitches = self._glitches()
        down = TransientError(self.id, self.describe(), "503 Service Unavailable")
        if glitches.writes_down:
            return [WriteResult(write, error=down) for write in writes]
        results = super().apply(writes)
        if glitches.answers_lost:
            lost = TransientError(self.id, self.describe(), "timed out waiting for the answer")
            return [WriteResult(r.write, error=lost) for r in results]
        return results


class MisbehavingProviders(Providers):
    def get(self, clinician: ClinicianSettings, calendar_id: str) -> Provider:
        key = (clinician.id, calendar_id)
        with self._lock:
            if key not in self._open:
                calendar = clinician.calendar(calendar_id)
                assert isinstance(calendar, MemoryCalendar)
                self._open[key] = MisbehavingMemoryProvider(
                    calendar, provider_context(self.settings, clinician, self.sleep, self.clock)
                )
            return self._open[key]


# -- the world -------------------------------------------------------------------------

CONFIG = """\
timezone: America/Toronto
daemon: {{state_dir: state, horizon: 14d}}
clinicians:
  - id: lee
    rules: standard
    calendars:
      - {{id: practice, provider: memory, store: {practice}}}
      - {{id: buffers, provider: memory, store: {buffers}}}
    buffers_to: buffers
rule_sets:
  standard:
    buffers:
      - {{after: high, length: 15m, title: Grounding time}}
      - {{after: moderate, length: 10m, title: Notes}}
notices:
  quiet_outside_working_hours: false
"""


class World:
    """One machine's calendars, state folder, clock and horizon."""

    def __init__(self) -> None:
        n = next(_machines)
        # In memory where the system has it: thousands of cycles, each syncing SQLite to
        # disk, would cost minutes spent on durability this test does not look at.
        shm = Path("/dev/shm")
        fast = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="caldaemon-machine-", dir=fast))
        self.names = (f"machine-{n}-practice", f"machine-{n}-buffers")
        (self.root / "config.yaml").write_text(
            textwrap.dedent(CONFIG.format(practice=self.names[0], buffers=self.names[1]))
        )
        self.settings = config.load(self.root / "config.yaml")
        self.practice = MemoryStore.named(self.names[0])
        self.buffers = MemoryStore.named(self.names[1])
        self.glitches = {"practice": Glitches(), "buffers": Glitches()}
        for name, glitches in zip(self.names, self.glitches.values(), strict=True):
            _GLITCHES[name] = glitches
        self.now = START
        self.horizon = timedelta(days=14)
        self.state = State(self.settings.state_file)
        self.providers = MisbehavingProviders(self.settings, clock=lambda: self.now.timestamp())

    @property
    def clinician(self) -> ClinicianSettings:
        return self.settings.clinician(CLINICIAN)

    def settings_now(self) -> Settings:
        daemon = self.settings.daemon.model_copy(update={"horizon": self.horizon})
        return dataclasses.replace(self.settings, daemon=daemon)

    def cycle(self) -> CycleReport:
        settings = self.settings_now()
        run = Cycle(settings, self.state, self.providers, clock=lambda: self.now)
        return run.run(settings.clinician(CLINICIAN))

    def calm(self) -> None:
        """Every misbehaviour stops."""
        for store in (self.practice, self.buffers):
            store.refusal = None
        for glitches in self.glitches.values():
            for name in ("hidden", "token_refused", "writes_down", "answers_lost"):
                setattr(glitches, name, False)

    @property
    def disturbed(self) -> bool:
        """Whether the next cycle reads or writes less than all (the ledger then doubts)."""
        return any(g.disturbing for g in self.glitches.values()) or any(
            s.refusal is not None for s in (self.practice, self.buffers)
        )

    def lose_state(self) -> None:
        """The state folder is lost (a new laptop, a wiped home): the daemon starts over."""
        self.state.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.settings.state_file}{suffix}").unlink(missing_ok=True)
        self.state = State(self.settings.state_file)

    def wanted(self) -> dict[str, Buffer]:
        """The buffers DESIGN.md §3 wants now, by identity, from the calendars as they are:
        computed here by the pure core on what the server holds, not on caldaemon's cache."""
        events = [*self.practice.all(), *(as_listed(e) for e in self.buffers.all())]
        found = assess(self.clinician, self.settings.classification, events, self.now, self.horizon)
        end = self.now + self.horizon
        return {b.identity: b for b in found.evaluation.buffers if self.now <= b.start < end}

    def in_view(self, event: Event) -> bool:
        return self.now <= event.start < self.now + self.horizon

    def close(self) -> None:
        self.providers.close()
        self.state.close()
        for name in self.names:
            MemoryStore.forget(name)
            _GLITCHES.pop(name, None)
        shutil.rmtree(self.root, ignore_errors=True)
