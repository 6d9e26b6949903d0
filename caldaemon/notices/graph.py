"""Notices through Microsoft Graph's sendMail (``notices.email.via: graph``), for practices
on Microsoft 365 without an SMTP relay.

The mail goes out as the account of one Outlook calendar in the config
(``notices.email.graph_calendar``, else the first Outlook calendar): delegated with the
Mail.Send scope (``caldaemon auth outlook`` asks for it for that calendar), or app-only
with the Mail.Send application permission. https://learn.microsoft.com/graph/api/user-sendmail:
202 Accepted means Exchange took the message.

The notice's deterministic Message-ID is sent as ``internetMessageId`` (the message
resource takes it when a message is created); a server that refuses it gets the message
without it. Graph only passes custom headers named ``X-…``, so RFC 3834's
Auto-Submitted cannot be set; X-Auto-Response-Suppress (Exchange's own) is.

Graph sends the HTML body only. A notice's picture (the weekly report) goes as an inline
fileAttachment whose ``contentId`` the HTML names by ``cid:``, with ``isInline`` set
(https://learn.microsoft.com/graph/api/resources/fileattachment); an attachment in the
sendMail request itself must stay under 3 MB, the request under 4 MB
(https://learn.microsoft.com/graph/outlook-large-attachments), which the outbox's bound on
the picture keeps.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from caldaemon.errors import CalendarError, ConfigError, DeliveryError, Problem
from caldaemon.notices.compose import Message
from caldaemon.providers.outlook.settings import OutlookCalendar
from caldaemon.retry import RetryPolicy

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings, Settings


def sending_calendar(settings: Settings) -> tuple[ClinicianSettings, OutlookCalendar] | None:
    """The Outlook calendar whose account sends the notices."""
    email = settings.notices.email
    wanted = email.graph_calendar if email is not None else None
    for clinician in settings.clinicians:
        for calendar in clinician.calendars:
            if isinstance(calendar, OutlookCalendar) and wanted in (None, calendar.id):
                return clinician, calendar
    return None


def graph_mailer(settings: Settings) -> GraphMailer:
    found = sending_calendar(settings)
    if found is None:
        email = settings.notices.email
        which = (
            f"an Outlook calendar with id '{email.graph_calendar}'"
            if (email is not None and email.graph_calendar)
            else "an Outlook calendar"
        )
        raise ConfigError(
            [
                Problem(
                    str(settings.path),
                    None,
                    "notices.email.via",
                    f"sending through graph needs {which} in the config",
                )
            ]
        )
    clinician, calendar = found
    return GraphMailer(calendar, clinician.id, settings.daemon.state_dir)


class GraphMailer:
    """Sends each notice with one sendMail request (the outbox retries failures)."""

    def __init__(
        self,
        calendar: OutlookCalendar,
        clinician: str,
        state_dir: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from caldaemon.providers.outlook.auth import MAIL_SCOPES, TokenSource, graph_endpoint_of
        from caldaemon.providers.outlook.http import GraphClient
        from caldaemon.providers.outlook.session import GraphSession

        self.calendar = calendar
        self.session = GraphSession(calendar.ca_file, calendar.timeout.total_seconds())
        self.tokens = TokenSource(calendar, clinician, state_dir, self.session)
        endpoint = graph_endpoint_of(calendar)
        user = "me" if calendar.user == "me" else f"users/{quote(calendar.user, safe='@')}"
        self.url = f"{endpoint}/{user}/sendMail"
        self.client = GraphClient(
            endpoint=endpoint,
            calendar=calendar.id,
            where=f"sendMail as {calendar.user}",
            session=self.session,
            token=lambda force: self.tokens.token(force, MAIL_SCOPES),
            mailbox=self.tokens.mailbox,
            sleep=sleep,
            clock=clock,
            policy=RetryPolicy(attempts=1),
        )

    def send(self, message: Message) -> None:
        payload = _payload(message, with_id=True)
        try:
            response = self.client.send("POST", self.url, json=payload)
            if response.status_code == 400 and "internetmessageid" in response.text.lower():
                response = self.client.send("POST", self.url, json=_payload(message, with_id=False))
        except CalendarError as exc:
            # Network trouble, throttling, 5xx, an expired sign-in: all may pass.
            raise DeliveryError(
                f"sending through Microsoft Graph failed: {exc}", permanent=False
            ) from None
        if response.status_code == 202 or 200 <= response.status_code < 300:
            return
        from caldaemon.providers.outlook.http import error_text, json_of

        reason = error_text(response.status_code, json_of(response))
        raise DeliveryError(
            f"Microsoft Graph did not send the notice: {reason}",
            permanent=400 <= response.status_code < 500,
        )

    def close(self) -> None:
        self.session.close()


def _payload(message: Message, *, with_id: bool) -> dict[str, Any]:
    mail: dict[str, Any] = {
        "subject": message.subject,
        "body": {"contentType": "HTML", "content": message.html},
        "toRecipients": [{"emailAddress": {"address": message.to}}],
        "internetMessageHeaders": [{"name": "X-Auto-Response-Suppress", "value": "All"}],
    }
    if message.image is not None:
        mail["attachments"] = [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "week.png",
                "contentType": "image/png",
                "contentBytes": base64.b64encode(message.image).decode("ascii"),
                "contentId": message.image_cid,
                "isInline": True,
            }
        ]
    if with_id:
        mail["internetMessageId"] = message.message_id
    return {"message": mail, "saveToSentItems": False}
