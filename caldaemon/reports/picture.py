"""The week as a PNG (DESIGN.md §11): days × hours, each session a block coloured by its
level, other kinds in their own colours, buffers and holds shaded, working hours drawn,
blocks that cross a boundary outlined and marked "!", each day's load and sessions
against their limits under it, the week's hours at the foot.

Pillow draws it: a 7 MB wheel that imports in a few hundredths of a second, against
matplotlib's ~40 MB with NumPy and ~0.3 s. It is imported only here, when a picture is
asked for, so ``caldaemon --help`` and the daemon never pay for it. Colours are the
Okabe–Ito palette, told apart by people with the common colour-vision deficiencies; a
crossed boundary is also a thick outline and a "!", never colour alone.
"""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from caldaemon.reports.text import KIND_NAMES
from caldaemon.reports.week import Block, DayView, WeekView
from caldaemon.text import day_name

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

# Okabe & Ito, "Color Universal Design" (2008): distinguishable with protanopia,
# deuteranopia and tritanopia.
LEVEL_COLOURS = ("#56B4E9", "#E69F00", "#D55E00", "#882255", "#0072B2")
KIND_COLOURS = {
    "supervision": "#009E73",
    "peer_support": "#CC79A7",
    "personal": "#F0E442",
    "admin": "#999999",
    "other": "#C8C8C8",
}
WORKING = "#EEF4FA"
DAY_OFF = "#F2F2F2"
GRID = "#D0D0D0"
INK = "#222222"
FLAG = "#000000"

COLUMN, HOUR, LEFT, TOP, FOOT = 150, 44, 56, 70, 150


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _badge(draw: ImageDraw.ImageDraw, x: int, y: int) -> int:
    """A drawn "!" in a black disc at (x, y), 12 px wide; returns the x after it. Drawn,
    not typed: in Pillow's default font a small "!" is hard to tell from "l" or "I"."""
    draw.ellipse((x, y, x + 12, y + 12), fill=FLAG)
    draw.rectangle((x + 5, y + 2, x + 7, y + 7), fill="white")
    draw.rectangle((x + 5, y + 9, x + 7, y + 10), fill="white")
    return x + 16


def level_colour(level: str | None, levels: tuple[str, ...]) -> str:
    """Lightest level first; levels beyond the palette repeat its darkest colour."""
    if level is None or level not in levels:
        return KIND_COLOURS["other"]
    rank = levels.index(level)
    if len(levels) <= 3:  # low, moderate, high: sky blue, orange, vermillion
        return LEVEL_COLOURS[rank + (3 - len(levels))]
    return LEVEL_COLOURS[min(rank, len(LEVEL_COLOURS) - 1)]


def _span(view: WeekView) -> tuple[int, int]:
    """The hours shown: working hours and every block, at least 08:00–18:00."""
    first, last = 8, 18
    for day in view.days:
        for low, high in day.working:
            first, last = min(first, low.hour), max(last, high.hour + (high.minute > 0))
        for block in day.blocks:
            start, end = block.start.astimezone(view.tz), block.end.astimezone(view.tz)
            first = min(first, start.hour)
            last = max(last, 24 if end.date() > start.date() else end.hour + (end.minute > 0))
    return first, last


def _y(moment: time, first: int) -> int:
    return TOP + round((moment.hour - first + moment.minute / 60) * HOUR)


def week_png(view: WeekView, levels: tuple[str, ...] = ("low", "moderate", "high")) -> bytes:
    from PIL import Image, ImageDraw

    first, last = _span(view)
    width = LEFT + 7 * COLUMN + 16
    height = TOP + (last - first) * HOUR + FOOT
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    small, normal, big = _font(12), _font(14), _font(18)
    who = view.name or view.clinician
    draw.text((LEFT, 10), f"{who}: the week of {day_name(view.start)}", fill=INK, font=big)
    for hour in range(first, last + 1):
        y = TOP + (hour - first) * HOUR
        draw.line((LEFT, y, width - 16, y), fill=GRID)
        draw.text((8, y - 7), f"{hour:02d}:00", fill=INK, font=small)
    for index, day in enumerate(view.days):
        _draw_day(draw, view, day, LEFT + index * COLUMN, first, last, levels, (small, normal))
    _legend(draw, view, height - FOOT + 58, levels, small, normal)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _draw_day(
    draw: ImageDraw.ImageDraw,
    view: WeekView,
    day: DayView,
    x: int,
    first: int,
    last: int,
    levels: tuple[str, ...],
    fonts: tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, ...],
) -> None:
    small, normal = fonts
    bottom = TOP + (last - first) * HOUR
    draw.text((x + 6, TOP - 40), day_name(day.day), fill=INK, font=normal)
    if day.day_off:
        draw.rectangle((x + 2, TOP, x + COLUMN - 2, bottom), fill=DAY_OFF)
        draw.text((x + 6, TOP - 22), "day off", fill=INK, font=small)
    for low, high in day.working:
        draw.rectangle((x + 2, _y(low, first), x + COLUMN - 2, _y(high, first)), fill=WORKING)
    draw.line((x, TOP, x, bottom), fill=GRID)
    midnight = datetime.combine(day.day, time(), view.tz)
    for block in day.blocks:
        _draw_block(draw, view, block, x, first, midnight, levels, small)
    counts = [c for c in day.counts if c.limit is not None or c.name == "sessions"]
    for row, count in enumerate(counts[:3]):
        limit = f"/{count.limit:g}" if count.limit is not None else ""
        text = f"{count.name} {count.value:g}{limit}"
        at = (x + 6, bottom + 6 + row * 15)
        draw.text(at, text, fill=INK, font=small)
        if count.over:
            _badge(draw, at[0] + round(draw.textlength(text, font=small)) + 4, at[1] + 1)
    if day.marks:
        crossed = sum(1 for m in day.marks if not m.accepted)
        if crossed:
            after = _badge(draw, x + 6, TOP - 21)
            draw.text((after, TOP - 22), f"{crossed} crossed", fill=FLAG, font=small)


def _draw_block(
    draw: ImageDraw.ImageDraw,
    view: WeekView,
    block: Block,
    x: int,
    first: int,
    midnight: datetime,
    levels: tuple[str, ...],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    start = block.start.astimezone(view.tz)
    end = min(block.end.astimezone(view.tz), midnight + timedelta(days=1))
    top = _y(start.time(), first)
    bottom = max(
        top + 3, _y(end.time(), first) if end.date() == start.date() else _y(time(23, 59), first)
    )
    left, right = x + 8, x + COLUMN - 8
    if block.kind in ("buffer", "hold"):
        shade = "#B8B8B8" if block.kind == "buffer" else "#8C8C8C"
        draw.rectangle((left, top, right, bottom), outline=shade, width=1)
        step = 6 if block.kind == "buffer" else 4
        for offset in range(-(bottom - top), right - left, step):  # diagonal hatching
            x0, y0 = left + max(offset, 0), top + max(-offset, 0)
            length = min(right - x0, bottom - y0)
            draw.line((x0, y0, x0 + length, y0 + length), fill=shade)
        return
    colour = (
        level_colour(block.level, levels)
        if block.kind == "session"
        else KIND_COLOURS.get(block.kind, KIND_COLOURS["other"])
    )
    draw.rectangle(
        (left, top, right, bottom),
        fill=colour,
        outline=FLAG if block.flagged else "white",
        width=3 if block.flagged else 1,
    )
    if bottom - top >= 14:
        label = block.level or KIND_NAMES.get(block.kind, block.kind)
        after = _badge(draw, left + 5, top + 3) if block.flagged else left + 5
        draw.text((after, top + 2), label, fill=INK, font=font)


def _legend(
    draw: ImageDraw.ImageDraw,
    view: WeekView,
    y: int,
    levels: tuple[str, ...],
    small: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    normal: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    x = LEFT
    items = [(f"session, {lvl}", level_colour(lvl, levels)) for lvl in levels]
    items += [(KIND_NAMES[k], c) for k, c in KIND_COLOURS.items() if k != "other"]
    for label, colour in items:
        draw.rectangle((x, y, x + 14, y + 14), fill=colour, outline=INK)
        draw.text((x + 20, y), label, fill=INK, font=small)
        x += 30 + round(draw.textlength(label, font=small))
    text = "hatched: buffer / hold   outlined and "
    draw.text((x, y), text, fill=INK, font=small)
    after = _badge(draw, x + round(draw.textlength(text, font=small)) + 2, y + 1)
    draw.text((after, y), ": boundary crossed", fill=INK, font=small)
    hours = " · ".join(
        f"{KIND_NAMES.get(k, k).replace('session', 'client')} {v:g} h"
        for k, v in view.hours.items()
    )
    week = " · ".join(
        f"{c.name} {c.value:g}" + (f"/{c.limit:g}" if c.limit is not None else "")
        for c in view.counts
    )
    draw.text((LEFT, y + 26), f"The week: {week}", fill=INK, font=normal)
    draw.text((LEFT, y + 48), f"Hours: {hours}", fill=INK, font=normal)
