"""Installing caldaemon as a background service (DESIGN.md §12), as plans: the folders and
files to write and the commands to run, in order, with how to undo them. A systemd unit
(user or system) on Linux, a launchd agent on macOS.

The unit files are the ones shipped in ``systemd/`` (package data, ``units/`` here), so the
installed unit is the one ``tests/service/test_systemd_units.py`` verifies and scores; only
the command line (this caldaemon, this config) and the folders it must write are filled in.
Nothing here changes the system (it reads, at most): ``caldaemon.cli.service`` carries a
plan out or prints it.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

from caldaemon.config.load import SYSTEM_CONFIG_DIR
from caldaemon.errors import Error

Platform = Literal["linux", "darwin"]
Scope = Literal["user", "system"]

UNIT_NAME = "caldaemon.service"
USER_TEMPLATE = "caldaemon-user.service"
SYSTEM_TEMPLATE = "caldaemon.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
# The folder ConfigurationDirectory=caldaemon gives the system unit (systemd.exec(5)).
SYSTEM_CONFIG = SYSTEM_CONFIG_DIR / "config.yaml"
AGENT_LABEL = "org.caldaemon.agent"

# Seconds each command may take. Starting waits for READY (Type=notify; systemd gives a
# start 90 s by default); stopping lets the cycle under way finish (TimeoutStopSec=5min in
# the units, ExitTimeOut in the agent).
QUICK = 30.0
START = 120.0
STOP = 330.0


@dataclass(frozen=True)
class MakeDir:
    path: Path
    mode: int = 0o755


@dataclass(frozen=True)
class WriteFile:
    path: Path
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class RemoveFile:
    path: Path


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    timeout: float
    # Undoing what may not be there (booting out an agent that is not loaded) may fail.
    may_fail: bool = False

    def __str__(self) -> str:
        return shlex.join(self.argv)


Step = MakeDir | WriteFile | RemoveFile | Run


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    undo: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where the service lives and which manager runs it, for one platform and scope."""

    platform: Platform
    scope: Scope
    path: Path  # the unit or the agent's plist
    home: Path

    @property
    def manager(self) -> tuple[str, ...]:
        if self.platform == "darwin":
            return ("launchctl",)
        return ("systemctl", "--user") if self.scope == "user" else ("systemctl",)

    @property
    def flag(self) -> str:
        return f"--{self.scope}"

    @property
    def describe(self) -> str:
        if self.platform == "darwin":
            return "a launchd agent"
        return "a systemd user service" if self.scope == "user" else "a systemd system service"


def target(platform: Platform, scope: Scope, env: dict[str, str], home: Path) -> Target:
    """Where the unit or agent goes. ``env`` and ``home`` are the caller's (``os.environ``,
    ``Path.home()``) so a test points them at a folder of its own."""
    if platform == "darwin":
        if scope == "system":
            raise Error(
                "--system is not offered on macOS: a LaunchDaemon runs as root or as a user "
                "named in its plist, and caldaemon should not run as root, so it needs a "
                "dedicated account (with a home for its state and sign-in tokens) that an "
                "administrator creates first; caldaemon does not create accounts. Use "
                "--user (a LaunchAgent that runs while you are logged in), or run the "
                "practice-wide service on a Linux server with --system."
            )
        return Target(platform, scope, home / "Library/LaunchAgents" / f"{AGENT_LABEL}.plist", home)
    if scope == "system":
        return Target(platform, scope, SYSTEM_UNIT_DIR / UNIT_NAME, home)
    return Target(
        platform,
        scope,
        xdg_dir(env, "XDG_CONFIG_HOME", home / ".config") / "systemd/user" / UNIT_NAME,
        home,
    )


def xdg_dir(env: dict[str, str], name: str, default: Path) -> Path:
    # The XDG Base Directory spec: a relative path in these variables is invalid, ignore it.
    value = env.get(name, "")
    return Path(value) if os.path.isabs(value) else default


def running_command(argv0: str, executable: str) -> tuple[str, ...]:
    """The command that runs this caldaemon: its script when started as ``caldaemon`` (a
    shebang script gets the path the kernel ran as argv[0]), else this Python with ``-m``.
    Symlinks are kept, not resolved: a venv's python and a pipx link stay valid across
    upgrades where their targets do not."""
    script = Path(os.path.abspath(argv0))
    if script.stem == "caldaemon" and script.suffix != ".py" and os.access(script, os.X_OK):
        return (str(script),)
    return (os.path.abspath(executable), "-m", "caldaemon")


def unit_template(name: str) -> str:
    resource = files("caldaemon.service").joinpath("units").joinpath(name)
    try:
        return resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise Error(f"the unit template {name} is missing from this installation: {exc}") from None


_NEEDS_QUOTES = re.compile(r"""[\s"'\\;]""")


def systemd_word(word: str, *, command: bool = True) -> str:
    """One word of a unit setting: ``%`` starts a specifier, so it is doubled, and so is
    ``$`` in a command line, where it starts a variable (systemd.service(5), "Command
    lines"); a word with a space, a quote or a backslash is double-quoted with C escapes."""
    if any(ord(c) < 32 for c in word):
        raise Error(f"{word!r}: a path with a control character cannot go in a unit file")
    word = word.replace("%", "%%")
    if command:
        word = word.replace("$", "$$")
    if word and not _NEEDS_QUOTES.search(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(
    template: str,
    command: Sequence[str],
    config: Path,
    writable: Sequence[Path] = (),
    credentials: Sequence[tuple[str, Path]] = (),
) -> str:
    """The template with its ExecStart= running ``command run --config CONFIG``; after
    its ReadWritePaths= (else after ExecStart=), one ReadWritePaths= per extra folder; and
    in place of its example LoadCredential= line, one per (name, file) in ``credentials``."""
    lines = template.splitlines()
    examples = [i for i, line in enumerate(lines) if line.startswith("LoadCredential=")]
    if examples:
        lines[examples[0] : examples[-1] + 1] = [
            f"LoadCredential={name}:{systemd_word(str(source), command=False)}"
            for name, source in credentials
        ]
    starts = [i for i, line in enumerate(lines) if line.startswith("ExecStart=")]
    if len(starts) != 1:
        raise Error(f"the unit template has {len(starts)} ExecStart= lines; expected one")
    words = (*command, "run", "--config", str(config))
    lines[starts[0]] = "ExecStart=" + " ".join(systemd_word(w) for w in words)
    rw = [i for i, line in enumerate(lines) if line.startswith("ReadWritePaths=")]
    at = (rw[-1] if rw else starts[0]) + 1
    # A missing folder would stop the unit from starting, so the plan creates each one.
    lines[at:at] = [f"ReadWritePaths={systemd_word(str(p), command=False)}" for p in writable]
    return "\n".join(lines) + "\n"


def linux_install(
    where: Target,
    command: Sequence[str],
    config: Path,
    *,
    writable: Sequence[Path] = (),
    credentials: Sequence[tuple[str, Path]] = (),
    reinstall: bool = False,
) -> Plan:
    template = unit_template(USER_TEMPLATE if where.scope == "user" else SYSTEM_TEMPLATE)
    header = (
        f"# Written by `caldaemon service install {where.flag}` from caldaemon's "
        f"{USER_TEMPLATE if where.scope == 'user' else SYSTEM_TEMPLATE};\n"
        f"# `caldaemon service uninstall {where.flag}` removes it.\n"
    )
    unit = header + render_unit(template, command, config, writable, credentials)
    systemctl = where.manager
    # enable --now starts a stopped unit but leaves a running one on its old command line.
    start = (
        (
            Run((*systemctl, "enable", UNIT_NAME), QUICK),
            Run((*systemctl, "restart", UNIT_NAME), START),
        )
        if reinstall
        else (Run((*systemctl, "enable", "--now", UNIT_NAME), START),)
    )
    steps: tuple[Step, ...] = (
        *(MakeDir(p, 0o700) for p in writable),
        MakeDir(where.path.parent),
        WriteFile(where.path, unit.encode()),
        Run((*systemctl, "daemon-reload"), QUICK),
        *start,
    )
    return Plan(steps, undo=linux_undo(where))


def linux_undo(where: Target) -> tuple[str, ...]:
    systemctl = shlex.join(where.manager)
    return (
        f"caldaemon service uninstall {where.flag}",
        f"or by hand: {systemctl} disable --now {UNIT_NAME}; rm {shlex.quote(str(where.path))}; "
        f"{systemctl} daemon-reload",
    )


def linux_uninstall(where: Target) -> Plan:
    systemctl = where.manager
    return Plan(
        (
            Run((*systemctl, "disable", "--now", UNIT_NAME), STOP),
            RemoveFile(where.path),
            Run((*systemctl, "daemon-reload"), QUICK),
        )
    )


def log_file(home: Path) -> Path:
    return home / "Library/Logs/caldaemon/caldaemon.log"


def render_agent(command: Sequence[str], config: Path, home: Path) -> bytes:
    """The agent's plist (launchd.plist(5)), set up like the user unit."""
    log = str(log_file(home))
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": [*command, "run", "--config", str(config)],
        "RunAtLoad": True,
        # Like Restart=on-failure: restarted after a crash, not after a clean stop.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30,  # RestartSec=30s
        "ExitTimeOut": 300,  # TimeoutStopSec=5min: the cycle under way finishes
        "Umask": 0o077,  # UMask=0077: state and logs readable by you alone
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(agent)


def darwin_domain(uid: int) -> str:
    return f"gui/{uid}"


def darwin_install(
    where: Target, command: Sequence[str], config: Path, uid: int, *, reinstall: bool = False
) -> Plan:
    domain = darwin_domain(uid)
    service = f"{domain}/{AGENT_LABEL}"
    # bootstrap refuses an agent that is already loaded: take the old one out first.
    unload = (Run(("launchctl", "bootout", service), STOP, may_fail=True),) if reinstall else ()
    steps: tuple[Step, ...] = (
        *unload,
        MakeDir(log_file(where.home).parent, 0o700),
        MakeDir(where.path.parent),
        WriteFile(where.path, render_agent(command, config, where.home)),
        # enable clears a "disabled" mark left by an earlier `launchctl disable`.
        Run(("launchctl", "enable", service), QUICK),
        Run(("launchctl", "bootstrap", domain, str(where.path)), START),
    )
    undo = (
        "caldaemon service uninstall --user",
        f"or by hand: launchctl bootout {service}; rm {shlex.quote(str(where.path))}",
    )
    return Plan(steps, undo=undo)


def darwin_uninstall(where: Target, uid: int) -> Plan:
    service = f"{darwin_domain(uid)}/{AGENT_LABEL}"
    # An agent that is installed but not loaded (after a reboot with it disabled) has
    # nothing to boot out; the file still goes.
    return Plan(
        (Run(("launchctl", "bootout", service), STOP, may_fail=True), RemoveFile(where.path))
    )


def installed_command(where: Target) -> str | None:
    """The command line the installed unit or agent runs, as written; None if none is."""
    try:
        data = where.path.read_bytes()
    except OSError:
        return None
    if where.platform == "darwin":
        try:
            arguments = plistlib.loads(data).get("ProgramArguments", [])
        except (plistlib.InvalidFileException, ValueError, AttributeError):
            return "(unreadable plist)"
        return shlex.join(str(a) for a in arguments)
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("ExecStart="):
            return line.removeprefix("ExecStart=")
    return "(no ExecStart= line)"
