"""Notices from the daemon: over real SMTP with a verified test CA, retried when the server
is away, kept and shown when refused for good, held outside working hours, not repeated
before repeat_after, a short line when resolved — and never a client's name."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from caldaemon.cli import main
from caldaemon.service.daemon import Daemon
from tests.notices.smtp_server import SmtpServer
from tests.service.workspace import CANARY, Session, Workspace
from tests.support import TZ

MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)


def smtp_notices(server: SmtpServer, port: int | None = None, mode: str = "immediate") -> str:
    return (
        f"mode: {mode}\nemail:\n  from: caldaemon@example.org\n  smtp: {{host: 127.0.0.1, "
        f"port: {port or server.port}, security: starttls, ca_file: '{server.ca_file}', "
        f"timeout: 5s}}"
    )


@pytest.fixture
def ws(tmp_path):
    return Workspace(
        tmp_path,
        sessions=[
            Session("s1@practice", MON_10),
            Session("s2@practice", MON_10 + timedelta(hours=2)),
        ],
    )


def test_notice_is_delivered_over_starttls_and_has_no_client_data(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server)
        ws.cycle(NOW)
        [received] = server.received
    message = received.message
    assert message["To"] == "lee@example.org"
    assert message["Subject"] == "caldaemon: 1 boundary crossed on Mon 30 Nov"
    assert CANARY not in message.as_string()
    assert {p.get_content_type() for p in message.walk()} >= {"text/plain", "text/html"}


def test_an_unreachable_smtp_server_is_retried_and_shown_by_status(ws):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server, port=port)
        ws.cycle(NOW)
        result = CliRunner().invoke(main, ["status", "--config", str(ws.config)])
        assert "1 pending" in result.output
        ws.notices = smtp_notices(server)
        ws.cycle(NOW + timedelta(hours=1))  # the backoff has passed; the server is back
        assert len(server.received) == 1


def test_a_permanent_refusal_is_held_shown_and_sent_once_the_config_is_fixed(ws):
    with SmtpServer(security="starttls", reply="550") as refusing:
        ws.notices = smtp_notices(refusing)
        ws.cycle(NOW)
        result = CliRunner().invoke(main, ["status", "--config", str(ws.config)])
    assert "1 held" in result.output and "held until the config is fixed" in result.output
    with SmtpServer(security="starttls") as fixed:
        ws.notices = smtp_notices(fixed)  # the admin points the config at a working server
        ws.cycle(NOW + timedelta(minutes=2))
        assert len(fixed.received) == 1  # the notice was kept, not counted as told


def test_a_certificate_that_fails_verification_holds_the_notice_for_a_config_fix(ws):
    with SmtpServer(security="starttls") as server:
        # No ca_file: the system's CAs do not know the test CA that signed the server.
        ws.notices = smtp_notices(server).replace(f", ca_file: '{server.ca_file}'", "")
        ws.cycle(NOW)
        assert server.received == []
        result = CliRunner().invoke(main, ["status", "--config", str(ws.config)])
        assert "1 held" in result.output and "certificate" in result.output
        ws.notices = smtp_notices(server)
        ws.cycle(NOW + timedelta(minutes=2))
        assert len(server.received) == 1


def test_a_recipient_refused_for_good_ends_the_notice_and_status_shows_it(ws):
    with SmtpServer(security="starttls", reply="550-rcpt") as server:
        ws.notices = smtp_notices(server)
        ws.cycle(NOW)
        result = CliRunner().invoke(main, ["status", "--config", str(ws.config)])
    assert "1 failed" in result.output and "not delivered" in result.output


def test_notices_wait_for_working_hours_when_asked(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server)
        ws.write_config()
        ws.config.write_text(
            ws.config.read_text().replace(
                "quiet_outside_working_hours: false", "quiet_outside_working_hours: true"
            )
        )
        ws.write_practice()
        early = datetime(2026, 11, 30, 7, 0, tzinfo=TZ)
        service = Daemon(str(ws.config), clock=lambda: early)
        service.once()
        assert server.received == []
        service.clock = service.cycle.clock = lambda: early + timedelta(hours=2)
        service.deliver()
        service.close()
        assert len(server.received) == 1


def test_an_open_violation_is_not_repeated_before_repeat_after_and_resolution_is_told(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server)
        ws.cycle(NOW)
        ws.cycle(NOW + timedelta(minutes=5))
        assert len(server.received) == 1
        ws.sessions[1].status = "CANCELLED"
        ws.cycle(NOW + timedelta(minutes=10))
        assert len(server.received) == 2
        resolved = server.received[1].message
        assert "resolved" in resolved["Subject"]


def test_digest_mode_sends_one_message_at_digest_time(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server, mode="digest")
        ws.cycle(NOW)
        assert server.received == []
        service = ws.daemon(NOW + timedelta(minutes=1))
        service.digest("lee")
        service.close()
        [digest] = server.received
        assert "1 boundary crossed on Mon 30 Nov" in digest.message["Subject"]


@pytest.mark.parametrize("mode", ["immediate", "digest"])
def test_a_violation_accepted_with_ok_sends_no_notice(ws, mode):
    ws.sessions[1].title = "Session #heavy #ok"
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server, mode=mode)
        ws.cycle(NOW)
        service = ws.daemon(NOW + timedelta(minutes=1))
        service.digest("lee")
        service.close()
        assert server.received == []


def test_a_violation_accepted_after_its_notice_is_neither_repeated_nor_called_resolved(ws):
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server) + "\nrepeat_after: 30m"
        ws.cycle(NOW)
        assert len(server.received) == 1
        ws.sessions[1].title = "Session #heavy #ok"
        ws.cycle(NOW + timedelta(minutes=40))  # past repeat_after: it would be repeated
        assert len(server.received) == 1


def test_a_digest_names_each_session_outside_hours_on_its_own_day(ws):
    # The digest is written from state: two sessions on two days were once merged into
    # one line under the first day.
    ws.sessions = [
        Session("late-mon@practice", MON_10 + timedelta(hours=8)),
        Session("late-tue@practice", MON_10 + timedelta(days=1, hours=8)),
    ]
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server, mode="digest")
        ws.cycle(NOW)
        service = ws.daemon(NOW + timedelta(minutes=1))
        service.digest("lee")
        service.close()
        [digest] = server.received
    text = digest.message.get_body(("plain",)).get_content()
    assert digest.message["Subject"] == (
        "caldaemon: 2 boundaries crossed between Mon 30 Nov and Tue 1 Dec"
    )
    assert text.count("a session outside your working hours") == 2
    assert "Mon 30 Nov\n  - Mon 30 Nov, 18:00–18:50: " in text
    assert "Tue 1 Dec\n  - Tue 1 Dec, 18:00–18:50: " in text


class LateWorkspace(Workspace):
    """The workspace's rules, and high-intensity work kept before 15:00: a late heavy
    session crosses two boundaries."""

    def write_config(self) -> None:
        super().write_config()
        text = self.config.read_text()
        limits = "level_limits: {high: {max_per_day: 1}}"
        assert limits in text
        late = 'level_limits: {high: {max_per_day: 1, latest_start: "15:00"}}'
        self.config.write_text(text.replace(limits, late))


def test_a_digest_names_two_boundaries_of_one_session_in_one_line_as_check_does(tmp_path):
    # The digest is written from state: it merges a session's boundaries only if state
    # kept what each violation is about (its subject) and its short phrase.
    ws = LateWorkspace(
        tmp_path, sessions=[Session("late@practice", MON_10 + timedelta(hours=6, minutes=30))]
    )
    line = (
        "Mon 30 Nov, 16:30–17:20: outside your hours (09:00–17:00) and after 15:00 for "
        "high-intensity work"
    )
    with SmtpServer(security="starttls") as server:
        ws.notices = smtp_notices(server, mode="digest")
        ws.cycle(NOW)
        checked = CliRunner().invoke(
            main, ["check", "--config", str(ws.config), "--now", NOW.isoformat()]
        )
        service = ws.daemon(NOW + timedelta(minutes=1))
        service.digest("lee")
        service.close()
        [digest] = server.received
    text = digest.message.get_body(("plain",)).get_content()
    assert checked.exit_code == 1 and f" {line}  [" in checked.output
    assert f"Mon 30 Nov\n  - {line}\n" in text and text.count("\n  - ") == 1
    assert CANARY not in digest.message.as_string()
