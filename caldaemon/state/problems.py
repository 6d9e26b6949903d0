"""``problems``: operational problems already reported to the admin, by key, so each is
reported once (DESIGN.md §6)."""

from __future__ import annotations

from datetime import datetime

from caldaemon.state.convert import iso
from caldaemon.state.dialect import Connection


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ``prefix`` literally (its own % and _ escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Problems:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def known(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM problems WHERE key=?", (key,)).fetchone() is not None

    def keys(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT key FROM problems ORDER BY key")]

    def add(self, key: str, message: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO problems (key, message, first_seen, notified_at) VALUES (?,?,?,?) "
            # Two instances sharing a PostgreSQL state may find the same problem at once.
            "ON CONFLICT DO NOTHING",
            (key, message, iso(now), iso(now)),
        )

    def clear(self, prefix: str) -> None:
        """Forget every problem whose key starts with ``prefix`` (it was fixed)."""
        self.db.execute(
            "DELETE FROM problems WHERE key LIKE ? ESCAPE '\\'", (_like_prefix(prefix),)
        )
