"""``caldaemon schema``: the config's JSON Schema (DESIGN.md §12), for editors that
complete and check keys as you type (config.example.yaml's first line points to it)."""

from __future__ import annotations

from pathlib import Path

import click

from caldaemon.cli.app import main, user_errors
from caldaemon.errors import Error


@main.command()
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the schema to this file (its folder is made) instead of printing it.",
)
@user_errors
def schema(output: str | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the config file. With --output, write it
    and say the line that points an editor's YAML support at it."""
    from caldaemon.config.json_schema import render

    text = render()
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Error(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}")
    # The modeline of the YAML language server (redhat-developer/yaml-language-server,
    # "Using inlined schema"), which VS Code, Neovim, Helix and others run.
    click.echo(f"first line of the config: # yaml-language-server: $schema={path.resolve()}")
