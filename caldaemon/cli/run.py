"""``caldaemon run``: the service, or one cycle for every clinician (``--once``)."""

from __future__ import annotations

import sys

import click

from caldaemon.cli.app import config_option, load_settings, main, now_option, parse_now, user_errors


@main.command()
@config_option
@click.option("--once", is_flag=True, help="One cycle for every clinician, then exit.")
@click.option("--dry-run", is_flag=True, help="Log what would be done; write and send nothing.")
@now_option
@user_errors
def run(config_path: str | None, once: bool, dry_run: bool, now_text: str | None) -> None:
    """Run the service: poll calendars, place buffers, send notices. With --once, exit 0
    when every calendar was read and every cycle completed, else 2."""
    from caldaemon.clock import offset_clock, pinned_clock, system_clock
    from caldaemon.service.daemon import Daemon

    settings = load_settings(config_path)
    clock = system_clock
    if now_text:
        pinned = parse_now(now_text, settings)
        clock = pinned_clock(pinned) if once else offset_clock(pinned)
    service = Daemon(config_path, dry_run=dry_run, clock=clock, settings=settings)
    if not once:
        sys.exit(service.serve())
    try:
        reports = service.once()
    finally:
        service.close()
    for report in reports:
        failed = ", ".join(str(e) for e in report.calendar_errors)
        click.echo(
            f"{report.clinician}: {report.calendars_ok} calendar(s) read"
            f"{f', {len(report.calendar_errors)} failed ({failed})' if failed else ''}; "
            f"{report.violations} violation(s), {report.notices} notice(s) queued; "
            f"buffers: {report.created} placed, {report.updated} moved, "
            f"{report.deleted} removed"
            + (" (dry run: nothing written or sent)" if service.cycle.dry_run else "")
        )
    for outcome in service.weekly_outcomes.values():
        if (line := outcome.said()) is not None:
            click.echo(line)
    for failure in service.failed_cycles:
        click.echo(f"{failure}: the cycle failed; nothing was judged or written for them")
    if not service.cycle.dry_run and service.mailer is not None:
        click.echo(
            "notices: sent by email"
            if settings.notices.email
            else f"notices: written to {settings.daemon.state_dir / 'notices'}"
        )
    # Failing closed (DESIGN.md §5): a calendar not read or a cycle that failed is exit 2.
    if service.failed_cycles or any(r.calendar_errors for r in reports):
        sys.exit(2)
