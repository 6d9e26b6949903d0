"""``caldaemon doctor`` against the calendar services' local stand-ins: the Google and
Graph fakes, Radicale and Xandikos. A calendar caldaemon may not write to (Google
accessRole reader, Graph canEdit false, a Radicale collection without write privilege)
fails the buffers check and exits 2; every check is a read: the calendars keep their
contents and no request but GET (and the token endpoints) reaches a service."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import pytest

from tests.cli.doctor_support import CANARY, SESSION, Setup, line, setup
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.providers.contract import SELF
from tests.providers.radicale_server import PASSWORD, USER, radicale_server
from tests.providers.test_contract_google import write_client, write_token
from tests.providers.test_contract_outlook import CLIENT_ID, outlook_config, sign_in
from tests.providers.xandikos_server import xandikos_server

__all__ = ["setup"]  # the fixture

# -- Google ----------------------------------------------------------------------------------


@pytest.fixture
def google() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(primary_email=SELF) as server:
        yield server


def google_setup(setup: Setup, server: GoogleCalendarServer) -> str:
    refresh_token = server.issue_refresh_token()
    write_client(setup.root / "google-client.json", server)
    write_token(setup.make_state() / "tokens" / "lee-work.google.json", server, refresh_token)
    server.put_event(
        "primary",
        {
            "id": "s1",
            "summary": f"Session with {CANARY}",
            "start": {"dateTime": "2026-12-01T10:00:00-05:00"},
            "end": {"dateTime": "2026-12-01T10:50:00-05:00"},
        },
    )
    setup.write(
        [
            "{id: work, provider: google, credentials: google-client.json, "
            f'api_endpoint: "{server.url}", timeout: 5s}}'
        ]
    )
    return refresh_token


def test_google_sign_in_read_and_owner_role_pass_without_a_write(
    setup: Setup, google: GoogleCalendarServer
) -> None:
    refresh_token = google_setup(setup, google)
    before = google.events("primary")
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert line(lines, "lee/work sign-in") == (
        "✓ lee/work sign-in: Google issued a new access token from the stored refresh token"
    )
    assert line(lines, "lee/work buffers").endswith("(accessRole owner)")
    assert {r.method for r in google.requests if r.path != "/token"} == {"GET"}
    assert google.events("primary") == before
    assert refresh_token not in output and CANARY not in output


def test_a_google_calendar_shared_read_only_fails_the_buffers_check(
    setup: Setup, google: GoogleCalendarServer
) -> None:
    google_setup(setup, google)
    google.share("primary", "reader")
    code, lines, _ = setup.doctor()
    assert code == 2
    assert line(lines, "lee/work buffers").startswith(
        "✗ lee/work buffers: caldaemon may not write here (accessRole reader) → give this account"
    )
    assert line(lines, "lee/work read").startswith("✓")
    assert {r.method for r in google.requests if r.path != "/token"} == {"GET"}


def test_a_revoked_google_sign_in_fails_with_the_command_that_fixes_it(
    setup: Setup, google: GoogleCalendarServer
) -> None:
    google.revoke_refresh_token(google_setup(setup, google))
    code, lines, _ = setup.doctor()
    assert code == 2
    found = line(lines, "lee/work sign-in")
    assert found.startswith("✗") and found.endswith(
        "→ run: caldaemon auth google --clinician lee --calendar work"
    )
    assert not any(x[2:].startswith("lee/work read") for x in lines)


# -- Outlook ---------------------------------------------------------------------------------


@pytest.fixture
def microsoft() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as server:
        yield server


def outlook_entry(server: MicrosoftServer, **extra: str) -> str:
    client_id = extra.pop("client_id", CLIENT_ID)
    keys = "".join(f", {k}: {v}" for k, v in extra.items())
    return (
        f"{{id: work, provider: outlook, tenant: {server.tenant}, client_id: {client_id}, "
        f'authority: "{server.authority}", graph_endpoint: "{server.graph_url}", '
        f'ca_file: "{server.ca_path}", timeout: 10s{keys}}}'
    )


def graph_writes(server: MicrosoftServer) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in server.requests
        if r.path.startswith("/v1.0") and r.method != "GET"
    ]


@pytest.mark.parametrize(("calendar", "passes"), [(None, True), ("Shared", False)])
def test_outlook_can_edit_decides_the_buffers_check(
    setup: Setup, microsoft: MicrosoftServer, calendar: str | None, passes: bool
) -> None:
    microsoft.add_calendar(DEFAULT_USER, "Shared", can_edit=False)
    sign_in(microsoft, outlook_config(microsoft), setup.make_state() / "tokens" / "..")
    setup.write([outlook_entry(microsoft, **({"calendar": calendar} if calendar else {}))])
    code, lines, output = setup.doctor()
    assert line(lines, "lee/work sign-in") == (
        "✓ lee/work sign-in: Microsoft issued a new access token from the stored sign-in"
    )
    found = line(lines, "lee/work buffers")
    if passes:
        assert code == 0, output
        assert found.endswith("(canEdit true)")
    else:
        assert code == 2
        assert "caldaemon may not write here (canEdit false)" in found and found.startswith("✗")
    assert graph_writes(microsoft) == []


def test_outlook_app_only_credentials_get_a_token_of_their_own(
    setup: Setup, microsoft: MicrosoftServer
) -> None:
    microsoft.register_client("caldaemon-service", secret="s3cret-app")
    (setup.root / "secret").write_text("s3cret-app\n")
    setup.make_state()
    setup.write(
        [
            outlook_entry(
                microsoft,
                client_id="caldaemon-service",
                auth="client_credentials",
                user=DEFAULT_USER,
                client_secret_file="secret",
            )
        ]
    )
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert line(lines, "lee/work sign-in") == (
        "✓ lee/work sign-in: Microsoft issued a token to the app caldaemon-service"
    )
    assert "s3cret-app" not in output and graph_writes(microsoft) == []


def test_notices_through_graph_need_a_mail_send_token_and_send_nothing(
    setup: Setup, microsoft: MicrosoftServer
) -> None:
    from caldaemon.providers.outlook.auth import CALENDAR_SCOPES, MAIL_SCOPES

    scopes = CALENDAR_SCOPES + MAIL_SCOPES
    sign_in(microsoft, outlook_config(microsoft), setup.make_state(), scopes=scopes)
    notices = "notices:\n  email: {from: caldaemon@example.org, via: graph}\n"
    setup.write([outlook_entry(microsoft)], notices=notices)
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert (
        line(lines, "notices")
        == "✓ notices: Microsoft Graph issued a Mail.Send token for the signed-in account"
    )
    assert microsoft.sent_mail == [] and graph_writes(microsoft) == []


# -- CalDAV ----------------------------------------------------------------------------------

# Radicale's from_file rights: the collection lee/shared is readable only; the rest of
# lee's collections as owner_only gives them.
READ_ONLY_SHARED = textwrap.dedent("""\
    [shared]
    user: lee
    collection: lee/shared(/.*)?
    permissions: Rr

    [owner]
    user: .+
    collection: {user}(/.*)?
    permissions: RrWw

    [root]
    user: .+
    collection:
    permissions: R
    """)


def caldav_entry(base: str, path: str) -> str:
    return (
        f'{{id: work, provider: caldav, url: "{base}{path}", username: {USER}, '
        "password_file: dav-password, timeout: 5s}"
    )


@pytest.mark.parametrize("server_name", ["radicale", "xandikos"])
def test_a_caldav_calendar_of_ones_own_may_take_buffers(setup: Setup, server_name: str) -> None:
    (setup.root / "dav-password").write_text(PASSWORD)
    opened = radicale_server() if server_name == "radicale" else xandikos_server()
    with opened as server:
        path = server.make_calendar("Work")
        server.put(f"{path}s1.ics", SESSION)
        before = server.objects(path)
        setup.write([caldav_entry(server.base, path)])
        code, lines, output = setup.doctor()
        after = server.objects(path)
    assert code == 0, output
    assert "privileges: " in line(lines, "lee/work buffers")
    assert after == before
    assert PASSWORD not in output and CANARY not in output


def test_a_caldav_collection_without_write_privilege_fails(setup: Setup) -> None:
    (setup.root / "dav-password").write_text(PASSWORD)
    with radicale_server(READ_ONLY_SHARED) as server:
        # Made on the server's disk, as its admin would: the rights let lee make nothing here.
        folder = server.folder / "collections" / "collection-root" / USER / "shared"
        folder.mkdir(parents=True)
        (folder / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR"}))
        (folder / "s1.ics").write_bytes(SESSION.encode())
        setup.write([caldav_entry(server.base, f"/{USER}/shared/")])
        code, lines, _ = setup.doctor()
        assert (folder / "s1.ics").read_bytes() == SESSION.encode()
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["s1.ics"]
    assert code == 2
    assert line(lines, "lee/work read").startswith("✓")
    assert line(lines, "lee/work buffers").startswith(
        "✗ lee/work buffers: caldaemon may not write here (privileges: read"
    )


def test_a_google_service_account_is_renewed_by_its_signed_assertion(
    setup: Setup, google: GoogleCalendarServer
) -> None:
    from tests.providers.test_google_provider import service_account_file

    service_account_file(setup.root / "sa.json", google)
    setup.make_state()
    setup.write(
        [
            "{id: work, provider: google, credentials: sa.json, subject: lee@example.org, "
            f'api_endpoint: "{google.url}", timeout: 5s}}'
        ]
    )
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert line(lines, "lee/work sign-in") == (
        "✓ lee/work sign-in: Google issued a token for the service account acting as "
        "lee@example.org"
    )
    assert "PRIVATE KEY" not in output
    tokens = [r for r in google.requests if r.path == "/token"]
    assert tokens and all(b"jwt-bearer" in r.body for r in tokens)
