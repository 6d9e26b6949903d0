"""The domain model: events as read from calendars, their classification, what the rules
produce (violations and wanted buffers), the buffers caldaemon owns, and the writes that
reconciliation plans and providers carry out. All frozen: the pipeline is pure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from caldaemon.errors import Error


class Kind(StrEnum):
    SESSION = "session"
    SUPERVISION = "supervision"
    PEER_SUPPORT = "peer_support"
    ADMIN = "admin"
    PERSONAL = "personal"
    DAY_OFF = "day_off"
    OTHER = "other"
    BUFFER = "buffer"
    IGNORED = "ignored"


# Kinds a tag or colour can name, in the order they win when an event carries several
# (DESIGN.md §3 "Classification"). ``session`` may be named too: it marks a session
# without giving it a level.
TAG_KINDS: tuple[Kind, ...] = (
    Kind.DAY_OFF,
    Kind.SUPERVISION,
    Kind.PEER_SUPPORT,
    Kind.ADMIN,
    Kind.PERSONAL,
)
TAGGABLE_KINDS: frozenset[str] = frozenset({*TAG_KINDS, Kind.SESSION})
# What a tag may also name: ``accept`` marks an event whose violations the clinician
# accepts (the tag ``#ok`` by default, DESIGN.md §10). Not a kind: the event keeps its own.
ACCEPT = "accept"
TAG_TARGETS: frozenset[str] = TAGGABLE_KINDS | {ACCEPT}


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence on one calendar, normalized from whatever the provider returned.

    ``title`` and ``description`` live in memory only: state keeps neither (privacy).
    All-day events have ``start``/``end`` at local midnight and ``all_day`` set.
    """

    calendar: str
    id: str
    start: datetime
    end: datetime
    all_day: bool = False
    title: str = ""
    description: str = ""
    categories: tuple[str, ...] = ()
    color: str | None = None
    cancelled: bool = False
    busy: bool = True
    declined: bool = False
    # Out of office (Google eventType outOfOffice, Outlook showAs oof, ICS
    # X-MICROSOFT-CDO-BUSYSTATUS:OOF): whole local days of it are days off (DESIGN.md §3).
    out_of_office: bool = False
    # The identity in caldaemon's owner marker, set only when the marker is bound to this
    # event: its id is the one caldaemon's write of that identity produced (a derived id,
    # or Outlook's transactionId). A copy the user makes carries the marker under another
    # id: ``marked`` but no ``owner`` (DESIGN.md §5).
    owner: str | None = None
    marked: bool = False
    series: str | None = None
    etag: str | None = None
    # Set on events read back from the state cache, which keeps no titles: whether the
    # title matched ``sessions.title_matches`` when it was cached, and which of the
    # ``classification.rules`` with a title pattern it matched (their positions).
    title_matches: bool | None = None
    title_rules: tuple[int, ...] | None = None
    # Of marked events: the digest of their content (:func:`content_digest`), kept in the
    # cache in place of the title, to tell a user's edit from an etag that changed alone.
    digest: str | None = None

    @property
    def content(self) -> str:
        """This event's :func:`content_digest` (the cached one when the title is gone)."""
        if self.digest is not None:
            return self.digest
        return content_digest(self.start, self.end, self.title, self.busy)

    @property
    def key(self) -> str:
        """Unique across a clinician's calendars: ``calendar/id``."""
        return f"{self.calendar}/{self.id}"


@dataclass(frozen=True, slots=True)
class Classified:
    """An event with its kind, level (sessions only) and the reason that decided them."""

    event: Event
    kind: Kind
    level: str | None
    why: str
    # The clinician accepts every violation this event is part of (a tag meaning accept).
    accepted: bool = False

    @property
    def is_session(self) -> bool:
        return self.kind is Kind.SESSION

    @property
    def occupies_time(self) -> bool:
        """Busy time that blocks buffers and can be double-booked (never all-day)."""
        return not self.event.all_day and self.kind is not Kind.BUFFER


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken boundary. ``message`` holds times, kinds, levels and counts only."""

    clinician: str
    rule: str
    severity: Severity
    date: date
    start: datetime
    end: datetime
    message: str
    events: tuple[str, ...] = ()
    level: str | None = None
    kind: str | None = None
    subject: str = field(default="", compare=False)
    # What is wrong without when: the clause a line merging several facts about one
    # session or one weekday is made of ("outside your hours (09:00–17:00)").
    phrase: str = field(default="", compare=False)
    # The clinician accepts it (an accept tag on one of its events, or ``caldaemon ack``):
    # listed apart, never notified, not counted in exit codes (DESIGN.md §10).
    accepted: bool = field(default=False, compare=False)
    # Stable identity across polls: the same boundary broken by the same thing. Each rule
    # names its ``subject``: the session for per-session rules, the period (and level) for
    # day and week rules, so a count that grows from 3 to 4 is still the same violation
    # and is not notified again. Made once here (``replace`` makes it again): ``check``
    # reads it two or three times per violation, and a year holds tens of thousands.
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = "\0".join((self.clinician, self.rule, self.subject))
        # How a frozen dataclass sets a field of its own (docs.python.org dataclasses,
        # "Frozen instances").
        object.__setattr__(self, "fingerprint", hashlib.sha256(raw.encode()).hexdigest()[:32])


@dataclass(frozen=True, slots=True)
class Buffer:
    """A block caldaemon wants on ``calendar``: a buffer before or after a session, or a
    hold over protected time (``calendar`` is None when the clinician has no
    ``buffers_to``: the block is only reported). Every block is written busy and private
    (DESIGN.md §10): colleagues see only "busy".

    ``after`` names what the block is for (the session's key for a buffer; the day and
    reason for a hold) and ``rule`` the rule that wants it: together they make its
    identity. An ``all_day`` block spans whole local days (a hold on a day off)."""

    clinician: str
    calendar: str | None
    start: datetime
    end: datetime
    title: str
    after: str
    rule: str
    all_day: bool = False

    @property
    def identity(self) -> str:
        """Deterministic identity from (clinician, session, buffer rule): a retried or
        repeated create can never make a duplicate (DESIGN.md §5)."""
        raw = "\0".join((self.clinician, self.after, self.rule))
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


def content_digest(start: datetime, end: datetime, title: str, busy: bool = True) -> str:
    """What a user sees of a buffer and may change: its instants, its title, busy or free.
    Instants count in UTC, so the repeated hour of a DST change compares as it should."""
    raw = "\0".join(
        (start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat(), title, str(busy))
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def written_identity(identity: str, generation: int) -> str:
    """The identity a buffer's marker carries on the calendar: the buffer's own for its
    first life, with ``-g<n>`` after caldaemon deleted it ``n`` times (each life gets new
    ids: a deleted event is never brought back by updating it, DESIGN.md §5)."""
    return identity if generation == 0 else f"{identity}-g{generation}"


def parse_written_identity(written: str) -> tuple[str, int]:
    """(identity, generation) of a marker value; generation 0 when it has no suffix."""
    identity, sep, generation = written.rpartition("-g")
    if sep and generation.isdigit() and identity:
        return identity, int(generation)
    return written, 0


class BufferStatus(StrEnum):
    """Where an owned buffer stands (DESIGN.md §5)."""

    ACTIVE = "active"
    # A write is under way: its intent is recorded before it is sent (crash safety).
    CREATING = "creating"
    DELETING = "deleting"
    # caldaemon removed it itself (its session went away); it may come back.
    DELETED = "deleted"
    USER_EDITED = "user_edited"
    USER_DELETED = "user_deleted"


@dataclass(frozen=True, slots=True)
class OwnedBuffer:
    """A buffer caldaemon wrote, as state remembers it."""

    clinician: str
    identity: str
    calendar: str
    remote_id: str
    etag: str | None
    start: datetime
    end: datetime
    title: str
    after: str
    status: BufferStatus
    # Where an update under way moves the buffer: tells our own lost update from a user edit.
    pending: tuple[datetime, datetime] | None = None
    # How many times caldaemon deleted this buffer and it came back (see written_identity).
    generation: int = 0

    @property
    def written(self) -> str:
        """The identity its marker carries on the calendar."""
        return written_identity(self.identity, self.generation)

    @property
    def content(self) -> str:
        """The digest of what caldaemon last wrote."""
        return content_digest(self.start, self.end, self.title)


@dataclass(frozen=True, slots=True)
class Window:
    """The span of time a listing covers; events overlapping it are returned."""

    start: datetime
    end: datetime

    def covers(self, other: Window) -> bool:
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return start < self.end and (end > self.start or (start == end and start >= self.start))


@dataclass(frozen=True, slots=True)
class Remote:
    """Where a buffer lives on the calendar: its id there and its current etag."""

    id: str
    etag: str | None


@dataclass(frozen=True, slots=True)
class Create:
    """Create ``buffer`` with its marker carrying ``identity`` (a written identity, see
    :func:`written_identity`): idempotent for the same identity. A provider that finds the
    id taken by a deleted event answers :class:`~caldaemon.errors.RemoteGone` (the next
    generation is used)."""

    buffer: Buffer
    identity: str


@dataclass(frozen=True, slots=True)
class Update:
    buffer: Buffer
    identity: str
    remote: Remote


@dataclass(frozen=True, slots=True)
class Delete:
    identity: str
    remote: Remote


Write = Create | Update | Delete


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one write: ``remote`` after success (None for deletes), or ``error``
    (:class:`~caldaemon.errors.WriteConflict` when the user changed the event,
    :class:`~caldaemon.errors.RemoteGone` when it no longer exists)."""

    write: Write
    remote: Remote | None = None
    error: Error | None = None
