"""Hostile configs: every value that could hang or crash the daemon, or mislead it, is
refused by ``validate`` with file:line and a plain sentence (DESIGN.md §5 "Failing
closed"). One row per config: the change from a valid config, and the line ``validate``
prints about it. A hang fails the row (an alarm, not a timing assertion)."""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner

from caldaemon.cli import main

BASE = """\
timezone: America/Toronto
daemon:
  poll_interval: 2m
  horizon: 14d
clinicians:
  - id: lee
    email: lee@example.org
    rules: standard
    calendars:
      - id: work
        provider: ics
        path: work.ics
      - id: practice
        provider: ics
        url: https://practice.example.org/feed.ics
    buffers_to: work
rule_sets:
  standard:
    working_hours: {mon-fri: "09:00-17:00"}
    max_sessions_per_day: 6
    level_limits: {high: {max_per_day: 2}}
    breaks: {after_sessions: 3, min_break: 30m}
    no_back_to_back: {level: high, min_gap: 60m}
    buffers:
      - {after: high, length: 15m, title: Grounding time}
    cadence:
      - {kind: supervision, every: 14d}
notices:
  repeat_after: 7d
"""


def replace(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return change


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + textwrap.dedent(extra)


def raw(content: str) -> Callable[[str], str]:
    return lambda _: content


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)

# (name, change, a line validate prints, after "config.yaml:<line>: ")
CASES: list[tuple[str, Callable[[str], str], str]] = [
    # -- sizes, durations and counts that would hang or crash -------------------------
    (
        "cadence every 0d",
        replace("every: 14d", "every: 0d"),
        "rule_sets.standard.cadence[0].every: must be longer than nothing",
    ),
    (
        "poll interval 0m",
        replace("poll_interval: 2m", "poll_interval: 0m"),
        "daemon.poll_interval: must be longer than nothing",
    ),
    (
        "poll interval 5s",
        replace("poll_interval: 2m", "poll_interval: 5s"),
        "daemon.poll_interval: must be at least 10s",
    ),
    (
        "huge length",
        replace("length: 15m", "length: 99999999999999d"),
        "rule_sets.standard.buffers[0].length: '99999999999999d' is longer than 366 days",
    ),
    (
        "horizon 100000d",
        replace("horizon: 14d", "horizon: 100000d"),
        "daemon.horizon: '100000d' is longer than 366 days",
    ),
    (
        "horizon 367d",
        replace("horizon: 14d", "horizon: 367d"),
        "daemon.horizon: '367d' is longer than 366 days",
    ),
    (
        "horizon 0d",
        replace("horizon: 14d", "horizon: 0d"),
        "daemon.horizon: must be longer than nothing",
    ),
    (
        "buffer length 0m",
        replace("length: 15m", "length: 0m"),
        "rule_sets.standard.buffers[0].length: must be longer than nothing",
    ),
    (
        "negative duration",
        replace("length: 15m", "length: -15m"),
        "rule_sets.standard.buffers[0].length: '-15m' is not a duration",
    ),
    (
        "repeat_after 0d",
        replace("repeat_after: 7d", "repeat_after: 0d"),
        "notices.repeat_after: must be longer than nothing",
    ),
    (
        "timeout 0s",
        replace(
            "url: https://practice.example.org/feed.ics",
            "url: https://practice.example.org/feed.ics\n        timeout: 0s",
        ),
        "clinicians[0].calendars[1].timeout: must be longer than nothing",
    ),
    (
        "duration as a number",
        replace("every: 14d", "every: 14"),
        "rule_sets.standard.cadence[0].every: 14 is not a duration",
    ),
    (
        "duration with spaces",
        replace("length: 15m", "length: 15 minutes"),
        "rule_sets.standard.buffers[0].length: '15 minutes' is not a duration",
    ),
    (
        "negative count",
        replace("max_sessions_per_day: 6", "max_sessions_per_day: -1"),
        "rule_sets.standard.max_sessions_per_day: -1 must be at least 0",
    ),
    (
        "count as text",
        replace("max_sessions_per_day: 6", "max_sessions_per_day: six"),
        "rule_sets.standard.max_sessions_per_day: 'six' is not a whole number",
    ),
    (
        "count as float",
        replace("max_sessions_per_day: 6", "max_sessions_per_day: 6.5"),
        "rule_sets.standard.max_sessions_per_day: 6.5 is not a whole number",
    ),
    (
        "breaks after zero",
        replace("after_sessions: 3", "after_sessions: 0"),
        "rule_sets.standard.breaks.after_sessions: 0 must be at least 1",
    ),
    (
        "work days over 7",
        replace(
            "max_sessions_per_day: 6", "max_sessions_per_day: 6\n    max_work_days_per_week: 8"
        ),
        "rule_sets.standard.max_work_days_per_week: 8 must be at most 7",
    ),
    (
        "port out of range",
        replace(
            "  repeat_after: 7d\n",
            "  repeat_after: 7d\n  email:\n    from: caldaemon@example.org\n    smtp: {host: smtp.example.org, port: 70000}\n",
        ),
        "notices.email.smtp.port: 70000 must be at most 65535",
    ),
    # -- YAML that expands or misleads ------------------------------------------------
    ("alias bomb", raw(ALIAS_BOMB), "anchors and aliases (&name, *name) are not allowed"),
    (
        "one anchor",
        replace("rule_sets:\n  standard:", "rule_sets:\n  standard: &s"),
        "anchors and aliases (&name, *name) are not allowed",
    ),
    (
        "brackets nested a thousand deep",
        raw("timezone: " + "[" * 1000 + "]" * 1000 + "\n"),
        "the config nests lists or mappings hundreds deep",
    ),
    (
        "brackets nested past LibYAML's limit",
        raw("timezone: " + "[" * 5000 + "]" * 5000 + "\n"),
        "the config nests lists or mappings hundreds deep",
    ),
    ("not yaml", raw("clinicians: [\n"), "not valid YAML"),
    ("tab indentation", raw("clinicians:\n\t- id: lee\n"), "not valid YAML"),
    ("control character", raw("timezone: \x07\n"), "not valid YAML"),
    ("a list at the top", raw("- a\n- b\n"), "the config must be a mapping"),
    ("empty file", raw(""), "the config must be a mapping"),
    (
        "a python tag",
        raw("timezone: !!python/object:os.system ls\n"),
        "could not determine a constructor",
    ),
    (
        "duplicate key",
        replace("  horizon: 14d\n", "  horizon: 14d\n  horizon: 7d\n"),
        "daemon.horizon: duplicate key 'horizon'",
    ),
    ("complex key", raw("? [a, b]\n: c\n"), "a key must be a plain word or number"),
    # PyYAML's constructors raised ValueError, KeyError, AttributeError here: a traceback.
    ("a number that is not", raw("timezone: !!int x\n"), "timezone: 'x' cannot be read as int"),
    ("a truth that is not", raw("timezone: !!bool maybe\n"), "'maybe' cannot be read as bool"),
    ("a date that is not", raw("timezone: !!timestamp x\n"), "'x' cannot be read as timestamp"),
    # -- names that point at nothing --------------------------------------------------
    (
        "unknown key",
        replace("  horizon: 14d", "  horizons: 14d"),
        "daemon.horizons: unknown key 'horizons' (did you mean 'horizon'?)",
    ),
    (
        "secret inline",
        replace("        path: work.ics", "        path: work.ics\n        password: hunter2"),
        "clinicians[0].calendars[0].password: unknown key 'password': secrets never sit in the config",
    ),
    (
        "unknown zone",
        replace("timezone: America/Toronto", "timezone: Mars/Olympus"),
        "timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        "unknown clinician zone",
        replace("    email: lee@example.org", "    email: lee@example.org\n    timezone: Nowhere"),
        "clinicians[0].timezone: unknown time zone 'Nowhere'",
    ),
    (
        "rules naming nothing",
        replace("    rules: standard", "    rules: standrd"),
        "clinicians[0].rules: no rule set named 'standrd'",
    ),
    (
        "buffers_to naming nothing",
        replace("    buffers_to: work", "    buffers_to: wrk"),
        "clinicians[0].buffers_to: no calendar 'wrk'",
    ),
    (
        "buffers_to a feed",
        replace("    buffers_to: work", "    buffers_to: practice"),
        "clinicians[0].buffers_to: calendar 'practice' is a read-only feed",
    ),
    (
        "level naming nothing",
        replace("level_limits: {high:", "level_limits: {extreme:"),
        "rule_sets.standard.level_limits.extreme: 'extreme' is not a level",
    ),
    (
        "buffer after nothing",
        replace("{after: high, length", "{after: severe, length"),
        "rule_sets.standard.buffers[0].after: 'severe' is not a level",
    ),
    (
        "back to back level",
        replace("no_back_to_back: {level: high", "no_back_to_back: {level: hi"),
        "rule_sets.standard.no_back_to_back.level: 'hi' is not a level",
    ),
    (
        "cadence kind",
        replace("kind: supervision", "kind: supervisor"),
        "rule_sets.standard.cadence[0].kind: 'supervisor' is not a kind",
    ),
    (
        "unknown top-level key",
        append("""\
        rule_sets_extra: 1
        """),
        "rule_sets_extra: unknown key 'rule_sets_extra'",
    ),
    (
        "severity naming nothing",
        replace(
            "max_sessions_per_day: 6",
            "max_sessions_per_day: 6\n    severity: {max_session: warning}",
        ),
        "rule_sets.standard.severity.max_session: 'max_session' is not a rule id",
    ),
    (
        "severity value",
        replace(
            "max_sessions_per_day: 6", "max_sessions_per_day: 6\n    severity: {breaks: fatal}"
        ),
        "rule_sets.standard.severity.breaks: 'fatal' is not allowed here",
    ),
    (
        "tag to nothing",
        append("""\
        classification:
          tags: {heavy: huge}
        """),
        "classification.tags.heavy: 'huge' is neither a level nor a kind",
    ),
    (
        "level named like a kind",
        append("""\
        classification:
          levels: [low, session, high]
        """),
        "classification.levels[1]: level 'session' has the name of a kind",
    ),
    (
        "level twice",
        append("""\
        classification:
          levels: [low, low]
        """),
        "classification.levels: a level is listed twice",
    ),
    (
        "no levels",
        append("""\
        classification:
          levels: []
        """),
        "classification.levels: must not be empty",
    ),
    (
        "default level naming nothing",
        append("""\
        classification:
          default_level: medium
        """),
        "classification.default_level: 'medium' is not a level",
    ),
    (
        "bad regex",
        append("""\
        classification:
          sessions: {title_matches: '(unclosed'}
        """),
        "classification.sessions.title_matches: '(unclosed' is not a valid regular expression",
    ),
    (
        "sessions calendar naming nothing",
        append("""\
        classification:
          sessions: {calendars: [nope]}
        """),
        "classification.sessions.calendars[0]: no calendar with id 'nope'",
    ),
    (
        "clinician twice",
        replace(
            "rule_sets:",
            "  - {id: lee, rules: standard, calendars: [{id: x, provider: ics, path: x.ics}]}\nrule_sets:",
        ),
        "clinicians[1].id: clinician id 'lee' is used twice",
    ),
    (
        "calendar twice",
        replace("      - id: practice", "      - id: work"),
        "clinicians[0].calendars[1].id: calendar id 'work' is used twice",
    ),
    (
        "no clinicians",
        replace("clinicians:\n  - id: lee", "clinicians: []\nunused:\n  - id: lee"),
        "clinicians: must not be empty",
    ),
    (
        "missing rules",
        replace("    rules: standard\n", ""),
        "clinicians[0]: missing required key 'rules'",
    ),
    (
        "bad id",
        replace("  - id: lee", "  - id: 'lee smith'"),
        "clinicians[0].id: 'lee smith' is not an id",
    ),
    (
        "bad email",
        replace("email: lee@example.org", "email: lee-at-example"),
        "clinicians[0].email: 'lee-at-example' is not an email address",
    ),
    # -- calendars --------------------------------------------------------------------
    (
        "unknown provider",
        replace("        provider: ics\n        path", "        provider: icloud\n        path"),
        "clinicians[0].calendars[0].provider: 'icloud' is not a provider: use google, outlook, ics or caldav",
    ),
    (
        "no provider",
        replace("      - id: work\n        provider: ics\n", "      - id: work\n"),
        "clinicians[0].calendars[0]: missing required key 'provider'",
    ),
    (
        "ics path and url",
        replace(
            "        path: work.ics",
            "        path: work.ics\n        url: https://x.example.org/a.ics",
        ),
        "clinicians[0].calendars[0]: an ics calendar needs exactly one of 'path' or 'url'",
    ),
    (
        "ics neither",
        replace("        path: work.ics\n", ""),
        "clinicians[0].calendars[0]: an ics calendar needs exactly one of 'path' or 'url'",
    ),
    (
        "ftp feed",
        replace(
            "url: https://practice.example.org/feed.ics", "url: ftp://practice.example.org/feed.ics"
        ),
        "clinicians[0].calendars[1].url: 'ftp://practice.example.org/feed.ics' is not an http(s) URL",
    ),
    (
        "use of nothing",
        replace("        path: work.ics", "        path: work.ics\n        use: sometimes"),
        "clinicians[0].calendars[0].use: 'sometimes' is not allowed here",
    ),
    (
        "outlook app-only secret missing",
        replace(
            "      - id: practice\n        provider: ics\n        url: https://practice.example.org/feed.ics",
            "      - id: practice\n        provider: outlook\n        tenant: t\n        client_id: c\n        user: lee@example.org\n        auth: client_credentials",
        ),
        "clinicians[0].calendars[1].auth: client_credentials needs client_secret_file",
    ),
    (
        "google without credentials",
        replace(
            "      - id: practice\n        provider: ics\n        url: https://practice.example.org/feed.ics",
            "      - id: practice\n        provider: google",
        ),
        "clinicians[0].calendars[1]: missing required key 'credentials'",
    ),
    (
        "caldav without url",
        replace(
            "      - id: practice\n        provider: ics\n        url: https://practice.example.org/feed.ics",
            "      - id: practice\n        provider: caldav",
        ),
        "clinicians[0].calendars[1]: missing required key 'url'",
    ),
    # -- rule values ------------------------------------------------------------------
    (
        "hours overlap",
        replace(
            'working_hours: {mon-fri: "09:00-17:00"}',
            'working_hours: {mon-fri: ["09:00-13:00", "12:00-17:00"]}',
        ),
        "rule_sets.standard.working_hours: the ranges of mon ('mon-fri') overlap",
    ),
    (
        "hours backwards",
        replace('"09:00-17:00"', '"17:00-09:00"'),
        "rule_sets.standard.working_hours: '17:00-09:00' ends before it starts",
    ),
    (
        "hours a day twice",
        replace(
            'working_hours: {mon-fri: "09:00-17:00"}',
            'working_hours: {mon-fri: "09:00-17:00", wed: "10:00-12:00"}',
        ),
        "rule_sets.standard.working_hours: wed is given in both 'mon-fri' and 'wed'",
    ),
    (
        "hour 25",
        replace('"09:00-17:00"', '"09:00-25:00"'),
        "rule_sets.standard.working_hours: '25:00' is not a time of day",
    ),
    (
        "not a weekday",
        replace("mon-fri", "mon-fry"),
        "rule_sets.standard.working_hours: 'fry' is not a weekday",
    ),
    (
        "digest at 7:75",
        replace("  repeat_after: 7d", '  repeat_after: 7d\n  digest_at: "7:75"'),
        "notices.digest_at: '7:75' is not a time of day",
    ),
    (
        "privacy of nothing",
        replace("  repeat_after: 7d", "  repeat_after: 7d\n  privacy: none"),
        "notices.privacy: 'none' is not allowed here: use 'minimal', 'redacted' or 'full'",
    ),
    (
        "smtp username without password",
        replace(
            "  repeat_after: 7d\n",
            "  repeat_after: 7d\n  email:\n    from: caldaemon@example.org\n    smtp: {host: smtp.example.org, username: u}\n",
        ),
        "notices.email.smtp.username: a username needs password_file or password_env",
    ),
]


@pytest.fixture
def no_hang() -> Iterator[None]:
    """A config that hangs validation fails its row instead of the suite."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("validate did not finish within 5 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(BASE)
    result = CliRunner().invoke(main, ["validate", "--config", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output


def test_there_are_at_least_sixty_hostile_configs() -> None:
    assert len(CASES) >= 60
    assert len({name for name, _, _ in CASES}) == len(CASES)


WORST: list[tuple[float, str]] = []


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_hostile_config_is_refused_with_its_line_and_a_sentence(
    tmp_path: Path, no_hang: None, name: str, change: Callable[[str], str], expected: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(change(BASE))
    began = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    WORST.append((time.perf_counter() - began, name))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    printed = result.output.splitlines()
    assert any(expected in line for line in printed), printed
    line = next(line for line in printed if expected in line)
    assert line.startswith(f"{path}:"), line
