"""Requests, faults and errors of the fake Google Calendar API (see google_calendar.py).

Errors guide: https://developers.google.com/calendar/api/guides/errors
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from .http import FaultKind, Reply

__all__ = [
    "JSON",
    "ApiError",
    "Fault",
    "RecordedRequest",
    "etag_in",
    "fault_reply",
    "flag",
    "json_body",
    "json_reply",
    "new_event_id",
    "not_found",
    "param",
]

JSON = dict[str, Any]
# Best-effort google.rpc.Code names; Calendar clients key on errors[].reason.
_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAULT_REASONS = {401: "authError", 403: "rateLimitExceeded", 429: "rateLimitExceeded"}
_REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
    "authError": "Invalid Credentials",
}
_USAGE_LIMITS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


@dataclass
class RecordedRequest:
    """One request as the fake saw it (batch sub-requests have ``batch_part=True``).

    ``headers`` keys are lower-case; batch parts carry the outer request's
    headers merged under their own, which is how Google applies them.
    ``status`` is what was answered, ``None`` for a reset connection.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    batch_part: bool = False
    status: int | None = None

    def param(self, name: str) -> str | None:
        """Last value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The body decoded as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """A failure to inject into the next ``times`` matching requests.

    kind: ``status`` answers ``status`` with Google's error JSON (default reason
    per status, e.g. 403/429 -> rateLimitExceeded, 5xx -> backendError) and an
    optional Retry-After; ``reset`` aborts the TCP connection (RST) without
    processing the request; ``truncate`` processes the request, then sends the
    headers and half the body and closes; ``hang`` waits ``delay`` seconds, then
    answers normally. Filters: ``method``, ``path_contains``, ``batch_part``
    (None = both top-level and batch sub-requests), ``match`` predicate, and
    ``endpoint`` ("calendar" = Calendar and batch requests, "token", or "any").
    ``reset``/``truncate`` never match a batch sub-request.
    """

    status: int = 503
    reason: str | None = None
    message: str | None = None
    retry_after: int | None = None
    kind: FaultKind = "status"
    delay: float = 0.0
    method: str | None = None
    path_contains: str | None = None
    batch_part: bool | None = None
    match: Callable[[RecordedRequest], bool] | None = None
    endpoint: Literal["calendar", "token", "any"] = "calendar"
    times: int = 1

    def applies_to(self, request: RecordedRequest, endpoint: str) -> bool:
        """Whether this fault matches ``request`` sent to ``endpoint``."""
        if self.endpoint not in ("any", endpoint):
            return False
        if request.batch_part and self.kind in ("reset", "truncate"):
            return False
        if self.batch_part is not None and self.batch_part != request.batch_part:
            return False
        if self.method is not None and self.method.upper() != request.method:
            return False
        if self.path_contains is not None and self.path_contains not in request.path:
            return False
        return self.match is None or self.match(request)

    def spend(self) -> bool:
        """Count one use; True when that was the last of ``times``."""
        self.times -= 1
        return self.times == 0


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    content_type = ("Content-Type", "application/json; charset=UTF-8")
    extra = tuple((headers or {}).items())
    return Reply(status, (content_type, *extra), json.dumps(payload).encode())


class ApiError(Exception):
    """A Calendar API error, rendered in Google's JSON error format."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str = "parameter",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain
        self.location, self.location_type, self.headers = location, location_type, headers or {}

    def reply(self) -> Reply:
        detail = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location is not None:
            detail |= {"locationType": self.location_type, "location": self.location}
        error = {
            "code": self.code,
            "message": self.message,
            "errors": [detail],
            "status": _CANONICAL.get(self.code, "UNKNOWN"),
        }
        return json_reply(self.code, {"error": error}, self.headers)


def fault_reply(fault: Fault, endpoint: str) -> Reply:
    """The answer of a ``status`` fault: OAuth's error JSON on the token endpoint."""
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    phrase = HTTPStatus(fault.status).phrase
    if endpoint == "token":
        oauth_error = {
            "error": fault.reason or "internal_failure",
            "error_description": fault.message or phrase,
        }
        return json_reply(fault.status, oauth_error, headers)
    reason = fault.reason or _FAULT_REASONS.get(fault.status, "backendError")
    message = fault.message or _REASON_MESSAGES.get(reason, phrase)
    domain = "usageLimits" if reason in _USAGE_LIMITS else "global"
    return ApiError(fault.status, reason, message, domain=domain, headers=headers).reply()


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def new_event_id() -> str:
    return "".join(secrets.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(26))


def param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def flag(params: dict[str, list[str]], name: str) -> bool:
    raw = param(params, name)
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise ApiError(400, "invalid", f"Invalid boolean value: '{raw}'.", location=name)


def etag_in(header: str, etag: str) -> bool:
    """If-Match / If-None-Match: '*' or a comma-separated list of (possibly weak) tags."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def json_body(request: RecordedRequest) -> JSON:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body
