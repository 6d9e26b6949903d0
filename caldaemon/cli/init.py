"""``caldaemon init``: a short dialogue that writes a commented config which validates
(DESIGN.md §12), or with ``--defaults`` a starting config without a question.

The defaults are the answers the dialogue offers: ``--defaults`` is pressing Enter at every
question. They give a config that validates and runs with no account and no network: one
local calendar file in the config's folder (a file that is missing reads as an empty
calendar, so ``caldaemon check`` runs at once; point it at your calendar app's export, or
run ``init`` again for Google, Outlook or CalDAV), buffers written to that same file, and
notices to a Maildir in the state folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from caldaemon.cli.app import config_option, main, user_errors
from caldaemon.errors import ConfigError, Error

if TYPE_CHECKING:
    from caldaemon.config import Settings
    from caldaemon.config.template import Answers


def _checked(text: str, target: Path) -> Settings:
    """The written text through the real loader: what ``caldaemon validate`` will say."""
    from caldaemon import config

    try:
        return config.parse(text, target)
    except ConfigError as exc:
        raise Error(
            f"the answers make a config that does not validate, so nothing was written:\n{exc}"
        ) from None


def _service_step(target: Path, option: str) -> str:
    from caldaemon.service.install import SYSTEM_CONFIG

    if target == SYSTEM_CONFIG:
        # The system unit reads this file by default (service install --system).
        return "  sudo caldaemon service install --system   runs caldaemon for the machine"
    return f"  caldaemon service install --user{option}   runs caldaemon in the background"


def _next_steps(target: Path, answers: Answers, settings: Settings) -> list[str]:
    from caldaemon import config

    option = "" if target == config.default_path().absolute() else f" --config {target}"
    lines = []
    for clinician in answers.clinicians:
        lines += [
            f"  caldaemon auth {calendar.provider} --clinician {clinician.id} "
            f"--calendar {calendar.id}{option}   sign in to this calendar"
            for calendar in clinician.calendars
            if calendar.signs_in
        ]
    lines += [
        f"  caldaemon doctor{option}   reads each calendar, checks sign-ins and email",
        f"  caldaemon check{option}    your coming weeks against your boundaries",
        _service_step(target, option),
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
@user_errors
def init(config_path: str | None, defaults: bool) -> None:
    """Write a commented config from a few questions (Enter takes the offered answer),
    to --config, else $CALDAEMON_CONFIG, else ~/.config/caldaemon/config.yaml. An
    existing file is replaced only when you say so."""
    from caldaemon import config
    from caldaemon.cli.questions import Dialogue, ask_answers
    from caldaemon.config.template import render
    from caldaemon.config.write import write_config

    target = (Path(config_path).expanduser() if config_path else config.default_path()).absolute()
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
    answers = ask_answers(dialogue)
    text = render(answers)
    settings = _checked(text, target)
    write_config(target, text, replace=replace)
    calendars = sum(len(c.calendars) for c in settings.clinicians)
    click.echo(f"\nWrote {target}: it validates ({calendars} calendar(s)). Next:")
    for line in _next_steps(target, answers, settings):
        click.echo(line)
