"""Notices by SMTP: submission over TLS only, certificates always verified (DESIGN.md §7).

Every failure is a :class:`~caldaemon.errors.DeliveryError` whose ``permanent`` flag tells
the outbox whether to retry or give up and tell the admin. Error messages never contain
the SMTP password.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Iterator

from caldaemon.config.schema import EmailSettings, Smtp
from caldaemon.errors import ConfigError, DeliveryError, Problem
from caldaemon.notices.compose import Message, to_mime
from caldaemon.secret import read_secret

STARTTLS_PORT = 587  # RFC 6409 submission, upgraded with STARTTLS (RFC 3207)
TLS_PORT = 465  # RFC 8314 §3.3: submission over implicit TLS


# -- SMTP --------------------------------------------------------------------------------


class SmtpMailer:
    """Submits notices to an SMTP server over TLS: ``starttls`` (RFC 3207, port 587 by
    default) or ``tls`` (implicit TLS, RFC 8314, port 465 by default). Never in clear."""

    def __init__(
        self,
        email: EmailSettings,
        *,
        timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if email.smtp is None:
            raise ValueError("SmtpMailer needs notices.email.smtp")
        self.sender = email.sender
        self.smtp: Smtp = email.smtp
        self.port = self.smtp.port or (
            STARTTLS_PORT if self.smtp.security == "starttls" else TLS_PORT
        )
        self.timeout = timeout if timeout is not None else self.smtp.timeout.total_seconds()
        if ssl_context is None:
            cafile = str(self.smtp.ca_file.expanduser()) if self.smtp.ca_file else None
            try:
                ssl_context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    [
                        Problem(
                            str(cafile),
                            None,
                            "notices.email.smtp.ca_file",
                            f"cannot load the CA file: {exc}",
                        )
                    ]
                ) from None
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            # DESIGN.md §7: SMTP always verifies certificates.
            raise ValueError("the SSL context must verify certificates and host names")
        self.context = ssl_context

    def send(self, message: Message) -> None:
        password = self._password()
        mime = to_mime(message, self.sender)
        try:
            with self._session(password) as client:
                # One recipient: a refusal raises SMTPRecipientsRefused rather than
                # returning a partial result.
                client.send_message(mime, from_addr=self.sender, to_addrs=[message.to])
        except DeliveryError:
            raise
        except Exception as exc:  # every failure becomes a DeliveryError
            raise _classify(exc, self.smtp.host, self.port, password) from None

    def probe(self) -> None:
        """What :meth:`send` does up to the message: connect, EHLO, STARTTLS (or the TLS
        handshake) with the certificate verified, log in; then QUIT. No MAIL FROM, no
        mail (``caldaemon doctor``)."""
        password = self._password()
        try:
            with self._session(password):
                pass
        except DeliveryError:
            raise
        except Exception as exc:  # every failure becomes a DeliveryError
            raise _classify(exc, self.smtp.host, self.port, password) from None

    def _password(self) -> str | None:
        if not self.smtp.username:
            return None
        try:
            return read_secret(
                self.smtp.password_file, self.smtp.password_env, what="the SMTP password"
            )
        except ConfigError as exc:
            raise DeliveryError(str(exc), permanent=True) from None

    @contextlib.contextmanager
    def _session(self, password: str | None) -> Iterator[smtplib.SMTP]:
        host, port, timeout = self.smtp.host, self.port, self.timeout
        client: smtplib.SMTP
        if self.smtp.security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self.context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.ehlo()
            if self.smtp.security == "starttls":
                if not client.has_extn("starttls"):
                    # RFC 3207 §4: a client that requires TLS must not go on in clear;
                    # a server that never offers it is a configuration problem.
                    raise DeliveryError(
                        f"the SMTP server {host}:{port} does not offer STARTTLS, and "
                        "caldaemon never sends mail unencrypted; use a server or port that "
                        "supports it (or security: tls for port 465)",
                        permanent=True,
                    )
                client.starttls(context=self.context)
                client.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
            if self.smtp.username:
                client.login(self.smtp.username, password or "")
            yield client
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()  # the message is accepted: a failed QUIT changes nothing
        finally:
            client.close()


def _classify(exc: BaseException, host: str, port: int, password: str | None) -> DeliveryError:
    """Temporary (retry) or permanent (give up): SMTP 4xx replies, dropped connections and
    network errors are temporary; 5xx replies and failed certificate checks are not."""
    where = f"{host}:{port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{addr}: {code} {_text(reply)}" for addr, (code, reply) in exc.recipients.items()
        )
        refused = bool(codes) and all(c >= 500 for c in codes)
        error = DeliveryError(
            f"the SMTP server {where} refused the recipient ({detail})",
            permanent=refused,
            recipient_refused=refused,
        )
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        error = DeliveryError(
            f"the SMTP server {where} did not accept the username and "
            f"password: {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=not 400 <= exc.smtp_code < 500,
        )
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = DeliveryError(
            f"the SMTP server {where} answered {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=not 400 <= exc.smtp_code < 500,
        )
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        error = DeliveryError(
            f"the SMTP server {where} closed the connection: {exc}", permanent=False
        )
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        error = DeliveryError(
            f"the SMTP server {where} does not support what the config asks for: {exc}",
            permanent=True,
        )
    elif isinstance(exc, ssl.SSLCertVerificationError):
        error = DeliveryError(
            f"the SMTP server's certificate could not be verified "
            f"({where}): {exc.verify_message or exc}; set smtp.ca_file "
            "if it uses a private CA",
            permanent=True,
        )
    elif isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        error = DeliveryError(f"the TLS connection to {where} was cut: {exc}", permanent=False)
    elif isinstance(exc, ssl.SSLError):
        error = DeliveryError(
            f"TLS with the SMTP server {where} failed: {exc}; check the "
            "port and smtp.security (starttls or tls)",
            permanent=True,
        )
    elif isinstance(exc, (OSError, smtplib.SMTPException)):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        error = DeliveryError(
            f"cannot reach the SMTP server {where}: {reason or type(exc).__name__}", permanent=False
        )
    else:
        error = DeliveryError(
            f"sending to {where} failed: {type(exc).__name__}: {exc}", permanent=False
        )
    if password and password in error.message:
        return DeliveryError(
            error.message.replace(password, "********"),
            permanent=error.permanent,
            recipient_refused=error.recipient_refused,
        )
    return error


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
