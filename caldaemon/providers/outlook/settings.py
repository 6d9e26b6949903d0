"""``provider: outlook``: one Outlook / Microsoft 365 calendar through Microsoft Graph."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from caldaemon.fields import FilePath, Name, SecretPath, fail, parse_duration
from caldaemon.providers.settings import CalendarSettings, RawProblem

_SEPARATORS = re.compile(r"[\s:-]+")
_SHA1_HEX = re.compile(r"^[0-9A-Fa-f]{40}$")


def parse_thumbprint(value: Any) -> str:
    """A certificate's SHA-1 thumbprint as msal wants it: 40 hex digits, nothing else.
    The Azure portal shows it plain; openssl and Windows show it with colons or spaces,
    which are dropped."""
    if not isinstance(value, str):
        raise fail("thumbprint", f"{value!r} is not a certificate thumbprint")
    plain = _SEPARATORS.sub("", value.strip())
    if _SHA1_HEX.match(plain):
        return plain.upper()
    if re.fullmatch(r"[0-9A-Fa-f]{64}", plain):
        raise fail(
            "thumbprint",
            "this is a SHA-256 thumbprint; certificate_thumbprint takes the certificate's "
            "SHA-1 thumbprint (40 hex digits, as the app's Certificates & secrets page shows "
            "it, or `openssl x509 -noout -fingerprint -sha1 -in cert.pem`)",
        )
    raise fail(
        "thumbprint",
        f"{value!r} is not a SHA-1 certificate thumbprint: 40 hex digits (0-9, A-F), "
        "colons or spaces between them allowed, as the app's Certificates & secrets page "
        "shows it",
    )


def _check_full_listing_every(value: timedelta) -> timedelta:
    if not timedelta(hours=1) <= value <= timedelta(days=366):
        raise fail("duration", "full_listing_every must lie between 1h and 366d")
    return value


Thumbprint = Annotated[str, BeforeValidator(parse_thumbprint)]
FullListingEvery = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_check_full_listing_every)
]


class OutlookCalendar(CalendarSettings):
    provider: Literal["outlook"]
    """outlook: an Outlook / Microsoft 365 calendar, through Microsoft Graph."""
    tenant: Name
    """The Microsoft Entra tenant: its id or domain."""
    client_id: Name
    """The app registration's application (client) id."""
    user: Name = "me"
    """Whose calendar: me (whoever signed in with `caldaemon auth outlook`), or with
    client_credentials a mailbox's address or object id."""
    calendar: str | None = None
    """The calendar's name or id (default: the main calendar)."""
    auth: Literal["device_code", "client_credentials"] = "device_code"
    """device_code: you sign in once with `caldaemon auth outlook`; client_credentials: the app
    signs in as itself with a secret or certificate."""
    client_secret_file: SecretPath | None = None
    """A file holding the app's client secret. A relative path is under $CREDENTIALS_DIRECTORY
    when set, else relative to this file."""
    client_secret_env: str | None = None
    """Or an environment variable holding the client secret."""
    certificate_file: SecretPath | None = None
    """Or a PEM file with the app's certificate and private key."""
    certificate_thumbprint: Thumbprint | None = None
    """The certificate's SHA-1 thumbprint: 40 hex digits, as the app's Certificates & secrets
    page shows it."""
    token: FilePath | None = None
    """Where the sign-in is kept (default: under state_dir/tokens)."""
    authority: str | None = None
    """Another sign-in authority (default: https://login.microsoftonline.com/ and the tenant)."""
    graph_endpoint: str | None = None
    """Another Microsoft Graph endpoint (default: https://graph.microsoft.com/v1.0)."""
    ca_file: SecretPath | None = None
    """A CA certificate file, for servers whose certificate comes from a private CA."""
    # Delta never reports some deletions (RESEARCH.md, "Microsoft Graph"): a full listing
    # this often makes the calendar's copy whole again.
    full_listing_every: FullListingEvery = timedelta(days=7)
    """How often the whole calendar is listed again instead of only its changes (between 1h and
    366d)."""

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> Iterator[RawProblem]:
        secrets = ("client_secret_file", "client_secret_env", "certificate_file")
        app_only = raw.get("auth") == "client_credentials"
        if app_only and not any(raw.get(k) for k in secrets):
            yield (
                ("auth",),
                "client_credentials needs client_secret_file, client_secret_env or "
                "certificate_file",
            )
        if app_only and str(raw.get("user", "me")).strip().lower() == "me":
            # An app signed in as itself has no "me": Graph refuses /me with app-only tokens.
            yield (
                ("user",) if "user" in raw else ("auth",),
                "client_credentials acts for a mailbox it is allowed to, not for 'me': set "
                "user to that mailbox's address (e.g. user: sam.lee@example.org) or its "
                "object id",
            )
        if raw.get("certificate_file") and not raw.get("certificate_thumbprint"):
            yield ("certificate_file",), "a certificate needs certificate_thumbprint as well"
