"""Fetching an ICS feed (a practice-management system's subscription URL) with
If-None-Match / If-Modified-Since (RFC 9110 §13.1), so an unchanged feed costs one request
and no parsing."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.error
import urllib.request

from caldaemon.errors import CalendarError, TransientError
from caldaemon.providers.base import token_fields

USER_AGENT = "caldaemon (+https://github.com/caldaemon/caldaemon)"
# A feed bigger than this is not a clinician's calendar (a wrong URL, a hostile server).
MAX_FEED_BYTES = 64 * 1024 * 1024


def fetch_feed(
    url: str, version: str | None, *, calendar: str, timeout: float
) -> tuple[bytes | None, str]:
    """The feed's bytes and their version, or None when ``version`` (the validators of the
    last fetch) says it has not changed. ``webcal://`` is fetched over http(s)."""
    url = re.sub(r"^webcal(s?)://", lambda m: "https://" if m.group(1) else "http://", url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    validators = token_fields(version)
    if validators.get("etag"):
        request.add_header("If-None-Match", validators["etag"])
    if validators.get("modified"):
        request.add_header("If-Modified-Since", validators["modified"])
    where = redact_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read(MAX_FEED_BYTES + 1)
            headers = reply.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and version:
            return None, version
        message = f"the server answered {exc.code} {exc.reason}"
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise TransientError(calendar, where, message) from None
        raise CalendarError(calendar, where, message) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TransientError(calendar, where, f"cannot fetch: {reason}") from None
    if len(body) > MAX_FEED_BYTES:
        raise CalendarError(
            calendar,
            where,
            f"the feed is larger than {MAX_FEED_BYTES // 2**20} MB; is the URL right?",
        )
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    if not (etag or modified):
        # No validators: the server cannot answer 304, so compare the content.
        digest = hashlib.sha256(body).hexdigest()
        if version and validators.get("sha256") == digest:
            return None, version
        return body, json.dumps({"sha256": digest})
    return body, json.dumps({"etag": etag, "modified": modified})


def redact_url(url: str) -> str:
    """Feed URLs often carry a secret token in their path or query: show only the host."""
    match = re.match(r"^([a-z]+://)(?:[^@/]*@)?([^/?#]+)", url)
    return f"{match.group(1)}{match.group(2)}/…" if match else "(feed URL)"
