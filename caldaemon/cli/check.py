"""``caldaemon check`` and ``caldaemon events``: the calendars read live, read-only."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from caldaemon.cli.app import (
    clinician_option,
    config_option,
    json_option,
    load_settings,
    main,
    now_option,
    parse_now,
    user_errors,
)
from caldaemon.errors import Error

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings, Settings
    from caldaemon.core.assess import Assessment

# Processes ``check`` judges clinicians in, at most: each holds a copy of the config and
# its clinicians' year in memory (a year of a 40-clinician practice: 3.4 s in one
# process, 2.0 s in two on 2 cores; benchmarks/RESULTS.md).
MAX_JOBS = 8
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _print_problems(results: list[Assessment[ClinicianSettings]]) -> int:
    for line in _problems(results):
        click.echo(line, err=True)
    return 2 if any(r.errors for r in results) else 0


def _problems(results: list[Assessment[ClinicianSettings]]) -> list[str]:
    """The warnings and unread calendars of ``results``, as stderr says them."""
    lines: list[str] = []
    for result in results:
        lines += [f"warning: {warning}" for warning in result.warnings]
        lines += [f"error: {error}" for error in result.errors]
    return lines


@dataclass(frozen=True)
class _Shown:
    """What ``check`` prints for some clinicians, and what its exit code needs."""

    items: dict[str, str]  # --json: the JSON lists' items (render.check_json_items)
    lines: list[str]  # else: the lines (render.check_lines)
    problems: list[str]
    unread: bool  # a calendar could not be read
    errors: bool  # an error-level violation not accepted
    # An error that stopped the process (its message and exit code), said by the process
    # that prints as one process would have said it.
    failure: tuple[str, int] | None = None


# What the processes of a parallel ``check`` share, set before they start (fork).
_SHARED: dict[str, Any] = {}


def _judge(settings: Settings, now: datetime, ids: list[str | None], as_json: bool) -> _Shown:
    """Reads and judges the clinicians ``ids`` (None: every one) and renders what
    ``check`` prints for them."""
    from caldaemon.cli import render
    from caldaemon.model import Severity
    from caldaemon.service.read import check as read_and_assess
    from caldaemon.service.read import fewer_collections

    with fewer_collections():  # the whole year stays alive until it is printed
        results = [r for i in ids for r in read_and_assess(settings, now, i)]
        return _Shown(
            items=render.check_json_items(results) if as_json else {},
            lines=[] if as_json else render.check_lines(results),
            problems=_problems(results),
            unread=any(r.errors for r in results),
            # Accepted exceptions (an ok tag, caldaemon ack) are listed apart, not counted.
            errors=any(
                v.severity is Severity.ERROR and not v.accepted
                for r in results
                if not r.errors
                for v in r.evaluation.violations
            ),
        )


def _judge_shared(ids: list[str | None]) -> _Shown:
    try:
        return _judge(_SHARED["settings"], _SHARED["now"], ids, _SHARED["as_json"])
    except Error as exc:  # caldaemon's errors do not all survive pickling
        failure = (str(exc), exc.exit_code)
    except Exception:  # a bug: its traceback, and exit 1, as Python's own ends one process
        import traceback

        failure = (traceback.format_exc().rstrip(), 1)
    return _Shown({}, [], [], unread=False, errors=False, failure=failure)


def _judge_in_parallel(settings: Settings, now: datetime, jobs: int, as_json: bool) -> list[_Shown]:
    """The clinicians judged in ``jobs`` processes, each a run of consecutive clinicians,
    so that what they print joins in config order. Forked (Linux): the processes start
    with the config already read, and before any calendar connection exists."""
    ids: list[str | None] = [c.id for c in settings.clinicians]
    size = -(-len(ids) // jobs)
    runs = [ids[i : i + size] for i in range(0, len(ids), size)]
    # Imported here: `caldaemon --help` and a one-process check never need them.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _SHARED.update(settings=settings, now=now, as_json=as_json, parent=os.getpid())
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(runs), mp_context=context, initializer=_leave_ctrl_c) as pool:
        try:
            return list(pool.map(_judge_shared, runs))
        except KeyboardInterrupt:
            # Stopped now rather than after their reads; the pool then ends at once.
            for process in multiprocessing.active_children():
                process.terminate()
            raise


def _leave_ctrl_c() -> None:
    """Each process of a parallel ``check`` leaves Ctrl-C to the one that prints: a
    KeyboardInterrupt in a process waiting for work (python 3.11) can leave the pool's
    queue lock taken, and the command then hung with every process waiting on it, or
    printed their tracebacks. And it ends with that process: killed alone (``kill``, a
    CI runner's timeout, the OOM killer), it would leave them waiting for work forever,
    holding the pipe a ``| jq`` reads from (prctl(2) PR_SET_PDEATHSIG)."""
    import ctypes

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != _SHARED["parent"]:  # it ended before the line above
        os._exit(1)


def _jobs(requested: int | None, settings: Settings, clinician_id: str | None) -> int:
    """How many processes judge the clinicians: one for one clinician, else ``--jobs``,
    else one per CPU (up to 8). Processes are forked, which only Linux does safely."""
    many = len(settings.clinicians) if clinician_id is None else 1
    # A fork copies one thread: never from a process where others run (a caller that
    # runs the command in its own process).
    if many < 2 or not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 1
    if requested is not None:
        return max(1, min(requested, many))
    return max(1, min(len(os.sched_getaffinity(0)), MAX_JOBS, many))


@main.command()
@config_option
@now_option
@clinician_option
@json_option
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help="Clinicians judged in this many processes at once (default: one per CPU, up to 8; "
    "Linux only, elsewhere one process).",
)
@user_errors
def check(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    as_json: bool,
    jobs: int | None,
) -> None:
    """Read the calendars and show boundary violations and the buffers caldaemon would
    place. Changes nothing. Exit 0: all fine; 1: violations; 2: bad config, or a calendar
    that could not be read (nothing is then judged for its clinician)."""
    from caldaemon.cli import render

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    count = _jobs(jobs, settings, clinician_id)
    if count > 1:
        shown = _judge_in_parallel(settings, now, count, as_json)
    else:
        shown = [_judge(settings, now, [clinician_id], as_json)]
    for part in shown:
        if part.failure is not None:  # as user_errors says one
            click.echo(part.failure[0], err=True)
            sys.exit(part.failure[1])
    for part in shown:
        for line in part.problems:
            click.echo(line, err=True)
    if as_json:
        click.echo(render.check_json_joined(now, [part.items for part in shown]))
    else:
        click.echo(render.check_text_joined([part.lines for part in shown]))
    if any(part.unread for part in shown):
        sys.exit(2)
    sys.exit(1 if any(part.errors for part in shown) else 0)


@main.command()
@config_option
@now_option
@clinician_option
@json_option
@click.option("--redact", is_flag=True, help="Leave event titles out.")
@user_errors
def events(
    config_path: str | None,
    now_text: str | None,
    clinician_id: str | None,
    as_json: bool,
    redact: bool,
) -> None:
    """Show each event in the window with its kind, level and what decided them."""
    from caldaemon.cli import render
    from caldaemon.service.read import check as read_and_assess

    settings = load_settings(config_path)
    now = parse_now(now_text, settings)
    results = read_and_assess(settings, now, clinician_id)
    code = _print_problems(results)
    click.echo(
        render.events_json(now, results, redact) if as_json else render.events_text(results, redact)
    )
    sys.exit(code)
