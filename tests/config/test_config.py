"""The validator: every problem at once, each with file:line, key path and a plain message."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon import config
from caldaemon.cli import main
from caldaemon.errors import ConfigError
from caldaemon.secret import read_secret

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
timezone: America/Toronto
clinicians:
  - id: lee
    rules: standard
    calendars:
      - {id: work, provider: ics, path: work.ics}
rule_sets:
  standard:
    max_sessions_per_day: 6
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(textwrap.dedent(text), Path("config.yaml"))
    return [str(p) for p in caught.value.problems]


def test_the_minimal_config_is_valid_and_fills_defaults():
    settings = config.parse(GOOD, Path("/etc/caldaemon/config.yaml"))
    assert settings.daemon.horizon == timedelta(days=28)
    assert settings.classification.levels == ("low", "moderate", "high")
    assert settings.classification.default_level == "moderate"
    assert settings.classification.tags["heavy"] == "high"
    assert settings.clinicians[0].calendars[0].path == Path("/etc/caldaemon/work.ics")


def test_a_config_in_etc_caldaemon_keeps_its_state_where_the_system_unit_does(monkeypatch):
    # `sudo caldaemon doctor|status|auth` on the system config use the unit's folder
    # (StateDirectory=caldaemon), not root's own ~/.local/state (issue 14).
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    system = config.parse(GOOD, Path("/etc/caldaemon/config.yaml"))
    assert system.daemon.state_dir == Path("/var/lib/caldaemon")
    elsewhere = config.parse(GOOD, Path("/srv/practice/config.yaml"))
    assert elsewhere.daemon.state_dir == Path("~/.local/state/caldaemon").expanduser()
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/other:/var/lib/more")
    under_unit = config.parse(GOOD, Path("/etc/caldaemon/config.yaml"))
    assert under_unit.daemon.state_dir == Path("/var/lib/other")
    chosen = GOOD.replace("clinicians:", "daemon: {state_dir: /srv/state}\nclinicians:", 1)
    assert config.parse(chosen, Path("/etc/caldaemon/config.yaml")).daemon.state_dir == Path(
        "/srv/state"
    )


def test_the_example_config_is_valid():
    settings = config.load(ROOT / "config.example.yaml")
    assert [c.id for c in settings.clinicians] == ["lee"]


BAD = [
    (
        "duration",
        GOOD
        + """\
    buffers:
      - {after: high, length: 15m}
      - {after: moderate, length: 15 minutes}
""",
        [
            "config.yaml:12: rule_sets.standard.buffers[1].length: '15 minutes' is not a duration "
            "like 15m, 1h30m or 14d"
        ],
    ),
    (
        "duplicate key",
        GOOD + "    max_sessions_per_day: 5\n",
        [
            "config.yaml:10: rule_sets.standard.max_sessions_per_day: duplicate key "
            "'max_sessions_per_day' (first given on line 9)"
        ],
    ),
    (
        "unknown key with a suggestion",
        GOOD + "    max_session_per_day: 5\n",
        [
            "config.yaml:10: rule_sets.standard.max_session_per_day: unknown key "
            "'max_session_per_day' (did you mean 'max_sessions_per_day'?)"
        ],
    ),
    (
        "secret in the file",
        GOOD.replace("path: work.ics}", "path: w.ics, password: x}"),
        [
            "config.yaml:6: clinicians[0].calendars[0].password: unknown key 'password': secrets "
            "never sit in the config; use password_file (a file holding it) or password_env "
            "(an environment variable)"
        ],
    ),
    (
        "unknown time zone",
        GOOD.replace("America/Toronto", "Mars/Olympus"),
        [
            "config.yaml:1: timezone: unknown time zone 'Mars/Olympus' (use an IANA name like "
            "Europe/Berlin)"
        ],
    ),
    (
        "tag to a missing level",
        "classification:\n  tags: {heavy: extreme}\n" + GOOD,
        [
            "config.yaml:2: classification.tags.heavy: 'extreme' is neither a level nor a kind "
            "(use "
            "one of: accept, admin, day_off, high, low, moderate, peer_support, personal, session, "
            "supervision)"
        ],
    ),
    (
        "level named like a kind",
        "classification:\n  levels: [low, supervision]\n  default_level: low\n" + GOOD,
        [
            "config.yaml:2: classification.levels[1]: level 'supervision' has the name of a kind; "
            "choose another name"
        ],
    ),
    (
        "overlapping hours",
        GOOD
        + """\
    working_hours: {mon-thu: "09:00-17:00", thu: "18:00-20:00"}
""",
        [
            "config.yaml:10: rule_sets.standard.working_hours: thu is given in both 'mon-thu' and "
            "'thu'"
        ],
    ),
    (
        "overlapping ranges of one day",
        GOOD
        + """\
    working_hours: {fri: ["09:00-12:00", "11:00-15:00"]}
""",
        ["config.yaml:10: rule_sets.standard.working_hours: the ranges of fri ('fri') overlap"],
    ),
    (
        "buffers_to naming nothing",
        GOOD.replace("    calendars:", "    buffers_to: wrok\n    calendars:"),
        [
            "config.yaml:5: clinicians[0].buffers_to: no calendar 'wrok' among this clinician's "
            "calendars (work)"
        ],
    ),
    (
        "rules naming nothing",
        GOOD.replace("rules: standard", "rules: standrd"),
        [
            "config.yaml:4: clinicians[0].rules: no rule set named 'standrd' (rule_sets has: "
            "standard)"
        ],
    ),
    (
        "unquoted clock read as text still checked",
        GOOD + "    level_limits: {high: {latest_start: 25:00}}\n",
        [
            "config.yaml:10: rule_sets.standard.level_limits.high.latest_start: '25:00' is not a "
            "time of day like 09:30"
        ],
    ),
    (
        "wrong type",
        GOOD + "    max_sessions_per_week: lots\n",
        ["config.yaml:10: rule_sets.standard.max_sessions_per_week: 'lots' is not a whole number"],
    ),
    (
        "unknown provider",
        GOOD.replace("provider: ics", "provider: icloud"),
        [
            "config.yaml:6: clinicians[0].calendars[0].provider: 'icloud' is not a provider: use "
            "google, outlook, ics or caldav"
        ],
    ),
    (
        "missing required key",
        GOOD.replace("    rules: standard\n", ""),
        ["config.yaml:3: clinicians[0]: missing required key 'rules'"],
    ),
    (
        "read-only feed as buffers_to",
        GOOD.replace("path: work.ics}", "url: https://x.example/f.ics}").replace(
            "    calendars:", "    buffers_to: work\n    calendars:"
        ),
        [
            "config.yaml:5: clinicians[0].buffers_to: calendar 'work' is a read-only feed (url); "
            "buffers need a calendar caldaemon can write to"
        ],
    ),
    (
        "severity for an unknown rule",
        GOOD + "    severity: {max_load: warning}\n",
        [
            "config.yaml:10: rule_sets.standard.severity.max_load: 'max_load' is not a rule id "
            "(did you mean 'max_daily_load'?)"
        ],
    ),
    (
        "override with a bad value",
        GOOD.replace(
            "    rules: standard\n",
            "    rules: standard\n    overrides: {max_sessions_per_day: -1}\n",
        ),
        ["config.yaml:5: clinicians[0].overrides.max_sessions_per_day: -1 must be at least 0"],
    ),
    (
        "not YAML",
        "clinicians: [\n",
        ["config.yaml:2: not valid YAML: expected the node content, but found '<stream end>'"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in BAD], ids=[name for name, _, _ in BAD]
)
def test_bad_config_gets_this_exact_message(text, expected):
    assert problems(text) == expected


def test_every_problem_is_reported_at_once_in_line_order():
    text = GOOD.replace("America/Toronto", "Nowhere/Land") + (
        "    max_sessions_per_week: lots\n    bogus: 1\n"
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["1", "10", "11"]


def test_yaml_1_1_words_stay_words():
    settings = config.parse(
        "classification:\n  tags: {off: day_off, no: low, on: high}\n" + GOOD, Path("c.yaml")
    )
    assert settings.classification.tags["off"] == "day_off"
    assert settings.classification.tags["no"] == "low"


def test_validate_prints_problems_and_exits_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(GOOD + "    bogus: 1\n")
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 2
    assert result.output == f"{path}:10: rule_sets.standard.bogus: unknown key 'bogus'\n"


def test_validate_summarises_a_good_config():
    result = CliRunner().invoke(main, ["validate", "--config", str(ROOT / "config.example.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 clinician(s): lee" in result.output


def test_missing_config_file_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert (
        result.output
        == f"{tmp_path / 'nope.yaml'}: cannot read the config: No such file or directory\n"
    )


def test_secret_files_are_read_from_the_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "smtp").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = config.parse(
        GOOD
        + textwrap.dedent("""\
        notices:
          email:
            from: caldaemon@example.org
            smtp: {host: smtp.example.org, username: u, password_file: smtp}
        """),
        Path("/etc/caldaemon/config.yaml"),
    )
    smtp = settings.notices.email.smtp
    assert read_secret(smtp.password_file, smtp.password_env, what="the SMTP password") == "s3cret"


def test_validate_json_lists_problems_with_their_place(tmp_path):
    import json

    path = tmp_path / "config.yaml"
    path.write_text(GOOD + "    bogus: 1\n")
    result = CliRunner().invoke(main, ["validate", "--config", str(path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output) == {
        "ok": False,
        "problems": [
            {
                "file": str(path),
                "line": 10,
                "path": "rule_sets.standard.bogus",
                "message": "unknown key 'bogus'",
            }
        ],
    }
    good = CliRunner().invoke(
        main, ["validate", "--config", str(ROOT / "config.example.yaml"), "--json"]
    )
    summary = json.loads(good.output)
    assert good.exit_code == 0 and summary["ok"] and summary["clinicians"] == ["lee"]
    assert "level_limits.latest_start" in summary["rules"] and "severity" not in summary["rules"]


def test_ok_accepts_unless_the_tags_choose_another_word_or_mean_ok_otherwise():
    from tests.support import make_settings

    def tags(mapping: dict[str, str]) -> dict[str, str]:
        return make_settings({}, classification={"tags": mapping}).classification.tags

    assert tags({"heavy": "high"})["ok"] == "accept"
    assert "ok" not in tags({"heavy": "high", "known": "accept"})
    assert tags({"ok": "low"})["ok"] == "low"
