"""What the fake Microsoft server records of each request, and the faults it can inject."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .graph_common import graph_error_reply, parse_query
from .http import FAULT_KINDS, FaultKind, Reply
from .identity_model import IdentityError
from .microsoft_identity import Identity

__all__ = ["Fault", "FaultKind", "RecordedRequest", "fault_reply"]

# Error codes Graph uses for these statuses (https://learn.microsoft.com/graph/errors,
# https://learn.microsoft.com/graph/throttling).
_GRAPH_FAULT_ERRORS = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


@dataclass
class RecordedRequest:
    """One request as the fake received it (a ``$batch`` item is recorded on its own)."""

    method: str
    path: str  # without the query string, percent-encoding kept
    query_string: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    batch_part: bool = False
    batch_id: str | None = None  # the item's "id" within its $batch
    status: int | None = None  # None until answered, and for "reset" faults
    timestamp: float = field(default_factory=time.time)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    @property
    def query(self) -> dict[str, str]:
        return parse_query(self.query_string)

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Fault:
    """A failure to inject into matching requests.

    ``kind``:
      * ``"status"``: answer ``status`` with a service-shaped error body (and a
        ``Retry-After`` header when ``retry_after`` is set) without processing;
      * ``"reset"``: close the connection (TCP RST) before processing anything;
      * ``"truncate"``: process the request (side effects happen), then send a
        ``Content-Length`` larger than the body and close, as when a response
        is lost after the server acted;
      * ``"hang"``: stall ``delay`` seconds, then answer normally (a client
        timeout shorter than ``delay`` turns it into a timeout).

    ``match`` is ``None`` (any request), ``"METHOD substring"``, a path+query
    substring, or a predicate on the :class:`RecordedRequest`.  ``times`` is
    how many matching requests it affects (``None``: all).  With ``in_batch``
    the fault applies to matching ``$batch`` items (``status``/``hang`` only)
    rather than to top-level requests.
    """

    status: int = 429
    retry_after: int | None = None
    kind: FaultKind = "status"
    match: str | Callable[[RecordedRequest], bool] | None = None
    times: int | None = 1
    in_batch: bool = False
    delay: float = 0.0
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError("a status fault needs a 4xx or 5xx status")
        if self.in_batch and self.kind not in ("status", "hang"):
            raise ValueError("only status and hang faults can apply to $batch items")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be positive or None")

    def matches(self, request: RecordedRequest) -> bool:
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(request))
        method, _, rest = self.match.partition(" ")
        if rest and method.isalpha() and method.isupper():
            return request.method == method and rest in request.target
        return self.match in request.target

    def spend(self) -> bool:
        """Count one use; True when that was the last of ``times`` (never when None)."""
        if self.times is None:
            return False
        self.times -= 1
        return self.times == 0


def fault_reply(fault: Fault, request: RecordedRequest, identity: Identity) -> Reply:
    """The answer of a ``status`` fault, shaped like Graph's or the identity platform's."""
    extra: tuple[tuple[str, str], ...] = ()
    if fault.retry_after is not None:
        extra = (("Retry-After", str(fault.retry_after)),)
    if request.path.startswith("/v1.0"):
        default = ("UnknownError", "Injected fault.")
        code, message = _GRAPH_FAULT_ERRORS.get(fault.status, default)
        return graph_error_reply(
            fault.status, fault.code or code, fault.message or message, request.headers, extra
        )
    if fault.status == 429:
        number, message = (
            50196,
            (
                "The server terminated an operation because it encountered a client "
                "request loop. Please contact your app vendor."
            ),
        )
    else:
        number, message = 90033, "A transient error has occurred. Please try again."
    error = IdentityError(
        fault.status,
        fault.code or "temporarily_unavailable",
        number,
        fault.message or message,
    )
    reply = identity.error_reply(
        error, request.headers.get("client-request-id", "00000000-0000-0000-0000-000000000000")
    )
    return Reply(reply.status, reply.headers + extra, reply.body)
