"""Load the config file into typed, cross-checked settings.

Every problem is collected (YAML syntax, duplicate and unknown keys, wrong types, names
that point at nothing) and reported at once, each with file:line and its key path, so a
clinician fixes the file in one pass instead of one error per run.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic

from caldaemon.config import schema, yaml
from caldaemon.config.checks import check_references, check_severity, levels_of
from caldaemon.config.messages import Problems
from caldaemon.config.settings import ClinicianSettings, Settings
from caldaemon.core.policy import ClassificationRule, ClassificationSettings
from caldaemon.errors import ConfigError, Problem
from caldaemon.fields import PathRole, path_role
from caldaemon.model import ACCEPT, TAGGABLE_KINDS, Kind

DEFAULT_PATH = "~/.config/caldaemon/config.yaml"
# A platform's config holds every clinician it hosts, about 400 bytes each: 10 MiB holds
# 24,000 like the scale benchmark's (431 bytes each), loaded in 2.9 s of CPU at a peak of
# 290 MB (validate: 4.0 s; benchmarks/config_load.py), about as long a pause as a reload
# should make. A bigger file is a mistake, not a config (issue 15).
MAX_CONFIG_BYTES = 10 * 1024 * 1024
M = TypeVar("M", bound=pydantic.BaseModel)
# The system unit's ConfigurationDirectory= and StateDirectory= (systemd/caldaemon.service).
SYSTEM_CONFIG_DIR = Path("/etc/caldaemon")
SYSTEM_STATE_DIR = Path("/var/lib/caldaemon")


def default_path() -> Path:
    return Path(os.environ.get("CALDAEMON_CONFIG") or DEFAULT_PATH).expanduser()


@dataclass(frozen=True)
class Loaded:
    """A config as read: its settings, and what the file itself says (every key as
    written, before paths were resolved, and the line of each), which ``validate``'s
    warnings and ``service install``'s credentials need without reading the file again."""

    settings: Settings
    written: schema.Config
    doc: yaml.Document


def load(path: str | Path | None = None) -> Settings:
    """Read and check the config at ``path``; raise ConfigError listing every problem."""
    return read(path).settings


def read(path: str | Path | None = None) -> Loaded:
    """:func:`load`, keeping what the file says beside the settings."""
    file = Path(path).expanduser() if path else default_path()
    with _collector_paused():
        doc, config, merged = _validated(_read(file), file)
        settings = _settings(config, merged, file.resolve().parent, file)
    return Loaded(settings, config, doc)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """CPython's cycle collector walks every live container object each time enough new
    ones pile up; reading a config makes hundreds of thousands (nodes, dicts, models) that
    all live to the end, so every pass walked more of them: 20,000 clinicians took 7.2 s
    to read with it, 2.9 s without (issue 15). Nothing made here is garbage until the end,
    so nothing is lost by pausing it; it runs again as soon as reading is over."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def written_secrets(loaded: Loaded) -> tuple[tuple[str, Path], ...]:
    """Each key or password file the config names, as written (``~`` expanded, not
    resolved: a relative one is found in $CREDENTIALS_DIRECTORY under the system unit),
    with its key's place, like ``notices.email.smtp.password_file``."""
    config = loaded.written
    models: list[tuple[str, pydantic.BaseModel | None]] = [("daemon", config.daemon)]
    models += [
        (f"clinicians.{clinician.id}.calendars.{calendar.id}", calendar)
        for clinician in config.clinicians
        for calendar in clinician.calendars
    ]
    email = config.notices.email
    models.append(("notices.email.smtp", email.smtp if email else None))
    return tuple(found for where, model in models if model for found in _secrets(model, where))


def _secrets(model: pydantic.BaseModel, where: str) -> Iterator[tuple[str, Path]]:
    for key, role in path_keys(type(model)):
        value = getattr(model, key)
        if value is not None and role is PathRole.SECRET:
            yield f"{where}.{key}", Path(value).expanduser()


@cache
def path_keys(model: type[pydantic.BaseModel]) -> tuple[tuple[str, PathRole], ...]:
    """The keys of ``model`` that are paths, with how each is resolved: asked once per
    model, not once per calendar (10,000 calendars spent a second on it; issue 15)."""
    found = ((key, path_role(model, key)) for key in model.model_fields)
    return tuple((key, role) for key, role in found if role is not None)


def _read(file: Path) -> str:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(str(file), None, "", f"cannot read the config: {reason}")
        raise ConfigError([problem]) from None
    if len(data) > MAX_CONFIG_BYTES:
        megabytes = MAX_CONFIG_BYTES // (1024 * 1024)
        problem = Problem(
            str(file),
            None,
            "",
            f"the config is larger than {megabytes} MB; is this the right file?",
        )
        raise ConfigError([problem])
    return text


def parse(text: str, file: Path) -> Settings:
    _, config, merged = _validated(text, file)
    return _settings(config, merged, file.resolve().parent, file)


def _validated(
    text: str, file: Path
) -> tuple[yaml.Document, schema.Config, dict[str, schema.RuleSet]]:
    doc = yaml.load(text, str(file))
    problems = Problems(doc)
    for path, line, message in doc.problems:
        problems.add(path, message, line=line)
    if not isinstance(doc.data, dict):
        if not doc.problems:
            problems.add((), "the config must be a mapping with 'clinicians' and 'rule_sets'")
        raise ConfigError(problems.sorted())
    context = {"levels": levels_of(doc.data)}
    config: schema.Config | None = None
    try:
        config = schema.Config.model_validate(doc.data, context=context)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            problems.add_pydantic(error, ())
    check_references(doc.data, problems)
    merged: dict[str, schema.RuleSet] = {}
    if config is not None:
        merged = _merge_overrides(config, doc.data, context, problems)
    if problems.items or config is None:
        raise ConfigError(problems.sorted())
    return doc, config, merged


def _merge_overrides(
    config: schema.Config, data: dict[str, Any], context: dict[str, Any], problems: Problems
) -> dict[str, schema.RuleSet]:
    """Each clinician's rule set with its ``overrides`` merged over it, key by key."""
    merged: dict[str, schema.RuleSet] = {}
    for index, clinician in enumerate(config.clinicians):
        base = config.rule_sets.get(clinician.rules)
        if base is None:
            continue
        if not clinician.overrides:
            merged[clinician.id] = base
            continue
        raw = {**data["rule_sets"][clinician.rules], **clinician.overrides}
        where: yaml.Path = ("clinicians", index, "overrides")
        check_severity(clinician.overrides, where, problems)
        try:
            merged[clinician.id] = schema.RuleSet.model_validate(raw, context=context)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                if error["loc"] and error["loc"][0] in clinician.overrides:
                    problems.add_pydantic(error, where)
    return merged


def system_timezone() -> ZoneInfo:
    """The machine's zone: $TZ, else /etc/localtime's target, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        candidates.append(target.split("/zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _resolved(model: M, base: Path) -> M:
    """``model`` with its path keys resolved: files against the config's folder, secrets
    against ``$CREDENTIALS_DIRECTORY`` when set (systemd's LoadCredential=,
    systemd.exec(5))."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    update: dict[str, Path] = {}
    for key, role in path_keys(type(model)):
        value = getattr(model, key)
        if value is None:
            continue
        path = Path(value).expanduser()
        if role is PathRole.SECRET and credentials and not path.is_absolute():
            update[key] = Path(credentials) / value
        else:
            update[key] = base / path
    return model.model_copy(update=update)


def _unit_state_dir(base: Path) -> Path | None:
    """The state folder the service uses when the config names none: systemd's
    StateDirectory= (systemd.exec(5); it may list several, the first is ours). Outside the
    unit, a config in /etc/caldaemon is the system unit's, so `sudo caldaemon doctor`,
    `status` and `auth` use the unit's /var/lib/caldaemon rather than root's own
    ~/.local/state (issue 14): what they check and write is what the service will find."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    return SYSTEM_STATE_DIR if base == SYSTEM_CONFIG_DIR else None


def _tags(configured: dict[str, str]) -> dict[str, str]:
    """The tags, lower-cased; ``#ok`` accepts (DESIGN.md §10) unless another tag was
    chosen for that or ``ok`` means something else."""
    tags = {k.lower().lstrip("#"): v.lower() for k, v in configured.items()}
    if ACCEPT not in tags.values():
        tags.setdefault("ok", ACCEPT)
    return tags


def _classification(c: schema.Classification) -> ClassificationSettings:
    levels = tuple(c.levels)
    default_tags = (
        {lvl: lvl for lvl in levels}
        | {k: k for k in TAGGABLE_KINDS}
        | {"heavy": levels[-1], "light": levels[0], "off": Kind.DAY_OFF.value, "ok": ACCEPT}
    )
    return ClassificationSettings(
        levels=levels,
        weights={
            lvl: c.weights.get(lvl, c.weights.get(lvl.title(), i + 1))
            for i, lvl in enumerate(levels)
        },
        default_level=(c.default_level or levels[len(levels) // 2]).lower(),
        tags=_tags(c.tags or default_tags),
        colors={k.lower(): v.lower() for k, v in c.colors.items()},
        tagged_sessions=c.sessions.tagged,
        title_pattern=re.compile(c.sessions.title_matches) if c.sessions.title_matches else None,
        session_calendars=frozenset(c.sessions.calendars),
        rules=tuple(
            ClassificationRule(
                calendar=r.calendar,
                min_length=r.min_length,
                title_pattern=re.compile(r.title_matches) if r.title_matches else None,
                level=r.level.lower() if r.level else None,
                kind=r.kind,
            )
            for r in c.rules
        ),
    )


def _settings(
    config: schema.Config, rule_sets: dict[str, schema.RuleSet], base: Path, file: Path
) -> Settings:
    tz = ZoneInfo(config.timezone) if config.timezone else system_timezone()
    clinicians = tuple(
        ClinicianSettings(
            id=clinician.id,
            tz=ZoneInfo(clinician.timezone) if clinician.timezone else tz,
            rules=rule_sets[clinician.id],
            buffers_to=clinician.buffers_to,
            busy_calendars=frozenset(c.id for c in clinician.calendars if c.use == "busy"),
            name=clinician.name,
            email=clinician.email,
            calendars=tuple(_resolved(calendar, base) for calendar in clinician.calendars),
        )
        for clinician in config.clinicians
    )
    daemon = _resolved(config.daemon, base)
    state_dir = _unit_state_dir(base)
    if "state_dir" not in config.daemon.model_fields_set and state_dir is not None:
        daemon = daemon.model_copy(update={"state_dir": state_dir})
    notices = config.notices
    if notices.email and notices.email.smtp:
        smtp = _resolved(notices.email.smtp, base)
        notices = notices.model_copy(
            update={"email": notices.email.model_copy(update={"smtp": smtp})}
        )
    return Settings(
        path=file,
        tz=tz,
        daemon=daemon,
        classification=_classification(config.classification),
        clinicians=clinicians,
        notices=notices,
    )
