"""The README's "Which set-up is mine?" rows, walked through as a person would: the real
commands in subprocesses (``caldaemon init`` in a pseudo-terminal, answered question by
question), HOME and the XDG folders in a temporary folder, against local stand-ins: the
Google Calendar fake, the Microsoft identity + Graph fake, a local feed server, and a
``systemctl``/``launchctl`` on PATH that records what it is asked (tests/cli/test_service.py).

Notices go to a Maildir (init's offer) except on Linux with Microsoft 365, where they are
mailed through the local aiosmtpd server over STARTTLS with a login.

Two things differ from a real machine, both at the world's edge, never inside caldaemon:
the config ``init`` writes gets the stand-ins' addresses (``api_endpoint``;
``authority``, ``graph_endpoint``, ``ca_file``; the SMTP server's ``ca_file``), keys
``init`` rightly never asks a clinician about; and the browser's part of a sign-in is
played by the test (it follows Google's redirect back to ``caldaemon auth google``'s local
port, and approves the Microsoft device code), while caldaemon's own side of both flows
runs for real.

The system unit of the practice row is shown (``--dry-run``), not installed: installing
it writes /etc/systemd/system of the machine running the tests.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import urlopen

import pexpect
import pytest

from caldaemon import config
from tests.cli.init_support import (
    OFFERED,
    PROMPT,
    add_google_service_account,
    add_outlook_app,
    answer,
    cwd,
    default_config,
    env,
    finish,
    spawn,
    spawn_command,
    take_every_default,
)
from tests.cli.test_service import FAKE_MANAGER, caldaemon, exec_start, printed_file
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import DEFAULT_USER, MicrosoftServer
from tests.notices.smtp_server import SmtpServer
from tests.providers.ics_support import FeedHandler, FeedServer
from tests.providers.test_contract_google import write_client
from tests.providers.test_contract_outlook import CLIENT_ID
from tests.providers.test_google_provider import service_account_file

__all__ = ["cwd", "env"]  # the fixtures

FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//practice system//EN\r\nBEGIN:VEVENT\r\n"
    "UID:a1@practice\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T150000Z\r\n"
    "DTEND:20261201T155000Z\r\nSUMMARY:Appointment\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def machine(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The home of ``env`` with a service manager that records its calls on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("systemctl", "launchctl"):
        (folder / name).write_text(FAKE_MANAGER)
        (folder / name).chmod(0o755)
    return {
        **{k: v for k, v in env.items() if k != "SUDO_USER"},
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "manager.log"),
    }


@pytest.fixture
def google() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer(primary_email="sam@example.org") as server:
        yield server


@pytest.fixture
def microsoft() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as server:
        yield server


def caldaemon_run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``caldaemon`` script, as the README's commands run it."""
    return subprocess.run(
        [*caldaemon(), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def point_at(config_file: Path, provider: str, **keys: str) -> None:
    """Each ``provider`` calendar in the written config gets the stand-in's addresses."""
    text = config_file.read_text()
    marker = f"        provider: {provider}\n"
    assert marker in text
    extra = "".join(f'        {key}: "{value}"\n' for key, value in keys.items())
    config_file.write_text(text.replace(marker, marker + extra))


def point_at_microsoft(config_file: Path, server: MicrosoftServer) -> None:
    point_at(
        config_file,
        "outlook",
        authority=server.authority,
        graph_endpoint=server.graph_url,
        ca_file=server.ca_path,
    )


def doctor_passes(env: dict[str, str], cwd: Path, *args: str) -> list[str]:
    """``caldaemon doctor`` exits 0 with only ✓ lines; those lines."""
    done = caldaemon_run(env, cwd, "doctor", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line[:1] in ("✓", "✗")]
    assert lines and all(line.startswith("✓") for line in lines), done.stdout
    return lines


def manager_calls(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def first_clinician(child: pexpect.spawn, email: str) -> None:
    answer(child, "time zone", "")
    answer(child, "Your name", "Sam Lee")
    answer(child, r"short id for you.*\[sam", "")
    answer(child, "email address", email)


def defaults_until(child: pexpect.spawn, question: str, reply: str) -> None:
    """Enter at every offered question until ``question``, which gets ``reply``."""
    while child.expect([question, OFFERED]) == 1:
        child.sendline("")
    child.expect(PROMPT)
    child.sendline(reply)


def rest_by_default(child: pexpect.spawn) -> str:
    """Enter at every question left (one clinician, the boundaries offered, notices to
    a Maildir); the output after "Wrote"."""
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    return output


# -- 1. A clinician on a Mac, with Google Calendar ------------------------------------------


def test_a_clinician_on_a_mac_with_google_calendar(
    machine: dict[str, str], cwd: Path, google: GoogleCalendarServer
) -> None:
    write_client(cwd / "client.json", google)  # as downloaded from the Google Cloud console
    child = spawn(machine, cwd)
    first_clinician(child, "sam@example.org")
    answer(child, "Calendar provider", "google")
    answer(child, r"id for this calendar \[work", "")
    answer(child, r"Google calendar.*\[primary", "")
    answer(child, "OAuth client file", "client.json")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, r"buffer blocks \(work, or none", "")
    output = rest_by_default(child)
    assert "caldaemon auth google --clinician sam --calendar work" in output
    written = default_config(machine)
    point_at(written, "google", api_endpoint=google.url)

    sign_in_to_google(machine, cwd)
    lines = doctor_passes(machine, cwd)
    assert any(line.startswith("✓ sam/work sign-in: Google issued") for line in lines)
    assert any(line.startswith("✓ sam/work buffers") for line in lines)

    shown = caldaemon_run(machine, cwd, "service", "install", "--platform", "darwin", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    agent = plistlib.loads(printed_file(shown.stdout).encode())
    assert agent["ProgramArguments"][-3:] == ["run", "--config", str(written)]
    installed = caldaemon_run(machine, cwd, "service", "install", "--platform", "darwin")
    assert installed.returncode == 0, installed.stderr
    plist = Path(machine["HOME"]) / "Library/LaunchAgents/org.caldaemon.agent.plist"
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"] == agent["ProgramArguments"]
    assert [call.split()[:2] for call in manager_calls(machine)] == [
        ["launchctl", "enable"],
        ["launchctl", "bootstrap"],
    ]


def sign_in_to_google(env: dict[str, str], cwd: Path) -> None:
    """``caldaemon auth google`` for real; the browser's part played here: once the
    person allows access, Google sends the browser back to caldaemon's local port with
    a code, which caldaemon exchanges at the stand-in's token endpoint."""
    port = free_port()
    # oauthlib refuses a token endpoint that is not https unless told: the stand-in is
    # plain http on 127.0.0.1 (Google's own is https).
    insecure = {**env, "OAUTHLIB_INSECURE_TRANSPORT": "1"}
    child = spawn_command(
        insecure, cwd, "auth", "google", "--clinician", "sam", "--port", str(port)
    )
    child.expect(r"(http://127\.0\.0\.1:\d+/auth\?\S+)")
    query = parse_qs(urlsplit(str(child.match.group(1))).query)
    assert query["redirect_uri"] == [f"http://localhost:{port}/"]
    back = {"state": query["state"][0], "code": "4/fake-code", "scope": query["scope"][0]}
    with urlopen(f"{query['redirect_uri'][0]}?{urlencode(back)}", timeout=30) as page:
        assert b"caldaemon is signed in" in page.read()
    output = finish(child)
    assert child.exitstatus == 0, output
    assert "Signed in. The token is kept in" in output


# -- 2. A clinician on Linux, with Microsoft 365 ---------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer("starttls", users={"caldaemon": "s3cret-smtp"}) as server:
        yield server


def test_a_clinician_on_linux_with_microsoft_365(
    machine: dict[str, str], cwd: Path, microsoft: MicrosoftServer, smtp: SmtpServer
) -> None:
    (cwd / "smtp-password").write_text("s3cret-smtp\n")
    child = spawn(machine, cwd)
    first_clinician(child, DEFAULT_USER)
    answer(child, "Calendar provider", "outlook")
    answer(child, r"id for this calendar \[work", "")
    answer(child, "Microsoft 365 tenant", microsoft.tenant)
    answer(child, r"Application \(client\) id", CLIENT_ID)
    answer(child, r"Who signs in.*\[device_code", "")
    answer(child, "Calendar name", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, "buffer blocks", "")
    defaults_until(child, "Notices by email", "email")
    answer(child, r"Sender address.*\[" + DEFAULT_USER, "")
    answer(child, "SMTP server", smtp.host)
    answer(child, r"Connection security.*\[starttls", "")
    answer(child, r"Port \[587", str(smtp.port))
    answer(child, "SMTP user name", "caldaemon")
    answer(child, "SMTP password", "smtp-password")
    output = rest_by_default(child)
    assert "caldaemon auth outlook --clinician sam --calendar work" in output
    written = default_config(machine)
    point_at_microsoft(written, microsoft)
    text = written.read_text()
    port_line = f"      port: {smtp.port}\n"
    written.write_text(text.replace(port_line, f'{port_line}      ca_file: "{smtp.ca_file}"\n'))

    signing_in = spawn_command(machine, cwd, "auth", "outlook", "--clinician", "sam")
    signing_in.expect("enter the code")
    microsoft.approve_device_code()  # the person, on Microsoft's device-login page
    signing_in.expect("Signed in")
    finish(signing_in)
    assert signing_in.exitstatus == 0

    lines = doctor_passes(machine, cwd)
    assert "✓ sam/work sign-in: Microsoft issued a new access token from the stored sign-in" in (
        lines
    )
    assert any(line.endswith("(canEdit true)") for line in lines)
    mailed = (
        f"✓ notices: SMTP 127.0.0.1:{smtp.port} answered EHLO; STARTTLS with a verified "
        "certificate, logged in; no mail sent"
    )
    assert mailed in lines
    assert smtp.mail_from == []
    linux_user_service(machine, cwd, written)


def linux_user_service(env: dict[str, str], cwd: Path, written: Path) -> None:
    """``caldaemon service install``: the dry run shows the user unit; the real one writes
    it and has systemd --user reload and start it."""
    shown = caldaemon_run(env, cwd, "service", "install", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert exec_start(printed_file(shown.stdout)).endswith(f"run --config {written}")
    assert manager_calls(env) == []
    installed = caldaemon_run(env, cwd, "service", "install")
    assert installed.returncode == 0, installed.stderr
    unit = Path(env["XDG_CONFIG_HOME"]) / "systemd/user/caldaemon.service"
    assert unit.read_text() == printed_file(shown.stdout)
    assert manager_calls(env) == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now caldaemon.service",
    ]


# -- 3. A group practice on a server, app-only ------------------------------------------------


def practice_with_google(child: pexpect.spawn, cwd: Path, google: GoogleCalendarServer) -> None:
    (cwd / "secrets").mkdir()
    service_account_file(cwd / "secrets" / "google-key.json", google)  # from Google Cloud
    for clinician in ("lee", "kim"):
        add_google_service_account(
            child, "secrets/google-key.json", f"{clinician}@practice.example"
        )
        answer(child, "Add another calendar", "")
        answer(child, "buffer blocks", "")
        answer(child, "Add another clinician", "y" if clinician == "lee" else "")
        if clinician == "lee":
            practice_second_clinician(child)


def practice_with_microsoft(child: pexpect.spawn, cwd: Path, microsoft: MicrosoftServer) -> None:
    microsoft.register_client("caldaemon-practice", secret="s3cret-app")
    microsoft.add_user("lee@practice.example")
    microsoft.add_user("kim@practice.example")
    (cwd / "secrets").mkdir()
    (cwd / "secrets" / "outlook-secret").write_text("s3cret-app\n")
    for clinician in ("lee", "kim"):
        add_outlook_app(
            child, microsoft.tenant, "caldaemon-practice", f"{clinician}@practice.example"
        )
        answer(child, "client secret", "secrets/outlook-secret")
        answer(child, "Calendar name", "")
        answer(child, "client sessions", "")
        answer(child, "Add another calendar", "")
        answer(child, "buffer blocks", "")
        answer(child, "Add another clinician", "y" if clinician == "lee" else "")
        if clinician == "lee":
            practice_second_clinician(child)


def practice_second_clinician(child: pexpect.spawn) -> None:
    answer(child, "Their name", "Kim")
    answer(child, "short id for them", "kim")
    answer(child, "Their email address", "kim@practice.example")


@pytest.mark.parametrize("provider", ["google", "outlook"])
def test_a_group_practice_on_a_server_app_only(
    machine: dict[str, str],
    cwd: Path,
    google: GoogleCalendarServer,
    microsoft: MicrosoftServer,
    provider: str,
) -> None:
    # /etc/caldaemon/config.yaml on the server, where init needs no --system; a folder of
    # the test's own here, so --system says it.
    written = cwd / "etc-caldaemon" / "config.yaml"
    child = spawn(machine, cwd, "--system", "--config", str(written))
    answer(child, "time zone", "")
    answer(child, "Your name", "Lee")
    answer(child, "short id for you", "lee")
    answer(child, "email address", "lee@practice.example")
    if provider == "google":
        practice_with_google(child, cwd, google)
        key, name = "credentials", "google-key.json"
    else:
        practice_with_microsoft(child, cwd, microsoft)
        key, name = "client_secret_file", "outlook-secret"
    output = rest_by_default(child)
    assert "caldaemon auth" not in output  # nobody signs in
    assert stat.S_IMODE(written.stat().st_mode) == 0o644  # the service's user reads it
    assert f"        {key}: {name}\n" in written.read_text()  # named bare, no secret in it
    # The key or secret beside the config, root's alone, as the next steps say.
    beside = written.parent / name
    install = f"sudo install -m 0600 -o root -g root {cwd / 'secrets' / name} {beside}"
    assert install in [line.strip() for line in output.splitlines()]
    shutil.copyfile(cwd / "secrets" / name, beside)
    beside.chmod(0o600)
    if provider == "google":
        point_at(written, "google", api_endpoint=google.url)
    else:
        point_at_microsoft(written, microsoft)
    assert [c.id for c in config.load(written).clinicians] == ["lee", "kim"]

    # No $CREDENTIALS_DIRECTORY outside the unit: the bare name is found beside the config.
    lines = doctor_passes(machine, cwd, "--config", str(written))
    for clinician in ("lee", "kim"):
        [signed_in] = [x for x in lines if x.startswith(f"✓ {clinician}/work sign-in")]
        if provider == "google":
            assert f"{clinician}@practice.example" in signed_in  # the user it acts for
        else:
            assert signed_in.endswith("issued a token to the app caldaemon-practice")
    assert "s3cret-app" not in "\n".join(lines)

    # The system unit, shown (see the module's docstring); a dry run needs no root.
    shown = caldaemon_run(
        machine, cwd, "service", "install", "--system", "--dry-run", "--config", str(written)
    )
    assert shown.returncode == 0, shown.stderr
    assert "would write /etc/systemd/system/caldaemon.service" in shown.stdout
    unit = printed_file(shown.stdout)
    assert exec_start(unit).endswith(f"run --config {written}") and "DynamicUser=yes" in unit
    # systemd hands the file to the service's user, once for both clinicians.
    credentials = [line for line in unit.splitlines() if line.startswith("LoadCredential=")]
    assert credentials == [f"LoadCredential={name}:{beside}"]
    assert manager_calls(machine) == []


# -- 4. Only the practice system's feed -------------------------------------------------------


def serve_feed(handler: FeedHandler) -> None:
    handler.reply(200, FEED.encode())


def test_only_the_practice_systems_feed(machine: dict[str, str], cwd: Path) -> None:
    with FeedServer({"/practice.ics": serve_feed}) as feed:
        child = spawn(machine, cwd)
        first_clinician(child, "none")
        answer(child, "Calendar provider", "")
        answer(child, "id for this calendar", "practice")
        answer(child, "Path of the .ics file", f"{feed.url}/practice.ics")
        answer(child, "User name for the feed", "")
        answer(child, "client sessions", "")
        answer(child, "Add another calendar", "")
        child.expect("None of these calendars can receive buffers")
        output = rest_by_default(child)
        assert "caldaemon auth" not in output
        written = default_config(machine)

        lines = doctor_passes(machine, cwd)
        assert any(line.startswith("✓ sam/practice read") for line in lines)
        assert [path for path, _ in feed.seen] == ["/practice.ics"]
    linux_user_service(machine, cwd, written)
