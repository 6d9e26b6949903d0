"""Load the config file into typed, cross-checked settings.

Every problem is collected (YAML syntax, duplicate and unknown keys, wrong types, names
that point at nothing) and reported at once, each with file:line and its key path, so a
clinician fixes the file in one pass instead of one error per run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic

from . import config_schema as schema
from . import yamlsource
from .config_checks import Problems, check_references, check_rule_set
from .errors import ConfigError, Problem
from .model import TAGGABLE_KINDS, Kind

DEFAULT_PATH = "~/.config/caldaemon/config.yaml"


@dataclass(frozen=True)
class ClassificationSettings:
    levels: tuple[str, ...]
    weights: dict[str, int]
    default_level: str
    tags: dict[str, str]
    colors: dict[str, str]
    tagged_sessions: bool
    title_pattern: re.Pattern[str] | None
    session_calendars: frozenset[str]

    def rank(self, level: str) -> int:
        return self.levels.index(level)


@dataclass(frozen=True)
class ClinicianSettings:
    id: str
    name: str | None
    email: str | None
    tz: ZoneInfo
    rules: schema.RuleSet
    calendars: tuple[Any, ...]
    buffers_to: str | None

    def calendar(self, calendar_id: str) -> Any:
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

    def clinician(self, clinician_id: str) -> ClinicianSettings:
        for clinician in self.clinicians:
            if clinician.id == clinician_id:
                return clinician
        known = ", ".join(c.id for c in self.clinicians)
        raise ConfigError(
            [Problem(str(self.path), None, "", f"no clinician '{clinician_id}' (known: {known})")]
        )


def default_path() -> Path:
    return Path(os.environ.get("CALDAEMON_CONFIG") or DEFAULT_PATH).expanduser()


def load(path: str | Path | None = None) -> Settings:
    """Read and check the config at ``path``; raise ConfigError listing every problem."""
    file = Path(path).expanduser() if path else default_path()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(str(file), None, "", f"cannot read the config: {reason}")
        raise ConfigError([problem]) from None
    return parse(text, file)


def parse(text: str, file: Path) -> Settings:
    doc = yamlsource.load(text, str(file))
    problems = Problems(doc)
    for path, line, message in doc.problems:
        problems.add(path, message, line=line)
    if not isinstance(doc.data, dict):
        if not doc.problems:
            problems.add((), "the config must be a mapping with 'clinicians' and 'rule_sets'")
        raise ConfigError(problems.sorted())
    config: schema.Config | None = None
    try:
        config = schema.Config.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            problems.add_pydantic(error, ())
    check_references(doc.data, problems)
    if config is not None:
        merged = _merge_overrides(config, doc.data, problems)
    if problems.items or config is None:
        raise ConfigError(problems.sorted())
    return _settings(config, merged, file.resolve().parent, file)


def _merge_overrides(
    config: schema.Config, data: dict[str, Any], problems: Problems
) -> dict[str, schema.RuleSet]:
    """Each clinician's rule set with its ``overrides`` merged over it, key by key."""
    merged: dict[str, schema.RuleSet] = {}
    levels = list(config.classification.levels)
    for index, clinician in enumerate(config.clinicians):
        base = config.rule_sets.get(clinician.rules)
        if base is None:
            continue
        if not clinician.overrides:
            merged[clinician.id] = base
            continue
        raw = {**data["rule_sets"][clinician.rules], **clinician.overrides}
        where: yamlsource.Path = ("clinicians", index, "overrides")
        check_rule_set(clinician.overrides, where, levels, problems)
        try:
            merged[clinician.id] = schema.RuleSet.model_validate(raw)
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


def _settings(
    config: schema.Config, rule_sets: dict[str, schema.RuleSet], base: Path, file: Path
) -> Settings:
    def resolve(path: Path | None) -> Path | None:
        return None if path is None else (base / path.expanduser())

    credentials = os.environ.get("CREDENTIALS_DIRECTORY")

    def resolve_secret(path: Path | None) -> Path | None:
        # systemd's LoadCredential= puts secrets in $CREDENTIALS_DIRECTORY (systemd.exec(5))
        if path is None or path.expanduser().is_absolute() or not credentials:
            return resolve(path)
        return Path(credentials) / path

    tz = ZoneInfo(config.timezone) if config.timezone else system_timezone()
    c = config.classification
    levels = tuple(c.levels)
    default_tags = (
        {lvl: lvl for lvl in levels}
        | {k: k for k in TAGGABLE_KINDS}
        | {"heavy": levels[-1], "light": levels[0], "off": Kind.DAY_OFF.value}
    )
    classification = ClassificationSettings(
        levels=levels,
        weights={
            lvl: c.weights.get(lvl, c.weights.get(lvl.title(), i + 1))
            for i, lvl in enumerate(levels)
        },
        default_level=(c.default_level or levels[len(levels) // 2]).lower(),
        tags={k.lower().lstrip("#"): v.lower() for k, v in (c.tags or default_tags).items()},
        colors={k.lower(): v.lower() for k, v in c.colors.items()},
        tagged_sessions=c.sessions.tagged,
        title_pattern=re.compile(c.sessions.title_matches) if c.sessions.title_matches else None,
        session_calendars=frozenset(c.sessions.calendars),
    )
    clinicians = []
    for clinician in config.clinicians:
        calendars = tuple(
            cal.model_copy(
                update={
                    key: (
                        resolve_secret if key.endswith("_file") or key == "credentials" else resolve
                    )(getattr(cal, key))
                    for key in (
                        "path",
                        "credentials",
                        "token",
                        "certificate_file",
                        "ca_file",
                        "client_secret_file",
                        "password_file",
                    )
                    if getattr(cal, key, None) is not None
                }
            )
            for cal in clinician.calendars
        )
        clinicians.append(
            ClinicianSettings(
                id=clinician.id,
                name=clinician.name,
                email=clinician.email,
                tz=ZoneInfo(clinician.timezone) if clinician.timezone else tz,
                rules=rule_sets[clinician.id],
                calendars=calendars,
                buffers_to=clinician.buffers_to,
            )
        )
    state_dir = resolve(config.daemon.state_dir)
    if "state_dir" not in config.daemon.model_fields_set and os.environ.get("STATE_DIRECTORY"):
        # systemd's StateDirectory= (systemd.exec(5)); may list several, the first is ours.
        state_dir = Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    daemon = config.daemon.model_copy(update={"state_dir": state_dir})
    notices = config.notices
    if notices.email and notices.email.smtp:
        smtp = notices.email.smtp.model_copy(
            update={
                "password_file": resolve_secret(notices.email.smtp.password_file),
                "ca_file": resolve(notices.email.smtp.ca_file),
            }
        )
        notices = notices.model_copy(
            update={"email": notices.email.model_copy(update={"smtp": smtp})}
        )
    return Settings(
        path=file,
        tz=tz,
        daemon=daemon,
        classification=classification,
        clinicians=tuple(clinicians),
        notices=notices,
    )


def secret(file: Path | None, env: str | None, *, what: str) -> str | None:
    """Read a secret from ``*_file`` (already resolved at load) or ``*_env``."""
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
