"""The weekly report as a mail (DESIGN.md §11), built from the example week read live as
``caldaemon report`` reads it (a canary client name in one session's title), delivered
through a Maildir, a real aiosmtpd server and the fake Graph's sendMail, and parsed back
with the stdlib: text and HTML alternatives, the HTML related to its PNG by ``cid:``, the
PNG the same picture ``caldaemon report --format png`` draws, and no event text."""

from __future__ import annotations

import base64
import mailbox
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon import config
from caldaemon.cli import main
from caldaemon.config import Settings
from caldaemon.notices.compose import Message, message_id, to_mime
from caldaemon.notices.graph import GraphMailer
from caldaemon.notices.maildir import MaildirMailer
from caldaemon.notices.smtp import SmtpMailer
from caldaemon.notices.weekly import MAX_PICTURE, weekly_key, weekly_message
from caldaemon.reports.picture import week_png
from caldaemon.reports.week import WeekView
from caldaemon.service.weekly import read_week
from tests.browser import decode_png
from tests.fakes.microsoft import MicrosoftServer
from tests.notices.smtp_server import SmtpServer
from tests.providers.outlook_support import Harness

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.fromisoformat("2026-11-30T08:00-05:00")
WEEK = date(2026, 11, 30)
CANARY = "Zebulon Quixote"
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
DATE = re.compile(
    r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b|\b\d{4}-\d\d-\d\d\b"
)


@dataclass(frozen=True)
class Example:
    folder: Path
    config: Path
    settings: Settings
    view: WeekView
    png: bytes
    titles: tuple[str, ...]  # every event title of the example, the canary's included


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    folder = tmp_path_factory.mktemp("example")
    shutil.copytree(ROOT / "examples", folder / "examples")
    practice = folder / "examples" / "practice.ics"
    practice.write_text(practice.read_text().replace("Session A.K.", f"Session {CANARY}"))
    path = folder / "config.example.yaml"
    shutil.copy(ROOT / "config.example.yaml", path)
    settings = config.load(path)
    read = read_week(settings, settings.clinicians[0], NOW, WEEK)
    assert read.view is not None and not read.errors
    titles = tuple(
        line.split(":", 1)[1].strip()
        for ics in (folder / "examples").glob("*.ics")
        for line in ics.read_text().splitlines()
        if line.startswith("SUMMARY:")
    )
    assert any(CANARY in t for t in titles)
    png = week_png(read.view, settings.classification.levels)
    return Example(folder, path, settings, read.view, png, titles)


def mail(example: Example, privacy: str = "redacted", png: bytes | None = None) -> Message:
    return weekly_message(
        example.view,
        example.png if png is None else png,
        privacy=privacy,
        key=weekly_key("lee", WEEK),
        to="sam.lee@example.org",
        greeting_name="Dr. Sam Lee",
    )


def parts(message: EmailMessage) -> dict[str, EmailMessage]:
    """Each leaf part by content type (one of each in these mails)."""
    found: dict[str, EmailMessage] = {}
    for part in message.walk():
        if not part.is_multipart():
            assert part.get_content_type() not in found
            found[part.get_content_type()] = part
    return found


def assert_weekly_structure(message: EmailMessage, sent: Message) -> None:
    """multipart/alternative: text/plain, then multipart/related (text/html, image/png);
    the HTML's cid: names the PNG's Content-ID; the PNG is the week's picture."""
    assert message["Message-ID"] == sent.message_id
    assert message.get_content_type() == "multipart/alternative"
    text, related = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    cid = str(image["Content-ID"])
    assert cid.startswith("<") and cid.endswith(">")
    sources = re.findall(r'<img src="([^"]+)"', html.get_content())
    assert sources == [f"cid:{cid[1:-1]}"]
    data = image.get_content()
    assert data == sent.image
    picture = decode_png(data)
    assert (picture.width, picture.height) == (1122, 660)
    assert text.get_content().rstrip("\n") == sent.text.rstrip("\n")


# -- the message -------------------------------------------------------------------------


def test_the_mail_carries_the_picture_report_draws_and_the_facts_report_prints(
    example: Example, tmp_path: Path
) -> None:
    out = tmp_path / "week.png"
    runner = CliRunner()
    args = ["report", "--config", str(example.config), "--now", NOW.isoformat()]
    drawn = runner.invoke(main, [*args, "--format", "png", "--output", str(out)])
    assert drawn.exit_code == 0, drawn.output
    printed = runner.invoke(main, args)
    assert printed.exit_code == 0, printed.output
    sent = mail(example)
    assert sent.image == out.read_bytes()
    assert printed.stdout.strip() in sent.text
    assert len(sent.image) < MAX_PICTURE
    assert sent.subject == "caldaemon: your week of Mon 30 Nov (4 boundaries crossed, 2 warnings)"


def test_its_mime_structure_parses_back_with_the_picture_related_to_the_html(
    example: Example,
) -> None:
    sent = mail(example)
    raw = to_mime(sent, "caldaemon@example.org").as_bytes(policy=policy.default)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert_weekly_structure(parsed, sent)
    # About the picture's size and a third for base64: bounded by the picture's bound.
    assert len(raw) < 2 * len(sent.image or b"") + 50_000


def test_the_same_week_is_the_same_message(example: Example) -> None:
    first, again = mail(example), mail(example)
    assert first == again
    assert first.message_id == message_id("lee/weekly/2026-11-30")
    assert first.image_cid in first.html


@pytest.mark.parametrize("privacy", ["minimal", "redacted", "full"])
def test_no_event_text_in_any_part_whatever_the_privacy(example: Example, privacy: str) -> None:
    sent = mail(example, privacy)
    raw = to_mime(sent, "caldaemon@example.org").as_bytes(policy=policy.default)
    parsed = message_from_bytes(raw, policy=policy.default)
    texts = [sent.subject, sent.text, sent.html, raw.decode("ascii", "replace")]
    texts += [p.get_content() for p in parts(parsed).values() if p.get_content_maintype() == "text"]
    for title in example.titles:
        for text in texts:
            assert title not in text, f"{title!r} in the {privacy} weekly report"
    assert all(CANARY not in text for text in texts)


def test_minimal_sends_weekday_counts_without_picture_date_or_time(example: Example) -> None:
    sent = mail(example, "minimal")
    assert sent.image is None and sent.subject == "caldaemon: your week ahead"
    parsed = to_mime(sent, "caldaemon@example.org")
    assert {p.get_content_type() for p in parsed.walk()} == {
        "multipart/alternative",
        "text/plain",
        "text/html",
    }
    for text in (sent.subject, sent.text, sent.html):
        assert not TIME.search(text) and not DATE.search(text), text
    assert "<img" not in sent.html and "run caldaemon report" in sent.text
    lines = [line.strip() for line in sent.text.splitlines() if line.startswith("  - ")]
    assert lines[0].startswith("- Monday: 5 sessions, ") and "to look at" in lines[0]
    assert [line.split(":")[0] for line in lines] == [
        f"- {day}"
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    ]


def test_a_picture_over_the_bound_is_left_out_and_every_fact_stays(example: Example) -> None:
    sent = mail(example, png=b"\x89PNG" + b"\0" * MAX_PICTURE)
    assert sent.image is None and "<img" not in sent.html
    assert "caldaemon report --format png" in sent.text
    assert mail(example).text.split("To see this week again")[0].rstrip() in sent.text


# -- delivered ---------------------------------------------------------------------------


def test_delivered_to_a_maildir_once_with_its_picture(example: Example, tmp_path: Path) -> None:
    sent = mail(example)
    mailer = MaildirMailer(tmp_path / "notices")
    mailer.send(sent)
    [written] = list((tmp_path / "notices" / "new").iterdir())
    written.rename(tmp_path / "notices" / "cur" / f"{written.name}:2,FS")  # read, flagged
    mailer.send(sent)  # a re-send after a crash: found by its name in cur/
    box = mailbox.Maildir(tmp_path / "notices", create=False)
    [stored] = list(box)
    parsed = message_from_bytes(stored.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert_weekly_structure(parsed, sent)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer("starttls") as server:
        yield server


def test_delivered_over_smtp_with_its_picture(example: Example, smtp: SmtpServer) -> None:
    sent = mail(example)
    SmtpMailer(smtp.email_settings()).send(sent)
    [received] = smtp.received
    assert received.tls and received.rcpt_tos == ("sam.lee@example.org",)
    assert_weekly_structure(received.message, sent)


def test_sent_through_graph_with_the_picture_as_an_inline_attachment(
    example: Example, tmp_path: Path
) -> None:
    sent = mail(example)
    with MicrosoftServer() as server:
        harness = Harness(server, tmp_path / "state")
        harness.sign_in(scopes=["Calendars.ReadWrite", "Mail.Send"])
        mailer = GraphMailer(harness.config, "lee", harness.state_dir)
        try:
            mailer.send(sent)
        finally:
            mailer.close()
        [posted] = server.sent_mail
    message = posted["message"]
    assert message["internetMessageId"] == sent.message_id
    assert message["body"] == {"contentType": "HTML", "content": sent.html}
    [attachment] = message["attachments"]
    assert attachment["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert attachment["isInline"] is True and attachment["contentType"] == "image/png"
    assert f'src="cid:{attachment["contentId"]}"' in sent.html
    data = base64.b64decode(attachment["contentBytes"], validate=True)
    assert data == sent.image and decode_png(data).width == 1122
    assert CANARY not in str(posted)
