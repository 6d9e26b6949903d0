"""A loaded, valid config, as the rest of caldaemon reads it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from caldaemon.config import schema
from caldaemon.core.policy import ClassificationSettings, Policy
from caldaemon.errors import ConfigError, Problem
from caldaemon.providers.settings import CalendarSettings

if TYPE_CHECKING:
    from caldaemon.state.postgres import PostgresLocation

STATE_FILE = "state.sqlite3"


@dataclass(frozen=True)
class ClinicianSettings(Policy):
    """A clinician: what the rules see (:class:`Policy`), and who they are and which
    calendars they have."""

    name: str | None
    email: str | None
    calendars: tuple[CalendarSettings, ...]

    @property
    def who(self) -> str:
        """How output names the clinician: ``Sam Lee (sam)``, or the id alone."""
        return f"{self.name} ({self.id})" if self.name else self.id

    def calendar(self, calendar_id: str) -> CalendarSettings:
        return next(c for c in self.calendars if c.id == calendar_id)


@dataclass(frozen=True)
class Settings:
    """A loaded, valid config."""

    path: Path
    tz: ZoneInfo
    daemon: schema.Daemon
    classification: ClassificationSettings
    clinicians: tuple[ClinicianSettings, ...]
    notices: schema.Notices

    @property
    def state_file(self) -> Path:
        """The state database (DESIGN.md §6) in ``daemon.state_dir``."""
        return self.daemon.state_dir / STATE_FILE

    @property
    def has_state(self) -> bool:
        """Whether there is a state to read (a PostgreSQL one always is)."""
        return self.daemon.state is not None or self.state_file.exists()

    @property
    def state_location(self) -> Path | PostgresLocation:
        """Where the state lives: the PostgreSQL database of ``daemon.state``, else the
        SQLite file in ``daemon.state_dir``."""
        if self.daemon.state is None:
            return self.state_file
        # Imported here: loading a config (validate, check) need not load the state package.
        from caldaemon.state.postgres import PostgresLocation

        return PostgresLocation(
            self.daemon.state, self.daemon.state_password_file, self.daemon.state_password_env
        )

    @cached_property
    def _clinicians_by_id(self) -> dict[str, ClinicianSettings]:
        # Every cycle looks its clinician up: a scan of 10,000 was a fifth of a
        # millisecond each time (issue 15).
        return {c.id: c for c in reversed(self.clinicians)}  # the first of an id wins

    def chosen(self, clinician_id: str | None) -> tuple[ClinicianSettings, ...]:
        """The clinician ``--clinician`` names (an unknown id: ConfigError), or all of them."""
        return (self.clinician(clinician_id),) if clinician_id else self.clinicians

    def clinician(self, clinician_id: str) -> ClinicianSettings:
        found = self._clinicians_by_id.get(clinician_id)
        if found is not None:
            return found
        raise ConfigError(
            [
                Problem(
                    str(self.path),
                    None,
                    "",
                    f"no clinician '{clinician_id}' (known: {self.some_ids()})",
                )
            ]
        )

    def some_ids(self, shown: int = 10) -> str:
        """The clinicians' ids for a message: a platform's thousands would fill screens,
        so the first ``shown`` and how many more (``validate --json`` lists them all)."""
        ids = ", ".join(c.id for c in self.clinicians[:shown])
        more = len(self.clinicians) - shown
        return f"{ids} and {more:,} more" if more > 0 else ids
