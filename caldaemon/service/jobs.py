"""What the service runs when (DESIGN.md §6): APScheduler 3 jobs for each clinician's
poll, digest and weekly report, and the outbox; and the worker threads they run on.
What each job does is :class:`caldaemon.service.daemon.Daemon`'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

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


def schedule(scheduler: BackgroundScheduler, settings: Settings, jobs: Jobs) -> None:
    """Replace every job with those ``settings`` ask for."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    for job in scheduler.get_jobs():
        job.remove()
    poll = settings.daemon.poll_interval.total_seconds()
    # Each clinician gets its own phase, spread evenly over the interval, so a
    # practice's calendars are not all polled in the same second (and a reload does
    # not queue them all at once). The random jitter on top stays small: APScheduler
    # 3 adds it to every run, counted from the last jittered one, so polls drift
    # later by half of it each time.
    jitter = min(1, int(poll / 60)) or None
    first = datetime.now(UTC)
    count = max(len(settings.clinicians), 1)
    for index, clinician in enumerate(settings.clinicians):
        phase = timedelta(seconds=poll * index / count)
        scheduler.add_job(
            jobs.run_clinician,
            IntervalTrigger(seconds=poll, jitter=jitter),
            args=[clinician.id],
            id=f"cycle:{clinician.id}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(poll),
            next_run_time=first + phase,
        )
        if settings.notices.mode == "digest":
            at = settings.notices.digest_at
            scheduler.add_job(
                jobs.digest,
                CronTrigger(hour=at // 60, minute=at % 60, timezone=clinician.tz),
                args=[clinician.id],
                id=f"digest:{clinician.id}",
                max_instances=1,
                coalesce=True,
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
                max_instances=1,
                coalesce=True,
            )
    scheduler.add_job(
        jobs.deliver, IntervalTrigger(seconds=30), id="outbox", max_instances=1, coalesce=True
    )
