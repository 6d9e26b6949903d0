"""Wire format of Google's HTTP batch endpoint (``multipart/mixed``), server side.

Format reference: https://developers.google.com/calendar/api/guides/batch
("Format of a batch request"). A batch body is a ``multipart/mixed`` document
whose parts each have ``Content-Type: application/http`` and an optional
``Content-ID``; the part's payload is a complete HTTP request (request line,
headers, blank line, body). The response mirrors it: one ``application/http``
part per request, in the same order, with ``Content-ID: <response-ID>`` where
``<ID>`` was the request part's Content-ID, and a complete HTTP response as payload.

The client side this must interoperate with is
``googleapiclient.http.BatchHttpRequest``: ``_execute`` builds the request with
``email.generator`` (LF line endings, Content-ID ``<uuid + N>``) and
``_deserialize_response`` parses each response part by splitting the status line
on LF and the body on the first CRLFCRLF, so response parts must use CRLF.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from .google_common import ApiError, RecordedRequest, not_found
from .http import Reply

__all__ = ["BatchPart", "parse_batch", "render_batch", "serve_batch"]

_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class BatchPart:
    """One inner HTTP request of a batch."""

    content_id: str
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def response_content_id(self) -> str:
        """Content-ID Google gives the matching response part (``<response-ID>``)."""
        inner = self.content_id[1:-1] if self.content_id.startswith("<") else self.content_id
        return f"<response-{inner}>"


def parse_batch(content_type: str, body: bytes) -> list[BatchPart]:
    """Split a ``multipart/mixed`` batch body into its inner requests.

    Raises:
        ValueError: the body is not a multipart document of ``application/http``
            parts each holding a well-formed HTTP request.
    """
    if not content_type.lower().startswith("multipart/"):
        raise ValueError("batch requests must be multipart/mixed")
    envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser().parsebytes(envelope)
    if not message.is_multipart():
        raise ValueError("batch body is not a multipart document")
    parts: list[BatchPart] = []
    subparts = message.get_payload()  # a multipart payload is its list of parts
    for index, part in enumerate(subparts if isinstance(subparts, list) else [], start=1):
        if not isinstance(part, Message) or part.get_content_type() != "application/http":
            raise ValueError(f"batch part {index} is not application/http")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            raise ValueError(f"batch part {index} is empty")
        parts.append(_parse_inner_request(str(part.get("Content-ID", f"<{index}>")), payload))
    return parts


def _parse_inner_request(content_id: str, payload: bytes) -> BatchPart:
    request_line, _, rest = payload.lstrip(b"\r\n").partition(b"\n")
    fields = request_line.decode("latin-1").strip().split(" ")
    if len(fields) != 3 or not fields[2].startswith("HTTP/"):
        raise ValueError(f"malformed request line in batch part {content_id}")
    method, target, _version = fields
    match = _HEADER_END.search(rest)
    if match is None:
        head, body = rest, b""
    else:
        head, body = rest[: match.start()], rest[match.end() :]
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    return BatchPart(content_id, method.upper(), target, headers, body)


def render_batch(responses: list[tuple[str, int, dict[str, str], bytes]]) -> tuple[str, bytes]:
    """Serialize ``(content_id, status, headers, body)`` responses as Google does.

    Returns:
        The outer Content-Type (with boundary) and the multipart body.
    """
    boundary = f"batch_{secrets.token_hex(12)}"
    out = bytearray()
    for content_id, status, headers, body in responses:
        out += f"--{boundary}\r\nContent-Type: application/http\r\n".encode()
        out += f"Content-ID: {content_id}\r\n\r\n".encode()
        out += f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += f"Content-Length: {len(body)}\r\n\r\n".encode() + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", bytes(out)


def serve_batch(
    request: RecordedRequest, max_batch: int, answer: Callable[[RecordedRequest], Reply]
) -> Reply:
    """Answer a batch request, each part through ``answer``.

    "You're limited to 50 calls in a single batch request" (``max_batch``; "Sending batch
    requests", https://developers.google.com/calendar/api/guides/batch). Outer headers
    other than Content-* apply to every part unless the part overrides them.
    """
    if request.method != "POST":
        raise not_found()
    try:
        parts = parse_batch(request.headers.get("content-type", ""), request.body)
    except ValueError as exc:
        raise ApiError(400, "badRequest", f"Invalid batch request: {exc}") from exc
    if not parts or len(parts) > max_batch:
        raise ApiError(
            400,
            "invalid",
            f"A batch request must contain between 1 and {max_batch} requests; got {len(parts)}.",
        )
    inherited = {k: v for k, v in request.headers.items() if not k.startswith("content-")}
    responses: list[tuple[str, int, dict[str, str], bytes]] = []
    for part in parts:
        target = urlsplit(part.target)
        query = parse_qs(target.query, keep_blank_values=True)
        sub = RecordedRequest(
            part.method, target.path, query, inherited | part.headers, part.body, batch_part=True
        )
        reply = answer(sub)
        sub.status = reply.status
        responses.append((part.response_content_id, reply.status, dict(reply.headers), reply.body))
    content_type, body = render_batch(responses)
    return Reply(200, (("Content-Type", content_type),), body)
