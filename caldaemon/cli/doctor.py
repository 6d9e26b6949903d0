"""``caldaemon doctor``: every connection checked once, read-only (DESIGN.md §12)."""

from __future__ import annotations

import sys

import click

from caldaemon.cli.app import clinician_option, config_option, load_settings, main, user_errors
from caldaemon.errors import ConfigError

PASSED, FAILED = "✓", "✗"


@main.command()
@config_option
@clinician_option
@user_errors
def doctor(config_path: str | None, clinician_id: str | None) -> None:
    """Check the config, each calendar (sign-in, one read, whether buffers may be written
    there), the way notices go out (SMTP up to the login: no mail is sent) and the state
    folder. Writes to no calendar. One line per check; exit 0: all passed, 2: not."""
    from caldaemon.service.doctor import examine

    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        count = len(exc.problems)
        click.echo(
            f"{FAILED} config: {count} problem{'' if count == 1 else 's'}"
            " → fix each (listed below, with its line), then run caldaemon doctor again"
        )
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    calendars = sum(len(c.calendars) for c in settings.clinicians)
    click.echo(
        f"{PASSED} config: {settings.path} is valid "
        f"({len(settings.clinicians)} clinician(s), {calendars} calendar(s))"
    )
    if clinician_id is not None:
        settings.clinician(clinician_id)  # an unknown id is a user error (exit 2)
    failed = False
    for finding in examine(settings, clinician_id):
        failed = failed or not finding.ok
        line = f"{PASSED if finding.ok else FAILED} {finding.subject}: {finding.detail}"
        click.echo(line if finding.ok or not finding.fix else f"{line} → {finding.fix}")
    sys.exit(2 if failed else 0)
