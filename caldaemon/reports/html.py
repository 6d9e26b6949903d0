"""The week as an HTML page (DESIGN.md §11): the picture, and under it every fact of the
picture as text (for a screen reader, or a mail client that blocks images). Inline
styles only; no script, no external resource."""

from __future__ import annotations

import base64
from html import escape

from caldaemon.reports.text import week_text
from caldaemon.reports.week import WeekView
from caldaemon.text import day_name

PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title></head>"
    '<body style="margin:0;padding:16px;background:#ffffff;color:#222222;'
    'font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif">'
    '<h1 style="font-size:20px;margin:0 0 12px 0">{title}</h1>'
    "{intro}"
    '<img src="{source}" alt="{alt}" style="max-width:100%;height:auto;border:1px solid #dddddd">'
    '<pre style="white-space:pre-wrap;font-size:14px;line-height:1.45">{facts}</pre>'
    "{note}"
    "</body></html>"
)
PARAGRAPH = '<p style="margin:0 0 12px 0;font-size:15px;line-height:1.5">{}</p>'


def title(view: WeekView) -> str:
    who = view.name or view.clinician
    return f"{who}: the week of {day_name(view.start)}"


def week_html(
    view: WeekView,
    png: bytes,
    source: str | None = None,
    *,
    intro: tuple[str, ...] = (),
    note: tuple[str, ...] = (),
) -> str:
    """The page; ``source`` replaces the inline data URI (``cid:…`` in a mail); ``intro``
    and ``note``: paragraphs of plain text above the picture and under the facts (the
    weekly mail's greeting and how to see the week again)."""
    src = source or "data:image/png;base64," + base64.b64encode(png).decode()
    alt = (
        f"The week of {day_name(view.start)}: {view.errors} boundaries crossed; "
        "every fact in the picture is written below it."
    )
    return PAGE.format(
        title=escape(title(view)),
        source=escape(src),
        alt=escape(alt),
        facts=escape(week_text(view)),
        intro="".join(PARAGRAPH.format(escape(text)) for text in intro),
        note="".join(PARAGRAPH.format(escape(text)) for text in note),
    )
