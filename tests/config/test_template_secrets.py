"""``caldaemon init`` writes a key or password file by its bare name for the system unit
(found in $CREDENTIALS_DIRECTORY, LoadCredential=), and which keys those are comes from
the same marker the loader resolves by (SecretPath in the settings models), not a list of
its own that a new provider key could be missing from."""

from __future__ import annotations

import pytest

from caldaemon.config.init_answers import (
    SECRET_KEYS,
    Answers,
    CalendarAnswer,
    ClinicianAnswer,
    secret_files,
)
from caldaemon.config.template import render
from caldaemon.fields import PathRole, path_role
from caldaemon.providers.registry import PROVIDERS

SECRETS = sorted(
    (kind.name, field.alias or key)
    for kind in PROVIDERS.values()
    for key, field in kind.settings.model_fields.items()
    if path_role(kind.settings, key) is PathRole.SECRET
)


def answers(calendar: CalendarAnswer, *, system: bool) -> Answers:
    lee = ClinicianAnswer("lee", None, None, (calendar,), None)
    return Answers(
        timezone="America/Toronto",
        clinicians=(lee,),
        working_days="mon-fri",
        working_hours=("09:00-17:00",),
        days_off=("sat", "sun"),
        max_sessions_per_day=None,
        max_sessions_per_week=None,
        high_per_day=None,
        high_per_week=None,
        high_latest_start=None,
        grounding=None,
        notes=None,
        supervision_every=None,
        smtp=None,
        system=system,
    )


def test_the_secret_keys_are_every_secret_path_of_every_provider():
    assert {key for _, key in SECRETS} == SECRET_KEYS
    # The ones init asks for today are among them.
    assert {"credentials", "client_secret_file", "password_file"} <= SECRET_KEYS


@pytest.mark.parametrize(("provider", "key"), SECRETS)
def test_each_secret_key_is_written_bare_for_the_system_unit(provider, key):
    calendar = CalendarAnswer("work", provider, ((key, "/root/keys/work-secret", ""),))
    system = render(answers(calendar, system=True))
    assert f"        {key}: work-secret\n" in system
    assert secret_files(answers(calendar, system=True)) == (
        ("work-secret", "/root/keys/work-secret"),
    )
    mine = render(answers(calendar, system=False))
    assert f"        {key}: /root/keys/work-secret\n" in mine


def test_a_calendar_file_is_not_a_secret_and_keeps_its_path():
    calendar = CalendarAnswer("work", "ics", (("path", "/srv/calendars/work.ics", ""),))
    assert "        path: /srv/calendars/work.ics\n" in render(answers(calendar, system=True))
    assert secret_files(answers(calendar, system=True)) == ()
