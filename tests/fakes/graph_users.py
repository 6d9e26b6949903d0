"""Events as a user's Outlook makes them, for seeding the fake Microsoft Graph
(``MicrosoftServer.put_event``): real event data, each with its source.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

__all__ = ["out_of_office"]


def out_of_office(
    first: date,
    last: date,
    time_zone: str = "Eastern Standard Time",
    *,
    subject: str = "Out of office",
) -> dict[str, Any]:
    """Days off as Outlook makes them: a new event with "All day" ticked and "Show as"
    set to "Away" (vacationtracker.io, "How to Set Up Out of Office in Outlook Calendar";
    Outlook's automatic replies can block the calendar the same way). In Graph that is
    ``isAllDay`` true, midnight to midnight in the event's zone, ``showAs`` "oof" (event
    resource, ``showAs``: free, tentative, busy, oof, workingElsewhere, unknown), from
    ``first`` to ``last`` inclusive. Outlook writes Windows zone names."""
    end = last + timedelta(days=1)
    return {
        "subject": subject,
        "body": {"contentType": "html", "content": ""},
        "start": {"dateTime": f"{first.isoformat()}T00:00:00.0000000", "timeZone": time_zone},
        "end": {"dateTime": f"{end.isoformat()}T00:00:00.0000000", "timeZone": time_zone},
        "isAllDay": True,
        "showAs": "oof",
        "isReminderOn": False,
        "originalStartTimeZone": time_zone,
        "originalEndTimeZone": time_zone,
    }
