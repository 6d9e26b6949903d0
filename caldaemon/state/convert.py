"""How values are stored: instants as UTC ISO 8601 text, which sorts as text in the same
order as time."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def optional_iso(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)
