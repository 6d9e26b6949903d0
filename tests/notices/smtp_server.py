"""A real SMTP server for tests: aiosmtpd in a thread, with a trustme test CA.

A plain class (not a pytest fixture) so that any test module can use it, the daemon's
tests included::

    from tests.notices.smtp_server import SmtpServer

    with SmtpServer(security="starttls", users={"caldaemon": "s3cret"}) as server:
        mailer = SmtpMailer(server.email_settings(username="caldaemon",
                                                  password_env="SMTP_PASSWORD"))
        mailer.send(message)
        [received] = server.received          # envelope + parsed email

``security``
    ``"starttls"`` STARTTLS offered and required before MAIL (RFC 3207);
    ``"tls"`` implicit TLS from the first byte (RFC 8314);
    ``"plain"`` no TLS at all: STARTTLS is not even offered.
``reply`` to DATA
    ``"accept"`` (default) records the message and answers 250; ``"451"`` a temporary
    failure; ``"550"`` a permanent one; ``"drop"`` aborts the connection after the body
    instead of answering; ``"550-rcpt"`` refuses the recipient for good (to RCPT).
``users``
    Enables AUTH (PLAIN, LOGIN) for these login → password pairs; with STARTTLS, mail
    without login is then refused (530). ``Received.login`` names who logged in.
``ca``
    The trustme CA that issues the server's certificate (for "127.0.0.1" and "localhost");
    by default one CA shared by every server in the process. ``ca_file`` is the PEM of the
    CA for ``smtp.ca_file``.

The server listens on 127.0.0.1 on a free port chosen by the OS (no race for the port).
"""

from __future__ import annotations

import email
import ssl
import tempfile
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from caldaemon.config.schema import EmailSettings

Security = Literal["starttls", "tls", "plain"]
Reply = Literal["accept", "451", "550", "550-rcpt", "drop"]
SENDER = "caldaemon@example.org"

_shared_ca: trustme.CA | None = None


def shared_ca() -> trustme.CA:
    """One test CA for the whole run (making a CA costs a key generation)."""
    global _shared_ca
    if _shared_ca is None:
        _shared_ca = trustme.CA()
    return _shared_ca


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage
    login: str | None
    tls: bool


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.server.mail_from.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.server.reply == "550-rcpt":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.server.reply
        if reply == "451":
            return "451 4.3.0 Try again later"
        if reply == "550":
            return "550 5.7.1 Message refused"
        if reply == "drop":
            assert smtp.transport is not None
            smtp.transport.abort()  # nothing reaches the client: no reply, no QUIT
            return "421 4.4.2 (never sent)"
        data = envelope.original_content or b""
        # SMTP carries CRLF line ends (RFC 5321 §2.3.8); tests compare with Python's "\n".
        parsed = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.server.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                message=parsed,
                login=login,
                tls=session.ssl is not None or self.server.security == "tls",
            )
        )
        return "250 2.0.0 OK"


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    """aiosmtpd's Controller on port 0: the real port is read once the socket is bound."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    host = "127.0.0.1"

    def __init__(
        self,
        security: Security = "starttls",
        *,
        reply: Reply = "accept",
        users: dict[str, str] | None = None,
        ca: trustme.CA | None = None,
    ) -> None:
        self.security = security
        self.reply = reply
        self.users = users
        self.ca = ca or shared_ca()
        self.received: list[Received] = []
        # Every MAIL FROM the server was sent, accepted or not (a message begun).
        self.mail_from: list[str] = []
        self._dir = tempfile.TemporaryDirectory(prefix="caldaemon-smtp-")
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._controller = self._make_controller()

    def _make_controller(self) -> _Controller:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(self.host, "localhost").configure_cert(context)
        kwargs: dict[str, Any] = {}
        if self.users is not None:
            # aiosmtpd only knows a STARTTLS session as encrypted: with implicit TLS, AUTH
            # is offered without requiring TLS, and then cannot be required (it warns).
            starttls = self.security == "starttls"
            kwargs.update(
                authenticator=_Authenticator(self.users),
                auth_required=starttls,
                auth_require_tls=starttls,
            )
        if self.security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif self.security == "tls":
            kwargs.update(ssl_context=context)
        return _Controller(_Handler(self), hostname=self.host, port=0, ready_timeout=5.0, **kwargs)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._dir.cleanup()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def email_settings(self, **smtp: Any) -> EmailSettings:
        """``notices.email`` pointing at this server; ``smtp`` keys override the defaults
        (host, port, security matching the server, ca_file, a 5 s timeout)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "ca_file": str(self.ca_file),
            "security": "tls" if self.security == "tls" else "starttls",
            "timeout": "5s",
        }
        return EmailSettings.model_validate({"from": SENDER, "smtp": values | smtp})
