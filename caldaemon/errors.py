"""One root for every error caldaemon reports to a user.

A user error (a bad config, an unreadable calendar, an expired authorization) is printed as
its message and never as a traceback; each carries the data its message needs so callers
(the CLI, the daemon's operational notices) can act on it without parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass


class Error(Exception):
    """Root of caldaemon's errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Problem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Error):
    """The config file is unusable; ``problems`` lists every problem found at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CalendarError(Error):
    """A calendar could not be read at all (the file, the feed, the account)."""

    def __init__(self, calendar: str, source: str, reason: str) -> None:
        self.calendar = calendar
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class TransientError(CalendarError):
    """A calendar is unreachable for now (network, 5xx, throttling); try again later."""


class CalendarPaused(CalendarError):
    """The service refuses this calendar for a while (Google's ``quotaExceeded`` puts it in
    read-only mode for hours): not retried; reading pauses as for an expired sign-in."""


class AuthorizationError(CalendarPaused):
    """The stored authorization no longer works (expired or revoked): a person must act."""

    def __init__(self, calendar: str, source: str, reason: str, command: str) -> None:
        self.command = command
        super().__init__(calendar, source, f"{reason}; run: {command}")


class WriteConflict(Error):
    """A write was refused because the event changed since we read it (etag mismatch)."""

    def __init__(self, calendar: str, remote_id: str) -> None:
        self.calendar = calendar
        self.remote_id = remote_id
        super().__init__(f"{calendar}: event {remote_id} was changed by someone else")


class RemoteGone(Error):
    """The event to update or delete no longer exists on the calendar."""

    def __init__(self, calendar: str, remote_id: str) -> None:
        self.calendar = calendar
        self.remote_id = remote_id
        super().__init__(f"{calendar}: event {remote_id} no longer exists")


class LeaseLost(Error):
    """This instance no longer holds the clinician (several instances on one PostgreSQL
    state): it was stopped or paused past its lease and another took the clinician over.
    Nothing more is written for it here."""

    def __init__(self, clinician: str) -> None:
        self.clinician = clinician
        super().__init__(
            f"{clinician}: the lease ran out while the cycle ran (this instance was paused?); "
            "the instance that holds it now does its writes"
        )


class DeliveryError(Error):
    """A notice could not be delivered. A temporary failure is retried with backoff; a
    permanent one waits for the config to change (a certificate, STARTTLS, a password)
    and is retried after a reload; only ``recipient_refused`` ends a notice for good
    (DESIGN.md §5)."""

    def __init__(self, message: str, *, permanent: bool, recipient_refused: bool = False) -> None:
        self.permanent = permanent
        self.recipient_refused = recipient_refused
        super().__init__(message)
