"""Requests and errors of the fake Microsoft Graph (see microsoft_graph.py).

Error envelope: https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from .http import Reply
from .identity_model import AccessGrant

__all__ = [
    "CONFLICT_MESSAGE",
    "GRAPH_JSON",
    "NOT_FOUND_MESSAGE",
    "BatchHook",
    "GraphError",
    "GraphRequest",
    "Headers",
    "JsonObject",
    "Routed",
    "encode",
    "error_reply",
    "graph_error_reply",
    "method_not_allowed",
    "parse_query",
    "query_key",
    "require_method",
    "require_permission",
    "unknown_segment",
]

GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
NOT_FOUND_MESSAGE = "The specified object was not found in the store."
# Outlook's answer to a stale If-Match (observed; not in the reference docs).
CONFLICT_MESSAGE = (
    "The send or update operation could not be performed because the change key "
    "passed in the request does not match the current change key for the item."
)
JsonObject = dict[str, Any]
Headers = tuple[tuple[str, str], ...]
# What a route answers: status, JSON payload (None: no body) and extra headers.
Routed = tuple[int, Any, Headers]
# (item id, method, target "/v1.0/...", headers, body, run) -> reply; lets the
# server record each batch item and inject per-item faults around ``run``.
BatchHook = Callable[[str, str, str, Mapping[str, str], bytes, Callable[[], Reply]], Reply]


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Sequence[tuple[str, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = tuple(headers)
        # More members of the error object (``@event.existingEventId``).
        self.extra = dict(extra or {})


def graph_error_reply(
    status: int,
    code: str,
    message: str,
    request_headers: Mapping[str, str],
    headers: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> Reply:
    """Graph's error envelope, see https://learn.microsoft.com/graph/errors."""
    request_id = str(uuid.uuid4())
    client_request_id = request_headers.get("client-request-id", request_id)
    payload = {
        "error": {
            "code": code,
            "message": message,
            **(extra or {}),
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    tracing = (("request-id", request_id), ("client-request-id", client_request_id))
    return Reply.json(status, payload, (*tracing, *headers), GRAPH_JSON)


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str  # after "/v1.0", e.g. "/me/calendarView/delta"
    query: Mapping[str, str]  # keys lower-cased, "$" kept
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes

    @property
    def segments(self) -> list[str]:
        return [unquote(s) for s in self.path.strip("/").split("/") if s]

    def json_body(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure "
                "Content-Type header is set and payload is of valid JSON format.",
            ) from exc
        if not isinstance(payload, dict):
            raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
        return payload

    def preferences(self) -> dict[str, str]:
        prefs: dict[str, str] = {}
        for item in self.headers.get("prefer", "").split(","):
            name, _, value = item.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
        return prefs


def parse_query(query_string: str) -> dict[str, str]:
    """Query parameters with lower-cased names (Graph's are case-insensitive)."""
    parsed = parse_qs(query_string, keep_blank_values=True)
    return {k.lower(): v[0] for k, v in parsed.items()}


def query_key(key: str) -> str:
    known = {"startdatetime": "startDateTime", "enddatetime": "endDateTime"}
    return known.get(key, key)


def encode(query: Mapping[str, str]) -> str:
    return urlencode(query, safe="$(),'", quote_via=quote)


def error_reply(exc: GraphError, request: GraphRequest) -> Reply:
    return graph_error_reply(
        exc.status, exc.code, exc.message, request.headers, exc.headers, exc.extra
    )


def require_method(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise method_not_allowed(method)


def method_not_allowed(method: str) -> GraphError:
    return GraphError(405, "BadRequest", f"The HTTP method '{method}' is not allowed here.")


def unknown_segment(segment: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def require_permission(grant: AccessGrant, *permissions: str) -> None:
    if not grant.allows(*permissions):
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
