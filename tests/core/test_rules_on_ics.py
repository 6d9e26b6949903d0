"""Rules over a real recurring series read from .ics: a moved instance counts on its new
day, a cancelled one does not count at all."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from caldaemon.core.assess import assess
from caldaemon.model import Window
from caldaemon.service.read import read_calendars
from tests.support import TZ, make_settings, rules_hit

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=TZ)


def test_moved_instance_counts_on_its_new_day_and_the_cancelled_one_not_at_all():
    settings = make_settings(
        {"level_limits": {"high": {"max_per_week": 0, "latest_start": "15:00"}}},
        classification={"tags": {"trauma": "high"}},
        clinician={
            "calendars": [
                {
                    "id": "practice",
                    "provider": "ics",
                    "path": str(FIXTURE / "recurring_session_one_moved_one_cancelled.ics"),
                }
            ]
        },
    )
    clinician = settings.clinicians[0]
    events, warnings, errors = read_calendars(
        settings, clinician, Window(NOW - timedelta(days=7), NOW + timedelta(days=35))
    )
    assert (warnings, errors) == ([], [])
    result = assess(
        clinician, settings.classification, events, NOW, settings.daemon.horizon
    ).evaluation
    weeks = [v.date for v in rules_hit(result, "level_limits.max_per_week")]
    assert weeks == [date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 26)]
    [late] = rules_hit(result, "level_limits.latest_start")
    assert late.date == date(2026, 1, 15) and late.start.hour == 16
