"""``caldaemon doctor`` on local pieces: .ics files, the state and Maildir folders, the
config, and SMTP on aiosmtpd (STARTTLS, implicit TLS, none, a certificate that does not
verify, a server that never answers). One line per check, exit 0 only when every check
passed; nothing is written: the calendar file and the state file keep their bytes, no
MAIL FROM is ever sent. The calendar services are in test_doctor_services.py."""

from __future__ import annotations

import os
import socket
import sqlite3
import textwrap
from pathlib import Path

import pytest

from caldaemon.providers.base import WriteAccess
from tests.cli.doctor_support import CANARY, CHECK_NETWORK, SESSION, Setup, line, setup
from tests.notices.smtp_server import SmtpServer
from tests.providers.contract import TZ

__all__ = ["setup"]  # the fixture

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
    from caldaemon.state.schema import SCHEMA_VERSION

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


def test_one_clinician_checks_only_their_calendars(setup: Setup) -> None:
    config = setup.write(["{id: work, provider: ics, path: work.ics}"])
    config.write_text(
        config.read_text().replace(
            "rule_sets:",
            "  - {id: kim, rules: standard, calendars: "
            '[{id: feed, provider: ics, url: "http://127.0.0.1:9/f.ics", timeout: 1s}]}\n'
            "rule_sets:",
        )
    )
    assert setup.doctor()[0] == 2  # kim's feed cannot be read
    code, lines, output = setup.doctor("--clinician", "lee")
    assert code == 0, output
    assert not any("kim/" in x for x in lines) and "lee/work read" in output


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


def test_a_silent_smtp_server_fails_within_its_timeout(setup: Setup) -> None:
    with socket.socket() as silent, SmtpServer("starttls") as server:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        notices = smtp_notices(server).replace(
            f"port: {server.port}", f"port: {silent.getsockname()[1]}"
        )
        setup.write(
            ["{id: work, provider: ics, path: work.ics}"], notices=notices.replace("5s", "1s")
        )
        code, lines, _ = setup.doctor()
    assert code == 2
    found = line(lines, "notices")
    assert "timed out" in found and found.endswith("→ " + CHECK_NETWORK)


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


def test_waits_between_retries_are_capped_for_the_whole_run() -> None:
    from caldaemon.service.doctor import Patience

    waited: list[float] = []
    patience = Patience(total=10.0, sleep=waited.append)
    for asked in (4.0, 30.0, 120.0, 1.0):
        patience(asked)
    assert waited == [4.0, 6.0]  # then retries go at once: nothing more is slept
