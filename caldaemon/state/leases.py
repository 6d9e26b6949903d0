"""``leases`` and ``holders``: how several ``caldaemon run`` instances on one PostgreSQL
state share the clinicians (issue 15). Each clinician is leased to one instance until an
instant; an instance renews what it holds on every heartbeat and runs cycles only for
those. One that dies stops renewing, its leases expire, and the others take them over.

``holders`` lists the live instances (a heartbeat each), so that each one takes its fair
share (⌊clinicians ÷ instances⌋ or one more), and gives back what is over it when
another instance joins. Free and
expired leases are taken with ``FOR UPDATE SKIP LOCKED``: two instances looking at once
take different clinicians, never one twice, and neither waits for the other. Instants are
the services' clocks (ISO 8601 text in UTC, as everywhere in state): their machines keep
time (NTP) to well within the lease's length."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from caldaemon.state.convert import iso
from caldaemon.state.dialect import Connection


class Leases:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def heartbeat(
        self,
        holder: str,
        clinicians: Collection[str],
        *,
        now: datetime,
        until: datetime,
        busy: Collection[str] = (),
        renew: bool = True,
    ) -> set[str]:
        """Renew this holder's leases (unless not ``renew``) and take its share of the
        free ones until ``until``; give back what is over its share (not the ``busy``
        ones, whose cycles are running). The clinicians it holds."""
        moment, expiry = iso(now), iso(until)
        self.db.execute(
            "INSERT INTO holders (holder, expires) VALUES (?, ?) "
            "ON CONFLICT (holder) DO UPDATE SET expires=excluded.expires",
            (holder, expiry),
        )
        self.db.execute("DELETE FROM holders WHERE expires<?", (moment,))
        clinicians = set(clinicians)
        if renew:
            self.db.execute("UPDATE leases SET expires=? WHERE holder=?", (expiry, holder))
        held = self.held(holder, clinicians)
        # What each live instance holds (one that holds nothing yet counts too).
        counts = {row[0]: 0 for row in self.db.execute("SELECT holder FROM holders")}
        rows = self.db.execute(
            "SELECT holder, COUNT(*) FROM leases WHERE holder<>'' AND expires>? GROUP BY holder",
            (moment,),
        )
        counts.update({row[0]: int(row[1]) for row in rows if row[0] in counts})
        live = max(len(counts), 1)
        fewest, most = len(clinicians) // live, -(-len(clinicians) // live)
        if len(held) < most:
            # Every free lease is locked for the moment of this transaction (others skip
            # them and take theirs next time); of them, the configured ones are taken.
            free = self.db.execute(
                f"SELECT clinician FROM leases WHERE expires<=? ORDER BY clinician"
                f"{self.db.skip_locked}",
                (moment,),
            )
            taken = [row[0] for row in free if row[0] in clinicians][: most - len(held)]
            self.db.executemany(
                "UPDATE leases SET holder=?, expires=? WHERE clinician=?",
                ((holder, expiry, clinician) for clinician in taken),
            )
            held |= set(taken)
        counts[holder] = len(held)
        # More than a fair share while another instance has less than one: give back.
        keep = most if min(counts.values(), default=0) >= fewest else fewest
        if len(held) > keep:
            spare = sorted(held - set(busy), reverse=True)[: len(held) - keep]
            self.release(holder, spare, now)
            held -= set(spare)
        return held

    def seed(self, clinicians: Collection[str], now: datetime) -> None:
        """A free lease for every clinician that has none (the config named new ones)."""
        self.db.executemany(
            "INSERT INTO leases (clinician, holder, expires) VALUES (?, '', ?) "
            "ON CONFLICT DO NOTHING",
            ((clinician, iso(now)) for clinician in clinicians),
        )

    def confirm(self, clinician: str, holder: str, now: datetime) -> bool:
        """Within a transaction that comes before a calendar write: whether ``holder``
        still holds the clinician at ``now``. On PostgreSQL the lease's row stays locked
        until the transaction ends, so no other instance takes it over meanwhile (its
        heartbeat skips locked rows). This is the fence of an instance that was paused
        past its lease (a stopped process, a suspended VM): its cycle resumes, finds the
        lease gone, and writes nothing."""
        row = self.db.execute(
            f"SELECT expires FROM leases WHERE clinician=? AND holder=?{self.db.for_update}",
            (clinician, holder),
        ).fetchone()
        return row is not None and str(row[0]) > iso(now)

    def held(self, holder: str, clinicians: Collection[str]) -> set[str]:
        rows = self.db.execute("SELECT clinician FROM leases WHERE holder=?", (holder,))
        return {row[0] for row in rows if row[0] in clinicians}

    def release(self, holder: str, clinicians: Collection[str], now: datetime) -> None:
        """Give leases back at once (a clean exit, a surplus): others take them at their
        next heartbeat, not after the lease would have run out."""
        self.db.executemany(
            "UPDATE leases SET holder='', expires=? WHERE clinician=? AND holder=?",
            ((iso(now), clinician, holder) for clinician in clinicians),
        )

    def leave(self, holder: str, now: datetime) -> None:
        """A clean exit: every lease back, and no longer counted as live."""
        self.db.execute("UPDATE leases SET holder='', expires=? WHERE holder=?", (iso(now), holder))
        self.db.execute("DELETE FROM holders WHERE holder=?", (holder,))

    def holders(self) -> dict[str, str]:
        """Who holds each clinician (``''``: nobody), for ``status`` and tests."""
        rows = self.db.execute("SELECT clinician, holder FROM leases ORDER BY clinician")
        return {row[0]: row[1] for row in rows}
