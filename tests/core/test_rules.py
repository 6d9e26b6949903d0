"""Every rule of DESIGN.md §3 on small hand-built weeks, edges included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from caldaemon.model import Event, Severity
from tests.support import MONDAY, NOW, TZ, all_day, at, evaluate, make_settings, rules_hit, session

TUE, WED, THU, FRI, SAT = (MONDAY + timedelta(days=n) for n in range(1, 6))
HOURS = {"working_hours": {"mon-thu": "09:00-17:00", "fri": ["09:00-12:00", "13:00-15:00"]}}


# -- working_hours -----------------------------------------------------------------------


def test_session_ending_exactly_at_the_end_of_hours_fits():
    result = evaluate(make_settings(HOURS), [session(MONDAY, "16:10", "17:00")])
    assert rules_hit(result, "working_hours") == []


def test_session_ending_a_minute_after_hours_is_reported_once():
    ev = session(MONDAY, "16:11", "17:01")
    [v] = rules_hit(evaluate(make_settings(HOURS), [ev]), "working_hours")
    assert v.events == (ev.key,)
    assert v.message == (
        "Mon 30 Nov, 16:11–17:01: a session outside your working hours; "
        "your hours that day are 09:00–17:00"
    )
    assert v.date == MONDAY and v.severity is Severity.ERROR


def test_session_must_fit_inside_one_range_not_across_a_gap():
    ok = session(FRI, "13:00", "13:50")
    spanning = session(FRI, "11:30", "13:20")
    hits = rules_hit(evaluate(make_settings(HOURS), [ok, spanning]), "working_hours")
    assert [v.events for v in hits] == [(spanning.key,)]


def test_weekday_without_ranges_has_no_hours():
    [v] = rules_hit(
        evaluate(make_settings(HOURS | {"days_off": []}), [session(SAT, "10:00", "10:50")]),
        "working_hours",
    )
    assert "you have no working hours that day" in v.message


def test_session_crossing_midnight_does_not_fit_but_one_ending_at_24_00_does():
    rules = {"working_hours": {"mon-sun": "18:00-24:00"}}
    late = session(MONDAY, "23:00", "23:59")
    to_midnight = Event("work", "midnight", at(TUE, "23:00"), at(WED, "00:00"), title="session")
    across = Event("work", "across", at(WED, "23:30"), at(THU, "00:30"), title="session")
    hits = rules_hit(evaluate(make_settings(rules), [late, to_midnight, across]), "working_hours")
    assert [v.events for v in hits] == [("work/across",)]


def test_working_hours_are_wall_clock_on_both_dst_change_days():
    rules = {"working_hours": {"mon-sun": "09:00-17:00"}}
    spring, autumn = date(2027, 3, 14), date(2026, 11, 1)  # Sundays of the changes in Toronto
    events = [
        session(spring, "09:00", "17:00"),
        session(autumn, "09:00", "17:00"),
        session(spring, "16:30", "17:30"),
    ]
    now_spring = datetime(2027, 3, 13, 8, tzinfo=TZ)
    hits = rules_hit(evaluate(make_settings(rules), events[::2], now_spring), "working_hours")
    assert [v.start.hour for v in hits] == [16]
    now_autumn = datetime(2026, 10, 31, 8, tzinfo=TZ)
    assert rules_hit(evaluate(make_settings(rules), [events[1]], now_autumn), "working_hours") == []


def test_event_in_another_time_zone_is_read_in_the_clinicians_zone():
    london = ZoneInfo("Europe/London")
    # 14:00 in London is 09:00 in Toronto: inside hours; 22:30 London is 17:30 Toronto.
    inside = session(MONDAY, "14:00", "14:50", tz=london)
    outside = session(MONDAY, "22:30", "23:20", tz=london)
    hits = rules_hit(evaluate(make_settings(HOURS), [inside, outside]), "working_hours")
    assert [v.events for v in hits] == [(outside.key,)]
    assert hits[0].start.tzinfo == TZ and hits[0].start.hour == 17


# -- days_off ----------------------------------------------------------------------------


def test_session_on_a_day_off_weekday_is_days_off_not_working_hours():
    result = evaluate(
        make_settings(HOURS | {"days_off": ["sat", "sun"]}), [session(SAT, "10:00", "10:50")]
    )
    assert len(rules_hit(result, "days_off")) == 1
    assert rules_hit(result, "working_hours") == []


def test_session_on_an_all_day_day_off_event_is_a_days_off_violation():
    events = [all_day(WED, "Conference #off"), session(WED, "10:00", "10:50")]
    result = evaluate(make_settings(HOURS | {"days_off": []}), events)
    [v] = rules_hit(result, "days_off")
    assert v.message == "Wed 2 Dec, 10:00–10:50: a session on a day you keep free"
    assert rules_hit(result, "working_hours") == []


def test_multi_day_day_off_covers_every_date_but_not_the_end_date():
    events = [
        all_day(WED, "Retreat #off", days=2),
        session(THU, "10:00", "10:50"),
        session(FRI, "10:00", "10:50"),
    ]
    result = evaluate(make_settings({"days_off": []}), events)
    assert [v.date for v in rules_hit(result, "days_off")] == [THU]


def test_all_day_events_never_count_as_sessions_or_busy_time():
    events = [all_day(MONDAY, "Client birthday #heavy"), session(MONDAY, "10:00", "10:50")]
    result = evaluate(make_settings({"max_sessions_per_day": 1, "double_booked": True}), events)
    assert result.violations == ()


# -- counts ------------------------------------------------------------------------------


def test_more_sessions_than_the_daily_limit_is_one_violation_for_the_day():
    events = [session(MONDAY, f"{h}:00", f"{h}:50") for h in (9, 10, 11, 13)]
    [v] = rules_hit(
        evaluate(make_settings({"max_sessions_per_day": 3}), events), "max_sessions_per_day"
    )
    assert v.message == "4 sessions on Mon 30 Nov; your limit is 3"
    assert v.start == datetime(2026, 11, 30, tzinfo=TZ)
    assert v.end == datetime(2026, 12, 1, tzinfo=TZ)
    assert len(v.events) == 4


def test_past_sessions_of_the_current_week_count_but_past_days_are_not_reported():
    now = datetime(2026, 12, 2, 8, tzinfo=TZ)  # Wednesday
    events = [session(MONDAY, f"{h}:00", f"{h}:50") for h in (9, 10, 11)]
    events += [session(THU, "09:00", "09:50")]
    result = evaluate(
        make_settings({"max_sessions_per_day": 2, "max_sessions_per_week": 3}), events, now
    )
    assert rules_hit(result, "max_sessions_per_day") == []  # Monday is past
    [week] = rules_hit(result, "max_sessions_per_week")
    assert week.date == MONDAY and "4 sessions in the week of Mon 30 Nov" in week.message


def test_weeks_start_on_the_configured_weekday():
    events = [session(SAT, "10:00", "10:50"), session(MONDAY + timedelta(days=7), "10:00", "10:50")]
    monday_weeks = evaluate(make_settings({"max_sessions_per_week": 1}), events)
    saturday_weeks = evaluate(
        make_settings({"max_sessions_per_week": 1, "week_starts": "sat"}), events
    )
    assert rules_hit(monday_weeks, "max_sessions_per_week") == []
    [v] = rules_hit(saturday_weeks, "max_sessions_per_week")
    assert v.date == SAT


def test_more_work_days_than_allowed():
    events = [session(d, "10:00", "10:50") for d in (MONDAY, TUE, WED, THU, FRI)]
    [v] = rules_hit(
        evaluate(make_settings({"max_work_days_per_week": 4}), events), "max_work_days_per_week"
    )
    assert v.message == "sessions on 5 days in the week of Mon 30 Nov; your limit is 4 days"


def test_level_limit_per_day_counts_that_level_and_above():
    settings = make_settings({"level_limits": {"moderate": {"max_per_day": 1}}})
    events = [
        session(MONDAY, "09:00", "09:50", "#heavy"),
        session(MONDAY, "11:00", "11:50", "Client session #moderate"),
        session(MONDAY, "13:00", "13:50", "#light"),
    ]
    [v] = rules_hit(evaluate(settings, events), "level_limits.max_per_day")
    assert v.level == "moderate" and len(v.events) == 2
    assert v.message == "2 moderate-intensity sessions on Mon 30 Nov; your limit is 1"


def test_level_limit_per_week_and_its_family_severity():
    settings = make_settings(
        {"level_limits": {"high": {"max_per_week": 1}}, "severity": {"level_limits": "warning"}}
    )
    events = [session(MONDAY, "09:00", "09:50", "#heavy"), session(TUE, "09:00", "09:50", "#heavy")]
    [v] = rules_hit(evaluate(settings, events), "level_limits.max_per_week")
    assert v.severity is Severity.WARNING and v.level == "high"


def test_latest_start_is_strictly_after_the_time():
    settings = make_settings({"level_limits": {"high": {"latest_start": "15:00"}}})
    at_limit = session(MONDAY, "15:00", "15:50", "#heavy")
    after = session(TUE, "15:01", "15:51", "#heavy")
    moderate = session(WED, "16:00", "16:50")
    [v] = rules_hit(evaluate(settings, [at_limit, after, moderate]), "level_limits.latest_start")
    assert v.events == (after.key,)
    assert v.message.startswith(
        "Tue 1 Dec, 15:01–15:51: a high-intensity session starts after 15:00"
    )


def test_daily_load_sums_level_weights():
    settings = make_settings({"max_daily_load": 6})
    events = [
        session(MONDAY, "09:00", "09:50", "#heavy"),
        session(MONDAY, "10:00", "10:50", "#heavy"),
        session(MONDAY, "11:00", "11:50", "#light"),
    ]
    [v] = rules_hit(evaluate(settings, events), "max_daily_load")
    assert "a session load of 7 on Mon 30 Nov" in v.message and v.message.endswith("limit is 6")


# -- sequences ---------------------------------------------------------------------------


def test_gap_exactly_min_break_is_a_break():
    settings = make_settings({"breaks": {"after_sessions": 2, "min_break": "30m"}})
    events = [
        session(MONDAY, "09:00", "09:50"),
        session(MONDAY, "10:00", "10:50"),
        session(MONDAY, "11:20", "12:10"),
    ]  # 30 minutes after the second
    assert rules_hit(evaluate(settings, events), "breaks") == []


def test_run_longer_than_after_sessions_reports_each_session_past_the_limit():
    settings = make_settings({"breaks": {"after_sessions": 2, "min_break": "30m"}})
    events = [
        session(MONDAY, "09:00", "09:50"),
        session(MONDAY, "10:00", "10:50"),
        session(MONDAY, "11:19", "12:00"),
        session(MONDAY, "12:10", "13:00"),
        session(MONDAY, "14:00", "14:50"),
    ]
    hits = rules_hit(evaluate(settings, events), "breaks")
    assert [v.events for v in hits] == [(events[2].key,), (events[3].key,)]
    assert "the 3rd session in a row without a 30-minute break" in hits[0].message


def test_back_to_back_heavy_sessions_flag_the_later_one():
    settings = make_settings({"no_back_to_back": {"level": "high", "min_gap": "60m"}})
    events = [
        session(MONDAY, "09:00", "09:50", "#heavy"),
        session(MONDAY, "10:00", "10:50", "#heavy"),
        session(MONDAY, "11:50", "12:40", "#heavy"),
    ]  # exactly 60 minutes: fine
    [v] = rules_hit(evaluate(settings, events), "no_back_to_back")
    # Dated and timed as the later one; both sessions are part of it.
    assert (v.start, v.end) == (events[1].start, events[1].end)
    assert v.events == (events[0].key, events[1].key)
    assert "(10 minutes between them)" in v.message


def test_back_to_back_only_looks_at_adjacent_sessions():
    settings = make_settings({"no_back_to_back": {"level": "high", "min_gap": "60m"}})
    events = [
        session(MONDAY, "09:00", "09:50", "#heavy"),
        session(MONDAY, "10:00", "10:50", "#light"),
        session(MONDAY, "11:00", "11:50", "#heavy"),
    ]
    assert rules_hit(evaluate(settings, events), "no_back_to_back") == []


def test_double_booking_needs_a_session_on_one_side():
    settings = make_settings({"double_booked": True})
    s = session(MONDAY, "10:00", "10:50")
    dentist = session(MONDAY, "10:30", "11:30", "Dentist", calendar="home")
    meeting = session(TUE, "10:00", "11:00", "Board meeting")
    lunch = session(TUE, "10:30", "11:30", "Lunch")
    [v] = rules_hit(evaluate(settings, [s, dentist, meeting, lunch]), "double_booked")
    assert set(v.events) == {s.key, dentist.key}
    assert (
        v.message == "Mon 30 Nov, 10:30–10:50: a moderate-intensity session and a busy time overlap"
    )


def test_touching_events_are_not_double_booked():
    settings = make_settings({"double_booked": True})
    events = [session(MONDAY, "10:00", "10:50"), session(MONDAY, "10:50", "11:40")]
    assert rules_hit(evaluate(settings, events), "double_booked") == []


def test_absent_rules_are_not_checked():
    events = [session(MONDAY, "10:00", "10:50"), session(MONDAY, "10:00", "10:50")]
    assert evaluate(make_settings({}), events).violations == ()


# -- ignored events ----------------------------------------------------------------------


def test_declined_cancelled_and_free_events_are_ignored_by_every_rule():
    settings = make_settings({"max_sessions_per_day": 0, "double_booked": True})
    events = [
        session(MONDAY, "10:00", "10:50", declined=True),
        session(MONDAY, "10:00", "10:50", cancelled=True),
        session(MONDAY, "10:00", "10:50", busy=False),
    ]
    assert evaluate(settings, events).violations == ()


# -- cadence -----------------------------------------------------------------------------


def test_cadence_met_by_an_upcoming_event_is_quiet():
    settings = make_settings({"cadence": [{"kind": "supervision", "every": "14d"}]})
    past = session(MONDAY - timedelta(days=10), "09:00", "10:00", "#supervision")
    upcoming = [session(WED + timedelta(days=d), "09:00", "10:00", "#supervision") for d in (0, 14)]
    assert rules_hit(evaluate(settings, [past, *upcoming]), "cadence") == []


def test_cadence_deadline_inside_the_horizon_is_reported_at_the_deadline():
    settings = make_settings({"cadence": [{"kind": "peer_support", "every": "7d"}]})
    last = session(MONDAY - timedelta(days=3), "13:00", "14:00", "Team debrief #team")
    hits = rules_hit(evaluate(settings, [last]), "cadence")
    # Deadlines Fri 4 Dec 13:00, then a week after each missed one, up to the 28-day horizon.
    assert [v.date for v in hits] == [
        date(2026, 12, 4),
        date(2026, 12, 11),
        date(2026, 12, 18),
        date(2026, 12, 25),
    ]
    assert hits[0].kind == "peer_support"
    assert hits[0].message == (
        "no team debrief or peer support by Fri 4 Dec 13:00; you planned it every week"
    )


def test_cadence_without_a_previous_event_counts_from_now_and_keeps_its_identity():
    settings = make_settings({"cadence": [{"kind": "supervision", "every": "14d"}]})
    first = rules_hit(evaluate(settings, []), "cadence")
    later = rules_hit(evaluate(settings, [], NOW + timedelta(hours=5)), "cadence")
    assert first[0].date == date(2026, 12, 14)
    assert [v.fingerprint for v in first] == [v.fingerprint for v in later]


def test_cadence_event_after_a_missed_deadline_restarts_the_chain():
    settings = make_settings({"cadence": [{"kind": "supervision", "every": "7d"}]})
    late = session(MONDAY + timedelta(days=9), "09:00", "10:00", "#supervision")  # Wed 9 Dec
    hits = rules_hit(evaluate(settings, [late]), "cadence")
    assert [v.date for v in hits] == [date(2026, 12, 7), date(2026, 12, 16), date(2026, 12, 23)]


# -- buffers -----------------------------------------------------------------------------

BUFFERS = {
    "buffers": [
        {"after": "high", "length": "15m", "title": "Grounding time"},
        {"after": "moderate", "length": "10m", "title": "Notes"},
    ]
}


def test_buffer_follows_the_highest_rule_the_session_reaches():
    settings = make_settings(BUFFERS, clinician={"buffers_to": "work"})
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    moderate = session(MONDAY, "11:00", "11:50")
    light = session(MONDAY, "13:00", "13:50", "#light")
    result = evaluate(settings, [heavy, moderate, light])
    assert [(b.after, b.title, b.end - b.start, b.calendar) for b in result.buffers] == [
        (heavy.key, "Grounding time", timedelta(minutes=15), "work"),
        (moderate.key, "Notes", timedelta(minutes=10), "work"),
    ]
    assert result.buffers[0].start == heavy.end


def test_buffer_without_room_is_a_violation_and_not_placed():
    settings = make_settings(BUFFERS)
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    dentist = session(MONDAY, "10:00", "11:00", "Dentist", calendar="home")
    result = evaluate(settings, [heavy, dentist])
    assert result.buffers == ()
    [v] = rules_hit(result, "buffers")
    assert v.events == (heavy.key,)
    assert v.message == (
        "Mon 30 Nov, 09:50–10:05: no room for 15 minutes of grounding time "
        "after a high-intensity session"
    )


def test_own_buffers_and_free_events_leave_room():
    settings = make_settings(BUFFERS)
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    old_buffer = session(MONDAY, "09:50", "10:05", "Grounding time", owner="abc")
    free = session(MONDAY, "09:55", "10:30", "Optional", busy=False)
    assert len(evaluate(settings, [heavy, old_buffer, free]).buffers) == 1


def test_no_buffer_for_sessions_already_over_or_beyond_the_horizon():
    settings = make_settings(BUFFERS)
    over = session(MONDAY, "06:00", "07:50", "#heavy")
    beyond = session(MONDAY + timedelta(days=40), "09:00", "09:50", "#heavy")
    assert evaluate(settings, [over, beyond]).buffers == ()


def test_buffer_identity_is_deterministic_per_session_and_rule():
    settings = make_settings(BUFFERS)
    heavy = session(MONDAY, "09:00", "09:50", "#heavy", id="s1")
    moved = session(TUE, "09:00", "09:50", "#heavy", id="s1")
    [a] = evaluate(settings, [heavy]).buffers
    [b] = evaluate(settings, [moved]).buffers
    assert a.identity == b.identity and a.start != b.start


def test_a_users_copy_of_a_buffer_leaves_room_like_the_buffer_it_copies():
    settings = make_settings(BUFFERS)
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    copy = session(MONDAY, "09:50", "10:05", "Grounding time", marked=True)
    assert len(evaluate(settings, [heavy, copy]).buffers) == 1


def test_a_buffer_after_a_session_ending_in_the_repeated_dst_hour_ends_after_it_starts():
    # 2026-11-01: clocks in Toronto go back at 02:00; 01:00-02:00 happens twice. A session
    # 00:30 EDT - 01:20 EST ends in the second 01:20 (fold=1).
    night = datetime(2026, 11, 1, tzinfo=TZ).date()
    start = datetime(2026, 11, 1, 0, 30, tzinfo=TZ)
    end = datetime(2026, 11, 1, 1, 20, fold=1, tzinfo=TZ)
    heavy = Event("work", "late", start, end, title="#heavy")
    settings = make_settings(BUFFERS)
    [b] = evaluate(settings, [heavy], now=datetime(2026, 10, 31, 20, 0, tzinfo=TZ)).buffers
    assert b.start.astimezone(UTC) == end.astimezone(UTC)
    assert b.end.astimezone(UTC) - b.start.astimezone(UTC) == timedelta(minutes=15)
    assert b.start.date() == night


def test_a_buffers_violation_is_timed_as_the_slot_its_message_names():
    settings = make_settings(BUFFERS)
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    dentist = session(MONDAY, "10:00", "11:00", "Dentist", calendar="home")
    [v] = rules_hit(evaluate(settings, [heavy, dentist]), "buffers")
    assert (v.start, v.end) == (heavy.end, heavy.end + timedelta(minutes=15))
    assert v.date == MONDAY and v.events == (heavy.key,)


def test_a_cadence_deadline_is_every_days_later_on_the_clinicians_clock_across_dst():
    # A weekly team meeting, Tuesdays 11:00 in Toronto; clocks go back on Sun 1 Nov 2026.
    # Written with a TZID or in UTC, the next one is due Tue 3 Nov at 11:00 local.
    settings = make_settings({"cadence": [{"kind": "peer_support", "every": "7d"}]})
    now = datetime(2026, 10, 28, 9, 0, tzinfo=TZ)
    local = datetime(2026, 10, 27, 11, 0, tzinfo=TZ)
    for start in (local, local.astimezone(UTC)):
        meeting = Event("work", "team", start, start + timedelta(hours=1), title="#team")
        first = rules_hit(evaluate(settings, [meeting], now=now), "cadence")[0]
        assert first.start == datetime(2026, 11, 3, 11, 0, tzinfo=TZ)
        assert "by Tue 3 Nov 11:00" in first.message


def test_a_before_buffer_prepares_a_session_and_does_not_change_after_identities():
    rules = {
        "buffers": [
            {"before": "high", "length": "10m", "title": "Preparation"},
            {"after": "high", "length": "15m", "title": "Grounding time"},
        ]
    }
    heavy = session(MONDAY, "10:00", "10:50", "#heavy", id="h1")
    result = evaluate(make_settings(rules), [heavy])
    assert [(b.title, b.start, b.end) for b in result.buffers] == [
        ("Preparation", heavy.start - timedelta(minutes=10), heavy.start),
        ("Grounding time", heavy.end, heavy.end + timedelta(minutes=15)),
    ]
    [after_only] = evaluate(make_settings(BUFFERS), [heavy]).buffers
    assert result.buffers[1].identity == after_only.identity  # placed buffers keep theirs


def test_a_shrinking_buffer_takes_the_room_there_is_and_says_so_as_a_warning():
    rules = {
        "buffers": [
            {
                "after": "high",
                "length": "15m",
                "title": "Grounding time",
                "fit": "shrink",
                "min_length": "10m",
            }
        ]
    }
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    next_one = session(MONDAY, "10:00", "10:50")  # the 50-minute hour leaves 10 minutes
    result = evaluate(make_settings(rules), [heavy, next_one])
    [b] = result.buffers
    assert (b.start, b.end) == (heavy.end, heavy.end + timedelta(minutes=10))
    [v] = rules_hit(result, "buffers")
    assert v.severity is Severity.WARNING
    assert v.message == (
        "Mon 30 Nov, 09:50–10:00: grounding time shortened to 10 minutes (after a "
        "high-intensity session); there was no room for 15 minutes"
    )


def test_a_shrinking_buffer_below_its_minimum_is_not_placed():
    rules = {
        "buffers": [
            {
                "after": "high",
                "length": "15m",
                "title": "Grounding time",
                "fit": "shrink",
                "min_length": "10m",
            }
        ]
    }
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    close = session(MONDAY, "09:55", "10:50")
    result = evaluate(make_settings(rules), [heavy, close])
    assert result.buffers == ()
    [v] = rules_hit(result, "buffers")
    assert v.severity is Severity.ERROR and "no room for 15 minutes" in v.message


def test_leave_across_a_cadence_deadline_moves_it_a_day_per_day_off():
    settings = make_settings({"cadence": [{"kind": "supervision", "every": "14d"}]})
    last = session(MONDAY, "10:00", "11:00", "#supervision")
    leave = all_day(MONDAY + timedelta(days=7), "Holiday #off", days=5)
    now = at(MONDAY, "12:00")
    [without] = rules_hit(evaluate(settings, [last], now=now), "cadence")[:1]
    [with_leave] = rules_hit(evaluate(settings, [last, leave], now=now), "cadence")[:1]
    assert with_leave.start - without.start == timedelta(days=5)
    assert "by Mon 19 Dec" not in with_leave.message


def test_supervision_in_hours_per_rolling_period():
    settings = make_settings(
        {"cadence": [{"kind": "supervision", "hours": 1.5, "per": "30d"}]},
        daemon={"horizon": "28d"},
    )
    one_hour = session(MONDAY - timedelta(days=3), "10:00", "11:00", "#supervision")
    [v] = rules_hit(evaluate(settings, [one_hour]), "cadence")
    assert v.message == (
        "1 h of supervision or consultation in the 30 days to Mon 30 Nov; you planned "
        "1.5 h every 30 days"
    )
    enough = session(MONDAY - timedelta(days=2), "10:00", "10:30", "#supervision")
    later = session(MONDAY + timedelta(days=20), "10:00", "11:30", "#supervision")
    assert rules_hit(evaluate(settings, [one_hour, enough, later]), "cadence") == []


def test_a_cadence_gives_every_or_hours_with_per():
    import pytest as _pytest

    from caldaemon.errors import ConfigError

    for cadence in ({"kind": "supervision"}, {"kind": "supervision", "hours": 1}):
        with _pytest.raises(ConfigError):
            make_settings({"cadence": [cadence]})


def test_a_buffer_is_still_wanted_at_the_moment_its_session_ends():
    rules = {"buffers": [{"after": "high", "length": "15m", "title": "Grounding time"}]}
    heavy = session(MONDAY, "09:00", "09:50", "#heavy")
    [b] = evaluate(make_settings(rules), [heavy], now=heavy.end).buffers
    assert b.start == heavy.end  # not dropped (and so deleted) the moment it begins
    later = evaluate(make_settings(rules), [heavy], now=heavy.end + timedelta(minutes=1))
    assert later.buffers == ()  # begun: history, never planned again
