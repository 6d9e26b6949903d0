"""What the service schedules (caldaemon/service/jobs.py): a run that waits for a busy
worker still runs, late, instead of being skipped (APScheduler 3 skips one that starts
more than ``misfire_grace_time`` after its time, one second by default); with leases,
polls only for the clinicians held. Run through APScheduler's own ``run_job``, as its
executors do; the scheduler is never started (no waiting)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.executors.base import run_job
from apscheduler.schedulers.background import BackgroundScheduler

from caldaemon import config
from caldaemon.config import Settings
from caldaemon.service.cycle import CycleReport
from caldaemon.service.jobs import follow, schedule

CLINICIANS = ["ana", "ben", "cho"]


class Recorded:
    """The work, as the scheduler calls it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def run_clinician(self, clinician_id: str) -> CycleReport | None:
        self.calls.append(("poll", clinician_id))
        return None

    def digest(self, clinician_id: str) -> None:
        self.calls.append(("digest", clinician_id))

    def send_weekly(self, clinician_id: str) -> None:
        self.calls.append(("weekly", clinician_id))

    def deliver(self) -> tuple[int, int]:
        self.calls.append(("deliver", ""))
        return 0, 0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    people = "".join(
        f"  - {{id: {c}, email: {c}@example.org, rules: standard, calendars: "
        f"[{{id: work, provider: ics, path: {c}.ics}}]}}\n"
        for c in CLINICIANS
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent("""\
        timezone: America/Toronto
        daemon: {state_dir: state, poll_interval: 1m}
        notices:
          mode: digest
          digest_at: "18:00"
          weekly_report: {day: mon, at: "07:00"}
        rule_sets:
          standard: {working_hours: {mon-fri: "09:00-17:00"}}
        clinicians:
        """)
        + people
    )
    return config.load(path)


@pytest.mark.parametrize("job_id", ["cycle:ana", "digest:ana", "weekly:ana", "outbox"])
def test_a_run_an_hour_late_for_a_busy_worker_still_runs(settings: Settings, job_id: str) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    work = Recorded()
    schedule(scheduler, settings, work)
    job = scheduler.get_job(job_id)
    assert job is not None
    run_job(job, "default", [datetime.now(UTC) - timedelta(hours=1)], "apscheduler")
    assert len(work.calls) == 1


def test_with_leases_only_the_clinicians_held_are_polled(settings: Settings) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    work = Recorded()

    def polled() -> set[str]:
        return {
            j.id.removeprefix("cycle:") for j in scheduler.get_jobs() if j.id.startswith("cycle:")
        }

    schedule(scheduler, settings, work, held={"ana"})
    assert polled() == {"ana"}
    assert scheduler.get_job("digest:ben") is not None  # they check the lease themselves
    follow(scheduler, settings, work, {"ben", "cho"})
    assert polled() == {"ben", "cho"}
    follow(scheduler, settings, work, set(CLINICIANS))
    assert polled() == set(CLINICIANS)
