"""An .ics file edited as text: caldaemon adds, replaces and removes only its own VEVENTs,
and every other byte of the file (other components, folding, line ends, a byte-order mark)
stays as it was."""

from __future__ import annotations

import re

import icalendar

from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import PRODID, buffer_etag


class Document:
    """An .ics file as a list of pieces: top-level VEVENT blocks (located by line, matched
    on unfolded text, RFC 5545 §3.1) and the raw text between them, kept byte for byte."""

    def __init__(self, data: bytes) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        self.newline = "\r\n" if "\r\n" in text or not text.strip() else "\n"
        if not text.strip():
            text = self.newline.join(
                ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "END:VCALENDAR", ""]
            )
        self.pieces: list[str | None] = []
        self.by_uid: dict[str, int] = {}
        self.changed = False
        depth = 0
        block: list[str] = []
        raw: list[str] = []
        for line in text.splitlines(keepends=True):
            # A continuation line (RFC 5545 §3.1: starts with a space or tab) is part of
            # a value, even when it reads "BEGIN:…".
            word = "" if line[:1] in (" ", "\t") else line.strip().upper()
            if word.startswith("BEGIN:"):
                depth += 1
            if block or (word == "BEGIN:VEVENT" and depth == 2):
                block.append(line)
            else:
                raw.append(line)
            if word.startswith("END:"):
                if word == "END:VEVENT" and depth == 2 and block:
                    self.pieces.append("".join(raw))
                    raw = []
                    self._append_block("".join(block))
                    block = []
                depth -= 1
        self.pieces.append("".join(raw + block))
        self.end_at = (self.pieces[-1] or "").upper().rfind("END:VCALENDAR")

    @property
    def can_add(self) -> bool:
        return self.end_at >= 0

    def _append_block(self, text: str) -> None:
        uid = _properties(text).get("UID")
        if uid is not None:
            self.by_uid.setdefault(uid, len(self.pieces))
        self.pieces.append(text)

    def find(self, uid: str) -> int | None:
        index = self.by_uid.get(uid)
        return index if index is not None and self.pieces[index] is not None else None

    def owned(self, index: int) -> bool:
        return OWNER_PROPERTY in _properties(self.pieces[index] or "")

    def etag(self, index: int) -> str | None:
        """None when the block no longer parses (the user broke it): never ours to change."""
        try:
            return buffer_etag(icalendar.Event.from_ical(self.pieces[index] or ""))
        except Exception:
            return None

    def _serialize(self, component: icalendar.Event) -> tuple[str, str]:
        text = component.to_ical().decode("utf-8")
        lines = "".join(line + self.newline for line in text.splitlines())
        return lines, buffer_etag(icalendar.Event.from_ical(text))

    def add(self, component: icalendar.Event) -> str:
        """Insert before the last END:VCALENDAR."""
        text, etag = self._serialize(component)
        tail = self.pieces.pop() or ""
        before = tail[: self.end_at]
        if before and not before.endswith(("\n", "\r")):
            before += self.newline
        self.pieces.append(before)
        self._append_block(text)
        self.pieces.append(tail[self.end_at :])
        self.end_at = 0
        self.changed = True
        return etag

    def replace(self, index: int, component: icalendar.Event) -> str:
        self.pieces[index], etag = self._serialize(component)
        self.changed = True
        return etag

    def remove(self, index: int) -> None:
        self.pieces[index] = None
        self.changed = True

    def render(self) -> bytes:
        return "".join(p for p in self.pieces if p).encode("utf-8", errors="surrogateescape")


def _properties(block: str) -> dict[str, str]:
    """Property name → value of one VEVENT's own lines (first occurrence wins)."""
    props: dict[str, str] = {}
    depth = 0
    for line in re.sub(r"\r?\n[ \t]", "", block).splitlines():
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth == 1:
            props.setdefault(name, value.strip())
    return props
