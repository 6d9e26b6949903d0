"""An .ics file edited as text: caldaemon adds, replaces and removes only its own VEVENTs,
and every other byte of the file (other components, folding, line ends, a byte-order mark)
stays as it was."""

from __future__ import annotations

import re
from datetime import datetime

import icalendar

from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics.mapping import PRODID, block_ended, buffer_etag, buffer_uid

# One line with its end: CRLF (RFC 5545 §3.1), LF or CR. Not str.splitlines, which also
# breaks at characters such as U+2028 or NEL that may stand in a value.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")


class Document:
    """An .ics file as a list of pieces: top-level VEVENT blocks (located by line, matched
    on unfolded text, RFC 5545 §3.1) and the raw text between them, kept byte for byte."""

    def __init__(self, data: bytes) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        # A UTF-8 byte-order mark (Windows editors write one) stays where it is, and the
        # line after it still counts as BEGIN:VCALENDAR.
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        self.newline = "\r\n" if "\r\n" in text or not text[len(bom) :].strip() else "\n"
        if not text[len(bom) :].strip():
            text = bom + self.newline.join(
                ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "END:VCALENDAR", ""]
            )
        self.pieces: list[str | None] = []
        self.by_uid: dict[str, list[int]] = {}
        self.changed = False
        depth = 0
        block: list[str] = []
        raw: list[str] = []
        for number, line in enumerate(_LINE.findall(text)):
            # A continuation line (RFC 5545 §3.1: starts with a space or tab) is part of
            # a value, even when it reads "BEGIN:…".
            word = "" if line[:1] in (" ", "\t") else line.strip().upper()
            if number == 0:
                word = word.removeprefix("\ufeff")
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
            self.by_uid.setdefault(uid, []).append(len(self.pieces))
        self.pieces.append(text)

    def find(self, uid: str) -> int | None:
        """The block with this UID; with several (a series and its moved instances, or
        the user's copies) the first, which :meth:`owned` then refuses."""
        found = [i for i in self.by_uid.get(uid, ()) if self.pieces[i] is not None]
        return found[0] if found else None

    def owned(self, index: int, identity: str = "") -> bool:
        """Whether the block is a buffer caldaemon wrote (DESIGN.md §5): its marker names
        an identity whose UID is the block's own, the only block with that UID, not a
        series; and, when ``identity`` is given, the marker names that one. A user's copy
        of a buffer (their app gives it a new UID and keeps the marker) is theirs."""
        try:
            vevent = icalendar.Event.from_ical(self.pieces[index] or "")
        except Exception:
            return False  # a block the user broke is never ours to change
        marker, uid = vevent.get(OWNER_PROPERTY), vevent.get("UID")
        if marker is None or uid is None or str(uid) != buffer_uid(str(marker)):
            return False
        if identity and str(marker) != identity:
            return False
        if any(name in vevent for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            return False
        return len([i for i in self.by_uid.get(str(uid), ()) if self.pieces[i]]) == 1

    def cancelled(self, index: int) -> bool:
        """RFC 5545 §3.8.1.11: STATUS:CANCELLED, an event that is there but deleted."""
        status = _properties(self.pieces[index] or "").get("STATUS", "")
        return status.upper() == "CANCELLED"

    def ended(self, index: int, now: datetime) -> bool:
        """Whether the block ended before ``now`` (False when it no longer parses)."""
        try:
            return block_ended(icalendar.Event.from_ical(self.pieces[index] or ""), now)
        except Exception:
            return False

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
    for line in _LINE.findall(re.sub(r"(\r\n|\n|\r)[ \t]", "", block)):
        line = line.rstrip("\r\n")
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth == 1:
            props.setdefault(name, value.strip())
    return props
