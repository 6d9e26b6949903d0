"""The HTML part of a notice, made for mail clients (DESIGN.md §11).

Mail clients strip ``<style>`` blocks, block external resources and never run scripts, so
every style here is inline, nothing is fetched, and the layout is the tables that every
client (Outlook's Word engine included) lays out alike: a container at most 600 pixels
wide that shrinks to a phone's width. Errors, warnings and resolved lines carry a word
("Error", "Warning", "Resolved") besides their colour, so the distinction never rests on
colour alone. Every text is escaped; commands, written between backticks in compose's
wording, become ``<code>`` (the plain-text part drops the backticks: no markdown in mail).
Pure: strings in, a string out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Tone = Literal["error", "warning", "resolved"]

# Colours from a palette whose text colours keep a contrast of at least 4.5:1 on their
# tints (WCAG AA), so a label reads in sunlight on a phone.
_TONES: dict[Tone, tuple[str, str, str]] = {  # (label, edge, background)
    "error": ("#b42318", "#d92d20", "#fef3f2"),
    "warning": ("#93370d", "#f79009", "#fffaeb"),
    "resolved": ("#067647", "#17b26a", "#ecfdf3"),
}
_FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_MONO = "SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"
_INK = "#1f2937"
_MUTED = "#4b5563"
_PAGE = "#f3f4f6"
_P = "margin:0 0 12px 0;"
_CODE = (
    f"font-family:{_MONO};font-size:14px;background-color:{_PAGE};"
    "padding:1px 4px;border-radius:4px;overflow-wrap:anywhere;"
)
# A command between backticks in compose's own wording (never in event text).
_COMMAND = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class Entry:
    """One line of a notice: a fact, or (``privacy: minimal``) a weekday's counts.

    ``label`` is the word shown above it; ``names`` the events' titles (``privacy:
    full`` only), set in italics between ``text`` and ``note``."""

    tone: Tone
    label: str
    text: str
    names: str = ""
    note: str = ""


def plain(text: str) -> str:
    """``text`` as the plain-text part says it: commands without their backticks."""
    return _COMMAND.sub(r"\1", text)


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def inline(text: str) -> str:
    """Escaped ``text`` with each command between backticks as ``<code>``."""
    parts = _COMMAND.split(text)  # plain, command, plain, command, ..., plain
    return "".join(
        f'<code style="{_CODE}">{escape(part)}</code>' if odd else escape(part)
        for odd, part in ((i % 2 == 1, part) for i, part in enumerate(parts))
    )


def paragraph(*lines: str, small: bool = False) -> str:
    """Lines of one paragraph, each on its own line."""
    style = _P + (f"font-size:13px;color:{_MUTED};" if small else "")
    return f'<p style="{style}">' + "<br>".join(inline(line) for line in lines) + "</p>"


def heading(text: str) -> str:
    return (
        f'<h2 style="margin:20px 0 8px 0;font-size:17px;line-height:1.3;color:{_INK};">'
        f"{escape(text)}</h2>"
    )


def lines(text: str) -> str:
    """Text whose line breaks and indentation matter (a config error, a command to run),
    wrapped where a phone needs it."""
    return (
        f'<div style="{_P}white-space:pre-wrap;overflow-wrap:anywhere;">'
        f"{inline(text.strip())}</div>"
    )


def entries(items: Sequence[Entry]) -> str:
    """A list of lines, each a tinted box with a coloured edge and its label."""
    return '<div style="margin:0 0 16px 0;">' + "\n".join(map(_entry, items)) + "</div>"


def _entry(item: Entry) -> str:
    colour, edge, tint = _TONES[item.tone]
    names = f' <i style="color:{_MUTED};">({escape(item.names)})</i>' if item.names else ""
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'border="0" style="border-collapse:separate;margin:0 0 8px 0;">'
        f'<tr><td style="border-left:4px solid {edge};background-color:{tint};'
        'padding:8px 12px;border-radius:0 6px 6px 0;">'
        f'<div style="font-size:12px;font-weight:bold;letter-spacing:0.05em;'
        f'text-transform:uppercase;color:{colour};">{escape(item.label)}</div>'
        f'<div style="color:{_INK};">{inline(item.text)}{names}{escape(item.note)}</div>'
        "</td></tr></table>"
    )


def document(title: str, blocks: Iterable[str]) -> str:
    """A whole message: a grey page, a white card at most 600 pixels wide, the blocks."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="color-scheme" content="light">',
            f"<title>{escape(title)}</title></head>",
            f'<body style="margin:0;padding:0;background-color:{_PAGE};">',
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            f'border="0" style="background-color:{_PAGE};">',
            '<tr><td align="center" style="padding:16px 8px;">',
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0" style="max-width:600px;background-color:#ffffff;border-radius:8px;">',
            f'<tr><td style="padding:20px;font-family:{_FONT};font-size:16px;'
            f'line-height:1.5;color:{_INK};text-align:left;">',
            *blocks,
            "</td></tr></table>",
            "</td></tr></table>",
            "</body></html>",
            "",
        ]
    )
