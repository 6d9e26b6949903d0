"""What validate says about an Outlook calendar's keys: each problem with file:line and key
path, through the real config parser."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from caldaemon import config
from caldaemon.errors import ConfigError
from caldaemon.providers.outlook.settings import OutlookCalendar

THUMBPRINT = "5B2C7E4F9A1D3C6B8E0F2A4C6E8B0D2F4A6C8E0B"


def parsed(calendar: str) -> OutlookCalendar:
    settings = config.parse(document(calendar), Path("config.yaml"))
    [outlook] = settings.clinicians[0].calendars
    assert isinstance(outlook, OutlookCalendar)
    return outlook


def problems(calendar: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(document(calendar), Path("config.yaml"))
    return [str(p) for p in caught.value.problems]


def document(calendar: str) -> str:
    lines = "\n".join(f"        {line}" for line in calendar.strip().splitlines())
    return f"""\
timezone: America/Toronto
clinicians:
  - id: lee
    rules: standard
    calendars:
      - id: work
        provider: outlook
        tenant: contoso.example
        client_id: 00000000-0000-0000-0000-000000000001
{lines}
rule_sets:
  standard:
    max_sessions_per_day: 6
"""


WHERE = "config.yaml:{line}: clinicians[0].calendars[0].{key}"


def test_client_credentials_for_me_is_refused_naming_what_to_write() -> None:
    # Was: accepted; every poll then failed, as Graph refuses /me to an app-only token.
    [explicit] = problems("auth: client_credentials\nclient_secret_env: S\nuser: me")
    assert explicit.startswith(WHERE.format(line=12, key="user"))
    assert "not for 'me'" in explicit and "user: sam.lee@example.org" in explicit
    [implicit] = problems("auth: client_credentials\nclient_secret_env: S")
    assert implicit.startswith(WHERE.format(line=10, key="auth"))
    assert "not for 'me'" in implicit


def test_client_credentials_for_a_named_mailbox_is_fine() -> None:
    outlook = parsed("auth: client_credentials\nclient_secret_env: S\nuser: lee@contoso.example")
    assert outlook.user == "lee@contoso.example"


@pytest.mark.parametrize(
    "written",
    [
        THUMBPRINT,
        THUMBPRINT.lower(),
        ":".join(THUMBPRINT[i : i + 2] for i in range(0, 40, 2)),
        " ".join(THUMBPRINT[i : i + 2] for i in range(0, 40, 2)),
        "-".join(THUMBPRINT[i : i + 4] for i in range(0, 40, 4)),
    ],
)
def test_a_thumbprint_with_colons_or_spaces_is_normalized_to_plain_hex(written: str) -> None:
    # Was: kept as written; msal reads the thumbprint as plain hex and failed at sign-in.
    outlook = parsed(
        f"auth: client_credentials\nuser: lee@contoso.example\n"
        f"certificate_file: cert.pem\ncertificate_thumbprint: '{written}'"
    )
    assert outlook.certificate_thumbprint == THUMBPRINT


@pytest.mark.parametrize(
    "written, says",
    [
        ("5B:2C:7E", "is not a SHA-1 certificate thumbprint: 40 hex digits"),
        (THUMBPRINT[:-1] + "G", "is not a SHA-1 certificate thumbprint: 40 hex digits"),
        (THUMBPRINT + THUMBPRINT[:24], "this is a SHA-256 thumbprint"),
    ],
)
def test_a_malformed_thumbprint_is_refused_clearly(written: str, says: str) -> None:
    [problem] = problems(
        f"auth: client_credentials\nuser: lee@contoso.example\n"
        f"certificate_file: cert.pem\ncertificate_thumbprint: '{written}'"
    )
    assert problem.startswith(WHERE.format(line=13, key="certificate_thumbprint"))
    assert says in problem


def test_the_full_listing_period_defaults_to_a_week_and_is_bounded() -> None:
    assert parsed("user: me").full_listing_every == timedelta(days=7)
    assert parsed("full_listing_every: 1d").full_listing_every == timedelta(days=1)
    [problem] = problems("full_listing_every: 10m")
    assert problem.startswith(WHERE.format(line=10, key="full_listing_every"))
    assert "between 1h and 366d" in problem
