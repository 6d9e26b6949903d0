"""Fetching an ICS feed (a practice-management system's subscription URL) with
If-None-Match / If-Modified-Since (RFC 9110 §13.1), so an unchanged feed costs one request
and no parsing.

Failing closed (DESIGN.md §5): ``timeout`` bounds the whole fetch, redirects included
(:mod:`.transport`); a redirect goes only to http(s) on the feed's own host; an answer
that is not a calendar (an HTML login page, garbage, nothing) is refused; credentials go
only into the Authorization header and never into a message, and a URL is shown as its
scheme and host only (feed URLs carry secret tokens in their path and query).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

from caldaemon.errors import CalendarError, TransientError
from caldaemon.providers.base import USER_AGENT, token_fields
from caldaemon.providers.ics.parse import MAX_CALENDAR_BYTES
from caldaemon.providers.ics.transport import (
    Answer,
    Deadline,
    Expired,
    TooLarge,
    Undecodable,
    get,
)

# A feed bigger than this is not a clinician's calendar (a wrong URL, a hostile server);
# the cap holds for the bytes received and for what they inflate to.
MAX_FEED_BYTES = MAX_CALENDAR_BYTES
# Feeds move (a new domain, http to https) in a hop or two; more is a loop or a trap.
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
# A calendar starts with BEGIN:VCALENDAR (RFC 5545 §3.4), after a byte-order mark or
# blank lines at most; looked for near the start only.
_VCALENDAR = re.compile(rb"(?im)^(?:\xef\xbb\xbf)?[ \t]*begin[ \t]*:[ \t]*vcalendar[ \t]*\r?$")
_LOOK = 64 * 1024


@dataclass(frozen=True)
class Feed:
    """What to fetch: the URL as configured, the Authorization header's value (built
    from the secret the settings name), and a private CA's certificates."""

    url: str
    timeout: float
    authorization: str | None = None
    ca_file: Path | None = None


def fetch_feed(feed: Feed, version: str | None, *, calendar: str) -> tuple[bytes | None, str]:
    """The feed's bytes and their version, or None when ``version`` (the validators of the
    last fetch) says it has not changed. ``webcal://`` is fetched over http(s)."""
    url = re.sub(r"^webcal(s?)://", lambda m: "https://" if m.group(1) else "http://", feed.url)
    where = redact_url(url)
    current = urlsplit(url)
    if current.username is not None or current.password is not None:
        raise CalendarError(
            calendar, where, "the URL holds a user name or password; use username/password_file"
        )
    validators = token_fields(version)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, */*;q=0.5",
        "Accept-Encoding": "gzip",
    }
    if feed.authorization:
        headers["Authorization"] = feed.authorization
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("modified"):
        headers["If-Modified-Since"] = validators["modified"]
    deadline = Deadline(feed.timeout)
    context = _tls(feed.ca_file, calendar, where) if feed.ca_file else None
    seen = {current.geturl()}
    for _ in range(MAX_REDIRECTS + 1):
        answer = _get(current, headers, deadline, context, calendar, where)
        if answer.status not in _REDIRECTS:
            break
        current = _redirect(current, answer.headers.get("Location"), calendar, where)
        if current.geturl() in seen:
            raise CalendarError(calendar, where, "the feed redirects in a loop")
        seen.add(current.geturl())
    else:
        raise CalendarError(calendar, where, f"the feed redirects more than {MAX_REDIRECTS} times")
    if answer.status == 304 and version:
        return None, version
    if answer.status != 200:
        message = f"the server answered {answer.status} {_plain(answer.reason)}".rstrip()
        if answer.status in (401, 403):
            message += " (check the feed's username, password or token)"
        if answer.status in (408, 425, 429) or answer.status >= 500:
            raise TransientError(calendar, where, message)
        raise CalendarError(calendar, where, message)
    body = answer.body
    _check_calendar(body, answer.headers.get("Content-Type", ""), calendar, where)
    etag, modified = answer.headers.get("ETag"), answer.headers.get("Last-Modified")
    if not (etag or modified):
        # No validators: the server cannot answer 304, so compare the content.
        digest = hashlib.sha256(body).hexdigest()
        if version and validators.get("sha256") == digest:
            return None, version
        return body, json.dumps({"sha256": digest})
    return body, json.dumps({"etag": etag, "modified": modified})


def _get(
    url: SplitResult,
    headers: dict[str, str],
    deadline: Deadline,
    context: ssl.SSLContext | None,
    calendar: str,
    where: str,
) -> Answer:
    """One request; every failure as a CalendarError whose reason quotes nothing the
    server or the URL holds beyond the host."""
    try:
        return get(url, headers, deadline=deadline, max_bytes=MAX_FEED_BYTES, context=context)
    except Expired:
        raise TransientError(
            calendar,
            where,
            f"no complete answer within {deadline.seconds:g}s (the timeout bounds the "
            "whole request)",
        ) from None
    except TooLarge:
        raise CalendarError(
            calendar,
            where,
            f"the feed is larger than {MAX_FEED_BYTES // 2**20} MB; is the URL right?",
        ) from None
    except Undecodable as exc:
        raise CalendarError(calendar, where, str(exc)) from None
    except ssl.SSLCertVerificationError as exc:
        raise CalendarError(
            calendar,
            where,
            f"the server's certificate is not trusted ({_plain(exc.verify_message)}); "
            "a feed signed by a private CA needs ca_file",
        ) from None
    except ssl.SSLError as exc:
        raise TransientError(calendar, where, f"TLS failed ({_plain(exc.reason)})") from None
    except http.client.HTTPException as exc:
        raise TransientError(
            calendar, where, f"the server's answer is not valid HTTP ({type(exc).__name__})"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TransientError(calendar, where, f"cannot fetch: {_plain(reason)}") from None
    except ValueError:
        # http.client's ValueErrors quote the header or URL they refuse: never shown.
        raise CalendarError(calendar, where, "the URL or a header value is not valid") from None


def _redirect(current: SplitResult, location: str | None, calendar: str, where: str) -> SplitResult:
    """Where a redirect leads, if caldaemon follows it: http(s) only, the same host, no
    step down from https to http (the credentials would travel in the clear)."""
    if not location or re.search(r"[\x00-\x20\x7f]", location.strip()):
        raise CalendarError(calendar, where, "the feed redirects to an invalid URL")
    target = urlsplit(urljoin(current.geturl(), location.strip()))
    if target.scheme not in ("http", "https"):
        raise CalendarError(
            calendar, where, "the feed redirects to a URL that is not http(s); not followed"
        )
    if (target.hostname or "").lower() != (current.hostname or "").lower():
        raise CalendarError(
            calendar,
            where,
            "the feed redirects to another host; caldaemon follows redirects only within "
            "the feed's host (put the new URL into the config if it is right)",
        )
    if current.scheme == "https" and target.scheme == "http":
        raise CalendarError(calendar, where, "the feed redirects from https to plain http")
    if target.username is not None or target.password is not None:
        raise CalendarError(calendar, where, "the feed redirects to a URL with a password")
    return target._replace(fragment="")


def _check_calendar(body: bytes, content_type: str, calendar: str, where: str) -> None:
    """A 200 whose body is no calendar is a wrong URL, an expired share or a login page:
    refused, never read as a calendar without events."""
    if _VCALENDAR.search(body[:_LOOK]):
        return
    kind = _plain(content_type.split(";")[0].strip().lower())
    if not body.strip():
        what = "nothing (an empty answer)"
    elif kind in ("text/html", "application/xhtml+xml") or body.lstrip()[:1] == b"<":
        what = "a web page (a login or error page?)"
    else:
        what = f"something else ({kind or 'no Content-Type'})"
    raise CalendarError(
        calendar, where, f"the feed answered with {what}, not a calendar; is the URL right?"
    )


def _tls(ca_file: Path, calendar: str, where: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or "no certificate in it"
        raise CalendarError(
            calendar, where, f"cannot read ca_file {ca_file}: {_plain(str(reason))}"
        ) from None


def _plain(text: object) -> str:
    """Text a server or library chose, kept to a short line of plain characters."""
    return re.sub(r"[^\w .,:;()'/+-]", "", str(text or ""))[:80]


def redact_url(url: str) -> str:
    """Feed URLs often carry a secret token in their path or query, some a password
    before the host: show only the scheme and the host (and port)."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#]*)", url)
    if match is None:
        return "(feed URL)"
    host = match.group(2).rpartition("@")[2]
    if not re.fullmatch(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?", host):
        host = "(host)"
    return f"{match.group(1).lower()}://{host}/…"
