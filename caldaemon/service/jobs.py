"""What the service runs when (DESIGN.md §6): APScheduler 3 jobs for each clinician's
poll, digest and weekly report, and the outbox; and the worker threads they run on.
What each job does is :class:`caldaemon.service.daemon.Daemon`'s."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from caldaemon.config import Settings

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from caldaemon.service.cycle import CycleReport


class Jobs(Protocol):
    """The work the scheduler calls."""

    def run_clinician(self, clinician_id: str) -> CycleReport | None: ...

    def digest(self, clinician_id: str) -> None: ...

    def send_weekly(self, clinician_id: str) -> None: ...

    def deliver(self) -> tuple[int, int]: ...


def new_scheduler(settings: Settings) -> BackgroundScheduler:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    workers = max(2, min(32, len(settings.clinicians) + 2))
    return BackgroundScheduler(executors={"default": ThreadPoolExecutor(workers)}, timezone=UTC)


# A job that waits for a free worker runs late rather than not at all: APScheduler 3
# skips a run that starts more than ``misfire_grace_time`` after its time (the default
# is one second), so with every worker busy (thousands of calendars, a machine resumed
# from suspend) a day's digest could be lost, and a poll skipped waited a whole interval
# more. None: "allow the job to run no matter how late it is"
# (apscheduler.readthedocs.io/en/3.x/modules/job.html); coalescing keeps it to one run,
# ``max_instances=1`` to one at a time.
LATE_IS_FINE: dict[str, Any] = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


def schedule(
    scheduler: BackgroundScheduler,
    settings: Settings,
    jobs: Jobs,
    held: Collection[str] | None = None,
) -> None:
    """Replace every job with those ``settings`` ask for; polls only for the ``held``
    clinicians when instances share them (:func:`follow`)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    for job in scheduler.get_jobs():
        job.remove()
    for index, clinician in enumerate(settings.clinicians):
        if held is None or clinician.id in held:
            _add_poll(scheduler, settings, jobs, clinician.id, index)
        if settings.notices.mode == "digest":
            at = settings.notices.digest_at
            scheduler.add_job(
                jobs.digest,
                CronTrigger(hour=at // 60, minute=at % 60, timezone=clinician.tz),
                args=[clinician.id],
                id=f"digest:{clinician.id}",
                **LATE_IS_FINE,
            )
        weekly = settings.notices.weekly_report
        if weekly is not None:
            scheduler.add_job(
                jobs.send_weekly,
                CronTrigger(
                    day_of_week=weekly.day,
                    hour=weekly.at // 60,
                    minute=weekly.at % 60,
                    timezone=clinician.tz,
                ),
                args=[clinician.id],
                id=f"weekly:{clinician.id}",
                **LATE_IS_FINE,
            )
    scheduler.add_job(jobs.deliver, IntervalTrigger(seconds=30), id="outbox", **LATE_IS_FINE)


def follow(
    scheduler: BackgroundScheduler, settings: Settings, jobs: Jobs, held: Collection[str]
) -> None:
    """Polls for the clinicians this instance holds now, and none for the others: with
    three instances, each one fired every clinician's job and two thirds of them did
    nothing (issue 15: 4.30 ms CPU per own unchanged cycle on each of 3 instances, 2.57
    on one)."""
    for index, clinician in enumerate(settings.clinicians):
        job_id = f"cycle:{clinician.id}"
        scheduled = scheduler.get_job(job_id) is not None
        if clinician.id in held and not scheduled:
            _add_poll(scheduler, settings, jobs, clinician.id, index)
        elif clinician.id not in held and scheduled:
            scheduler.remove_job(job_id)


def _add_poll(
    scheduler: BackgroundScheduler, settings: Settings, jobs: Jobs, clinician_id: str, index: int
) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    poll = settings.daemon.poll_interval.total_seconds()
    # Each clinician gets its own phase, spread evenly over the interval by its place in
    # the config, so a practice's calendars are not all polled in the same second (and a
    # reload does not queue them all at once). The random jitter on top stays small:
    # APScheduler 3 adds it to every run, counted from the last jittered one, so polls
    # drift later by half of it each time.
    jitter = min(1, int(poll / 60)) or None
    phase = timedelta(seconds=poll * index / max(len(settings.clinicians), 1))
    scheduler.add_job(
        jobs.run_clinician,
        IntervalTrigger(seconds=poll, jitter=jitter),
        args=[clinician_id],
        id=f"cycle:{clinician_id}",
        next_run_time=datetime.now(UTC) + phase,
        **LATE_IS_FINE,
    )
