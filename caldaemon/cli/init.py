"""``caldaemon init``: a short dialogue that writes a commented config which validates
(DESIGN.md §12), or with ``--defaults`` a starting config without a question.

The defaults are the answers the dialogue offers: ``--defaults`` is pressing Enter at every
question. They give a config that validates and runs with no account and no network: one
local calendar file in the config's folder (a file that is missing reads as an empty
calendar, so ``caldaemon check`` runs at once; point it at your calendar app's export, or
run ``init`` again for Google, Outlook or CalDAV), buffers written to that same file, and
notices to a Maildir in the state folder."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace as replaced
from pathlib import Path
from typing import TYPE_CHECKING

import click

from caldaemon.cli.app import config_option, main, user_errors
from caldaemon.errors import ConfigError, Error

if TYPE_CHECKING:
    from caldaemon.config import Settings
    from caldaemon.config.init_answers import Answers, CalendarAnswer


def _checked(text: str, target: Path) -> Settings:
    """The written text through the real loader: what ``caldaemon validate`` will say."""
    from caldaemon import config

    try:
        return config.parse(text, target)
    except ConfigError as exc:
        raise Error(
            f"the answers make a config that does not validate, so nothing was written:\n{exc}"
        ) from None


def _service_step(target: Path, option: str, system: bool) -> str:
    from caldaemon.service.install import SYSTEM_CONFIG

    if target == SYSTEM_CONFIG:
        # The system unit reads this file by default (service install --system).
        return "  sudo caldaemon service install --system   runs caldaemon for the machine"
    if system:
        return f"  sudo caldaemon service install --system{option}   runs it for the machine"
    return f"  caldaemon service install --user{option}   runs caldaemon in the background"


def _secret_names(answers: Answers, folder: Path) -> tuple[tuple[str, str], ...]:
    """For a system config, each file named bare (written name, answered path); two files
    that would take one name are refused before anything is written."""
    from caldaemon.config.init_answers import secret_files

    files = secret_files(answers)
    seen: dict[str, str] = {}
    for name, path in files:
        if name in seen:
            raise Error(
                f"{seen[name]} and {path} would both be {folder / name} beside the config: "
                "give the files different names, then run caldaemon init again"
            )
        seen[name] = path
    return files


def _secret_steps(folder: Path, files: tuple[tuple[str, str], ...]) -> list[str]:
    """Where a system config's key and password files go: beside it, root's alone; the
    service gets them from systemd (LoadCredential=), `sudo caldaemon doctor` reads them
    there."""
    if not files:
        return []
    lines = [f"Put each key and password file in {folder}, root's alone (mode 0600):"]
    for name, answered in files:
        place = folder / name
        where = shlex.quote(str(place))
        if Path(answered) == place:
            lines.append(f"  sudo chown root:root {where} && sudo chmod 0600 {where}")
        else:
            source = shlex.quote(answered)
            lines.append(f"  sudo install -m 0600 -o root -g root {source} {where}")
    return lines


def _sign_in(calendar: CalendarAnswer, clinician: str, option: str, system: Path | None) -> str:
    """The sign-in command; for the system service, run as its own dynamic user with its
    state folder (the token must be the service's to read) and the calendar's key files
    handed over as the unit hands them (README, "As a system service")."""
    words = f"auth {calendar.provider} --clinician {clinician} --calendar {calendar.id}{option}"
    if system is None:
        return f"  caldaemon {words}   sign in to this calendar"
    from caldaemon.config.init_answers import SECRET_KEYS
    from caldaemon.service.install import running_command

    names = [Path(value).name for key, value, _ in calendar.keys if key in SECRET_KEYS]
    loads = "".join(f" -p LoadCredential={n}:{shlex.quote(str(system / n))}" for n in names)
    command = shlex.join(running_command(sys.argv[0], sys.executable))
    return (
        "  sudo systemd-run --pty --wait -p User=caldaemon -p DynamicUser=yes "
        f"-p StateDirectory=caldaemon{loads} {command} {words}   sign in, as the service's user"
    )


def _next_steps(
    target: Path, answers: Answers, settings: Settings, files: tuple[tuple[str, str], ...]
) -> list[str]:
    from caldaemon import config

    option = "" if target == config.default_path().absolute() else f" --config {target}"
    sudo = "sudo " if answers.system else ""
    lines = _secret_steps(target.parent, files) if answers.system else []
    if lines:
        lines.append("Then:")
    for clinician in answers.clinicians:
        lines += [
            _sign_in(calendar, clinician.id, option, target.parent if answers.system else None)
            for calendar in clinician.calendars
            if calendar.signs_in
        ]
    lines += [
        f"  {sudo}caldaemon doctor{option}   reads each calendar, checks sign-ins and email",
        f"  {sudo}caldaemon check{option}    your coming weeks against your boundaries",
        _service_step(target, option, answers.system),
    ]
    if answers.smtp is None:
        folder = settings.daemon.state_dir.expanduser() / "notices"
        lines.append(f"Notices will be written to the Maildir {folder}.")
    return lines


@main.command()
@config_option
@click.option(
    "--defaults",
    is_flag=True,
    help="Ask nothing: write a starting config (one local calendar file, notices to a "
    "Maildir) that validates and runs. Never replaces a file.",
)
@click.option(
    "--system",
    is_flag=True,
    help="For the system service (service install --system): /etc/caldaemon/config.yaml "
    "unless --config says another, readable by the service (0644, in a 0755 folder), each "
    "key and password file named bare, to be kept beside it (root's, 0600). A config in "
    "/etc/caldaemon is written so without --system.",
)
@user_errors
def init(config_path: str | None, defaults: bool, system: bool) -> None:
    """Write a commented config from a few questions (Enter takes the offered answer),
    to --config, else $CALDAEMON_CONFIG, else ~/.config/caldaemon/config.yaml. An
    existing file is replaced only when you say so."""
    from caldaemon import config
    from caldaemon.cli.questions import Dialogue, ask_answers
    from caldaemon.config.load import SYSTEM_CONFIG_DIR
    from caldaemon.config.template import render
    from caldaemon.config.write import write_config
    from caldaemon.service.install import SYSTEM_CONFIG

    chosen = Path(config_path).expanduser() if config_path else None
    if chosen is None:
        chosen = SYSTEM_CONFIG if system else config.default_path()
    target = chosen.absolute()
    # The one convention the loader, doctor and service install share (issue 14): the
    # system unit's config lives in /etc/caldaemon, so one written there is a system one.
    system = system or target.parent == SYSTEM_CONFIG_DIR
    replace = False
    if target.exists() or target.is_symlink():
        if defaults:
            raise Error(
                f"{target} exists already; --defaults never replaces a file "
                "(run caldaemon init without --defaults, or give another --config)"
            )
        if not click.confirm(f"{target} exists already. Replace it?", default=False):
            click.echo(f"{target} is left unchanged.")
            sys.exit(1)
        replace = True
    if not defaults:
        click.echo(f"A few questions for {target}; Enter takes the answer in [brackets].")
    dialogue = Dialogue(interactive=not defaults, folder=target.parent, cwd=Path.cwd())
    answers = replaced(ask_answers(dialogue), system=system)
    files = _secret_names(answers, target.parent) if system else ()
    text = render(answers)
    settings = _checked(text, target)
    write_config(target, text, replace=replace, system=system)
    calendars = sum(len(c.calendars) for c in settings.clinicians)
    readable = " and is readable by the service (mode 0644; it holds no secret)" if system else ""
    click.echo(f"\nWrote {target}: it validates ({calendars} calendar(s)){readable}. Next:")
    for line in _next_steps(target, answers, settings, files):
        click.echo(line)
