"""The ``caldaemon`` command group and what its commands share: options, the config, the
clock, and printing caldaemon's errors as messages. Heavy modules are imported inside
commands so ``caldaemon --help`` starts fast."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from caldaemon import __version__
from caldaemon.errors import Error

if TYPE_CHECKING:
    from caldaemon.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $CALDAEMON_CONFIG, else ~/.config/caldaemon/config.yaml).",
)
now_option = click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="Pretend it is this moment, e.g. 2026-11-30T08:00 (naive times use the config's zone).",
)
clinician_option = click.option(
    "--clinician", "clinician_id", metavar="ID", help="Only this clinician."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def user_errors(command: F) -> F:
    """Print caldaemon's errors as their message (no traceback) and exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Error as exc:
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def load_settings(config_path: str | None) -> Settings:
    from caldaemon import config

    return config.load(config_path)


def parse_date(text: str, option: str) -> date:
    """A date option (``--from``, ``--to``, ``--week``, ``--until``): YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Error(f"{option}: {text!r} is not a date like 2026-11-30") from None


def parse_now(text: str | None, settings: Settings) -> datetime:
    """``--now``, in the config's zone when naive; the real time when not given."""
    if not text:
        return datetime.now(settings.tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Error(f"--now: {text!r} is not an ISO 8601 time like 2026-11-30T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="caldaemon")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """caldaemon keeps a therapist's calendar inside the boundaries they set: it checks
    the schedule against your rules, places grounding and notes time after sessions, and
    sends kind notices when a boundary is crossed."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
