"""Delivery against a real aiosmtpd server (tests/notices/smtp_server.py) and a Maildir."""

from __future__ import annotations

import random
import socket
import ssl
import stat
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import trustme

from caldaemon.errors import ConfigError, DeliveryError
from caldaemon.notices.compose import Message
from caldaemon.notices.delivery import mailer_for, retry_delay
from caldaemon.notices.maildir import MaildirMailer
from caldaemon.notices.smtp import SmtpMailer
from tests.notices.smtp_server import SENDER, SmtpServer
from tests.support import make_settings

PASSWORD = "correct horse battery staple"
MESSAGE = Message(
    message_id="<0123456789abcdef@caldaemon>",
    to="lee@example.org",
    subject="caldaemon: 2 boundaries crossed on Mon 30 Nov",
    text="Hello Dr. Sam Lee,\n\n3 high-intensity sessions on Mon 30 Nov; your limit is 2\n",
    html="<p>Hello Dr. Sam Lee,</p><ul><li>3 high-intensity sessions</li></ul>",
)


@pytest.fixture
def starttls() -> Iterator[SmtpServer]:
    with SmtpServer("starttls") as server:
        yield server


def refused(server: SmtpServer, **smtp: object) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(server.email_settings(**smtp)).send(MESSAGE)
    assert server.received == []
    return caught.value


# -- delivery ----------------------------------------------------------------------------


def assert_delivered(server: SmtpServer) -> None:
    [got] = server.received
    assert got.tls
    assert got.mail_from == SENDER and got.rcpt_tos == ("lee@example.org",)
    assert got.message["Message-ID"] == MESSAGE.message_id
    assert got.message["Subject"] == MESSAGE.subject
    assert got.message["Auto-Submitted"] == "auto-generated"
    assert got.message.get_content_type() == "multipart/alternative"
    text, html = got.message.iter_parts()
    assert text.get_content() == MESSAGE.text and html.get_content() == MESSAGE.html + "\n"


def test_starttls_delivery_verified_with_the_test_ca(starttls: SmtpServer) -> None:
    SmtpMailer(starttls.email_settings()).send(MESSAGE)
    assert_delivered(starttls)


def test_implicit_tls_delivery() -> None:
    with SmtpServer("tls") as server:
        SmtpMailer(server.email_settings()).send(MESSAGE)
        assert_delivered(server)


def test_login_with_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "smtp").write_text(PASSWORD + "\n")
    with SmtpServer("starttls", users={"caldaemon": PASSWORD}) as server:
        SmtpMailer(
            server.email_settings(username="caldaemon", password_file=str(tmp_path / "smtp"))
        ).send(MESSAGE)
        assert_delivered(server)
        assert server.received[0].login == "caldaemon"


def test_login_over_implicit_tls_with_a_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    with SmtpServer("tls", users={"caldaemon": PASSWORD}) as server:
        SmtpMailer(
            server.email_settings(username="caldaemon", password_env="TEST_SMTP_PASSWORD")
        ).send(MESSAGE)
        assert server.received[0].login == "caldaemon"


def test_a_wrong_password_is_permanent_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    with SmtpServer("starttls", users={"caldaemon": "something else"}) as server:
        error = refused(server, username="caldaemon", password_env="TEST_SMTP_PASSWORD")
    assert error.permanent and "username and password" in error.message
    assert PASSWORD not in str(error)


def test_a_missing_password_is_permanent(starttls: SmtpServer, tmp_path: Path) -> None:
    error = refused(starttls, username="caldaemon", password_file=str(tmp_path / "absent"))
    assert error.permanent and "the SMTP password" in error.message


# -- refusing to send unsafely -----------------------------------------------------------


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    for security in ("starttls", "tls"):
        with SmtpServer(security) as server:
            error = refused(server, ca_file=str(other))
        assert error.permanent
        assert "the SMTP server's certificate could not be verified" in error.message


def test_the_system_cas_do_not_trust_the_test_ca(starttls: SmtpServer) -> None:
    error = refused(starttls, ca_file=None)
    assert error.permanent and "certificate could not be verified" in error.message


def test_a_server_without_starttls_is_refused_never_used_in_clear() -> None:
    with SmtpServer("plain") as server:
        error = refused(server)
    assert error.permanent and "does not offer STARTTLS" in error.message


def test_an_unverifying_ssl_context_is_refused(starttls: SmtpServer) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        SmtpMailer(starttls.email_settings(), ssl_context=context)


def test_an_unreadable_ca_file_is_a_config_error(starttls: SmtpServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        SmtpMailer(starttls.email_settings(ca_file=str(tmp_path / "missing.pem")))


# -- temporary and permanent failures ----------------------------------------------------


@pytest.mark.parametrize(("reply", "permanent"), [("451", False), ("550", True), ("drop", False)])
def test_data_replies_are_classified(reply: str, permanent: bool) -> None:
    with SmtpServer("starttls", reply=reply) as server:  # type: ignore[arg-type]
        error = refused(server)
    assert error.permanent is permanent
    if reply != "drop":
        assert reply in error.message


def test_a_closed_port_is_temporary(starttls: SmtpServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = refused(starttls, port=port)
    assert not error.permanent and "cannot reach" in error.message


def test_a_silent_server_times_out_as_temporary(starttls: SmtpServer) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = starttls.email_settings(port=silent.getsockname()[1])
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer(settings, timeout=0.2).send(MESSAGE)
    assert not caught.value.permanent and "timed out" in caught.value.message


# -- Maildir -----------------------------------------------------------------------------


def test_maildir_writes_one_private_file_per_message_id(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "notices"
    mailer = MaildirMailer(folder)
    mailer.send(MESSAGE)
    mailer.send(MESSAGE)
    MaildirMailer(folder).send(MESSAGE)
    [written] = list((folder / "new").iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == MESSAGE.message_id
    assert parsed.get_content_type() == "multipart/alternative"
    assert list((folder / "tmp").iterdir()) == []


def test_maildir_keeps_a_message_already_read(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path / "notices")
    mailer.send(MESSAGE)
    [written] = list((tmp_path / "notices" / "new").iterdir())
    written.rename(tmp_path / "notices" / "cur" / f"{written.name}:2,S")
    mailer.send(MESSAGE)
    assert list((tmp_path / "notices" / "new").iterdir()) == []
    other = Message("<another@caldaemon>", MESSAGE.to, "s", "t", "<p>h</p>")
    mailer.send(other)
    assert len(list((tmp_path / "notices" / "new").iterdir())) == 1


# -- choice and backoff ------------------------------------------------------------------


def test_mailer_for_each_config(tmp_path: Path) -> None:
    daemon = {"state_dir": str(tmp_path / "state")}
    maildir = mailer_for(make_settings({}, daemon=daemon))
    assert isinstance(maildir, MaildirMailer) and maildir.folder == tmp_path / "state" / "notices"
    smtp = {"from": "caldaemon@example.org", "smtp": {"host": "smtp.example.org"}}
    mailer = mailer_for(make_settings({}, daemon=daemon, notices={"email": smtp}))
    assert isinstance(mailer, SmtpMailer) and mailer.port == 587
    tls = {**smtp, "smtp": {"host": "smtp.example.org", "security": "tls"}}
    mailer = mailer_for(make_settings({}, daemon=daemon, notices={"email": tls}))
    assert isinstance(mailer, SmtpMailer) and mailer.port == 465
    graph = {"from": "caldaemon@example.org", "via": "graph"}
    with pytest.raises(ConfigError, match="graph"):
        mailer_for(make_settings({}, daemon=daemon, notices={"email": graph}))


def test_retry_delay_doubles_up_to_an_hour_with_jitter() -> None:
    assert [retry_delay(n) for n in range(9)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(10_000) == 3600
    rng = random.Random(7)
    for attempt in range(12):
        nominal = retry_delay(attempt)
        assert nominal / 2 <= retry_delay(attempt, rng) <= nominal
    assert retry_delay(3, random.Random(1)) == retry_delay(3, random.Random(1))
