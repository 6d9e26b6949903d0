"""What the tests that drive ``caldaemon init`` share (tests/cli/test_init.py, and the
README's set-ups in tests/cli/test_setups.py): a home of its own, the real command in a
pseudo-terminal, and answering its questions as a person does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

# Every question ends so (and holds no ": " before its end).
PROMPT = ": "
# A question with an answer on offer: in brackets (or [y/N]).
OFFERED = r"\]: "


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A home of its own: nothing is read from or written to the real one. TZ is what
    tzlocal reads first, so the offered time zone is known."""
    home = tmp_path / "home"
    home.mkdir()
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CALDAEMON"))}
    variables.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        XDG_STATE_HOME=str(home / "xdg-state"),
        XDG_DATA_HOME=str(home / "xdg-data"),
        XDG_CACHE_HOME=str(home / "xdg-cache"),
        TZ="Europe/Berlin",
        USER="sam",
        LOGNAME="sam",
        LC_ALL="C.UTF-8",
    )
    return variables


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def default_config(env: dict[str, str]) -> Path:
    return Path(env["HOME"]) / ".config" / "caldaemon" / "config.yaml"


def spawn(env: dict[str, str], cwd: Path, *args: str) -> pexpect.spawn:
    """``caldaemon init`` with ``args``."""
    return spawn_command(env, cwd, "init", *args)


def spawn_command(env: dict[str, str], cwd: Path, *args: str) -> pexpect.spawn:
    """Any caldaemon command in a pseudo-terminal."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "caldaemon", *args],
        env=env,
        cwd=str(cwd),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 250),
    )


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "caldaemon", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def answer(child: pexpect.spawn, question: str, reply: str) -> None:
    child.expect(question)
    child.expect(PROMPT)
    child.sendline(reply)


def finish(child: pexpect.spawn) -> str:
    """The rest of the output, once the command has ended; its exit status checked."""
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


def take_every_default(child: pexpect.spawn) -> None:
    """Enter at every question, as a person who accepts what is offered."""
    while child.expect([OFFERED, "Wrote "]) == 0:
        child.sendline("")


def add_google_service_account(
    child: pexpect.spawn, key_file: str, acting_for: str, calendar_id: str = ""
) -> None:
    """A Google calendar signed in to by a service account key acting for ``acting_for``
    (the address offered), up to and including its client-session question."""
    answer(child, "Calendar provider", "google")
    answer(child, "id for this calendar", calendar_id)
    answer(child, "Google calendar", "")
    answer(child, "OAuth client file", key_file)
    answer(child, rf"Workspace address whose calendar it acts for \[{re.escape(acting_for)}", "")
    answer(child, "client sessions", "")


def add_outlook_app(
    child: pexpect.spawn, tenant: str, client_id: str, mailbox: str, calendar_id: str = ""
) -> None:
    """An Outlook calendar the app itself signs in to (client credentials) for
    ``mailbox`` (the address offered), up to its client-secret question."""
    answer(child, "Calendar provider", "outlook")
    answer(child, "id for this calendar", calendar_id)
    answer(child, "Microsoft 365 tenant", tenant)
    answer(child, r"Application \(client\) id", client_id)
    answer(child, "Who signs in", "client_credentials")
    answer(child, rf"mailbox whose calendar this is.*\[{re.escape(mailbox)}", "")
