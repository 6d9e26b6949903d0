"""``check`` shows what ``run`` would do: a buffer the user deleted or edited (as the
daemon's state records it) is not listed as one caldaemon would place."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from caldaemon.cli import main
from tests.service.workspace import Session, Workspace
from tests.support import TZ

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)


def checked_buffers(ws: Workspace) -> list[str]:
    result = CliRunner().invoke(
        main, ["check", "--json", "--config", str(ws.config), "--now", NOW.isoformat()]
    )
    assert result.exit_code in (0, 1), result.output
    return [b["start"] for b in json.loads(result.output)["buffers"]]


def test_a_buffer_the_user_deleted_is_not_shown_as_one_check_would_place(
    tmp_path: Path,
) -> None:
    ws = Workspace(
        tmp_path,
        sessions=[Session("s1", MON_10), Session("s2", MON_10 + timedelta(days=1))],
    )
    ws.cycle(NOW)
    assert len(checked_buffers(ws)) == 2
    text = ws.buffers.read_text()
    first = re.search(r"BEGIN:VEVENT.*?END:VEVENT\r?\n", text, re.S)
    assert first is not None
    ws.buffers.write_text(text.replace(first.group(0), ""))
    ws.cycle(NOW + timedelta(minutes=2))
    assert checked_buffers(ws) == [(MON_10 + timedelta(days=1, minutes=50)).isoformat()]
