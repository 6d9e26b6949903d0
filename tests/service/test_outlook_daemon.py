"""Full daemon cycles with an Outlook calendar on the local identity + Graph server: the
account signed in through ``caldaemon auth outlook``'s code path, buffers placed with both
owner markers, an unchanged poll costing one Graph request, a revoked consent pausing
only that calendar, and notices sent through Graph's sendMail."""

from __future__ import annotations

import mailbox
import textwrap
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caldaemon import config
from caldaemon.cli.auth import authorize_outlook
from caldaemon.providers.base import OWNER_CATEGORY
from caldaemon.providers.outlook.mapping import OWNER_PROPERTY_ID
from caldaemon.providers.outlook.settings import OutlookCalendar
from caldaemon.service.daemon import Daemon
from caldaemon.state import Tables
from tests import state_view
from tests.fakes.microsoft import DEFAULT_USER, Fault, MicrosoftServer
from tests.service.workspace import CANARY
from tests.support import TZ

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
CLIENT_ID = "caldaemon-desktop"
GRAPH_MAIL = "email: {from: caldaemon@example.org, via: graph}"


class OutlookWorkspace:
    """A clinician whose sessions live in Outlook (buffers go there too) and who also has
    a personal .ics calendar."""

    def __init__(self, root: Path, server: MicrosoftServer, *, email: str = "") -> None:
        self.root = root
        self.server = server
        self.email = email
        self.clock = NOW
        (root / "personal.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
        )
        (root / "config.yaml").write_text(
            textwrap.dedent(f"""\
            timezone: America/Toronto
            daemon: {{state_dir: state, horizon: 14d}}
            clinicians:
              - id: lee
                name: Dr. Lee
                email: lee@example.org
                rules: standard
                calendars:
                  - id: work
                    provider: outlook
                    tenant: {server.tenant}
                    client_id: {CLIENT_ID}
                    authority: {server.authority}
                    graph_endpoint: {server.graph_url}
                    ca_file: {server.ca_path}
                  - {{id: personal, provider: ics, path: personal.ics}}
                buffers_to: work
            rule_sets:
              standard:
                working_hours: {{mon-fri: "09:00-17:00"}}
                level_limits: {{high: {{max_per_day: 1}}}}
                buffers:
                  - {{after: high, length: 15m, title: Grounding time}}
            notices:
              quiet_outside_working_hours: false
              admin_email: it@example.org
            """)
            + (f"  {email}\n" if email else "")
        )

    @property
    def state(self) -> Path:
        return self.root / "state" / "state.sqlite3"

    def sign_in(self) -> None:
        """What ``caldaemon auth outlook --clinician lee`` runs; the user approves at once."""
        settings = config.load(self.root / "config.yaml")
        clinician = settings.clinician("lee")
        shown: list[str] = []

        def echo(message: str) -> None:
            shown.append(message)
            if "enter the code" in message:
                self.server.approve_device_code()

        work = clinician.calendar("work")
        assert isinstance(work, OutlookCalendar)
        path = authorize_outlook(settings, clinician, work, echo=echo)
        assert path == self.root / "state" / "tokens" / "lee-work.msal.json"
        assert shown[-1] == "Found the calendar 'Calendar'."

    def session(self, start: datetime, title: str = f"Session with {CANARY} #heavy") -> str:
        end = start + timedelta(minutes=50)
        return str(
            self.server.put_event(
                DEFAULT_USER,
                None,
                {
                    "subject": title,
                    "body": {"contentType": "text", "content": f"Client {CANARY}"},
                    "start": {
                        "dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
                        "timeZone": "America/Toronto",
                    },
                    "end": {
                        "dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"),
                        "timeZone": "America/Toronto",
                    },
                },
            )["id"]
        )

    def daemon(self) -> Daemon:
        return Daemon(str(self.root / "config.yaml"), clock=lambda: self.clock)

    def poll(self, daemon: Daemon | None = None, *, after: timedelta = timedelta(minutes=2)) -> Any:
        """One cycle; returns the report and the Graph requests it made."""
        self.clock += after
        self.server.clear_requests()
        service = daemon or self.daemon()
        try:
            [report] = service.once()
        finally:
            if daemon is None:
                service.close()
        graph = [r for r in self.server.requests if r.path.startswith("/v1.0") and not r.batch_part]
        return report, graph

    def tables(self) -> AbstractContextManager[Tables]:
        return state_view.tables(self.state.parent)

    def delivered(self) -> list[str]:
        """The notices delivered so far, as text (the Maildir fallback of the state folder;
        the outbox forgets a notice's text once it is delivered)."""
        box = mailbox.Maildir(self.state.parent / "notices", factory=None, create=False)
        texts = []
        for message in box:
            parts = message.walk() if message.is_multipart() else [message]
            texts.append(
                "".join(
                    part.get_payload(decode=True).decode()
                    for part in parts
                    if part.get_content_type() == "text/plain"
                )
            )
        return texts


@pytest.fixture
def server() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        yield fake


@pytest.fixture
def ws(tmp_path: Path, server: MicrosoftServer) -> OutlookWorkspace:
    workspace = OutlookWorkspace(tmp_path, server)
    workspace.sign_in()
    return workspace


def buffers_on(server: MicrosoftServer) -> list[dict[str, Any]]:
    return [e for e in server.events(DEFAULT_USER) if OWNER_CATEGORY in e["categories"]]


def test_buffers_appear_with_both_markers_and_are_recorded(ws: OutlookWorkspace) -> None:
    ws.session(MON_10)
    ws.session(MON_10 + timedelta(days=1))
    report, graph = ws.poll(after=timedelta(0))
    assert report.created == 2 and report.ok
    placed = buffers_on(ws.server)
    assert [(b["subject"], b["start"]["dateTime"]) for b in placed] == [
        ("Grounding time", "2026-11-30T15:50:00.0000000"),
        ("Grounding time", "2026-12-01T15:50:00.0000000"),
    ]
    with ws.tables() as tables:
        recorded = [(b.identity, b.remote_id, b.etag, b.status) for b in tables.buffers.all()]
    for event, (identity, remote_id, etag, status) in zip(placed, recorded, strict=True):
        assert event["singleValueExtendedProperties"] == [
            {"id": OWNER_PROPERTY_ID, "value": identity}
        ]
        assert (event["id"], event["@odata.etag"], status) == (remote_id, etag, "active")
        assert event["isReminderOn"] is False and event["attendees"] == []
        assert CANARY not in str(event)
    assert [r.path for r in graph] == ["/v1.0/me/calendar/calendarView/delta", "/v1.0/$batch"]


def test_an_unchanged_poll_makes_exactly_one_graph_request(ws: OutlookWorkspace) -> None:
    ws.session(MON_10)
    ws.session(MON_10 + timedelta(days=1))
    service = ws.daemon()
    try:
        first, _ = ws.poll(service, after=timedelta(0))
        assert first.created == 2
        second, graph = ws.poll(service)  # reads back the buffers it wrote
        assert (second.created, second.updated, second.deleted) == (0, 0, 0)
        assert len(graph) == 1
        third, graph = ws.poll(service)
        assert (third.created, third.updated, third.deleted) == (0, 0, 0) and third.ok
        [request] = graph
        assert request.method == "GET" and "$deltatoken=" in request.query_string
        assert [r for r in ws.server.requests if not r.path.startswith("/v1.0")] == []
    finally:
        service.close()
    # A restarted daemon (new process, new msal app) still costs one Graph request.
    report, graph = ws.poll()
    assert report.ok and len(graph) == 1


def test_a_moved_session_moves_its_buffer_with_if_match(ws: OutlookWorkspace) -> None:
    session = ws.session(MON_10)
    ws.poll(after=timedelta(0))
    [before] = buffers_on(ws.server)
    [stored] = [e for e in ws.server.events(DEFAULT_USER) if e["id"] == session]
    later = MON_10 + timedelta(hours=3)
    ws.server.put_event(
        DEFAULT_USER,
        None,
        {
            **stored,
            "start": {
                "dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "America/Toronto",
            },
            "end": {
                "dateTime": (later + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "America/Toronto",
            },
        },
    )
    report, _ = ws.poll()
    assert report.updated == 1
    [after] = buffers_on(ws.server)
    assert after["id"] == before["id"] and after["start"]["dateTime"].startswith("2026-11-30T18:50")
    patch = [r for r in ws.server.requests if r.batch_part and r.method == "PATCH"]
    assert patch[0].header("if-match") == before["@odata.etag"]


def test_revoked_consent_pauses_only_that_calendar_with_one_notice(ws: OutlookWorkspace) -> None:
    ws.session(MON_10)
    ws.poll(after=timedelta(0))
    ws.server.revoke_consent(CLIENT_ID)
    ws.server.expire_access_tokens()
    report, _ = ws.poll()
    [error] = report.calendar_errors
    assert error.calendar == "work" and report.calendars_ok == 1
    assert "AADSTS65001" in error.reason
    with ws.tables() as tables:
        paused = {c.calendar: c.paused for c in tables.calendars.all()}
        [notice] = tables.outbox.all()
    assert paused["personal"] is None
    assert "caldaemon auth outlook --clinician lee --calendar work" in (paused["work"] or "")
    assert notice.recipient == "it@example.org" and "action needed" in notice.subject
    [text] = ws.delivered()
    assert "caldaemon auth outlook --clinician lee --calendar work" in text

    again, graph = ws.poll()
    assert graph == [] and [e.calendar for e in again.calendar_errors] == ["work"]
    with ws.tables() as tables:
        assert len(tables.outbox.all()) == 1
    assert len(buffers_on(ws.server)) == 1  # nothing was deleted while paused


def test_notices_go_out_through_graph_send_mail(tmp_path: Path, server: MicrosoftServer) -> None:
    workspace = OutlookWorkspace(tmp_path, server, email=GRAPH_MAIL)
    workspace.sign_in()
    device_request = [r for r in server.requests if r.path.endswith("/devicecode")][-1]
    assert "Mail.Send" in device_request.body.decode()
    workspace.session(MON_10)
    workspace.session(MON_10 + timedelta(hours=2))  # two high sessions: max_per_day is 1
    report, graph = workspace.poll(after=timedelta(0))
    assert report.violations >= 1
    [sent] = server.sent_mail
    message = sent["message"]
    assert sent["from"] == DEFAULT_USER and sent["saveToSentItems"] is False
    assert message["toRecipients"] == [{"emailAddress": {"address": "lee@example.org"}}]
    assert message["body"]["contentType"] == "HTML" and CANARY not in str(message)
    with workspace.tables() as tables:
        [queued] = tables.outbox.all()
    assert message["internetMessageId"] == queued.message_id and queued.status == "sent"
    assert graph[-1].path == "/v1.0/me/sendMail"


# -- Graph as it is: changeKeys that change alone, throttled owner look-ups -----------------


def move_session(ws: OutlookWorkspace, session: str, start: datetime) -> None:
    [stored] = [e for e in ws.server.events(DEFAULT_USER) if e["id"] == session]
    end = start + timedelta(minutes=50)
    ws.server.put_event(
        DEFAULT_USER,
        None,
        {
            **stored,
            "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "America/Toronto"},
            "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}", "timeZone": "America/Toronto"},
        },
    )


def statuses(ws: OutlookWorkspace) -> list[str]:
    with ws.tables() as tables:
        return [str(b.status) for b in tables.buffers.all()]


def test_a_change_key_changing_on_its_own_leaves_the_buffer_managed(ws: OutlookWorkspace) -> None:
    # Was: a changed etag alone read as a user edit; the buffer no longer followed its
    # session (issue 10).
    session = ws.session(MON_10)
    ws.poll(after=timedelta(0))
    [placed] = buffers_on(ws.server)
    ws.server.drift_change_key(DEFAULT_USER, placed["id"])
    report, _ = ws.poll()
    assert report.ok and (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert statuses(ws) == ["active"]
    [drifted] = buffers_on(ws.server)
    move_session(ws, session, MON_10 + timedelta(hours=3))
    report, _ = ws.poll()
    assert report.updated == 1 and statuses(ws) == ["active"]
    [moved] = buffers_on(ws.server)
    assert moved["id"] == placed["id"] and moved["start"]["dateTime"].startswith("2026-11-30T18:50")
    [patch] = [r for r in ws.server.requests if r.batch_part and r.method == "PATCH"]
    assert patch.header("if-match") == drifted["@odata.etag"]


def test_a_spurious_412_is_settled_on_the_next_cycle(ws: OutlookWorkspace) -> None:
    session = ws.session(MON_10)
    ws.poll(after=timedelta(0))
    move_session(ws, session, MON_10 + timedelta(hours=3))
    ws.server.rules.spurious_412_every = 1  # this cycle's If-Match is refused though it matched
    refused, _ = ws.poll()
    assert refused.updated == 0
    ws.server.rules.spurious_412_every = None
    settled, _ = ws.poll()
    assert settled.updated == 1 and statuses(ws) == ["active"]
    [moved] = buffers_on(ws.server)
    assert moved["start"]["dateTime"].startswith("2026-11-30T18:50")


def test_an_owner_look_up_throttled_past_its_retries_changes_no_buffer(
    ws: OutlookWorkspace,
) -> None:
    # Was: the look-up's failure left owner None: caldaemon's buffers read as the user's
    # events, and were given up for good (issue 10).
    ws.session(MON_10)
    ws.session(MON_10 + timedelta(days=1))
    ws.poll(after=timedelta(0))
    placed = sorted(e["id"] for e in buffers_on(ws.server))
    ws.server.inject(
        Fault(
            status=429,
            retry_after=1,
            code="ApplicationThrottled",
            message="Application is over its MailboxConcurrency limit.",
            in_batch=True,
            times=None,
            match=lambda r: r.method == "GET",
        )
    )
    throttled, _ = ws.poll()  # a new process: it must read who owns the two buffers
    assert [e.calendar for e in throttled.calendar_errors] == ["work"]
    assert (throttled.created, throttled.updated, throttled.deleted) == (0, 0, 0)
    assert statuses(ws) == ["active", "active"]
    ws.server.clear_faults()
    report, _ = ws.poll()
    assert report.ok and (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert statuses(ws) == ["active", "active"]
    assert sorted(e["id"] for e in buffers_on(ws.server)) == placed


def test_holds_on_outlook_are_private_busy_owned_and_go_with_their_reason(
    ws: OutlookWorkspace,
) -> None:
    config = ws.root / "config.yaml"
    config.write_text(
        config.read_text().replace(
            "    buffers:\n",
            "    max_sessions_per_day: 2\n    days_off: [sat, sun]\n"
            "    protect: {full_days: true, days_off: true, title: Unavailable}\n    buffers:\n",
        )
    )
    ws.session(MON_10, title="Session #light")
    late = ws.session(MON_10 + timedelta(hours=3), title="Session #light")
    report, graph = ws.poll(after=timedelta(0))
    assert report.ok and report.created == 7
    holds = [e for e in buffers_on(ws.server) if e["subject"] == "Unavailable"]
    timed = sorted(e["start"]["dateTime"] for e in holds if not e["isAllDay"])
    all_day = sorted(e["start"]["dateTime"][:10] for e in holds if e["isAllDay"])
    assert timed == [
        "2026-11-30T14:00:00.0000000",
        "2026-11-30T15:50:00.0000000",
        "2026-11-30T18:50:00.0000000",
    ]
    assert all_day == ["2026-12-05", "2026-12-06", "2026-12-12", "2026-12-13"]
    for hold in holds:
        assert hold["sensitivity"] == "private" and hold["showAs"] == "busy"
        assert hold["isReminderOn"] is False and hold["attendees"] == []
    # 7 holds in one $batch request (Graph takes up to 20 requests per batch).
    assert [r.path for r in graph] == ["/v1.0/me/calendar/calendarView/delta", "/v1.0/$batch"]
    assert ws.poll()[0].created == 0  # no churn
    ws.server.delete_event(DEFAULT_USER, late)
    # Graph may change a changeKey on its own (a spurious 412): the next cycle settles it.
    assert ws.poll()[0].deleted + ws.poll()[0].deleted == 3
    left = [e for e in buffers_on(ws.server) if e["subject"] == "Unavailable"]
    assert len(left) == 4 and all(e["isAllDay"] for e in left)
