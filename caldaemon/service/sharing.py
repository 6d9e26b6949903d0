"""Several ``caldaemon run`` instances on one PostgreSQL state share the clinicians
(issue 15): each instance holds leases on its share (:mod:`caldaemon.state.leases`),
renews them on a heartbeat of the service's clock, and runs cycles only for clinicians it
holds. An instance that dies stops renewing; its leases run out after :attr:`ttl` and the
others take its clinicians at their next heartbeat. A cycle starts only while its lease
has at least a poll interval to run (a cycle's own deadline), so the cycle ends before
anyone else may take the clinician over: never two instances on one clinician."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from caldaemon.errors import Error
from caldaemon.state import State

log = logging.getLogger("caldaemon.sharing")

# A lease lasts this many poll intervals: a cycle (at most one interval) always fits in
# what is left of it, and a dead instance's clinicians miss at most about two polls.
LEASE_POLLS = 3


def holder_name() -> str:
    """This instance, as leases name it: the machine, the process and a random part (a pid
    can come back after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Sharing:
    def __init__(
        self,
        state: State,
        clock: Callable[[], datetime],
        poll: timedelta,
        holder: str | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.poll = poll
        self.ttl = poll * LEASE_POLLS
        self.holder = holder or holder_name()
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._until: datetime | None = None
        self._running: set[str] = set()
        self._seeded: frozenset[str] = frozenset()

    def heartbeat(self, clinicians: Collection[str]) -> set[str]:
        """Renew, take a share, give back a surplus; the clinicians held now. A state that
        cannot be reached keeps what is held until it runs out (and no cycle starts once
        too little of it is left). Cycles do not start meanwhile (:meth:`begin` waits for
        the lock), so none starts on a clinician this heartbeat gives back."""
        now = self.clock()
        with self._lock:
            # Renewed once a poll, not on every heartbeat: each renewal rewrites every
            # lease held (3,333 rows per instance every 5 s at 10,000 clinicians on 3
            # instances, issue 15), and a lease of three polls renewed every poll always
            # has two left. Free leases are still looked for on every heartbeat.
            renew = self._until is None or self._until - now <= self.ttl - self.poll
            try:
                with self.state.transaction() as tables:
                    if frozenset(clinicians) != self._seeded:
                        tables.leases.seed(clinicians, now)
                    held = tables.leases.heartbeat(
                        self.holder,
                        clinicians,
                        now=now,
                        until=now + self.ttl,
                        busy=self._running,
                        renew=renew,
                    )
            except Error as exc:
                log.error("renewing the leases failed: %s", exc)
                return set(self._held)
            self._seeded = frozenset(clinicians)
            gained, lost = held - self._held, self._held - held
            self._held = held
            if renew:
                self._until = now + self.ttl
        if gained or lost:
            log.info(
                "holding %d clinician(s) (%d taken, %d given back)",
                len(held),
                len(gained),
                len(lost),
            )
        return held

    def holds(self, clinician: str) -> bool:
        """Whether a cycle for ``clinician`` may start now."""
        now = self.clock()
        with self._lock:
            return self._holds(clinician, now)

    def _holds(self, clinician: str, now: datetime) -> bool:
        return clinician in self._held and self._until is not None and now + self.poll < self._until

    def begin(self, clinician: str) -> bool:
        """Start a cycle if this instance holds the clinician (and mark it running, so a
        heartbeat never gives it back halfway)."""
        now = self.clock()
        with self._lock:
            if not self._holds(clinician, now):
                return False
            self._running.add(clinician)
        return True

    def end(self, clinician: str) -> None:
        with self._lock:
            self._running.discard(clinician)

    @property
    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def leave(self) -> None:
        """A clean exit: every lease back at once, for the others' next heartbeat."""
        try:
            with self.state.transaction() as tables:
                tables.leases.leave(self.holder, self.clock())
        except Error as exc:
            log.error("giving the leases back failed (they run out by themselves): %s", exc)
        with self._lock:
            self._held = set()
