"""Notice composition: wording, grouping, privacy, escaping and MIME structure."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from caldaemon.config import ClinicianSettings
from caldaemon.core.rules.settings import RuleSet
from caldaemon.errors import AuthorizationError, ConfigError, Problem
from caldaemon.model import Severity, Violation
from caldaemon.notices.compose import (
    Message,
    authorization_problem,
    config_problem,
    operational_message,
    to_mime,
    unreachable_problem,
    violations_message,
)

TZ = ZoneInfo("America/Toronto")
MON = date(2026, 11, 30)
TUE, WED, FRI = MON + timedelta(days=1), MON + timedelta(days=2), MON + timedelta(days=4)
CANARY = "Zebulon Quixote"
TITLES = {
    "work/a": f"Session with {CANARY}",
    "work/b": "Intake <b>&</b> Quixote family",
    "work/c": "Client session",
}


def clinician(name: str | None = "Dr. Sam Lee") -> ClinicianSettings:
    return ClinicianSettings(
        id="lee",
        name=name,
        email="lee@example.org",
        tz=TZ,
        rules=RuleSet(),
        calendars=(),
        buffers_to=None,
        busy_calendars=frozenset(),
    )


def violation(
    day: date,
    message: str,
    *,
    rule: str = "max_sessions_per_day",
    severity: Severity = Severity.ERROR,
    events: tuple[str, ...] = ("work/a",),
    hour: int = 0,
) -> Violation:
    start = datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
    return Violation(
        clinician="lee",
        rule=rule,
        severity=severity,
        date=day,
        start=start,
        end=start + timedelta(hours=1),
        message=message,
        events=events,
        subject=f"{rule}/{day}/{hour}",
    )


HEAVY = violation(
    MON,
    "3 high-intensity sessions on Mon 30 Nov; your limit is 2",
    rule="level_limits.max_per_day",
    events=("work/a", "work/b", "work/c"),
)
LOAD = violation(
    MON,
    "a session load of 12 on Mon 30 Nov (low 1, moderate 2, high 3 per session); your limit is 10",
    rule="max_daily_load",
    severity=Severity.WARNING,
)
LATE = violation(
    TUE,
    "Tue 1 Dec, 15:30–16:20: a high-intensity session starts after 15:00",
    rule="level_limits.latest_start",
    hour=15,
)
FRIDAY = violation(
    FRI,
    "Fri 4 Dec, 16:00–16:50: a session outside your working hours; your "
    "hours that day are 09:00–15:00",
    rule="working_hours",
    hour=16,
)


def notice(**kwargs: object) -> Message:
    defaults: dict[str, object] = {
        "clinician": clinician(),
        "new": [HEAVY],
        "key": "k1",
        "to": "lee@example.org",
        "titles": TITLES,
    }
    return violations_message(**(defaults | kwargs))  # type: ignore[arg-type]


def everything(message: Message) -> str:
    return "\n".join((message.subject, message.text, message.html))


# -- privacy -----------------------------------------------------------------------------


def test_redacted_notice_contains_nothing_from_event_text() -> None:
    message = notice(new=[HEAVY, LOAD, LATE], still_open=[FRIDAY], resolved=[LATE])
    text = everything(message)
    assert CANARY not in text
    assert "Quixote" not in text and "Intake" not in text and "Client session" not in text
    mime = to_mime(message, "caldaemon@example.org").as_string()
    assert "Quixote" not in mime


def test_redacted_is_the_default() -> None:
    message = violations_message(
        clinician=clinician(), new=[HEAVY], titles=TITLES, key="k", to="lee@example.org"
    )
    assert CANARY not in everything(message)
    assert "Client details are left out of this notice on purpose." in message.text


def test_full_privacy_names_the_titles_of_each_lines_events() -> None:
    message = notice(new=[HEAVY], privacy="full")
    assert f"Session with {CANARY}" in message.text
    assert f"Session with {CANARY}" in message.html
    assert CANARY not in message.subject
    assert "left out" not in message.text


def test_full_privacy_titles_are_html_escaped() -> None:
    message = notice(new=[HEAVY], privacy="full")
    assert "Intake &lt;b&gt;&amp;&lt;/b&gt; Quixote family" in message.html
    assert "<b>&</b>" not in message.html
    assert "Intake <b>&</b> Quixote family" in message.text


def test_unknown_privacy_is_refused() -> None:
    with pytest.raises(ValueError, match="privacy"):
        notice(privacy="partial")


# -- subject -----------------------------------------------------------------------------


def test_subject_names_the_day_and_the_count() -> None:
    assert notice(new=[HEAVY, LOAD]).subject == "caldaemon: 2 boundaries crossed on Mon 30 Nov"
    assert notice(new=[LATE]).subject == "caldaemon: 1 boundary crossed on Tue 1 Dec"


def test_subject_names_the_first_and_last_day() -> None:
    message = notice(new=[FRIDAY, HEAVY, LATE], still_open=[LOAD, FRIDAY])
    assert message.subject == ("caldaemon: 5 boundaries crossed between Mon 30 Nov and Fri 4 Dec")


def test_subject_of_a_resolved_only_notice() -> None:
    assert notice(new=[], resolved=[LATE]).subject == "caldaemon: resolved on Tue 1 Dec"
    assert notice(new=[], resolved=[LATE, FRIDAY]).subject == (
        "caldaemon: 2 resolved between Tue 1 Dec and Fri 4 Dec"
    )


def test_subject_counts_resolved_next_to_crossed() -> None:
    assert notice(new=[HEAVY], resolved=[LATE]).subject == (
        "caldaemon: 1 boundary crossed on Mon 30 Nov; 1 resolved"
    )


def test_an_empty_notice_is_refused() -> None:
    with pytest.raises(ValueError):
        notice(new=[])


# -- body --------------------------------------------------------------------------------


def test_lines_are_grouped_by_day_in_time_order_errors_first_at_the_same_time() -> None:
    text = notice(new=[FRIDAY, LOAD, LATE, HEAVY]).text
    positions = [
        text.index(part)
        for part in (
            "\nMon 30 Nov\n",
            HEAVY.message,
            LOAD.message,
            "\nTue 1 Dec\n",
            LATE.message,
            "\nFri 4 Dec\n",
            FRIDAY.message,
        )
    ]
    assert positions == sorted(positions)
    assert f"(warning) {LOAD.message}" in text
    assert "Wed 2 Dec" not in text


def test_a_warning_earlier_in_the_day_comes_before_a_later_error() -> None:
    early = violation(TUE, "Tue 1 Dec, 09:00–09:50: a warning", severity=Severity.WARNING, hour=9)
    message = notice(new=[LATE, early])
    assert message.text.index(early.message) < message.text.index(LATE.message)
    assert message.html.index(early.message) < message.html.index(LATE.message)


def test_html_groups_by_day_too() -> None:
    body = notice(new=[LATE, HEAVY]).html
    assert body.index(">Mon 30 Nov</h2>") < body.index(">Tue 1 Dec</h2>")
    assert body.count('<table role="presentation"') == 2 + 2  # the page, the card, 2 lines


def test_full_privacy_titles_sit_inside_resolved_and_open_lines() -> None:
    message = notice(new=[], still_open=[FRIDAY], resolved=[LATE], privacy="full")
    assert f"Resolved: “{LATE.message}” (Session with {CANARY}) no longer applies." in message.text
    assert f"{FRIDAY.message} (Session with {CANARY}) (mentioned before)" in message.text


def test_many_titles_are_shortened() -> None:
    keys = tuple(f"work/{n}" for n in range(8))
    many = violation(MON, "8 sessions on Mon 30 Nov; your limit is 6", events=keys)
    message = notice(new=[many], privacy="full", titles={k: f"T{k[-1]}" for k in keys})
    assert "(T0, T1, T2, T3, T4 and 3 more)" in message.text


def test_digest_marks_still_open_and_resolved_lines() -> None:
    message = notice(new=[HEAVY], still_open=[FRIDAY], resolved=[LATE])
    assert f"{FRIDAY.message} (mentioned before)" in message.text
    assert f"Resolved: “{LATE.message}” no longer applies." in message.text
    assert "back within your limits" in message.text


def test_resolved_lines_come_after_the_days_open_lines() -> None:
    still = violation(TUE, "7 sessions on Tue 1 Dec; your limit is 6", hour=23)
    text = notice(new=[still], resolved=[LATE]).text
    assert text.index(still.message) < text.index("Resolved:")


def test_wording_is_kind_and_addresses_the_clinician() -> None:
    message = notice(new=[HEAVY, LOAD])
    assert message.text.startswith("Hello Dr. Sam Lee,\n")
    assert "!" not in message.text
    assert "fail" not in message.text.lower() and "you must" not in message.text.lower()
    assert "run caldaemon check to see" in message.text and "YAML" in message.text
    assert "America/Toronto" in message.text


def test_greeting_without_a_name() -> None:
    assert notice(clinician=clinician(None)).text.startswith("Hello,\n")


def test_html_escapes_the_clinician_name_and_messages() -> None:
    sneaky = violation(MON, "a <script>alert(1)</script> & more")
    message = notice(clinician=clinician("Dr. <Sam> & Co"), new=[sneaky])
    assert "<script>" not in message.html and "<Sam>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in message.html
    assert "Hello Dr. &lt;Sam&gt; &amp; Co," in message.html


# -- identity and MIME -------------------------------------------------------------------


def test_message_id_is_deterministic_for_a_key() -> None:
    first, again, other = (
        notice(key="lee/2026-11-30/x"),
        notice(key="lee/2026-11-30/x"),
        notice(key="lee/2026-11-30/y"),
    )
    assert first.message_id == again.message_id != other.message_id
    assert first.message_id.startswith("<") and first.message_id.endswith("@caldaemon>")
    assert first == again


def test_mime_is_multipart_alternative_with_both_parts() -> None:
    message = notice(new=[HEAVY], privacy="full")
    now = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    mime = to_mime(message, "caldaemon@example.org", now=now)
    assert mime.get_content_type() == "multipart/alternative"
    text, html = list(mime.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content() == message.text
    assert html.get_content() == message.html
    assert mime["Message-ID"] == message.message_id
    assert mime["To"] == "lee@example.org"
    assert mime["From"].addresses[0].addr_spec == "caldaemon@example.org"
    assert mime["Subject"] == message.subject
    assert mime["Auto-Submitted"] == "auto-generated"
    assert mime["Date"] == "Mon, 30 Nov 2026 13:00:00 +0000"


# -- operational notices -----------------------------------------------------------------


def test_operational_notice_is_short_and_actionable() -> None:
    error = AuthorizationError(
        "work",
        "google",
        "the refresh token was revoked",
        "caldaemon auth google --clinician lee --calendar work",
    )
    problem, advice = authorization_problem(error)
    message = operational_message(
        problem=problem, advice=advice, key="op1", to="it@example.org", clinician="lee"
    )
    assert message.subject.startswith("caldaemon: action needed (lee): ")
    assert message.subject == (
        "caldaemon: action needed (lee): Calendar 'work' needs to be authorized again"
    )
    assert "caldaemon auth google --clinician lee --calendar work" in message.text
    assert "caldaemon auth google --clinician lee --calendar work" in message.html
    assert len(message.text.splitlines()) < 20
    assert (
        message.message_id
        == operational_message(
            problem="x", advice="y", key="op1", to="z@example.org", clinician=None
        ).message_id
    )


def test_config_and_unreachable_problems() -> None:
    error = ConfigError(
        [
            Problem(
                "/etc/caldaemon.yaml",
                12,
                "rule_sets.standard.breaks",
                "'3x' is not a duration like 15m, 1h30m or 14d",
            )
        ]
    )
    problem, advice = config_problem(error)
    assert "/etc/caldaemon.yaml:12" in problem and "caldaemon validate" in advice
    message = operational_message(
        problem=problem, advice=advice, key="c", to="it@example.org", clinician=None
    )
    assert "&#x27;3x&#x27; is not a duration" in message.html
    assert message.subject == "caldaemon: action needed: The changed config file has 1 problem"
    problem, _ = unreachable_problem("personal", datetime(2026, 11, 30, 9, 5, tzinfo=TZ))
    assert problem == "Calendar 'personal' could not be read since Mon 30 Nov, 09:05 EST."


def test_operational_notice_shows_commands_as_code_and_never_backticks() -> None:
    when = datetime(2026, 11, 30, 9, 5, tzinfo=TZ)
    pages = []
    for problem, advice in (
        authorization_problem(AuthorizationError("work", "google", "revoked", "caldaemon auth x")),
        unreachable_problem("personal", when),
        config_problem(ConfigError([Problem("/etc/c.yaml", 1, "notices", "bad")])),
    ):
        message = operational_message(
            problem=problem, advice=advice, key="c", to="it@example.org", clinician=None
        )
        assert "`" not in message.text and "`" not in message.html
        pages.append(message.html)
    auth, unreachable, config = pages
    assert ">caldaemon auth x</code>" in auth
    assert ">caldaemon check</code> shows the exact error" in unreachable
    assert ">caldaemon validate</code> to check the file" in config


# -- privacy: minimal --------------------------------------------------------------------

TIME = re.compile(r"\d{1,2}:\d{2}")
DATE = re.compile(r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b|\d{4}-\d\d")


def test_minimal_names_weekdays_and_counts_only() -> None:
    early = violation(TUE, "Tue 1 Dec, 09:00–09:50: a warning", severity=Severity.WARNING, hour=9)
    message = notice(
        new=[HEAVY, LOAD, LATE, early], still_open=[FRIDAY], resolved=[], privacy="minimal"
    )
    assert "  - Monday: 2 things to look at, 1 of them a warning\n" in message.text
    assert "  - Tuesday: 2 things to look at, 1 of them a warning\n" in message.text
    assert "  - Friday: 1 thing to look at\n" in message.text
    for part in (message.subject, message.text, message.html):
        assert not TIME.search(part) and not DATE.search(part), part
        assert "intensity" not in part and "high" not in part
        assert "Mon 30 Nov" not in part and "America/Toronto" not in part
    assert message.subject == "caldaemon: 5 things to look at"
    assert "run caldaemon check to see them" in message.text
    assert ">Tuesday</div>" in message.html


def test_minimal_names_no_titles_even_when_given() -> None:
    message = notice(new=[HEAVY], still_open=[FRIDAY], resolved=[LATE], privacy="minimal")
    assert CANARY not in everything(message) and "Quixote" not in everything(message)


def test_minimal_counts_the_same_weekday_of_later_weeks_on_one_line() -> None:
    later = violation(MON + timedelta(days=14), "Mon 14 Dec: again")
    message = notice(new=[later, HEAVY], privacy="minimal")
    assert message.text.count("Monday") == 1
    assert "  - Monday: 2 things to look at\n" in message.text


def test_minimal_says_what_resolved_and_only_warnings() -> None:
    message = notice(new=[LOAD], resolved=[LATE, FRIDAY], privacy="minimal")
    assert "  - Monday: 1 thing to look at, a warning\n" in message.text
    assert "  - Tuesday: 1 thing back within your limits\n" in message.text
    assert message.subject == "caldaemon: 1 thing to look at; 2 resolved"
    assert notice(new=[], resolved=[LATE], privacy="minimal").subject == (
        "caldaemon: 1 thing resolved"
    )
    both = notice(new=[LATE], resolved=[LATE], privacy="minimal")
    assert "  - Tuesday: 1 thing to look at; 1 back within your limits\n" in both.text


# -- the HTML part, for mail clients -------------------------------------------------------


def test_html_is_styled_inline_with_nothing_a_mail_client_strips_or_fetches() -> None:
    message = notice(new=[HEAVY, LOAD, LATE], still_open=[FRIDAY], resolved=[LATE])
    page = message.html
    assert "<style" not in page and "<script" not in page and "<link" not in page
    assert "src=" not in page and "http" not in page and "url(" not in page
    assert 'class="' not in page  # nothing that needs a style sheet
    assert "max-width:600px" in page and 'name="viewport"' in page
    assert "`" not in page
    assert ">caldaemon check</code>" in page


def test_html_labels_each_line_so_colour_is_not_the_only_sign() -> None:
    page = notice(new=[HEAVY, LOAD], still_open=[FRIDAY], resolved=[LATE]).html
    for label in ("Error", "Warning", "Resolved"):
        assert f">{label}</div>" in page
    assert page.count(">Error</div>") == 2  # HEAVY, and FRIDAY still open
    assert f"“{LATE.message}” no longer applies." in page


def test_text_part_has_no_markdown() -> None:
    message = notice(new=[HEAVY, LOAD], still_open=[FRIDAY], resolved=[LATE])
    assert "`" not in message.text and "**" not in message.text and "<" not in message.text
