"""The ``caldaemon`` command (DESIGN.md §4): the group in :mod:`.app`, one module per
command family beside it."""

from caldaemon.cli import (
    auth,
    check,
    doctor,
    hours,
    init,
    remember,
    report,
    run,
    schema,
    service,
    slots,
    status,
    validate,
)
from caldaemon.cli.app import main

__all__ = [
    "auth",
    "check",
    "doctor",
    "hours",
    "init",
    "main",
    "remember",
    "report",
    "run",
    "schema",
    "service",
    "slots",
    "status",
    "validate",
]
