"""An .ics file edited as text: caldaemon adds, replaces and removes only its own VEVENTs,
and every other byte of the file (other components, folding, line ends, a byte-order mark)
stays as it was.

The same cut lets a read parse only the VEVENTs that may lie in its window (issue 15: a
buffers file grows with history, and re-parsing a year of past blocks every round cost
60 % of it): each block's DTSTART and DTEND are read from its unfolded text, and a block
that surely ends before the window or starts after it is left out of what icalendar
parses (:meth:`Document.within`).

caldaemon's own past blocks stay in the file, even those older than ``keep_history``:
DESIGN.md §5 has nothing before now created, changed or deleted, and a ``buffers_to``
file is the user's calendar as much as caldaemon's (their app shows it, and it is their
record of the time they kept). Kept, a past block costs its bytes on disk and in the
kept document (:mod:`.cache`), about 400 bytes, and no parse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import icalendar

from caldaemon.model import Window
from caldaemon.providers.base import OWNER_PROPERTY
from caldaemon.providers.ics import lean, view
from caldaemon.providers.ics.mapping import PRODID, block_ended, buffer_etag, buffer_uid

# One line with its end: CRLF (RFC 5545 §3.1), LF or CR. Not str.splitlines, which also
# breaks at characters such as U+2028 or NEL that may stand in a value.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
# A line end followed by a space or a tab: a folded line (RFC 5545 §3.1).
_FOLD = re.compile(r"(\r\n|\n|\r)[ \t]")
# The BEGIN and END lines, with their ends: a line that starts the text or follows a line
# end. A continuation line (RFC 5545 §3.1: it starts with a space or a tab) is part of a
# value, even when it reads "BEGIN:…", and is never matched. Only these lines are looked
# at one by one, so a file of long folded values costs no loop over its lines.
_BEGIN_END = re.compile(
    r"(?<![^\r\n])\ufeff?(?:begin|end)[ \t]*:[^\r\n]*(?:\r\n|\n|\r)?", re.IGNORECASE
)
# A DATE or DATE-TIME value as RFC 5545 §3.3.4-5 writes it (UTC, floating or with a TZID).
_WHEN = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z?)?")
# How far a value read without its zone may lie from the instant it means: UTC offsets
# reach -12 h and +14 h, X-WR-TIMEZONE re-reads UTC times as local ones, and a DATE is a
# local day. A block is left out of a read only beyond this from the window.
_SLACK = timedelta(days=2)
# What ties a VEVENT to others of its UID or repeats it (RFC 5545 §3.8.4.4, §3.8.5): such
# a block reaches wherever its series does and is always parsed.
_SERIES = ("RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID")


@dataclass(frozen=True, slots=True)
class Span:
    """What a cheap look at one VEVENT block tells: its UID, and the stretch of naive UTC
    time that surely holds it: its DTSTART and DTEND as written, widened by the slack
    since the zone is not looked up. No stretch (None) for a block
    that must always be parsed: one of a recurring series, or whose times are absent, not
    plainly a date or date-time, or in the wrong order (parsed, so that what is wrong with
    it is said)."""

    uid: str | None
    stretch: tuple[datetime, datetime] | None
    # Whether the event surely does not end before it starts: its times were read
    # (:mod:`.lean`), or DTSTART and DTEND are both UTC or both DATEs, so that their order
    # as written is their order in time. Times in a zone can be written in order and lie
    # in reverse (another zone's DTEND, a DTSTART in a daylight-saving gap): such an
    # event is skipped with a warning, which a block left out unparsed would not give.
    ordered: bool = False

    @classmethod
    def of(cls, properties: dict[str, str]) -> Span:
        uid = properties.get("UID")
        written = properties.get("DTSTART"), properties.get("DTEND")
        start, end = _when(written[0]), _when(written[1])
        if any(name in properties for name in _SERIES) or not start or not end or end < start:
            return cls(uid, None)
        plain = "DTSTART;" not in properties and "DTEND;" not in properties
        ordered = plain and (
            all(w and w.endswith("Z") for w in written) or all(w and len(w) == 8 for w in written)
        )
        return cls(uid, (start - _SLACK, end + _SLACK), ordered)


@dataclass(frozen=True, slots=True)
class Selection:
    """The file without the blocks that lie outside a window, and the numbers of those
    (1 = the file's first VEVENT), so warnings keep naming events by their place in the
    whole file."""

    data: bytes
    left_out: frozenset[int]
    plain: tuple[tuple[int, lean.Plain], ...] = ()


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
        self._plain: dict[int, lean.Plain | None] = {}  # block index → its lean reading
        self.by_uid: dict[str, list[int]] = {}
        self.spans: dict[int, Span] = {}
        self.changed = False
        self.removed = 0
        # BEGIN:VEVENT lines at any depth: when some are not blocks of their own (a bare
        # VEVENT, one nested in another component), no block is left out of a read.
        self.vevents = 0
        depth = 0
        block_at: int | None = None  # where the open block starts
        raw_at = 0  # where the text since the last block starts
        seen: list[str] = []
        for line in _BEGIN_END.finditer(text):
            word = line.group().strip().upper()
            if line.start() == 0:
                word = word.removeprefix("\ufeff")
            if word.startswith(("BEGIN:", "END:")):
                seen.append(word)
            if word.startswith("BEGIN:"):
                depth += 1
                self.vevents += word == "BEGIN:VEVENT"
                if block_at is None and word == "BEGIN:VEVENT" and depth == 2:
                    block_at = line.start()
            elif word.startswith("END:"):
                if word == "END:VEVENT" and depth == 2 and block_at is not None:
                    self.pieces.append(text[raw_at:block_at])
                    self._append_block(text[block_at : line.end()])
                    block_at, raw_at = None, line.end()
                depth -= 1
        self.pieces.append(text[raw_at:])
        # Whether icalendar sees the components this cut sees: not so when a BEGIN or END
        # line is folded, follows a lone CR, or is written in a way icalendar reads
        # otherwise. Then no block is left out of a read.
        self._cuttable = seen == view.components(text.removeprefix("\ufeff"))
        self.end_at = (self.pieces[-1] or "").upper().rfind("END:VCALENDAR")

    @property
    def can_add(self) -> bool:
        return self.end_at >= 0

    def _append_block(self, text: str) -> None:
        span = self._span(len(self.pieces), text)
        if span.uid is not None:
            self.by_uid.setdefault(span.uid, []).append(len(self.pieces))
        self.spans[len(self.pieces)] = span
        self.pieces.append(text)

    def _span(self, index: int, text: str) -> Span:
        """The span of block ``index``: from its :mod:`.lean` reading where there is one
        (the block's lines are then read once), else from a look at its properties."""
        found = self._plain[index] = lean.read(text)
        if found is None or found.written_uid != found.written_uid.strip():
            return Span.of(_properties(text))
        stretch = (_naive(found.start) - _SLACK, _naive(found.end) + _SLACK)
        return Span(found.written_uid, stretch, ordered=True)

    def within(
        self, window: Window, plain: bool = False, attendees: bool = False, trusted: bool = True
    ) -> Selection:
        """The file as icalendar needs it for ``window``: every byte but the VEVENT blocks
        that surely lie outside it. Kept whatever their times: VTIMEZONEs and every other
        component, a block of a recurring series or of a UID that several blocks share
        (a series and its moved instances reach into the window from anywhere), and a
        block without a UID (its id is numbered among those alike).

        With ``plain``, the blocks that :mod:`.lean` reads are left out too and given read
        (``attendees``: whether ATTENDEE lines matter, and a block with them is parsed).
        Without ``trusted``, a block is left out for its times only when :mod:`.lean`
        reads it (then nothing in it could have been warned about)."""
        start = window.start.astimezone(UTC).replace(tzinfo=None)
        end = window.end.astimezone(UTC).replace(tzinfo=None)
        if len(self.spans) != self.vevents or not self._cuttable:
            return Selection(self.render(), frozenset())
        uids = self._uid_counts() if plain and self._plain_file() else None
        kept: list[str] = []
        left_out: set[int] = set()
        read: list[tuple[int, lean.Plain]] = []
        number = 0
        spans, by_uid, pieces = self.spans, self.by_uid, self.pieces
        for index, piece in enumerate(pieces):
            span = spans.get(index)
            if not piece or span is None:
                kept.append(piece or "")
                continue
            number += 1
            stretch = span.stretch
            if (
                stretch is not None
                and (stretch[1] < start or stretch[0] > end)
                and span.uid is not None
                and len(by_uid[span.uid]) == 1
                and ((trusted and span.ordered) or self._plain.get(index) is not None)
            ):
                left_out.add(number)
                continue
            if uids is not None and stretch is not None:
                found = self._plain.get(index)
                if (
                    found is not None
                    and uids.get(found.uid) == 1
                    and view.uid_key(span.uid) == found.uid
                    and not (attendees and found.attendees)
                    and not view.folded_on(self._after(index))
                ):
                    read.append((number, found))
                    continue
            kept.append(piece)
        return Selection(
            "".join(kept).encode("utf-8", errors="surrogateescape"),
            frozenset(left_out),
            tuple(read),
        )

    def _plain_file(self) -> bool:
        """Whether the text around the blocks lets :mod:`.lean` read them: one VCALENDAR
        (the events' METHOD is its), no X-WR-TIMEZONE, and no lone CR."""
        around = "".join(p for i, p in enumerate(self.pieces) if p and i not in self.spans)
        return view.plain_around(around)

    def _uid_counts(self) -> dict[str, int]:
        """How many blocks have each UID as icalendar reads it (about: two UIDs that
        may be the same count as the same)."""
        counts: dict[str, int] = {}
        for index, span in self.spans.items():
            if self.pieces[index] is not None:
                key = view.uid_key(span.uid)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def _after(self, index: int) -> str:
        """The text that follows block ``index`` in the file as it is rendered."""
        pieces = self.pieces
        for after in range(index + 1, len(pieces)):
            piece = pieces[after]
            if piece:
                return piece
        return ""

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
        self.vevents += 1
        self.pieces.append(tail[self.end_at :])
        self.end_at = 0
        self.changed = True
        return etag

    def replace(self, index: int, component: icalendar.Event) -> str:
        text, etag = self._serialize(component)
        self.pieces[index] = text
        self.spans[index] = self._span(index, text)
        self.changed = True
        return etag

    def remove(self, index: int) -> None:
        self.pieces[index] = None
        uid = self.spans.pop(index).uid
        if uid is not None:
            self.by_uid[uid].remove(index)
        self.vevents -= 1
        self.removed += 1
        self.changed = True

    def render(self) -> bytes:
        return "".join(p for p in self.pieces if p).encode("utf-8", errors="surrogateescape")


def _naive(value: date | datetime) -> datetime:
    """A time as :attr:`Span.stretch` holds it: in UTC if it has a zone, else as written."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, time())


def _when(value: str | None) -> datetime | None:
    found = _WHEN.fullmatch(value.strip()) if value else None
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in found.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None  # a date that does not exist: parsed, and icalendar says so


def _properties(block: str) -> dict[str, str]:
    """Property name → value of one VEVENT's own lines (first occurrence wins), and
    "DTSTART;" and "DTEND;" → their parameters, where they have some."""
    props: dict[str, str] = {}
    depth = 0
    if "\n " in block or "\n\t" in block or "\r " in block or "\r\t" in block:
        block = _FOLD.sub("", block)
    for line in _LINE.findall(block):
        line = line.rstrip("\r\n")
        name, _, value = line.partition(":")
        name, parameters, _ = name.partition(";")
        name = name.strip().upper()
        if parameters and depth == 1 and name in ("DTSTART", "DTEND"):
            props.setdefault(name + ";", parameters)
        if name == "BEGIN":
            depth += 1
        elif name == "END":
            depth -= 1
        elif depth == 1:
            props.setdefault(name, value.strip())
    return props
