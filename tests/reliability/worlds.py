"""Shared setup for the reliability suite (crash, faults, privacy): the clinicians' calendars
on every provider, played as the user would through each service's own seeding API, a
config that ties them together, and the checks every test ends with.

Every event the user writes carries a canary client name in its title, description,
location and attendee names; caldaemon must never copy it anywhere (DESIGN.md §7).
Nothing here depends on today's date: the world lives in the week of Mon 30 Nov 2026."""

from __future__ import annotations

import email
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from caldaemon.model import OwnedBuffer
from caldaemon.notices.maildir import MaildirMailer
from caldaemon.providers.base import OWNER_CATEGORY, OWNER_KEY, OWNER_PROPERTY
from caldaemon.providers.outlook.mapping import OWNER_PROPERTY_ID
from caldaemon.providers.registry import open_provider
from caldaemon.service.daemon import Daemon
from caldaemon.service.providers import Providers, provider_context
from caldaemon.state import State
from caldaemon.state.outbox import QueuedNotice
from caldaemon.state.violations import ViolationRecord

TZ = ZoneInfo("America/Toronto")
MONDAY = datetime(2026, 11, 30, tzinfo=TZ)
CANARY = "Zebulon Quixote-Marchetti"
# The name, and the parts of it that are rare enough to mean a leak wherever they appear.
CANARY_NEEDLES = (CANARY, "Zebulon", "Quixote", "Marchetti")
CANARY_EMAIL = "zq.marchetti@example.net"
PHONE = "555-0199"
ROOT = Path(__file__).resolve().parents[2]


def at(day: int, hhmm: str) -> datetime:
    """Local time on Monday 30 Nov 2026 + ``day`` days."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


# -- appointments ----------------------------------------------------------------------


@dataclass
class Appointment:
    uid: str
    start: datetime
    minutes: int = 50
    tag: str = "#heavy"
    cancelled: bool = False
    label: str = "Session with"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def title(self) -> str:
        return f"{self.label} {CANARY} {self.tag}".strip()


def vevent(a: Appointment) -> str:
    """The VEVENT a practice-management system would export, client details and all."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{a.uid}",
        "DTSTAMP:20261101T000000Z",
        f"DTSTART;TZID=America/Toronto:{a.start.astimezone(TZ):%Y%m%dT%H%M%S}",
        f"DTEND;TZID=America/Toronto:{a.end.astimezone(TZ):%Y%m%dT%H%M%S}",
        f"SUMMARY:{a.title}",
        f"DESCRIPTION:Client {CANARY}\\, call {PHONE}",
        f"LOCATION:{CANARY}'s home office",
        f"ATTENDEE;CN={CANARY};ROLE=REQ-PARTICIPANT:mailto:{CANARY_EMAIL}",
    ]
    if a.cancelled:
        lines.append("STATUS:CANCELLED")
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


_VEVENT_BLOCK = re.compile(r"BEGIN:VEVENT\r?\n.*?END:VEVENT\r?\n", re.S)


def vevent_blocks(text: str) -> list[str]:
    return _VEVENT_BLOCK.findall(text)


def is_ours(block: str) -> bool:
    return f"\n{OWNER_PROPERTY}" in block


class IcsFile:
    """A calendar file the user's own calendar app writes: it rewrites the user's events
    from its model and keeps every other VEVENT (caldaemon's buffers) exactly as found."""

    def __init__(self, path: Path, appointments: Iterable[Appointment] = ()) -> None:
        self.path = path
        self.appointments: dict[str, Appointment] = {a.uid: a for a in appointments}
        self.written: list[str] = []  # the user's VEVENT blocks, as last written

    def save(self) -> None:
        kept = self.caldaemon_blocks()
        self.written = [vevent(a) for a in self.appointments.values()]
        self.path.write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Practice//EHR 4.2//EN\r\n"
            + "".join(self.written)
            + "".join(kept)
            + "END:VCALENDAR\r\n",
            newline="",
        )

    def text(self) -> str:
        return self.path.read_bytes().decode() if self.path.exists() else ""

    def caldaemon_blocks(self) -> list[str]:
        return [b for b in vevent_blocks(self.text()) if is_ours(b)]

    def user_blocks(self) -> list[str]:
        return [b for b in vevent_blocks(self.text()) if not is_ours(b)]

    def buffer_uids(self) -> list[str]:
        return [m for b in self.caldaemon_blocks() for m in re.findall(r"^UID:(.*?)\r?$", b, re.M)]

    def problems(self) -> list[str]:
        """What is wrong with the file now: the user's events must be byte-identical."""
        found = self.user_blocks()
        if found != self.written:
            return [f"{self.path.name}: the user's events changed"]
        return []


# -- Google ---------------------------------------------------------------------------


def google_resource(a: Appointment) -> dict[str, Any]:
    return {
        "id": "s" + re.sub(r"[^a-v0-9]", "0", a.uid.lower()),
        "summary": a.title,
        "description": f"Client {CANARY}, call {PHONE}",
        "location": f"{CANARY}'s home office",
        "attendees": [{"email": CANARY_EMAIL, "displayName": CANARY}],
        "start": {"dateTime": a.start.isoformat(), "timeZone": "America/Toronto"},
        "end": {"dateTime": a.end.isoformat(), "timeZone": "America/Toronto"},
    }


class GoogleUser:
    """The clinician in Google Calendar's UI: every write goes through the fake's seeding
    API, and the stored copy is kept to prove caldaemon never touched it afterwards."""

    def __init__(self, server: Any, calendar: str = "primary") -> None:
        self.server, self.calendar = server, calendar
        self.written: dict[str, dict[str, Any]] = {}
        self.appointments: dict[str, Appointment] = {}

    def put(self, a: Appointment) -> str:
        self.appointments[a.uid] = a
        resource = google_resource(a)
        if a.cancelled:
            stored = self.server.get_event(self.calendar, resource["id"])
            if stored is not None:
                self.server.delete_event(self.calendar, resource["id"])
        else:
            self.server.put_event(self.calendar, resource)
        stored = self.server.get_event(self.calendar, resource["id"])
        if stored is not None:
            self.written[resource["id"]] = stored
        return str(resource["id"])

    def buffers(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.server.events(self.calendar)
            if OWNER_KEY in ((e.get("extendedProperties") or {}).get("private") or {})
        ]

    def problems(self) -> list[str]:
        """Every event the user wrote is exactly as the server stored it then (same etag,
        same content): caldaemon changed none of them."""
        wrong = []
        for event_id, stored in self.written.items():
            if self.server.get_event(self.calendar, event_id) != stored:
                wrong.append(f"google {self.calendar}: the user's event {event_id} changed")
        return wrong


def write_google_credentials(
    server: Any, root: Path, state_dir: Path, clinician: str, calendar: str
) -> str:
    """The client file and the token `caldaemon auth google` would have stored."""
    from tests.providers.test_contract_google import write_client, write_token

    client = write_client(root / "google-client.json", server)
    tokens = state_dir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    refresh = server.issue_refresh_token()
    write_token(tokens / f"{clinician}-{calendar}.google.json", server, refresh)
    return str(client)


# -- Microsoft Graph --------------------------------------------------------------------


def graph_resource(a: Appointment) -> dict[str, Any]:
    def when(moment: datetime) -> dict[str, str]:
        return {
            "dateTime": moment.astimezone(TZ).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "America/Toronto",
        }

    return {
        "subject": a.title,
        "body": {"contentType": "text", "content": f"Client {CANARY}, call {PHONE}"},
        "location": {"displayName": f"{CANARY}'s home office"},
        "attendees": [
            {"emailAddress": {"address": CANARY_EMAIL, "name": CANARY}, "type": "required"}
        ],
        "start": when(a.start),
        "end": when(a.end),
    }


class GraphUser:
    """The clinician in Outlook, through the fake's seeding API."""

    def __init__(self, server: Any, user: str) -> None:
        self.server, self.user = server, user
        self.ids: dict[str, str] = {}  # appointment uid → Graph id
        self.written: dict[str, dict[str, Any] | None] = {}
        self.appointments: dict[str, Appointment] = {}

    def put(self, a: Appointment) -> str:
        self.appointments[a.uid] = a
        if a.cancelled:  # Outlook deletes a cancelled appointment
            event_id = self.ids[a.uid]
            self.server.delete_event(self.user, event_id)
            self.written.pop(event_id)
            return event_id
        resource = graph_resource(a)
        if a.uid in self.ids:
            resource["id"] = self.ids[a.uid]
        stored = self.server.put_event(self.user, None, resource)
        self.ids[a.uid] = str(stored["id"])
        self.written[str(stored["id"])] = self._current(str(stored["id"]))
        return str(stored["id"])

    def _current(self, event_id: str) -> dict[str, Any] | None:
        found = next((e for e in self.server.events(self.user) if e["id"] == event_id), None)
        return None if found is None else _without_versions(found)

    def buffers(self) -> list[dict[str, Any]]:
        return [e for e in self.server.events(self.user) if OWNER_CATEGORY in e["categories"]]

    def problems(self) -> list[str]:
        return [
            f"graph {self.user}: the user's event {i} changed"
            for i, stored in self.written.items()
            if self._current(i) != _without_versions(stored)
        ]


def _without_versions(event: dict[str, Any]) -> dict[str, Any]:
    """An event as its user sees it: Graph changes changeKey and @odata.etag on its own
    (microsoft-graph-docs-contrib #2856), which is no change to the event."""
    return {k: v for k, v in event.items() if k not in ("changeKey", "@odata.etag")}


def sign_in_outlook(
    server: Any, config_path: Path, clinician: str, calendar: str, user: str
) -> None:
    """What `caldaemon auth outlook` runs; the user approves the code at once."""
    from caldaemon import config
    from caldaemon.cli.auth import authorize_outlook
    from caldaemon.providers.outlook.settings import OutlookCalendar

    settings = config.load(config_path)
    who = settings.clinician(clinician)

    def echo(message: str) -> None:
        if "enter the code" in message:
            server.approve_device_code(user)

    outlook = who.calendar(calendar)
    assert isinstance(outlook, OutlookCalendar)
    authorize_outlook(settings, who, outlook, echo=echo)


# -- buffers as found on each calendar -------------------------------------------------

Span = tuple[datetime, datetime, str]  # start, end, title


def _unique(pairs: Iterable[tuple[str, Any]], where: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for identity, value in pairs:
        assert identity not in found, f"duplicate buffer {identity} on {where}"
        found[identity] = value
    return found


def google_buffers(user: GoogleUser) -> dict[str, dict[str, Any]]:
    """Caldaemon's buffers on a Google calendar, by identity; a duplicate fails."""
    return _unique(
        ((e["extendedProperties"]["private"][OWNER_KEY], e) for e in user.buffers()),
        f"Google {user.calendar}",
    )


def google_span(event: dict[str, Any]) -> Span:
    return (
        datetime.fromisoformat(event["start"]["dateTime"]),
        datetime.fromisoformat(event["end"]["dateTime"]),
        event["summary"],
    )


def graph_buffers(user: GraphUser) -> dict[str, dict[str, Any]]:
    def identity(event: dict[str, Any]) -> str:
        [value] = [
            p["value"]
            for p in event.get("singleValueExtendedProperties") or ()
            if p["id"].lower() == OWNER_PROPERTY_ID.lower()
        ]
        return str(value)

    return _unique(((identity(e), e) for e in user.buffers()), f"Outlook {user.user}")


def graph_span(event: dict[str, Any]) -> Span:
    def moment(value: dict[str, str]) -> datetime:
        assert value["timeZone"] == "UTC", value
        return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=UTC)

    return moment(event["start"]), moment(event["end"]), event["subject"]


def file_buffers(calendar: IcsFile) -> dict[str, str]:
    uids = calendar.buffer_uids()
    assert len(uids) == len(set(uids)), f"duplicate UIDs in {calendar.path.name}: {uids}"
    return _unique(
        ((block_value(b, OWNER_PROPERTY), b) for b in calendar.caldaemon_blocks()),
        calendar.path.name,
    )


def block_value(block: str, name: str) -> str:
    [value] = re.findall(rf"^{name}[;:](?:[^:\r\n]*:)?(.*?)\r?$", block, re.M)
    return str(value)


def file_span(block: str) -> Span:
    def moment(name: str) -> datetime:  # caldaemon writes its buffers in UTC
        return datetime.strptime(block_value(block, name), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    return moment("DTSTART"), moment("DTEND"), block_value(block, "SUMMARY")


# -- the config -----------------------------------------------------------------------

RULES = """\
rule_sets:
  standard:
    working_hours: {mon-fri: "09:00-17:00"}
    max_sessions_per_day: 4
    level_limits: {high: {max_per_day: 1}}
    no_back_to_back: {level: high, min_gap: 30m}
    buffers:
      - {after: high, length: 15m, title: Grounding time}
      - {after: moderate, length: 10m, title: Notes}
"""


def google_yaml(server: Any, timeout: str = "5s") -> str:
    """A Google calendar ``work`` on the local fake (client file by write_google_credentials)."""
    return (
        "{id: work, provider: google, credentials: google-client.json, "
        f'api_endpoint: "{server.url}", timeout: {timeout}}}'
    )


def outlook_yaml(server: Any, timeout: str = "5s") -> str:
    """An Outlook calendar ``work`` (the signed-in account's primary) on the local fake."""
    return (
        f"{{id: work, provider: outlook, tenant: {server.tenant}, "
        f"client_id: caldaemon-desktop, authority: {server.authority}, "
        f"graph_endpoint: {server.graph_url}, ca_file: {server.ca_path}, timeout: {timeout}}}"
    )


def caldav_yaml(url: str, username: str) -> str:
    """A CalDAV collection ``work``; the password is in ``caldav-password``."""
    return (
        f"{{id: work, provider: caldav, url: '{url}', username: {username}, "
        "password_file: caldav-password, timeout: 5s}"
    )


def clinician_yaml(cid: str, calendars: list[str], buffers_to: str | None) -> str:
    lines = [
        f"  - id: {cid}",
        f"    name: Dr. {cid.title()}",
        f"    email: {cid}@example.org",
        "    rules: standard",
        "    calendars:",
    ]
    lines += [f"      - {c}" for c in calendars]
    if buffers_to:
        lines.append(f"    buffers_to: {buffers_to}")
    return "\n".join(lines) + "\n"


def clinician_ics_yaml(cid: str, practice: str, buffers: str) -> str:
    """A clinician whose sessions come from an .ics file and whose buffers go to another."""
    return clinician_yaml(
        cid,
        [
            f"{{id: practice, provider: ics, path: {practice}}}",
            f"{{id: buffers, provider: ics, path: {buffers}}}",
        ],
        "buffers",
    )


def write_config(path: Path, clinicians: list[str]) -> Path:
    """Notices go to the Maildir in the state folder, at once (no quiet hours)."""
    path.write_text(
        "timezone: America/Toronto\n"
        "daemon: {state_dir: state, horizon: 14d}\n"
        "clinicians:\n"
        + "".join(clinicians)
        + RULES
        + "notices:\n  quiet_outside_working_hours: false\n"
    )
    return path


# -- running the daemon --------------------------------------------------------------


def command(config: Path, now: datetime, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "caldaemon",
        *extra,
        "run",
        "--once",
        "--config",
        str(config),
        "--now",
        now.isoformat(),
    ]


def run_once(
    config: Path, now: datetime, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(config, now, *extra), capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )


class Sleeps:
    """An injected sleep: records each wait, by clinician, and returns at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def of(self, clinician: str) -> list[float]:
        return [s for c, s in self.calls if c == clinician]

    def sleeper(self, clinician: str) -> Callable[[float], None]:
        return lambda seconds: self.calls.append((clinician, float(seconds)))


class RecordingProviders(Providers):
    """The daemon's providers with a recorded sleep in their context (DESIGN.md §8: a
    sleep is injected everywhere). ``Daemon(sleep=...)`` takes one sleep for everyone;
    these tests tell the clinicians' waits apart, so each gets a sleep of its own."""

    def __init__(self, settings: Any, sleeps: Sleeps) -> None:
        super().__init__(settings)
        self.sleeps = sleeps

    def get(self, clinician: Any, calendar_id: str) -> Any:
        key = (clinician.id, calendar_id)
        with self._lock:
            if key not in self._open:
                context = replace(
                    provider_context(self.settings, clinician),
                    sleep=self.sleeps.sleeper(clinician.id),
                )
                self._open[key] = open_provider(clinician.calendar(calendar_id), context)
            return self._open[key]


def daemon_with_sleeps(config: Path, clock: Callable[[], datetime], sleeps: Sleeps) -> Daemon:
    daemon = Daemon(str(config), clock=clock)
    daemon.providers.close()
    daemon.providers = daemon.cycle.providers = RecordingProviders(daemon.settings, sleeps)
    return daemon


# -- what caldaemon left behind ------------------------------------------------------


@dataclass
class StateView:
    """caldaemon's state database, read the way `caldaemon status` would (read-only,
    through the state package's methods)."""

    path: Path

    def _open(self) -> State:
        return State(self.path, read_only=True)

    def integrity(self) -> str:
        state = self._open()
        try:
            return state.integrity()
        finally:
            state.close()

    def buffers(self, clinician: str | None = None) -> list[OwnedBuffer]:
        state = self._open()
        try:
            with state.read() as tables:
                found = tables.buffers.all()
        finally:
            state.close()
        return [b for b in found if clinician is None or b.clinician == clinician]

    def outbox(self) -> list[QueuedNotice]:
        state = self._open()
        try:
            with state.read() as tables:
                return tables.outbox.all()
        finally:
            state.close()

    def open_violations(self) -> list[ViolationRecord]:
        state = self._open()
        try:
            with state.read() as tables:
                return tables.violations.all_open()
        finally:
            state.close()

    def statuses(self, clinician: str | None = None) -> dict[str, int]:
        """How many buffers (of one clinician) have each status."""
        counted = Counter(str(b.status) for b in self.buffers(clinician))
        return dict(sorted(counted.items()))

    def active_buffers(self, clinician: str, calendar: str) -> dict[str, str]:
        """identity → remote id of the buffers recorded as active on a calendar."""
        return {
            b.identity: b.remote_id
            for b in self.buffers(clinician)
            if b.calendar == calendar and b.status == "active"
        }


def maildir_messages(state_dir: Path) -> dict[str, email.message.Message]:
    """Notices delivered to the Maildir, by file name."""
    folder = state_dir / "notices"
    found = {}
    for sub in ("new", "cur"):
        for path in (folder / sub).glob("*") if folder.exists() else ():
            found[path.name.split(":")[0]] = email.message_from_bytes(path.read_bytes())
    return found


def notice_problems(state: StateView, state_dir: Path, now: datetime) -> list[str]:
    """No notice lost: every open violation was notified, by an outbox row written in the
    same transaction (created == last_notified) that was delivered to the Maildir; no row
    is left pending unless it is held for later."""
    wrong = []
    delivered = maildir_messages(state_dir)
    outbox = state.outbox()
    for row in outbox:
        key = MaildirMailer.key(row.message_id)
        if row.status == "sent" and key not in delivered:
            wrong.append(f"outbox {row.message_id} is sent but not in the Maildir")
        if row.status == "pending" and row.not_before <= now:
            wrong.append(f"outbox {row.message_id} is stuck pending")
        if row.status == "failed":
            wrong.append(f"outbox {row.message_id} failed: {row.last_error}")
    sent_at = {(r.clinician, r.created) for r in outbox if r.status == "sent"}
    for record in state.open_violations():
        v = record.violation
        if record.last_notified is None:
            wrong.append(f"open violation {v.rule} {v.date} of {v.clinician} was never notified")
        elif (v.clinician, record.last_notified) not in sent_at:
            wrong.append(f"the notice of {v.rule} {v.date} of {v.clinician} is not delivered")
    if len(delivered) != len({r.message_id for r in outbox if r.status == "sent"}):
        wrong.append(
            f"{len(delivered)} Maildir files for "
            f"{sum(r.status == 'sent' for r in outbox)} sent notices"
        )
    return wrong


def leaks(data: bytes | str, where: str) -> list[str]:
    """Which canary needles occur in ``data``."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [
        f"{needle!r} in {where}"
        for needle in (*CANARY_NEEDLES, PHONE, CANARY_EMAIL)
        if needle.lower() in text.lower()
    ]


def files_under(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file())
