"""What ``caldaemon validate`` warns about in a valid config (DESIGN.md §12): a calendar
file that does not exist yet, and a relative path, which the loader resolves against the
config file's folder (:func:`caldaemon.config.load._resolved`) and which therefore points
elsewhere once the config file is moved. Warnings do not make a config invalid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from caldaemon.config import yaml
from caldaemon.config.load import Loaded, path_keys
from caldaemon.errors import Problem
from caldaemon.fields import PathRole
from caldaemon.providers.ics.settings import IcsCalendar


def path_warnings(loaded: Loaded) -> list[Problem]:
    """Every warning about the paths of a config just read, in the order of the file.
    The keys as written and their lines are the ones the loader read: the file is not
    read again (it was, once per validate: twice the time for a platform's config)."""
    settings, config, doc = loaded.settings, loaded.written, loaded.doc
    found: list[Problem] = []

    def warn(where: yaml.Path, message: str) -> None:
        found.append(Problem(doc.file, doc.line_of(where), yaml.format_path(where), message))

    folder = settings.path.resolve().parent
    for where, written in _relative_paths(config, ()):
        warn(
            where,
            f"'{written}' is relative to the config file's folder, so it means "
            f"{folder / written.expanduser()}; if the config file moves, it points "
            "elsewhere (a full path keeps it)",
        )
    for i, clinician in enumerate(settings.clinicians):
        for j, calendar in enumerate(clinician.calendars):
            if not isinstance(calendar, IcsCalendar) or calendar.path is None:
                continue
            if calendar.path.exists():
                continue
            then = (
                "caldaemon creates it when it places the first buffer"
                if clinician.buffers_to == calendar.id
                else "until it does, the calendar cannot be read and check exits 2"
            )
            warn(
                ("clinicians", i, "calendars", j, "path"),
                f"{calendar.path} does not exist yet; {then}",
            )
    return sorted(found, key=lambda p: (p.line or 0, p.path))


def _relative_paths(model: BaseModel, where: yaml.Path) -> Iterator[tuple[yaml.Path, Path]]:
    """The keys written in ``model`` (and the models in it) that are relative file paths.
    Secrets are left out: relative is how systemd's credentials are named."""
    roles = dict(path_keys(type(model)))
    for key, field in type(model).model_fields.items():
        if key not in model.model_fields_set:
            continue
        value = getattr(model, key)
        here = (*where, field.alias or key)
        if roles.get(key) is PathRole.FILE:
            if value is not None and not Path(value).expanduser().is_absolute():
                yield here, Path(value)
        elif isinstance(value, BaseModel):
            yield from _relative_paths(value, here)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _relative_paths(item, (*here, index))
        elif isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, BaseModel):
                    yield from _relative_paths(item, (*here, str(name)))
