"""``caldaemon init`` (DESIGN.md §12): the real command in a pseudo-terminal, answered as
a person answers it, and what it writes read back by the real config loader."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pexpect
from hypothesis import given
from hypothesis import strategies as st

from caldaemon import config
from caldaemon.config import yaml
from caldaemon.config.template import scalar
from tests.cli.init_support import (
    OFFERED,
    add_google_service_account,
    add_outlook_app,
    answer,
    cwd,
    default_config,
    env,
    finish,
    run,
    spawn,
    take_every_default,
)

__all__ = ["cwd", "env"]  # the fixtures

NOW = "2026-11-30T08:00"


def test_the_dialogue_writes_what_was_answered(env: dict[str, str], cwd: Path) -> None:
    target = cwd / "conf" / "caldaemon.yaml"
    child = spawn(env, cwd, "--config", "conf/caldaemon.yaml")
    answer(child, r"time zone \[Europe/Berlin", "America/Toronto")
    # A name with YAML's own characters in it reads back exactly.
    answer(child, "Your name", 'Dr. Sam Lee: "Trauma" #1')
    answer(child, r"short id for you \(letters, digits, - _ \.\) \[sam", "lee")
    answer(child, "email address", "sam.lee@example.org")
    answer(child, r"Calendar provider \(ics, google, outlook, caldav\) \[ics", "")
    answer(child, r"id for this calendar \[work", "practice")
    answer(child, "Path of the .ics file", "cals/practice.ics")
    answer(child, "client sessions", "")
    answer(child, r"Add another calendar\? \[y/N", "y")
    answer(child, "Calendar provider", "ics")
    answer(child, r"id for this calendar \[calendar2", "personal")
    answer(child, "Path of the .ics file", "https://feeds.example.org/lee.ics")
    answer(child, "User name for the feed", "")
    answer(child, "client sessions", "busy")
    answer(child, "Add another calendar", "y")
    answer(child, "Calendar provider", "caldav")
    answer(child, "id for this calendar", "dav")
    answer(child, "Address of the CalDAV server", "https://dav.example.org/lee/therapy/")
    answer(child, "Calendar on that server", "")
    answer(child, "User name", "lee")
    answer(child, "File holding the password", "secrets/dav")
    answer(child, "client sessions", "sessions")
    answer(child, "Add another calendar", "n")
    answer(
        child,
        r"buffer blocks \(practice, dav, or none to only report\) \[practice",
        "dav",
    )
    answer(child, r"Add another clinician.*\[y/N", "")
    answer(child, r"Working days \[mon-fri", "mon-thu")
    answer(child, "Working hours", "09:00-12:00, 13:00 - 17:00")
    answer(child, r"Days off.*\[fri,sat,sun", "")
    answer(child, r"sessions a day.*\[6", "5")
    answer(child, r"sessions a week \[22", "20")
    answer(child, r"high-intensity sessions a day \[2", "")
    answer(child, r"high-intensity sessions a week \[8", "6")
    answer(child, r"Latest start.*\[15:00", "15:30")
    answer(child, r"Grounding time.*\[15m", "20m")
    answer(child, r"Notes time.*\[10m", "none")
    answer(child, r"Supervision.*\[14d", "21d")
    answer(child, r"Notices by email.*\(email, maildir\) \[maildir", "email")
    answer(child, r"Sender address.*\[sam.lee@example.org", "")
    answer(child, r"SMTP server \[smtp.example.org", "mail.example.org")
    answer(child, r"Connection security \(starttls, tls\) \[starttls", "")
    answer(child, r"Port \[587", "")
    answer(child, "SMTP user name", "caldaemon")
    answer(child, "SMTP password", "/run/credentials/caldaemon.service/smtp")
    output = finish(child)
    assert child.exitstatus == 0, output
    assert f"Wrote {target}: it validates" in output

    settings = config.load(target)
    assert settings.tz.key == "America/Toronto"
    lee = settings.clinician("lee")
    assert (lee.name, lee.email) == ('Dr. Sam Lee: "Trauma" #1', "sam.lee@example.org")
    practice, personal, dav = lee.calendars
    # Relative answers are written in full: the file still works when copied elsewhere.
    assert practice.path == cwd / "cals" / "practice.ics"  # type: ignore[attr-defined]
    assert f"path: {cwd}/cals/practice.ics" in target.read_text()
    assert (personal.url, personal.use) == ("https://feeds.example.org/lee.ics", "busy")  # type: ignore[attr-defined]
    assert dav.url == "https://dav.example.org/lee/therapy/"  # type: ignore[attr-defined]
    assert dav.password_file == cwd / "secrets" / "dav"  # type: ignore[attr-defined]
    assert lee.buffers_to == "dav"
    rules = lee.rules
    assert rules.working_hours == {day: ((540, 720), (780, 1020)) for day in range(4)}
    assert rules.days_off == ["fri", "sat", "sun"]
    assert (rules.max_sessions_per_day, rules.max_sessions_per_week) == (5, 20)
    high = rules.level_limits["high"]
    assert (high.max_per_day, high.max_per_week, high.latest_start) == (
        2,
        6,
        15 * 60 + 30,
    )
    assert [(b.level, b.length) for b in rules.buffers] == [("high", timedelta(minutes=20))]
    assert [(c.kind, c.every) for c in rules.cadence] == [("supervision", timedelta(days=21))]
    email = settings.notices.email
    assert email is not None and email.smtp is not None
    assert (email.sender, email.smtp.host, email.smtp.port) == (
        "sam.lee@example.org",
        "mail.example.org",
        587,
    )
    assert (email.smtp.security, email.smtp.username) == ("starttls", "caldaemon")
    assert str(email.smtp.password_file) == "/run/credentials/caldaemon.service/smtp"
    # Every key comes with its explanation.
    text = target.read_text()
    assert "# When sessions may happen" in text and "# Limits for high-intensity" in text
    validated = run(env, cwd, "validate", "--config", str(target), "--json")
    assert json.loads(validated.stdout)["ok"] is True, validated.stdout + validated.stderr


def test_wrong_answers_are_asked_again_with_what_is_wrong(env: dict[str, str], cwd: Path) -> None:
    child = spawn(env, cwd, "--config", "config.yaml")
    answer(child, "time zone", "Mars/Olympus_Mons")
    child.expect("'Mars/Olympus_Mons' is not an IANA time zone")
    answer(child, "time zone", "Europe/Berln")
    child.expect("did you mean Europe/Berlin")
    answer(child, "time zone", "Europe/Berlin")
    answer(child, "Your name", "")
    answer(child, "short id for you", "dr lee")
    child.expect("'dr lee' is not an id")
    answer(child, "short id for you", "lee")
    answer(child, "email address", "lee at example")
    child.expect("'lee at example' is not an email address")
    answer(child, "email address", "none")
    answer(child, "Calendar provider", "exchange")
    child.expect("'exchange' is not one of")
    answer(child, "Calendar provider", "")
    answer(child, "id for this calendar", "")
    answer(child, "Path of the .ics file", "https://lee:secret@feeds.example.org/x.ics")
    child.expect("the URL holds a user name or password")
    answer(child, "Path of the .ics file", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, "buffer blocks", "elsewhere")
    child.expect(r"choose one of: work \(or none\)")
    answer(child, "buffer blocks", "")
    answer(child, "Add another clinician", "")
    answer(child, "Working days", "mon-someday")
    child.expect("'someday' is not a weekday")
    answer(child, "Working days", "")
    answer(child, "Working hours", "09:00-25:00")
    child.expect("'25:00' is not a time of day like 09:30")
    answer(child, "Working hours", "17:00-09:00")
    child.expect("ends before it starts")
    answer(child, "Working hours", "09:00-13:00, 12:00-17:00")
    child.expect("overlap")
    answer(child, "Working hours", "08:00-16:00")
    answer(child, "Days off", "")
    answer(child, "sessions a day", "many")
    child.expect("'many' is not a number")
    answer(child, "sessions a day", "none")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output

    rules = config.load(cwd / "config.yaml").clinician("lee").rules
    assert rules.working_hours == {day: ((480, 960),) for day in range(5)}
    assert rules.max_sessions_per_day is None
    assert rules.max_sessions_per_week == 22


def test_defaults_validate_and_check_runs_on_them(env: dict[str, str], cwd: Path) -> None:
    done = run(env, cwd, "init", "--defaults")
    assert done.returncode == 0, done.stderr
    target = default_config(env)
    assert "caldaemon doctor" in done.stdout and "caldaemon service install --user" in done.stdout
    settings = config.load(target)
    assert settings.tz.key == "Europe/Berlin"  # guessed from the system (TZ)
    (clinician,) = settings.clinicians
    assert clinician.id == "sam"
    (calendar,) = clinician.calendars
    calendar_file = calendar.path  # type: ignore[attr-defined]
    assert calendar_file == target.parent / "work.ics" and clinician.buffers_to == "work"
    assert settings.notices.email is None  # notices to the Maildir: no account needed

    # The calendar file the config names, as a calendar app exports it: a heavy session
    # late on Monday crosses the default latest start of 15:00.
    calendar_file.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        "UID:late@test\r\nDTSTAMP:20261101T000000Z\r\n"
        "DTSTART;TZID=Europe/Berlin:20261130T160000\r\n"
        "DTEND;TZID=Europe/Berlin:20261130T165000\r\n"
        "SUMMARY:Session #heavy\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    checked = run(env, cwd, "check", "--config", str(target), "--now", NOW, "--json")
    assert checked.returncode == 1, checked.stderr
    result = json.loads(checked.stdout)
    assert result["now"] == "2026-11-30T08:00:00+01:00"
    assert "level_limits.latest_start" in {v["rule"] for v in result["violations"]}
    assert [(b["title"], b["start"]) for b in result["buffers"]] == [
        ("Grounding time", "2026-11-30T16:50:00+01:00")
    ]


def test_the_config_is_private_and_its_new_folders_too(env: dict[str, str], cwd: Path) -> None:
    done = run(env, cwd, "init", "--defaults")
    assert done.returncode == 0, done.stderr
    target = default_config(env)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for folder in (target.parent, target.parent.parent):  # caldaemon/ and .config/
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_caldaemon_config_names_where_it_goes(env: dict[str, str], cwd: Path) -> None:
    target = cwd / "elsewhere" / "mine.yaml"
    done = run({**env, "CALDAEMON_CONFIG": str(target)}, cwd, "init", "--defaults")
    assert done.returncode == 0, done.stderr
    assert config.load(target).clinicians[0].id == "sam"
    assert not default_config(env).exists()
    # The next steps need no --config: the file is where caldaemon looks.
    assert "--config" not in done.stdout


def test_defaults_never_replace_a_file(env: dict[str, str], cwd: Path) -> None:
    target = cwd / "config.yaml"
    target.write_bytes(b"# mine\n")
    done = run(env, cwd, "init", "--config", str(target), "--defaults")
    assert done.returncode == 2
    assert "exists already; --defaults never replaces a file" in done.stderr
    assert target.read_bytes() == b"# mine\n"


def test_an_existing_file_stays_unless_replacing_is_confirmed(
    env: dict[str, str], cwd: Path
) -> None:
    target = cwd / "config.yaml"
    target.write_bytes(b"# mine\n")
    child = spawn(env, cwd, "--config", str(target))
    answer(child, r"exists already\. Replace it\? \[y/N", "")
    output = finish(child)
    assert child.exitstatus == 1 and "left unchanged" in output
    assert target.read_bytes() == b"# mine\n"

    child = spawn(env, cwd, "--config", str(target))
    answer(child, "Replace it", "y")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    assert config.load(target).clinicians[0].id == "sam"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@given(st.text())
def test_any_answer_is_written_so_that_it_reads_back_as_typed(text: str) -> None:
    """A name or a path can hold YAML's own characters (':', '#', quotes), look like a
    number or a boolean, or hold characters YAML may not carry as they are."""
    document = yaml.load(f"name: {scalar(text)}\n", "config.yaml")
    assert (document.problems, document.data) == ([], {"name": text})


def test_leaving_the_dialogue_midway_writes_nothing(env: dict[str, str], cwd: Path) -> None:
    child = spawn(env, cwd, "--config", "config.yaml")
    answer(child, "time zone", "")
    answer(child, "Your name", "Sam")
    child.expect("short id for you")
    child.sendcontrol("c")
    output = finish(child)
    assert child.exitstatus == 1 and "Aborted" in output
    assert list(cwd.iterdir()) == []


def test_the_command_line_starts_without_the_dialogue_or_the_config_models(
    env: dict[str, str], cwd: Path
) -> None:
    """``caldaemon --help`` need not wait for init's questions and the config's models
    (a second of imports): they are imported when init runs."""
    probe = (
        "import sys, caldaemon.cli; "
        "print(sorted(m for m in ('caldaemon.cli.questions', 'caldaemon.config.template', "
        "'caldaemon.config.init_answers', 'caldaemon.config.answers', "
        "'caldaemon.config.write') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_account_calendars_are_written_with_their_keys_and_a_sign_in_step(
    env: dict[str, str], cwd: Path
) -> None:
    child = spawn(env, cwd, "--config", "config.yaml")
    for question in ("time zone", "Your name", "short id for you", "email address"):
        answer(child, question, "")
    answer(child, "Calendar provider", "google")
    answer(child, "id for this calendar", "work")
    answer(child, r"Google calendar.*\[primary", "")
    answer(child, r"OAuth client file.*\[" + str(cwd), "client.json")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "y")
    answer(child, "Calendar provider", "outlook")
    answer(child, "id for this calendar", "clinic")
    answer(child, r"Microsoft 365 tenant.*\[common", "example.org")
    answer(child, "Application \\(client\\) id", "   ")
    child.expect("this one is needed")
    answer(child, "Application \\(client\\) id", "11111111-2222-3333-4444-555555555555")
    answer(child, r"Who signs in.*\[device_code", "")
    answer(child, "Calendar name", "Clinic")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, r"buffer blocks \(work, clinic, or none to only report\)", "none")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    assert "caldaemon auth google --clinician sam --calendar work --config" in output
    assert "caldaemon auth outlook --clinician sam --calendar clinic --config" in output

    (sam,) = config.load(cwd / "config.yaml").clinicians
    google, outlook = sam.calendars
    assert (google.calendar, google.credentials) == ("primary", cwd / "client.json")  # type: ignore[attr-defined]
    assert (outlook.tenant, outlook.calendar, outlook.auth) == (  # type: ignore[attr-defined]
        "example.org",
        "Clinic",
        "device_code",
    )
    assert sam.buffers_to is None


def introduce_lee(child: pexpect.spawn) -> None:
    """The questions about the first clinician: the offered zone and no name, id lee."""
    answer(child, "time zone", "")
    answer(child, "Your name", "")
    answer(child, "short id for you", "lee")
    answer(child, "email address", "lee@practice.example")


def test_a_practice_adds_each_clinician_with_app_only_sign_ins(
    env: dict[str, str], cwd: Path
) -> None:
    """A service account key (its JSON says so) acts for a Workspace user; an Outlook
    app with client credentials for a mailbox; the second clinician is offered the
    first one's key file, tenant, app and secret, and nobody is told to sign in."""
    (cwd / "sa.json").write_text(json.dumps({"type": "service_account"}))
    child = spawn(env, cwd, "--config", "config.yaml")
    introduce_lee(child)
    add_google_service_account(child, "sa.json", "lee@practice.example")
    answer(child, "Add another calendar", "y")
    add_outlook_app(child, "practice.example", "app-1", "lee@practice.example", "m365")
    answer(child, "client secret", "secret")
    answer(child, "Calendar name", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, "buffer blocks", "work")
    answer(child, r"Add another clinician.*\[y/N", "y")
    answer(child, "Their name", "Kim")
    answer(child, r"short id for them.*\[clinician2", "lee")
    child.expect("'lee' is the id of another clinician already")
    answer(child, "short id for them", "kim")
    answer(child, "Their email address", "kim@practice.example")
    answer(child, "Calendar provider", "google")
    answer(child, "id for this calendar", "")
    answer(child, "Google calendar", "")
    answer(child, r"OAuth client file.*\[" + str(cwd / "sa.json"), "")
    answer(child, r"acts for \[kim@practice.example", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "y")
    answer(child, "Calendar provider", "outlook")
    answer(child, "id for this calendar", "m365")
    answer(child, r"tenant.*\[practice.example", "")
    answer(child, r"client\) id.*\[app-1", "")
    answer(child, r"Who signs in.*\[client_credentials", "")
    answer(child, r"mailbox.*\[kim@practice.example", "")
    answer(child, r"client secret \[" + str(cwd / "secret"), "")
    answer(child, "Calendar name", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    answer(child, "buffer blocks", "m365")
    answer(child, "Add another clinician", "n")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    assert "caldaemon auth" not in output

    lee, kim = config.load(cwd / "config.yaml").clinicians
    assert (lee.id, kim.id, kim.name) == ("lee", "kim", "Kim")
    assert (lee.buffers_to, kim.buffers_to) == ("work", "m365")
    for clinician in (lee, kim):
        google, outlook = clinician.calendars
        assert (google.credentials, google.subject) == (cwd / "sa.json", clinician.email)  # type: ignore[attr-defined]
        assert (outlook.tenant, outlook.client_id, outlook.auth) == (  # type: ignore[attr-defined]
            "practice.example",
            "app-1",
            "client_credentials",
        )
        assert (outlook.user, outlook.client_secret_file) == (clinician.email, cwd / "secret")  # type: ignore[attr-defined]


def test_a_shared_tenant_is_not_offered_client_credentials(env: dict[str, str], cwd: Path) -> None:
    """Microsoft's common authority issues no app-only token: with it, a person signs in."""
    child = spawn(env, cwd, "--config", "config.yaml")
    for question in ("time zone", "Your name", "short id for you", "email address"):
        answer(child, question, "")
    answer(child, "Calendar provider", "outlook")
    answer(child, "id for this calendar", "")
    answer(child, r"tenant.*\[common", "")
    answer(child, "client\\) id", "app-1")
    answer(child, "Calendar name", "")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    assert "caldaemon auth outlook --clinician sam --calendar work" in output
    (outlook,) = config.load(cwd / "config.yaml").clinicians[0].calendars
    assert outlook.auth == "device_code"  # type: ignore[attr-defined]


def test_a_system_config_is_readable_by_the_service_and_names_its_secrets_bare(
    env: dict[str, str], cwd: Path
) -> None:
    """``--system`` (implied for /etc/caldaemon; a folder of the test's own stands in):
    the config 0644 in a 0755 folder (one an earlier run made 0700 included), each key and
    password file by its bare name, and the next steps put them beside it, root's alone."""
    (cwd / "sa.json").write_text(json.dumps({"type": "service_account"}))
    etc = cwd / "etc-caldaemon"
    etc.mkdir(mode=0o700)
    target = etc / "config.yaml"
    child = spawn(env, cwd, "--system", "--config", str(target))
    introduce_lee(child)
    add_google_service_account(child, "sa.json", "lee@practice.example")
    answer(child, "Add another calendar", "y")
    add_outlook_app(child, "practice.example", "app-1", "lee@practice.example", "m365")
    answer(child, r"client secret \[" + str(etc / "outlook-client-secret"), "")
    answer(child, "Calendar name", "")
    answer(child, "client sessions", "")
    answer(child, "Add another calendar", "")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output

    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE(etc.stat().st_mode) == 0o755
    text = target.read_text()
    assert "This file holds no secret" in text
    assert "        credentials: sa.json\n" in text
    assert "        client_secret_file: outlook-client-secret\n" in text
    google, outlook = config.load(target).clinicians[0].calendars
    assert google.credentials == etc / "sa.json"  # type: ignore[attr-defined]
    assert outlook.client_secret_file == etc / "outlook-client-secret"  # type: ignore[attr-defined]
    lines = [line.strip() for line in output.splitlines()]
    assert f"Put each key and password file in {etc}, root's alone (mode 0600):" in lines
    assert f"sudo install -m 0600 -o root -g root {cwd / 'sa.json'} {etc / 'sa.json'}" in lines
    secret = etc / "outlook-client-secret"
    assert f"sudo chown root:root {secret} && sudo chmod 0600 {secret}" in lines
    assert any(line.startswith(f"sudo caldaemon doctor --config {target}") for line in lines)
    assert any(
        line.startswith(f"sudo caldaemon service install --system --config {target}")
        for line in lines
    )


def test_two_secret_files_of_one_name_are_refused_for_a_system_config(
    env: dict[str, str], cwd: Path
) -> None:
    for folder in ("a", "b"):
        (cwd / folder).mkdir()
        (cwd / folder / "key.json").write_text(json.dumps({"type": "service_account"}))
    target = cwd / "etc-caldaemon" / "config.yaml"
    child = spawn(env, cwd, "--system", "--config", str(target))
    introduce_lee(child)
    for number, folder in enumerate(("a", "b")):
        add_google_service_account(
            child, f"{folder}/key.json", "lee@practice.example", f"g{number}"
        )
        answer(child, "Add another calendar", "y" if folder == "a" else "")
    while child.expect([OFFERED, "would both be"]) == 0:
        child.sendline("")
    output = str(child.after) + finish(child)
    assert child.exitstatus == 2, output
    assert f"would both be {target.parent / 'key.json'}" in output
    assert not target.exists()


def test_a_system_sign_in_runs_as_the_services_user_with_its_key_handed_over(
    env: dict[str, str], cwd: Path
) -> None:
    """A token the service's dynamic user can read, and the OAuth client file it cannot
    read itself (root's, 0600) handed over as the unit hands it."""
    etc = cwd / "etc-caldaemon"
    target = etc / "config.yaml"
    child = spawn(env, cwd, "--system", "--config", str(target))
    introduce_lee(child)
    answer(child, "Calendar provider", "google")
    answer(child, "id for this calendar", "")
    answer(child, "Google calendar", "")
    answer(child, r"OAuth client file.*\[" + str(etc / "google-client.json"), "")
    take_every_default(child)
    output = finish(child)
    assert child.exitstatus == 0, output
    assert "        credentials: google-client.json\n" in target.read_text()
    [sign_in] = [line.strip() for line in output.splitlines() if "auth google" in line]
    assert sign_in.startswith(
        "sudo systemd-run --pty --wait -p User=caldaemon -p DynamicUser=yes "
        "-p StateDirectory=caldaemon "
        f"-p LoadCredential=google-client.json:{etc / 'google-client.json'} "
    )
    assert f"auth google --clinician lee --calendar work --config {target}" in sign_in
