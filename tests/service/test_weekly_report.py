"""The weekly report from the daemon (``notices.weekly_report``, DESIGN.md §11): scheduled
on its weekday at its time in the clinician's zone, across DST changes; sent by the first
poll at or after that moment (for a day), once per week whatever runs again; the week
that begins that day or next; no report while a calendar cannot be read, said in the log
and, after an hour, in an operational notice; never event text."""

from __future__ import annotations

import logging
import mailbox
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from caldaemon.cli import main
from tests.notices.smtp_server import SmtpServer
from tests.service.test_notices import smtp_notices
from tests.service.workspace import CANARY, Session, Workspace
from tests.support import TZ

MONDAY = datetime(2026, 11, 30, 7, 0, tzinfo=TZ)
WEEKLY = 'weekly_report: {day: mon, at: "07:00"}'


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace(
        tmp_path,
        sessions=[
            Session("s1@practice", MONDAY + timedelta(hours=3)),
            Session("s2@practice", MONDAY + timedelta(hours=5)),  # 2 high: max_per_day is 1
            Session("s3@practice", MONDAY + timedelta(days=2, hours=3)),
        ],
    )
    workspace.notices = WEEKLY
    return workspace


def weekly_mails(ws: Workspace) -> list[EmailMessage]:
    folder = ws.state_dir / "notices"
    if not folder.exists():
        return []
    found = []
    for message in mailbox.Maildir(folder, create=False):
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        if str(parsed["Subject"]).startswith("caldaemon: your week"):
            found.append(parsed)
    return found


def image_of(message: EmailMessage) -> bytes:
    [image] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    data = image.get_content()
    assert isinstance(data, bytes)
    return data


# -- when -------------------------------------------------------------------------------


def test_the_first_poll_at_its_time_sends_it_once_with_the_picture(ws):
    ws.cycle(MONDAY - timedelta(minutes=1))
    assert weekly_mails(ws) == []
    ws.cycle(MONDAY)
    ws.cycle(MONDAY + timedelta(minutes=2))
    ws.cycle(MONDAY + timedelta(hours=20))  # the next day, still within a day of 07:00
    [sent] = weekly_mails(ws)
    assert sent["Subject"] == "caldaemon: your week of Mon 30 Nov (1 boundary crossed)"
    assert image_of(sent)[:8] == b"\x89PNG\r\n\x1a\n"
    service = ws.daemon(MONDAY + timedelta(hours=21))
    with service.state.read() as tables:
        [row] = [n for n in tables.outbox.all() if n.subject.startswith("caldaemon: your week")]
    service.close()
    # Delivered: its text, HTML and picture are gone from the state.
    assert row.status == "sent" and row.image is None and row.text == ""


def test_a_report_missed_by_more_than_a_day_is_not_sent_late(ws):
    ws.cycle(MONDAY + timedelta(days=1, minutes=1))
    assert weekly_mails(ws) == []


def test_sent_on_another_day_it_shows_the_week_that_begins_next(ws):
    ws.notices = 'weekly_report: {day: fri, at: "16:00"}'
    ws.cycle(datetime(2026, 11, 27, 16, 5, tzinfo=TZ))
    [sent] = weekly_mails(ws)
    assert sent["Subject"].startswith("caldaemon: your week of Mon 30 Nov")


def test_without_the_key_there_is_no_weekly_report(ws):
    ws.notices = ""
    ws.cycle(MONDAY)
    assert weekly_mails(ws) == []


def test_run_once_says_it_queued_the_report(ws):
    ws.write_config()
    ws.write_practice()
    args = ["run", "--config", str(ws.config), "--once", "--now", MONDAY.isoformat()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "lee: the weekly report of the week of Mon 30 Nov queued" in result.output


def fire_times(ws: Workspace, after: datetime, count: int) -> list[datetime]:
    service = ws.daemon(after)
    try:
        service.scheduler = BackgroundScheduler(timezone=UTC)
        service._schedule()
        job = service.scheduler.get_job("weekly:lee")
        assert job is not None
        times: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = job.trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
            times.append(moment)
        return times
    finally:
        service.close()


def test_the_daemon_schedules_it_at_7_local_across_the_autumn_change(ws):
    # Toronto leaves daylight time on Sunday 1 November 2026.
    times = fire_times(ws, datetime(2026, 10, 20, tzinfo=UTC), 3)
    assert [t.astimezone(TZ).strftime("%a %d %b %H:%M") for t in times] == [
        "Mon 26 Oct 07:00",
        "Mon 02 Nov 07:00",
        "Mon 09 Nov 07:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [11, 12, 12]


def test_the_daemon_schedules_it_at_7_local_across_the_spring_change(ws):
    # Toronto enters daylight time on Sunday 14 March 2027.
    times = fire_times(ws, datetime(2027, 3, 2, tzinfo=UTC), 2)
    assert [t.astimezone(TZ).strftime("%a %d %b %H:%M") for t in times] == [
        "Mon 08 Mar 07:00",
        "Mon 15 Mar 07:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [12, 11]


def test_the_poll_after_a_dst_change_sends_it_at_the_new_local_time(ws):
    ws.sessions = [Session("s1@practice", datetime(2026, 11, 2, 10, tzinfo=TZ))]
    monday = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # 07:00 EST, 08:00 of the old offset
    ws.cycle(monday - timedelta(minutes=1))
    assert weekly_mails(ws) == []
    ws.cycle(monday)
    [sent] = weekly_mails(ws)
    assert sent["Subject"].startswith("caldaemon: your week of Mon 2 Nov")


# -- failing closed ----------------------------------------------------------------------


def test_an_unreadable_calendar_means_no_report_until_it_is_read(ws, caplog):
    ws.write_config()
    ws.practice.mkdir()  # the practice calendar cannot be read
    caplog.set_level(logging.DEBUG)
    for minutes in (0, 30, 70):
        service = ws.daemon(MONDAY + timedelta(minutes=minutes))
        service.once()
        service.close()
    assert weekly_mails(ws) == []
    said = [r.getMessage() for r in caplog.records if r.name == "caldaemon.weekly"]
    assert said and all("not sent: not every calendar was read (practice:" in s for s in said)
    folder = ws.state_dir / "notices"
    problems = [
        message_from_bytes(m.as_bytes(), policy=policy.default)
        for m in mailbox.Maildir(folder, create=False)
    ]
    [notice] = [m for m in problems if "weekly report" in str(m["Subject"])]
    body = notice.get_body(("plain",))
    assert body is not None
    assert "calendar 'practice' could not be read" in body.get_content()

    ws.practice.rmdir()
    ws.cycle(MONDAY + timedelta(minutes=75))  # read again: the report goes
    [sent] = weekly_mails(ws)
    assert sent["Subject"].startswith("caldaemon: your week of Mon 30 Nov")
    service = ws.daemon(MONDAY + timedelta(minutes=76))
    with service.state.read() as tables:
        assert not tables.problems.known("weekly:lee/2026-11-30")
    service.close()


# -- delivered, privately ----------------------------------------------------------------


def test_the_daemon_sends_it_over_smtp_with_its_picture(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server) + "\n" + WEEKLY
        ws.cycle(MONDAY)
        [weekly] = [r for r in server.received if "your week" in str(r.message["Subject"])]
    assert weekly.message.get_content_type() == "multipart/alternative"
    assert image_of(weekly.message)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("privacy", ["minimal", "redacted", "full"])
def test_no_event_text_reaches_the_report_the_state_or_the_log(ws, caplog, privacy):
    ws.notices = f"{WEEKLY}\nprivacy: {privacy}"
    caplog.set_level(logging.DEBUG)
    ws.cycle(MONDAY)
    [sent] = weekly_mails(ws)
    has_picture = any(p.get_content_type() == "image/png" for p in sent.walk())
    assert has_picture is (privacy != "minimal")
    needles = [CANARY, CANARY.split()[0], "Quixote", "555-0199"]
    raw = sent.as_string()
    texts = [raw] + [p.get_content() for p in sent.walk() if p.get_content_maintype() == "text"]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "weekly report for lee" in logs
    for needle in needles:
        assert all(needle not in text for text in texts), needle
        assert needle not in logs
    if privacy == "full":
        return  # the violations notice names titles then, by the clinician's choice
    for path in ws.state_dir.rglob("*"):
        if path.is_file():
            for needle in needles:
                assert needle.encode() not in path.read_bytes(), path
