"""The weekly report's HTML part as a person sees it (DESIGN.md §11), in a real headless
chromium: the picture the part names by ``cid:`` shown where it stands (resolved to the
related PNG, as a mail client does), shrunk to a phone's width, and every fact of the
text part readable under it, with no event text. Skipped where chromium cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from caldaemon.reports.picture import LEVEL_COLOURS
from tests.browser import PHONE, Browser, browser, decode_png, near, visible_text
from tests.notices.test_weekly_report import CANARY, Example, example, mail

__all__ = ["example"]  # the fixture, shared with the mail's own tests

HIGH = LEVEL_COLOURS[2]  # the colour of a high-intensity session in the picture


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    return browser(tmp_path_factory.mktemp("chromium"))


def page_of(example: Example, folder: Path) -> Path:
    """The HTML part with its cid: resolved to the PNG beside it."""
    sent = mail(example)
    assert sent.image is not None
    (folder / "week.png").write_bytes(sent.image)
    page = folder / "weekly.html"
    page.write_text(sent.html.replace(f"cid:{sent.image_cid}", "week.png"))
    return page


def high_columns(picture_png: bytes) -> list[int]:
    """The x of every pixel drawn in the high-intensity colour."""
    shot = decode_png(picture_png)
    return [
        x for y in range(shot.height) for x in range(shot.width) if near(shot.at(x, y), HIGH, 12)
    ]


def test_the_picture_shows_on_a_phone_shrunk_to_its_width(
    chromium: Browser, example: Example, tmp_path: Path
) -> None:
    page = page_of(example, tmp_path)
    phone = chromium.screenshot(page)
    assert (decode_png(phone).width, decode_png(phone).height) == PHONE
    on_phone = high_columns(phone)
    assert on_phone, "no high-intensity session drawn"
    # On a wide screen the picture is drawn at its own size (1122 pixels); on a phone it
    # shrinks to the screen, so Monday's to Friday's high sessions stand closer together.
    wide = high_columns(chromium.screenshot(page, (1400, 1400)))
    phone_span, wide_span = max(on_phone) - min(on_phone), max(wide) - min(wide)
    assert wide_span > 600 and phone_span < wide_span / 2, (phone_span, wide_span)


def test_every_fact_of_the_text_part_is_readable_and_no_event_text(
    chromium: Browser, example: Example, tmp_path: Path
) -> None:
    dom = chromium.dom(page_of(example, tmp_path))
    seen = visible_text(dom)
    sent = mail(example)
    facts = [line.strip() for line in sent.text.splitlines() if line.strip()]
    for fact in facts:
        assert " ".join(fact.split()) in seen, fact
    assert "<script" not in dom.lower()
    for title in example.titles:
        assert title not in seen and title not in dom, title
    assert CANARY not in dom
