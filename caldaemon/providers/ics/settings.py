"""``provider: ics``: a local .ics file (``path``) or a read-only feed (``url``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from caldaemon.fields import FilePath
from caldaemon.providers.settings import CalendarSettings, RawProblem


class IcsCalendar(CalendarSettings):
    provider: Literal["ics"]
    path: FilePath | None = None
    url: str | None = None

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
        if bool(raw.get("path")) == bool(raw.get("url")):
            yield (), "an ics calendar needs exactly one of 'path' or 'url'"
        url = raw.get("url")
        if isinstance(url, str) and not re.match(r"^(https?|webcals?)://", url):
            yield ("url",), f"{url!r} is not an http(s) URL"

    @classmethod
    def read_only(cls, raw: Mapping[str, Any]) -> bool:
        return bool(raw.get("url"))
