"""The weekly mail of two weeks with a session across the week's end between them, as a
person reads it in a real headless chromium (DESIGN.md §11): each mail's HTML part says
the week's session count as the rules count it (the session in the week it starts in) and
the client hours as the hours log counts them (its part before midnight in the first
week, the rest in the second). Skipped where chromium cannot run."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from caldaemon.notices.weekly import weekly_key, weekly_message
from caldaemon.reports.picture import week_png
from tests.browser import Browser, browser, visible_text
from tests.reports.test_week_counts import NEXT_MONDAY, event, week_of
from tests.support import MONDAY, at, make_settings

SUNDAY = NEXT_MONDAY - timedelta(days=1)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    return browser(tmp_path_factory.mktemp("chromium"))


def seen_in_mail(chromium: Browser, start: date, folder: Path) -> str:
    """The text a person sees in the week's mail, its picture resolved as a mail client
    resolves ``cid:``."""
    settings = make_settings({"max_sessions_per_week": 20, "max_sessions_per_day": 6})
    events = [
        event(at(MONDAY + timedelta(days=2), "10:00"), at(MONDAY + timedelta(days=2), "10:50")),
        event(at(SUNDAY, "23:00"), at(NEXT_MONDAY, "01:30"), "moderate"),
        event(at(NEXT_MONDAY, "09:00"), at(NEXT_MONDAY, "09:45"), "low"),
    ]
    view = week_of(settings, events, start)
    png = week_png(view, settings.classification.levels)
    sent = weekly_message(
        view,
        png,
        privacy="redacted",
        key=weekly_key("lee", start),
        to="lee@example.org",
        greeting_name="Lee",
    )
    (folder / "week.png").write_bytes(png)
    page = folder / f"week-{start}.html"
    page.write_text(sent.html.replace(f"cid:{sent.image_cid}", "week.png"))
    return " ".join(visible_text(chromium.dom(page)).split())


def test_each_weeks_mail_counts_the_session_where_the_rules_and_hours_log_do(
    chromium: Browser, tmp_path: Path
) -> None:
    first = seen_in_mail(chromium, MONDAY, tmp_path)
    second = seen_in_mail(chromium, NEXT_MONDAY, tmp_path)
    # First week: Wednesday's 50 minutes and the hour before Sunday's midnight.
    assert "The week: sessions 2 of 20" in first and "Hours: client 1.83 h" in first
    # Second week: the 90 minutes after midnight and Monday's 45-minute session.
    assert "The week: sessions 1 of 20" in second and "Hours: client 2.25 h" in second
