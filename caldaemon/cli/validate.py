"""``caldaemon validate``: the config file checked, every problem at once."""

from __future__ import annotations

import json
import sys

import click

from caldaemon.cli.app import config_option, json_option, main, user_errors
from caldaemon.errors import ConfigError


@main.command()
@config_option
@json_option
@user_errors
def validate(config_path: str | None, as_json: bool) -> None:
    """Check the config file; print every problem with file:line, or a short summary.
    Also warns (on stderr) about calendar files that do not exist yet and relative paths.
    Exit 0: valid, warnings or not; 2: problems."""
    from caldaemon.config.load import read
    from caldaemon.config.paths import path_warnings
    from caldaemon.core.rules.registry import rules_on

    try:
        loaded = read(config_path)
    except ConfigError as exc:
        if not as_json:
            raise
        problems = [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message}
            for p in exc.problems
        ]
        click.echo(json.dumps({"ok": False, "problems": problems}))
        sys.exit(2)
    settings = loaded.settings
    warnings = path_warnings(loaded)
    calendars = sum(len(c.calendars) for c in settings.clinicians)
    rules = sorted(
        {rule_id for c in settings.clinicians for rule in rules_on(c.rules) for rule_id in rule.ids}
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "config": str(settings.path),
                    "problems": [],
                    "clinicians": [c.id for c in settings.clinicians],
                    "calendars": calendars,
                    "rules": rules,
                    "warnings": [
                        {"file": w.file, "line": w.line, "path": w.path, "message": w.message}
                        for w in warnings
                    ],
                }
            )
        )
        return
    click.echo(f"{settings.path}: ok")
    click.echo(f"  {len(settings.clinicians)} clinician(s): {settings.some_ids()}")
    click.echo(f"  {calendars} calendar(s); rules checked: {', '.join(rules) or 'none'}")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
