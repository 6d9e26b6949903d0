"""``caldaemon service install|uninstall|status``: caldaemon as a background service, a
systemd unit on Linux or a launchd agent on macOS (DESIGN.md §12). Every folder made, file
written and command run is printed, with how to undo it; ``--dry-run`` prints the same
and touches nothing. The plans come from :mod:`caldaemon.service.install`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from caldaemon.cli.app import config_option, main, user_errors
from caldaemon.errors import ConfigError, Error

if TYPE_CHECKING:
    from caldaemon.config import Settings
    from caldaemon.service.install import Plan, Platform, Run, Scope, Step, Target


def _scope_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option(
        "--system",
        "scope",
        flag_value="system",
        help="For the whole machine (Linux, as root): /etc/systemd/system.",
    )(command)
    command = click.option(
        "--user",
        "scope",
        flag_value="user",
        default=True,
        help="For you (the default): a systemd user unit, or a launchd agent on macOS.",
    )(command)
    # The platform is an input like --now: a test (or a preview with --dry-run) asks for
    # the other system's files explicitly instead of patching sys.platform.
    return click.option(
        "--platform",
        "platform_name",
        type=click.Choice(["linux", "darwin"]),
        hidden=True,
        help="Install for this system instead of the one running (for --dry-run previews).",
    )(command)


dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print the files and the commands; write and run nothing."
)


@main.group()
def service() -> None:
    """Run caldaemon in the background: a systemd unit on Linux, a launchd agent on macOS."""


def _platform(name: str | None) -> Platform:
    if name == "linux" or (name is None and sys.platform.startswith("linux")):
        return "linux"
    if name == "darwin" or (name is None and sys.platform == "darwin"):
        return "darwin"
    raise Error(f"caldaemon service knows Linux (systemd) and macOS (launchd), not {sys.platform}")


def _target(platform_name: str | None, scope: Scope) -> Target:
    from caldaemon.service.install import target

    return target(_platform(platform_name), scope, dict(os.environ), Path.home())


def _need_root(where: Target, action: str) -> None:
    if where.scope == "system" and os.geteuid() != 0:
        raise Error(
            f"{action} --system writes {where.path} and runs systemctl for the whole machine, "
            f'which needs root: sudo "$(command -v caldaemon)" service {action} --system '
            "(add --dry-run to see what it would do first)"
        )
    if where.scope == "user" and os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        raise Error(
            f"under sudo, --user would {action} the service for root, not for "
            f"{os.environ['SUDO_USER']}: run it without sudo (or use --system)"
        )


def _config(config_path: str | None, where: Target) -> Path:
    from caldaemon.config.load import default_path
    from caldaemon.service.install import SYSTEM_CONFIG

    if config_path:
        chosen = Path(config_path).expanduser()
    else:
        chosen = SYSTEM_CONFIG if where.scope == "system" else default_path()
    return Path(os.path.abspath(chosen))


@dataclass(frozen=True)
class Checked:
    """What the unit needs besides its template, and why the service would not start."""

    writable: tuple[Path, ...] = ()  # folders the user unit must be let write
    credentials: tuple[tuple[str, Path], ...] = ()  # LoadCredential= name and file
    problems: tuple[str, ...] = ()


def _checks(where: Target, command: tuple[str, ...], config: Path) -> Checked:
    """The folders the unit must be allowed to write, the secrets systemd hands the system
    unit, and why the service would not start (a config that does not load, a path the
    sandbox hides, a secret its user cannot read)."""
    from caldaemon.config.load import Loaded, read
    from caldaemon.service.sandbox import HIDDEN, credentials, hidden, others_can_read

    problems: list[str] = []
    loaded: Loaded | None = None
    try:
        loaded = read(config)  # once: the credentials below come from the same reading
    except ConfigError as exc:
        quoted = shlex.quote(str(config))
        fix = (
            f"`caldaemon validate --config {quoted}` shows why"
            if config.exists()
            else f"`caldaemon init --config {quoted}` writes one"
        )
        problems.append(f"the service would not start: the config does not load ({exc}); {fix}")
    if where.scope == "user":
        linux = where.platform == "linux"
        writable = _written_folders(loaded.settings, where) if loaded and linux else []
        return Checked(writable=tuple(writable), problems=tuple(problems))
    problems += [
        f"{path} is under {', '.join(map(str, HIDDEN))}, which the system "
        "unit's sandbox hides (ProtectHome=yes): install caldaemon for the machine (e.g. "
        "a venv in /opt/caldaemon) and keep the config in /etc/caldaemon"
        for path in (Path(command[0]), config)
        if hidden(path)
    ]
    if config.exists() and not hidden(config) and not others_can_read(config, private_tmp=False):
        problems.append(
            f"{config} is not readable by others, so not by the service's own user "
            f"(DynamicUser=yes): chmod 0644 {shlex.quote(str(config))} and chmod 0755 its "
            "folder (it holds no secret: key and password files go beside it, mode 0600, "
            "named bare in the config, and reach the service by LoadCredential=)"
        )
    if loaded is None:
        return Checked(problems=tuple(problems))
    handed, refused = credentials(config, loaded)
    return Checked(credentials=handed, problems=(*problems, *refused))


def _written_folders(settings: Settings, where: Target) -> list[Path]:
    """The folders the user unit must be let write besides %S/caldaemon, its
    StateDirectory= (everything else is read-only to it: ProtectSystem=strict): a state_dir
    other than the default (which becomes %S/caldaemon under the unit, $STATE_DIRECTORY in
    config/load.py) and the folder of each .ics file that receives buffers."""
    from caldaemon.config.schema import Daemon
    from caldaemon.providers.ics.settings import IcsCalendar
    from caldaemon.service.install import xdg_dir

    default = Path(str(Daemon.model_fields["state_dir"].default)).expanduser()
    state_home = xdg_dir(dict(os.environ), "XDG_STATE_HOME", where.home / ".local/state")
    kept = (default, state_home / "caldaemon")
    state_dir = Path(os.path.abspath(settings.daemon.state_dir))
    folders = [] if state_dir in kept else [state_dir]
    for clinician in settings.clinicians:
        if clinician.buffers_to is None:
            continue
        calendar = clinician.calendar(clinician.buffers_to)
        if isinstance(calendar, IcsCalendar) and calendar.path is not None:
            folders.append(Path(os.path.abspath(calendar.path)).parent)
    # A folder inside another (or inside the state folder) is writable with it.
    outer = sorted(set(folders), key=lambda p: (len(p.parts), p))
    return [
        p for i, p in enumerate(outer) if not any(p.is_relative_to(q) for q in (*outer[:i], *kept))
    ]


def _show(step: Step, *, done: bool) -> None:
    from caldaemon.service.install import MakeDir, RemoveFile, WriteFile

    if isinstance(step, MakeDir):
        click.echo(f"{'made' if done else 'would make'} folder {step.path}")
    elif isinstance(step, WriteFile):
        click.echo(f"{'wrote' if done else 'would write'} {step.path} (mode {step.mode:04o})")
        if not done:
            for line in step.content.decode("utf-8").splitlines():
                click.echo(f"    {line}")
    elif isinstance(step, RemoveFile):
        click.echo(f"{'removed' if done else 'would remove'} {step.path}")
    else:
        click.echo(f"{'ran' if done else 'would run'}: {step}")


def _run(step: Run) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            step.argv, capture_output=True, text=True, timeout=step.timeout, check=False
        )
    except FileNotFoundError:
        manager = "launchd (macOS)" if step.argv[0] == "launchctl" else "systemd"
        raise Error(f"{step.argv[0]} is not installed here: this needs {manager}") from None
    except subprocess.TimeoutExpired:
        raise Error(f"`{step}` did not finish within {step.timeout:.0f} s") from None


# What systemctl says when it has no service manager to talk to (systemd 252).
_NO_MANAGER = ("Failed to connect to bus", "not been booted with systemd", "XDG_RUNTIME_DIR")


def _hint(argv: tuple[str, ...], said: str) -> str:
    """What to do after ``argv`` failed saying ``said``."""
    from caldaemon.service.install import log_file

    if argv[0] == "launchctl":
        return (
            "launchd agents live in your login session (gui/UID): log in on the Mac itself, "
            f"not over SSH, and try again; the agent's log is {log_file(Path.home())}"
        )
    user = "--user" in argv
    if said and not any(sign in said for sign in _NO_MANAGER):
        # The manager answered: the unit itself failed (to start, most often).
        return f"what caldaemon said: journalctl {'--user ' if user else ''}-u caldaemon -e"
    if user:
        return (
            "systemctl --user talks to your own service manager (systemd --user), which runs "
            "while you have a login session; SSH sessions, containers and sudo often have "
            'none. Log in normally, or run `sudo loginctl enable-linger "$USER"` so it runs '
            "without one, then try again"
        )
    return "systemd must be the init system (PID 1) for this; in a container it usually is not"


def _apply(step: Step) -> None:
    from caldaemon.service.install import MakeDir, RemoveFile, WriteFile

    if isinstance(step, MakeDir):
        step.path.mkdir(mode=step.mode, parents=True, exist_ok=True)
    elif isinstance(step, WriteFile):
        # Written beside and renamed, so a unit is never read half-written.
        partial = step.path.with_name(f".{step.path.name}.partial")
        partial.write_bytes(step.content)
        partial.chmod(step.mode)
        partial.replace(step.path)
    elif isinstance(step, RemoveFile):
        step.path.unlink(missing_ok=True)
    else:
        result = _run(step)
        if result.returncode != 0 and not step.may_fail:
            said = (result.stderr or result.stdout).strip()
            raise Error(
                f"`{step}` failed (exit {result.returncode}): {said or 'no message'}\n"
                f"{_hint(step.argv, said)}."
            )


def _carry_out(plan: Plan, dry_run: bool) -> None:
    from caldaemon.service.install import MakeDir

    if dry_run:
        click.echo("Dry run: nothing is written or run.")
    for step in plan.steps:
        if isinstance(step, MakeDir) and step.path.is_dir():
            continue
        if not dry_run:
            try:
                _apply(step)
            except (OSError, Error) as exc:
                raise Error(f"{exc}\n{_undo_text(plan)}") from None
        _show(step, done=not dry_run)


def _undo_text(plan: Plan) -> str:
    if not plan.undo:
        return "What was done is listed above."
    return "What was done is listed above; to undo it: " + "\n  ".join(plan.undo)


@service.command()
@_scope_options
@dry_run_option
@config_option
@user_errors
def install(
    scope: Scope, platform_name: str | None, dry_run: bool, config_path: str | None
) -> None:
    """Write the unit (or agent) that runs `caldaemon run` with this caldaemon and config,
    and start it (--system reads /etc/caldaemon/config.yaml unless --config says another).
    Exit 0: installed; 2: refused or failed (the message says what to do)."""
    from caldaemon.service import install as plans

    where = _target(platform_name, scope)
    if not dry_run:
        _need_root(where, "install")
    command = plans.running_command(sys.argv[0], sys.executable)
    config = _config(config_path, where)
    checked = _checks(where, command, config)
    if checked.problems and not dry_run:
        raise Error("\n".join(checked.problems))
    reinstall = where.path.exists()
    if where.platform == "darwin":
        plan = plans.darwin_install(where, command, config, os.getuid(), reinstall=reinstall)
    else:
        plan = plans.linux_install(
            where,
            command,
            config,
            writable=checked.writable,
            credentials=checked.credentials,
            reinstall=reinstall,
        )
    click.echo(f"Installing caldaemon as {where.describe}: {where.path}")
    _carry_out(plan, dry_run)
    for problem in checked.problems:  # only a dry run gets here with any
        click.echo(f"note: {problem}")
    if not dry_run:
        click.echo(_running_hint(where))
    click.echo(("To undo it: " if not dry_run else "Once installed, undo it with: ") + plan.undo[0])
    for line in plan.undo[1:]:
        click.echo(f"  {line}")


def _running_hint(where: Target) -> str:
    from caldaemon.service.install import log_file

    if where.platform == "darwin":
        return f"caldaemon runs now and at every login; its log: {log_file(where.home)}"
    if where.scope == "system":
        return "caldaemon runs now and at boot; what it does: journalctl -u caldaemon -f"
    return (
        "caldaemon runs now and whenever you are logged in (to keep it running after you log "
        'out: loginctl enable-linger "$USER"); what it does: journalctl --user -u caldaemon -f'
    )


@service.command()
@_scope_options
@dry_run_option
@user_errors
def uninstall(scope: Scope, platform_name: str | None, dry_run: bool) -> None:
    """Stop the service and remove its unit (or agent). Exit 0: removed or not installed."""
    from caldaemon.service import install as plans

    where = _target(platform_name, scope)
    if not where.path.exists():
        click.echo(f"caldaemon is not installed as {where.describe} ({where.path} does not exist)")
        return
    if not dry_run:
        _need_root(where, "uninstall")
    if where.platform == "darwin":
        plan = plans.darwin_uninstall(where, os.getuid())
    else:
        plan = plans.linux_uninstall(where)
    click.echo(f"Removing caldaemon as {where.describe}: {where.path}")
    _carry_out(plan, dry_run)
    click.echo(f"To install it again: caldaemon service install {where.flag}")


@service.command()
@_scope_options
@user_errors
def status(scope: Scope, platform_name: str | None) -> None:
    """Whether the service is installed, enabled and running, and what it runs.
    Exit 0: answered; 2: it is installed but the service manager could not be asked."""
    from caldaemon.service.install import AGENT_LABEL, QUICK, UNIT_NAME, Run, installed_command

    where = _target(platform_name, scope)
    command = installed_command(where)
    click.echo(f"caldaemon as {where.describe}: {where.path}")
    click.echo(f"  installed: {'yes' if command is not None else 'no'}")
    if command is None:
        return
    click.echo(f"  runs: {command}")
    if where.platform == "darwin":
        service_name = f"gui/{os.getuid()}/{AGENT_LABEL}"
        result = _run(Run(("launchctl", "print", service_name), QUICK))
        if result.returncode != 0:
            click.echo("  loaded: no")
            return
        fields = dict(
            line.strip().split(" = ", 1) for line in result.stdout.splitlines() if " = " in line
        )
        click.echo(f"  loaded: yes; state: {fields.get('state', 'unknown')}")
        return
    for label, question in (("enabled", "is-enabled"), ("active", "is-active")):
        asked = Run((*where.manager, question, UNIT_NAME), QUICK)
        result = _run(asked)
        answer = result.stdout.strip()
        if not answer:
            said = result.stderr.strip() or f"exit {result.returncode}"
            raise Error(f"`{asked}` gave no answer: {said}\n{_hint(asked.argv, said)}.")
        click.echo(f"  {label}: {answer}")
