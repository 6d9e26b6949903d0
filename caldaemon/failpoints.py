"""Named points where the process can be made to die on purpose, for crash-safety tests
(the "fail points" of TiKV and FoundationDB). ``CALDAEMON_FAILPOINT=name`` makes the
process exit at once, without cleanup, as SIGKILL would, when it reaches ``name``."""

from __future__ import annotations

import os

_ARMED = os.environ.get("CALDAEMON_FAILPOINT", "")


def reach(name: str) -> None:
    if _ARMED and name == _ARMED:
        os._exit(137)
