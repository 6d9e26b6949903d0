"""Reading a secret the config names: ``*_file`` (a path, already resolved when the config
was loaded) or ``*_env`` (an environment variable). Secrets never sit in the YAML itself
(DESIGN.md §3) and are never put into a message."""

from __future__ import annotations

import os
from pathlib import Path

from caldaemon.errors import ConfigError, Problem


def read_secret(file: Path | None, env: str | None, *, what: str) -> str | None:
    """The secret's value; None when neither is configured."""
    if file is not None:
        path = file.expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                [Problem(str(path), None, "", f"cannot read {what}: {exc.strerror}")]
            ) from None
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError([Problem("environment", None, env, f"{what} is not set")])
        return value
    return None
