"""``caldaemon doctor``: each connection checked once against the real local servers (the
Google and Graph fakes, Radicale and Xandikos, aiosmtpd), one line per check, exit 0 only
when every check passed. Nothing is ever written: calendars keep their contents, no mail
is begun, the state file is left as it was."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main
from caldaemon.providers.base import WriteAccess
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.notices.smtp_server import SmtpServer
from tests.providers.contract import SELF, TZ
from tests.providers.radicale_server import PASSWORD, USER, radicale_server
from tests.providers.test_contract_google import write_client, write_token
from tests.providers.test_contract_outlook import CLIENT_ID, outlook_config, sign_in
from tests.providers.xandikos_server import xandikos_server

CANARY = "Zebulon Quixote-Marchetti"
EMPTY_ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
SESSION = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:s1@t\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20261201T150000Z\r\nDTEND:20261201T155000Z\r\n"
    f"SUMMARY:Session with {CANARY}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class Setup:
    """A config folder: one clinician, the calendars given as YAML flow mappings, a
    private state folder (not made unless asked), notices as given."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"

    def make_state(self) -> Path:
        self.state.mkdir(mode=0o700, exist_ok=True)
        (self.state / "tokens").mkdir(mode=0o700, exist_ok=True)
        return self.state

    def write(self, calendars: list[str], *, buffers_to: str = "work", notices: str = "") -> Path:
        listed = "\n".join(f"      - {c}" for c in calendars)
        text = (
            textwrap.dedent("""\
            timezone: America/Toronto
            daemon: {state_dir: state}
            clinicians:
              - id: lee
                email: lee@example.org
                rules: standard
                calendars:
            """)
            + listed
            + textwrap.dedent(f"""
                buffers_to: {buffers_to}
            rule_sets:
              standard: {{}}
            """)
        )
        path = self.root / "config.yaml"
        path.write_text(text + notices)
        return path

    def doctor(self, *extra: str) -> tuple[int, list[str], str]:
        """Exit code, the check lines, and everything printed."""
        result = CliRunner().invoke(
            main, ["doctor", "--config", str(self.root / "config.yaml"), *extra]
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        lines = [line for line in result.output.splitlines() if line[:1] in ("✓", "✗")]
        return result.exit_code, lines, result.output


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def line(lines: list[str], subject: str) -> str:
    [found] = [x for x in lines if x[2:].startswith(f"{subject}:")]
    return found


# -- files, state, Maildir -------------------------------------------------------------------


def test_a_local_setup_passes_every_check_and_makes_nothing(setup: Setup) -> None:
    (setup.root / "work.ics").write_bytes(SESSION.encode())
    setup.write(["{id: work, provider: ics, path: work.ics}"])
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert [x[0] for x in lines] == ["✓"] * len(lines)
    assert [x[2:].split(":")[0] for x in lines] == [
        "config",
        "lee/work read",
        "lee/work buffers",
        "notices",
        "state",
    ]
    assert "will be made" in line(lines, "state") and "will be made" in line(lines, "notices")
    # Read-only: no state folder, no Maildir, the calendar as it was; no event text shown.
    assert not setup.state.exists()
    assert (setup.root / "work.ics").read_bytes() == SESSION.encode()
    assert CANARY not in output


def test_an_ics_file_whose_folder_cannot_be_made_cannot_take_buffers(tmp_path: Path) -> None:
    from caldaemon.providers.base import ProviderContext
    from caldaemon.providers.ics.provider import IcsProvider
    from caldaemon.providers.ics.settings import IcsCalendar

    (tmp_path / "blocked").write_text("a file where the calendar's folder should be")
    config = IcsCalendar(provider="ics", id="work", path=tmp_path / "blocked" / "x" / "work.ics")
    provider = IcsProvider(config, ProviderContext("lee", TZ, tmp_path, buffers_to="work"))
    access = provider.write_access()
    assert access == WriteAccess(False, f"{tmp_path / 'blocked'} is not a folder")
    feed = IcsCalendar(provider="ics", id="feed", url="https://example.org/feed.ics")
    assert not IcsProvider(feed, ProviderContext("lee", TZ, tmp_path)).write_access().allowed


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_an_ics_in_a_read_only_folder_means_no_buffers(setup: Setup) -> None:
    folder = setup.root / "shared"
    folder.mkdir()
    (folder / "work.ics").write_bytes(SESSION.encode())
    folder.chmod(0o555)
    try:
        setup.write(["{id: work, provider: ics, path: shared/work.ics}"])
        code, lines, _ = setup.doctor()
    finally:
        folder.chmod(0o755)
    assert code == 2 and "is not writable" in line(lines, "lee/work buffers")


def test_an_unreachable_feed_fails_with_what_to_do_and_the_rest_is_still_checked(
    setup: Setup,
) -> None:
    setup.write(
        [
            "{id: work, provider: ics, path: work.ics}",
            '{id: feed, provider: ics, url: "http://127.0.0.1:9/feed.ics", timeout: 2s}',
        ]
    )
    code, lines, _ = setup.doctor()
    assert code == 2
    found = line(lines, "lee/feed read")
    assert (
        found.startswith("✗ lee/feed read: http://127.0.0.1:9/") and "→ check the network" in found
    )
    assert line(lines, "lee/work buffers").startswith("✓") and line(lines, "state").startswith("✓")


def test_a_state_folder_others_can_read_fails_and_says_chmod(setup: Setup) -> None:
    setup.write(["{id: work, provider: ics, path: work.ics}"])
    setup.state.mkdir(mode=0o755)
    setup.state.chmod(0o755)
    code, lines, _ = setup.doctor()
    assert code == 2
    assert line(lines, "state") == (
        f"✗ state: the state folder {setup.state} can be read by others (mode 755)"
        f" → chmod 700 {setup.state}"
    )


def _state_file(setup: Setup, version: int) -> Path:
    setup.make_state()
    path = setup.state / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    db.close()
    return path


def test_a_state_file_from_a_newer_caldaemon_fails(setup: Setup) -> None:
    setup.write(["{id: work, provider: ics, path: work.ics}"])
    path = _state_file(setup, 99)
    before = path.read_bytes()
    code, lines, _ = setup.doctor()
    assert code == 2
    assert "written by a newer caldaemon" in line(lines, "state")
    assert path.read_bytes() == before


def test_the_daemons_own_state_file_opens_read_only_unchanged(setup: Setup) -> None:
    from caldaemon.state import State
    from caldaemon.state.db import SCHEMA_VERSION

    setup.write(["{id: work, provider: ics, path: work.ics}"])
    setup.make_state()
    State(setup.state / "state.sqlite3").close()
    before = (setup.state / "state.sqlite3").read_bytes()
    code, lines, output = setup.doctor()
    assert code == 0, output
    assert line(lines, "state").endswith(f"state.sqlite3 opens (schema {SCHEMA_VERSION})")
    # The database as it was (SQLite may leave the -shm index a WAL reader needs).
    assert (setup.state / "state.sqlite3").read_bytes() == before


def test_an_invalid_config_is_one_failed_line_and_exit_2(setup: Setup) -> None:
    (setup.root / "config.yaml").write_text("clinicians: []\nrule_sets: {}\nbogus: 1\n")
    code, lines, output = setup.doctor()
    assert code == 2
    assert lines[0].startswith("✗ config: ") and len(lines) == 1
    assert "bogus" in output


def test_an_unknown_clinician_is_a_user_error(setup: Setup) -> None:
    setup.write(["{id: work, provider: ics, path: work.ics}"])
    code, _, output = setup.doctor("--clinician", "nobody")
    assert code == 2 and "no clinician 'nobody'" in output and "Traceback" not in output


# -- SMTP ------------------------------------------------------------------------------------


def smtp_notices(server: SmtpServer, **extra: str) -> str:
    security = "tls" if server.security == "tls" else "starttls"
    ca_file = extra.pop("ca_file", str(server.ca_file))
    keys = "".join(f", {k}: {v}" for k, v in extra.items())
    return textwrap.dedent(f"""\
        notices:
          email:
            from: caldaemon@example.org
            smtp: {{host: 127.0.0.1, port: {server.port}, security: {security},
                   ca_file: "{ca_file}", timeout: 5s{keys}}}
        """)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_is_spoken_up_to_the_login_and_no_mail_is_begun(
    setup: Setup, security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-pw")
    with SmtpServer(security, users={"caldaemon": "s3cret-pw"}) as server:  # type: ignore[arg-type]
        setup.write(
            ["{id: work, provider: ics, path: work.ics}"],
            notices=smtp_notices(server, username="caldaemon", password_env="SMTP_PASSWORD"),
        )
        code, lines, output = setup.doctor()
    assert code == 0, output
    tls = "STARTTLS" if security == "starttls" else "TLS"
    assert line(lines, "notices") == (
        f"✓ notices: SMTP 127.0.0.1:{server.port} answered EHLO; {tls} with a verified "
        "certificate, logged in; no mail sent"
    )
    assert server.mail_from == [] and server.received == []
    assert "s3cret-pw" not in output


def test_a_server_without_starttls_fails(setup: Setup) -> None:
    with SmtpServer("plain") as server:
        setup.write(["{id: work, provider: ics, path: work.ics}"], notices=smtp_notices(server))
        code, lines, _ = setup.doctor()
    assert code == 2
    found = line(lines, "notices")
    assert "does not offer STARTTLS" in found and "→ fix notices.email.smtp" in found
    assert server.mail_from == []


def test_a_certificate_that_does_not_verify_fails(setup: Setup) -> None:
    import trustme

    other = setup.root / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with SmtpServer("starttls") as server:
        setup.write(
            ["{id: work, provider: ics, path: work.ics}"],
            notices=smtp_notices(server, ca_file=str(other)),
        )
        code, lines, _ = setup.doctor()
    assert code == 2
    found = line(lines, "notices")
    assert "certificate could not be verified" in found and found.startswith("✗")
    assert server.mail_from == [] and server.received == []


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
