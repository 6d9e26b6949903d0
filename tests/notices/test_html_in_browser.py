"""The HTML notice as a person sees it (DESIGN.md §11): the example week's notice, made by
``caldaemon run --once`` as the daemon makes it, rendered by a real headless chromium at a
phone's width. Checked by decoding what the browser gives back (the screenshot's PNG, the
DOM after layout), never against a golden image.

Skipped, with the reason, where chromium is missing or cannot start (.ci/run installs it).
"""

from __future__ import annotations

import mailbox
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main
from caldaemon.errors import AuthorizationError
from caldaemon.notices.compose import authorization_problem, operational_message
from tests.browser import PHONE, Browser, browser, decode_png, near, visible_text

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-30T08:00"
CANARY = "Zebulon Quixote"
TIME = re.compile(r"\d{1,2}:\d{2}")
DATE = re.compile(
    r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b|\b\d{4}-\d\d-\d\d\b"
)
# The colours of the lines' edges and of the page around the card
# (caldaemon/notices/html.py): drawn, the styles applied.
ERROR_EDGE, WARNING_EDGE, PAGE = "#d92d20", "#f79009", "#f3f4f6"


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str
    page: Path  # the HTML part, as a file the browser opens
    titles: tuple[str, ...]  # every event title of the example week, the canary's included


def example_notice(folder: Path, privacy: str) -> Notice:
    """The example week's notice, with a canary client name in one session's title."""
    shutil.copytree(ROOT / "examples", folder / "examples")
    practice = folder / "examples" / "practice.ics"
    calendar = practice.read_text()
    assert "SUMMARY:Session A.K.\r\n" in calendar or "SUMMARY:Session A.K.\n" in calendar
    practice.write_text(calendar.replace("Session A.K.", f"Session {CANARY}"))
    config = folder / "config.example.yaml"
    original = (ROOT / "config.example.yaml").read_text()
    assert "\n  privacy: redacted\n" in original
    config.write_text(original.replace("\n  privacy: redacted\n", f"\n  privacy: {privacy}\n"))

    result = CliRunner().invoke(main, ["run", "--config", str(config), "--once", "--now", NOW])
    assert result.exit_code == 0, result.output
    box = mailbox.Maildir(folder / ".caldaemon-example/state/notices", create=False)
    # The example also mails the weekly report (notices.weekly_report): not this notice.
    [message] = [m for m in box if not str(m["Subject"]).startswith("caldaemon: your week")]
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    page = folder / "notice.html"
    page.write_text(parts["text/html"])
    titles = tuple(
        line.split(":", 1)[1].strip()
        for ics in (folder / "examples").glob("*.ics")
        for line in ics.read_text().splitlines()
        if line.startswith("SUMMARY:")
    )
    return Notice(str(message["Subject"]), parts["text/plain"], page, titles)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    return browser(tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def redacted(tmp_path_factory: pytest.TempPathFactory) -> Notice:
    return example_notice(tmp_path_factory.mktemp("redacted"), "redacted")


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Notice:
    return example_notice(tmp_path_factory.mktemp("minimal"), "minimal")


def fact_lines(text: str) -> list[str]:
    """The facts of the plain-text part, without its "(warning) " mark (the HTML part
    says it with a label instead)."""
    return [
        line.removeprefix("  - ").removeprefix("(warning) ")
        for line in text.splitlines()
        if line.startswith("  - ")
    ]


# -- the example week (privacy: redacted) --------------------------------------------------


def test_the_notice_on_a_phone_is_a_picture_of_the_phones_width_with_its_colours(
    chromium: Browser, redacted: Notice
) -> None:
    picture = decode_png(chromium.screenshot(redacted.page))
    assert (picture.width, picture.height) == PHONE
    pixels = picture.pixels()
    assert sum(p != (255, 255, 255) for p in pixels) > len(pixels) // 10  # not blank
    assert sum(sum(p) < 200 for p in pixels) > 1000  # dark text drawn
    assert any(near(p, ERROR_EDGE) for p in pixels), "no error line's edge on the first screen"
    assert any(near(p, WARNING_EDGE) for p in pixels), "no warning line's edge on the screen"


def test_what_a_person_sees_holds_every_fact_in_time_order_and_no_event_text(
    chromium: Browser, redacted: Notice
) -> None:
    dom = chromium.dom(redacted.page)
    seen = visible_text(dom)
    facts = fact_lines(redacted.text)
    assert len(facts) == 7
    for fact in facts:
        assert fact in seen, fact
    assert [seen.index(fact) for fact in facts] == sorted(seen.index(fact) for fact in facts)
    # Tuesday's warning at 12:00 comes before its error at 16:30, each with its label.
    warning, error = (f for f in facts if f.startswith("every Tuesday"))
    assert f"Warning\n{warning}" in seen and f"Error\n{error}" in seen
    assert "12:00" in warning and "16:30" in error
    assert "caldaemon check" in seen
    assert "`" not in seen and "`" not in dom
    assert "<script" not in dom.lower()
    assert CANARY not in dom and "Quixote" not in dom
    for title in redacted.titles:
        assert title not in seen, title
    assert CANARY in "\n".join(redacted.titles)  # the canary was in the calendar


def test_the_card_fits_a_phone_and_keeps_to_600_pixels_on_a_wide_screen(
    chromium: Browser, redacted: Notice
) -> None:
    # Measured on the screenshots: a card wider than the screen would cover the page's
    # grey margin on the right (and scroll sideways); on a wide screen the card is the
    # run of non-grey pixels across a row.
    phone = decode_png(chromium.screenshot(redacted.page))
    margins = [*range(6), *range(phone.width - 6, phone.width)]
    for y in range(24, phone.height, 20):
        assert all(near(phone.at(x, y), PAGE, 2) for x in margins), f"row {y}"
    wide = decode_png(chromium.screenshot(redacted.page, (1024, 768)))
    assert wide.width == 1024
    for y in (60, 300, 600):
        card = [x for x in range(wide.width) if not near(wide.at(x, y), PAGE, 2)]
        assert card[-1] - card[0] + 1 == 600, y
        assert abs(card[0] - (wide.width - 1 - card[-1])) <= 1, "the card is not centred"


# -- privacy: minimal --------------------------------------------------------------------


def test_a_minimal_notice_shows_weekdays_and_counts_and_no_time_or_date(
    chromium: Browser, minimal: Notice
) -> None:
    seen = visible_text(chromium.dom(minimal.page))
    for said in (
        "Monday\n3 things to look at",
        "Tuesday\n2 things to look at, 1 of them a warning",
        "Thursday\n2 things to look at",
    ):
        assert said in seen, seen
    for part in (seen, minimal.subject, minimal.text):
        assert not TIME.search(part), part
        assert not DATE.search(part), part
        assert "intensity" not in part and "America/Toronto" not in part
        assert CANARY not in part
    assert minimal.subject == "caldaemon: 7 things to look at"
    picture = decode_png(chromium.screenshot(minimal.page))
    assert (picture.width, picture.height) == PHONE
    assert any(near(p, ERROR_EDGE) for p in picture.pixels())


# -- an operational notice ---------------------------------------------------------------


def test_an_operational_notice_shows_its_command_whole_on_a_phone(
    chromium: Browser, tmp_path: Path
) -> None:
    command = "caldaemon auth google --clinician lee --calendar work"
    problem, advice = authorization_problem(
        AuthorizationError("work", "google", "the refresh token was revoked", command)
    )
    message = operational_message(
        problem=problem, advice=advice, key="k", to="it@example.org", clinician="lee"
    )
    page = tmp_path / "operational.html"
    page.write_text(message.html)
    dom = chromium.dom(page)
    seen = visible_text(dom)
    assert command in seen and "`" not in seen
    assert re.search(r"<code[^>]*>" + re.escape(command) + "</code>", dom)
    assert "What to do" in seen
