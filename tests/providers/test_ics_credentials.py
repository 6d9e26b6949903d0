"""Feeds that need credentials (HTTP Basic with a password file or variable, a bearer
token file) and a private CA: they are read, and the secret never reaches a message, a
token, describe() or a log; and the feed settings that ``validate`` refuses, each with
file:line and without repeating a secret (issue 11, DESIGN.md §5 "Failing closed")."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from caldaemon import config
from caldaemon.errors import CalendarError, ConfigError
from tests.providers.ics_support import (
    CALENDAR,
    WINDOW,
    FeedHandler,
    FeedServer,
    provider,
    redirect,
)

PASSWORD = "pw-Canary-7f3a"
TOKEN = "tok-Canary-91be"
ACCEPTED = {
    "Basic " + base64.b64encode(f"lee:{PASSWORD}".encode()).decode(),
    f"Bearer {TOKEN}",
}


def guarded(h: FeedHandler) -> None:
    if h.headers.get("Authorization") in ACCEPTED:
        h.reply(200, CALENDAR)
    else:
        h.reply(401, b"", {"WWW-Authenticate": 'Basic realm="practice"'})


@pytest.fixture(scope="module")
def private() -> Iterator[FeedServer]:
    """A feed over TLS with a certificate from a private CA, behind a password; its
    old address redirects (within the host) to the new one."""
    routes = {"/guarded.ics": guarded, "/old.ics": redirect("/guarded.ics", 301)}
    with FeedServer(routes, tls=True) as running:
        yield running


@pytest.mark.parametrize("kind", ["password_file", "password_env", "bearer_token_file"])
def test_a_feed_with_credentials_and_a_private_ca_is_read_and_never_leaks_them(
    private: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    ca = tmp_path / "ca.pem"
    private.ca.cert_pem.write_to_path(str(ca))
    secret = tmp_path / "secret"
    secret.write_text((TOKEN if kind == "bearer_token_file" else PASSWORD) + "\n")
    keys: dict[str, object] = {"ca_file": ca}
    if kind == "password_env":
        monkeypatch.setenv("FEED_PASSWORD", PASSWORD)
        keys |= {"username": "lee", "password_env": "FEED_PASSWORD"}
    elif kind == "password_file":
        keys |= {"username": "lee", "password_file": secret}
    else:
        keys |= {"bearer_token_file": secret}
    ics = provider(url=f"{private.url}/old.ics", **keys)
    listing = ics.changes(WINDOW, None)
    assert len(listing.events) == 2
    # A wrong secret: refused with the status, and nothing of the secret.
    secret.write_text("wrong")
    monkeypatch.setenv("FEED_PASSWORD", "wrong")
    with pytest.raises(CalendarError, match="401") as refused:
        ics.changes(WINDOW, None)
    shown = [ics.describe(), str(listing.token), str(refused.value), caplog.text]
    shown += list(listing.warnings)
    assert not any(PASSWORD in text or TOKEN in text for text in shown)


def test_a_private_ca_is_needed_for_its_certificate(private: FeedServer) -> None:
    with pytest.raises(CalendarError, match="not trusted") as refused:
        provider(url=f"{private.url}/guarded.ics").changes(WINDOW, None)
    assert "ca_file" in str(refused.value)


def test_an_unreadable_secret_file_is_named_not_read(tmp_path: Path) -> None:
    ics = provider(
        url="https://feed.example/lee.ics", username="lee", password_file=tmp_path / "nope"
    )
    with pytest.raises(CalendarError, match="cannot read the feed's password"):
        ics.changes(WINDOW, None)


CONFIG = """\
timezone: America/Toronto
clinicians:
  - id: lee
    rules: standard
    calendars:
      - id: practice
        provider: ics
{keys}
rule_sets:
  standard:
    max_sessions_per_day: 6
"""
SETTINGS: list[tuple[str, str, str]] = [
    (
        "password in the URL",
        "url: https://lee:pw-Canary-7f3a@practice.example/feed.ics?key=k-Canary",
        "8: clinicians[0].calendars[0].url: the URL holds a user name or password: remove "
        "it from the URL and set 'username' and 'password_file' (or 'password_env') instead",
    ),
    (
        "username without a password",
        "url: https://practice.example/feed.ics\nusername: lee",
        "9: clinicians[0].calendars[0].username: a username needs its password",
    ),
    (
        "password without a username",
        "url: https://practice.example/feed.ics\npassword_env: FEED",
        "9: clinicians[0].calendars[0].password_env: 'password_env' needs 'username'",
    ),
    (
        "credentials of a local file",
        "path: practice.ics\nbearer_token_file: token",
        "9: clinicians[0].calendars[0].bearer_token_file: 'bearer_token_file' is for a "
        "feed ('url')",
    ),
    (
        "a password sent in the clear",
        "url: http://practice.example/feed.ics\nusername: lee\npassword_file: pw",
        "10: clinicians[0].calendars[0].password_file: credentials go only over https",
    ),
    (
        "basic and bearer at once",
        "url: https://practice.example/feed.ics\nusername: lee\npassword_env: P\n"
        "bearer_token_file: t",
        "11: clinicians[0].calendars[0].bearer_token_file: use either 'bearer_token_file'",
    ),
    (
        "a private CA for plain http",
        "url: http://practice.example/feed.ics\nca_file: ca.pem",
        "9: clinicians[0].calendars[0].ca_file: ca_file is for an https URL",
    ),
    (
        "ftp with a password",
        "url: ftp://lee:pw-Canary-7f3a@practice.example/feed.ics",
        "8: clinicians[0].calendars[0].url: the URL holds a user name or password",
    ),
    (
        "not http, with a secret query",
        "url: gopher://practice.example/feed.ics?key=k-Canary",
        "8: clinicians[0].calendars[0].url: 'gopher://practice.example/feed.ics' is not "
        "an http(s) URL",
    ),
]


@pytest.mark.parametrize(("name", "keys", "expected"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_feed_settings_are_refused_with_file_line_and_no_secret(
    name: str, keys: str, expected: str
) -> None:
    text = CONFIG.format(keys="".join(f"        {line}\n" for line in keys.splitlines()))
    with pytest.raises(ConfigError) as refused:
        config.parse(text.replace("\n\n", "\n"), Path("config.yaml"))
    message = str(refused.value)
    assert f"config.yaml:{expected}" in message, message
    assert "Canary" not in message
