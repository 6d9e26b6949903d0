"""A platform's config: thousands of clinicians in one file (issue 15). It reads in time
linear in its size, every problem among thousands is still reported with its line, the
file is read once per command, and the bound on its size (MAX_CONFIG_BYTES) refuses the
first byte over it with the file named, as it did at 1 MB."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from caldaemon.cli import main
from caldaemon.config.paths import path_warnings
from tests.config.opened import opened_files, times_opened

loader = sys.modules["caldaemon.config.load"]  # the module, not the function config.load
CLINICIANS = 3000
HEAD = """\
timezone: America/Toronto
classification:
  tags: {heavy: high}
rule_sets:
  standard:
    working_hours: {mon-fri: "08:00-19:00"}
    buffers: [{after: high, length: 15m, title: Grounding time}]
clinicians:
"""
CLINICIAN = """\
  - id: c{n:05d}
    email: c{n:05d}@practice.example
    rules: standard
    calendars:
      - id: work
        provider: {provider}
        path: /srv/calendars/c{n:05d}.ics
      - id: home
        provider: ics
        path: calendars/c{n:05d}-home.ics
        use: busy
    buffers_to: work
"""


def platform(clinicians: int, *, same_id: bool = False) -> str:
    return HEAD + "".join(
        CLINICIAN.format(n=0 if same_id else n, provider="ics") for n in range(clinicians)
    )


def padded(text: str, size: int) -> str:
    """``text`` with comment lines after it, ``size`` bytes in all."""
    line = "# " + "x" * 77 + "\n"
    missing = size - len(text.encode())
    return text + line * (missing // len(line)) + "#" * (missing % len(line))


def test_thousands_of_clinicians_validate_in_a_file_right_at_the_bound(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(padded(platform(CLINICIANS), loader.MAX_CONFIG_BYTES))
    assert path.stat().st_size == loader.MAX_CONFIG_BYTES
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 0, result.output
    named = ", ".join(f"c{n:05d}" for n in range(10))
    assert f"  {CLINICIANS} clinician(s): {named} and {CLINICIANS - 10:,} more\n" in result.output
    assert f"{2 * CLINICIANS} calendar(s)" in result.output


def test_one_byte_over_the_bound_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(padded(platform(10), loader.MAX_CONFIG_BYTES + 1))
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 2
    megabytes = loader.MAX_CONFIG_BYTES // 2**20
    assert result.output == (
        f"{path}: the config is larger than {megabytes} MB; is this the right file?\n"
    )
    assert megabytes >= 10  # 20,000 clinicians of about 400 bytes fit


def test_an_unknown_clinician_among_thousands_is_named_with_a_few_known_ones(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(platform(CLINICIANS))
    result = CliRunner().invoke(main, ["check", "--config", str(path), "--clinician", "kim"])
    assert result.exit_code == 2
    assert result.output == (
        f"{path}: no clinician 'kim' (known: c00000, c00001, c00002, c00003, c00004, "
        f"c00005, c00006, c00007, c00008, c00009 and {CLINICIANS - 10:,} more)\n"
    )


def test_every_clash_among_thousands_is_reported_on_its_own_line(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(platform(CLINICIANS, same_id=True))
    result = CliRunner().invoke(main, ["validate", "--config", str(path), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.output)["problems"]
    clashes = [p for p in problems if "is used twice" in p["message"]]
    assert len(clashes) == CLINICIANS - 1
    per_entry = CLINICIAN.count("\n")
    assert [p["line"] for p in clashes] == [
        HEAD.count("\n") + 1 + n * per_entry for n in range(1, CLINICIANS)
    ]
    assert clashes[-1]["path"] == f"clinicians[{CLINICIANS - 1}].id"


def test_validate_reads_the_config_once_and_warns_from_that_reading(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(platform(3))
    with opened_files() as opened:
        result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert times_opened(opened, path) == 1
    # Three relative home calendars, each warned about at its own line.
    relative = [line for line in result.output.splitlines() if "is relative" in line]
    assert [line.split(": ")[1] for line in relative] == [
        f"{path}:{HEAD.count(chr(10)) + 10 + n * CLINICIAN.count(chr(10))}" for n in range(3)
    ]


def test_path_warnings_come_from_what_was_read_not_the_file_now(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(platform(2))
    loaded = loader.read(path)
    path.write_text("not: a config\n")
    warned = path_warnings(loaded)
    assert [w.path for w in warned if "is relative" in w.message] == [
        "clinicians[0].calendars[1].path",
        "clinicians[1].calendars[1].path",
    ]


def test_a_mistake_on_the_last_line_of_a_platforms_config_is_found_with_its_line(tmp_path):
    # Over 1 MB the words are LibYAML's (reading it again in Python took 23 s at 7 MB);
    # the place is the same either way.
    text = padded(platform(CLINICIANS), 2**20 + 80) + "\n  - id: [oops\n"
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    assert path.stat().st_size > 2**20
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 2
    last = text.count("\n")
    assert result.output.startswith(f"{path}:{last + 1}: not valid YAML: ")
    small = tmp_path / "small.yaml"
    small.write_text(platform(3) + "  - id: [oops\n")
    result = CliRunner().invoke(main, ["validate", "--config", str(small)])
    assert result.output == (
        f"{small}:{small.read_text().count(chr(10)) + 1}: "
        "not valid YAML: expected ',' or ']', but got '<stream end>'\n"
    )
