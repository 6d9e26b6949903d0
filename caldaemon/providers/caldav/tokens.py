"""The caldav provider's sync token: what it stores between polls (the collection, its
version, the window read) and how a server says it no longer knows a stored one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from caldaemon.model import Window
from caldaemon.providers.caldav.http import Reply


@dataclass(frozen=True)
class Version:
    """A collection at one moment: its sync-token (RFC 6578) and its ctag (a
    CalendarServer extension, for servers without sync-tokens)."""

    sync: str | None
    ctag: str | None


def make_token(fingerprint: str, collection: str, version: Version | None, window: Window) -> str:
    version = version or Version(None, None)
    return json.dumps(
        {
            "source": fingerprint,
            "collection": collection,
            "sync": version.sync,
            "ctag": version.ctag,
            "window": [window.start.isoformat(), window.end.isoformat()],
        }
    )


def read_token(token: str | None, fingerprint: str) -> tuple[str, Version, Window] | None:
    """(collection, version, window) from a token of this configuration; None for no
    token, another configuration's or one we cannot read: that costs a full listing."""
    try:
        data = json.loads(token or "null")
        if data["source"] != fingerprint:
            return None
        start, end = (datetime.fromisoformat(t) for t in data["window"])
        return str(data["collection"]), Version(data["sync"], data["ctag"]), Window(start, end)
    except (KeyError, TypeError, ValueError):
        return None


def refused(reply: Reply) -> bool:
    """A sync-collection answered with an error: the stored token refused (RFC 6578
    §3.2 names the precondition valid-sync-token; Radicale sends it with 403, Xandikos
    with 412, others 409) or the REPORT itself refused. Either way only a full listing
    helps; one refused for good (403 on the collection) fails there, with its reason."""
    if reply.status == 207:
        return False
    return b"valid-sync-token" in reply.body or (400 <= reply.status < 500 and reply.status != 404)
