"""The ``caldaemon`` command (DESIGN.md §4): the group in :mod:`.app`, one module per
command family beside it."""

from caldaemon.cli import auth, check, remember, report, run, status, validate
from caldaemon.cli.app import main

__all__ = ["auth", "check", "main", "remember", "report", "run", "status", "validate"]
