"""The weekly report as a notice (``notices.weekly_report``, DESIGN.md §11): the week that
``caldaemon report`` shows, mailed. Pure: a :class:`~caldaemon.reports.week.WeekView` and
its picture in, a :class:`~caldaemon.notices.compose.Message` out.

The HTML part is the report's page (:func:`caldaemon.reports.html.week_html`) with the
picture inline by ``cid:``; the text part carries the same facts
(:func:`caldaemon.reports.text.week_text`). The report holds no event text in any privacy
mode: blocks are times, kinds and levels, and a line is a rule's own words (titles are
never added, not even with ``privacy: full``).
"""

from __future__ import annotations

from datetime import date

from caldaemon.notices import compose
from caldaemon.notices import html as markup
from caldaemon.notices.compose import PRODUCT, Message
from caldaemon.reports.html import week_html
from caldaemon.reports.text import week_text
from caldaemon.reports.week import WeekView
from caldaemon.text import day_name, plural

# The largest picture a mail carries. The report's PNG is 1122 pixels wide whatever the
# week holds and at most 1276 high (24 hours drawn): about 50 KB for the example week,
# 80 KB for a week packed around the clock with a block every 25 minutes. The bound, far
# above that, keeps a mail below what SMTP servers refuse (commonly 10–25 MB) and, base64
# included, under Graph's 3 MB for an attachment in the sendMail request itself.
MAX_PICTURE = 1_000_000
_FULL_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SIGNATURE = (
    "This report was sent automatically by caldaemon (notices.weekly_report in your config)."
)


def weekly_key(clinician: str, week: date) -> str:
    """One report per clinician and week: its Message-ID is the same however often it is
    queued or sent (a retry, a restart, the scheduled job and a catch-up both running)."""
    return f"{clinician}/weekly/{week.isoformat()}"


def weekly_message(
    view: WeekView, png: bytes | None, *, privacy: str, key: str, to: str, greeting_name: str
) -> Message:
    """The week as a mail: ``privacy`` "redacted" and "full" send the picture and every
    fact; "minimal" sends weekday counts only (see :func:`_minimal`)."""
    if privacy not in compose.PRIVACY:
        raise ValueError(f"privacy must be 'minimal', 'redacted' or 'full', not {privacy!r}")
    greeting = f"Hello {greeting_name}," if greeting_name else "Hello,"
    if privacy == "minimal":
        return _minimal(view, key=key, to=to, greeting=greeting)
    message_id = compose.message_id(key)
    subject = f"{PRODUCT}: your week of {day_name(view.start)} ({_crossed(view)})"
    intro = (
        "Here is your week as caldaemon sees it: sessions by intensity, buffers and holds, "
        "the boundaries crossed and each day's load against its limits. "
        f"Times are in {view.tz.key} time; client details are never part of this report."
    )
    again = (
        f"To see this week again, or another: caldaemon report --week {view.start.isoformat()}"
        " (add --format png for the picture)."
    )
    facts = week_text(view)
    picture = png if png is not None and len(png) <= MAX_PICTURE else None
    if picture is None:
        # Never a mail without its facts: the text stands alone, and says where the
        # picture is.
        missing = "The picture is too large to mail; caldaemon report --format png draws it."
        text = "\n".join([greeting, "", intro, "", facts, missing, again, "", _SIGNATURE, ""])
        body = [
            markup.paragraph(greeting),
            markup.paragraph(intro),
            markup.lines(facts),
            markup.paragraph(missing, again),
            markup.paragraph(_SIGNATURE, small=True),
        ]
        return Message(message_id, to, subject, text, markup.document(subject, body))
    draft = Message(message_id, to, subject, "", "", picture)
    page = week_html(
        view,
        picture,
        source=f"cid:{draft.image_cid}",
        intro=(greeting, intro),
        note=(again, _SIGNATURE),
    )
    text = "\n".join([greeting, "", intro, "", facts, again, "", _SIGNATURE, ""])
    return Message(message_id, to, subject, text, page, picture)


def _crossed(view: WeekView) -> str:
    if not (view.errors or view.warnings):
        return "everything fits"
    said = f"{view.errors} {'boundary' if view.errors == 1 else 'boundaries'} crossed"
    return said + (f", {plural(view.warnings, 'warning')}" if view.warnings else "")


def _minimal(view: WeekView, *, key: str, to: str, greeting: str) -> Message:
    """``privacy: minimal``: notices there name only weekdays and counts, since a date and
    a time can identify a client to whoever also sees the calendar (compose's
    :func:`~caldaemon.notices.compose.violations_message`). The picture is a grid of times,
    so it is left out, and so are dates, the week's date in the subject included: each
    weekday says its sessions and the boundaries crossed on it, and the mail says to run
    ``caldaemon report`` for the rest. Hours summed over the week name no moment and stay."""
    subject = f"{PRODUCT}: your week ahead"
    intro = "Here is your week as caldaemon counts it."
    note = (
        "Dates, times, the picture and client details are left out of this mail on "
        "purpose: run `caldaemon report` to see your week."
    )
    days = []
    for day in view.days:
        sessions = next((c for c in day.counts if c.name == "sessions"), None)
        count = int(sessions.value) if sessions is not None else 0
        crossed = sum(1 for m in day.marks if not m.accepted)
        if day.day_off and not count:
            said = "day off"
        else:
            said = plural(count, "session") if count else "no sessions"
            if crossed:
                said += f", {plural(crossed, 'thing')} to look at"
        days.append(f"{_FULL_WEEKDAYS[day.day.weekday()]}: {said}")
    total = next((c for c in view.counts if c.name == "sessions"), None)
    week = f"The week: {plural(int(total.value) if total else 0, 'session')}"
    week += f", {view.hours.get('client', 0):g} client hours"
    weekly = sum(1 for m in view.marks if not m.accepted)
    if weekly:
        week += f"; {plural(weekly, 'thing')} to look at for the week as a whole"
    text = [greeting, "", intro, markup.plain(note), "", *(f"  - {d}" for d in days), ""]
    text += [week + ".", "", _SIGNATURE, ""]
    body = [
        markup.paragraph(greeting),
        markup.paragraph(intro, note),
        markup.paragraph(*days),
        markup.paragraph(week + "."),
        markup.paragraph(_SIGNATURE, small=True),
    ]
    return Message(
        compose.message_id(key), to, subject, "\n".join(text), markup.document(subject, body)
    )
