"""Delivering what the outbox holds: the mailer the config asks for, and the loop that
sends what is due, retrying with backoff after temporary failures and keeping a notice
(shown by ``caldaemon status``) after a permanent one (DESIGN.md §6)."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Protocol

from caldaemon import failpoints
from caldaemon.config import Settings
from caldaemon.errors import DeliveryError
from caldaemon.notices.compose import Message
from caldaemon.notices.maildir import MaildirMailer
from caldaemon.notices.smtp import SmtpMailer
from caldaemon.state import State
from caldaemon.state.outbox import FAILED, HELD, PENDING

log = logging.getLogger("caldaemon.notices")

RETRY_BASE = 30.0
RETRY_CAP = 3600.0
MAX_ATTEMPTS = 30
_delivery_lock = threading.Lock()


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Deliver ``message`` or raise DeliveryError(msg, permanent=...)."""


def mailer_for(settings: Settings) -> Mailer:
    """The mailer the config asks for: Maildir in the state directory when no email is
    configured, Microsoft Graph's sendMail for ``via: graph``, else SMTP."""
    email = settings.notices.email
    if email is None:
        return MaildirMailer(settings.daemon.state_dir.expanduser() / "notices")
    if email.via == "graph":
        from caldaemon.notices.graph import graph_mailer

        return graph_mailer(settings)
    return SmtpMailer(email)


def retry_delay(
    attempt: int,
    rng: random.Random | None = None,
    *,
    base: float = RETRY_BASE,
    cap: float = RETRY_CAP,
) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first retry): ``base * 2**attempt``
    capped at ``cap``, with "equal jitter" (uniform in the upper half) so that many notices
    failing together do not retry together. Without ``rng`` there is no jitter."""
    delay = min(cap, base * 2.0 ** min(max(attempt, 0), 32))
    return delay if rng is None else delay / 2 + rng.uniform(0, delay / 2)


def deliver_due(
    state: State, mailer: Mailer, now: datetime, rng: random.Random | None = None
) -> tuple[int, int]:
    """Send what is due. Returns (sent, not sent and no longer retried on a timer: held
    for a config change or refused for good)."""
    rng = rng or random.Random()
    sent = failed = 0
    with _delivery_lock:
        with state.read() as tables:
            due = tables.outbox.due(now)
        for notice in due:
            message = Message(
                message_id=notice.message_id,
                to=notice.recipient,
                subject=notice.subject,
                text=notice.text,
                html=notice.html,
                image=notice.image,
            )
            try:
                mailer.send(message)
            except DeliveryError as exc:
                attempts = notice.attempts + 1
                if exc.recipient_refused:
                    status, next_step = FAILED, "the recipient is refused for good"
                elif exc.permanent or attempts >= MAX_ATTEMPTS:
                    # Kept for when the config is fixed (DESIGN.md §5): not marked as done.
                    status, next_step = HELD, "held until the config changes"
                else:
                    status, next_step = PENDING, "will retry"
                with state.transaction() as tables:
                    tables.outbox.attempt_failed(
                        notice.message_id,
                        attempts=attempts,
                        error=str(exc),
                        status=status,
                        retry_at=now + timedelta(seconds=retry_delay(attempts, rng)),
                    )
                failed += status != PENDING
                log.warning("notice %s not delivered (%s): %s", notice.message_id, next_step, exc)
                continue
            failpoints.reach("after-send")
            with state.transaction() as tables:
                tables.outbox.sent(notice.message_id, now)
            sent += 1
    return sent, failed
