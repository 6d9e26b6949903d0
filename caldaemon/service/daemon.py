"""``caldaemon run``: the service loop (DESIGN.md §6).

APScheduler 3 runs one job per clinician every ``poll_interval`` (never two runs of one
job at once, missed runs coalesced, phases spread and jittered so a practice's
clinicians do not all poll in the same second), a digest job per clinician, a weekly
report job per clinician (``notices.weekly_report``, on its weekday and time in the
clinician's zone; each poll also sends one that is due and was missed), and the outbox
job (scheduled by :mod:`.jobs`). The main thread waits for signals: SIGHUP (or a change
of the config file) reloads — a broken new config is reported and the old one keeps
running — and SIGTERM lets the running cycles finish, then exits 0. Under systemd it
reports READY, STATUS and WATCHDOG through $NOTIFY_SOCKET; the watchdog is pinged only
while cycles keep completing, so a hung daemon gets restarted.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from caldaemon import config as config_module
from caldaemon import failpoints
from caldaemon.clock import Clock, system_clock
from caldaemon.config import Settings
from caldaemon.errors import CalendarError, ConfigError, Error, LeaseLost
from caldaemon.notices import compose, outbox
from caldaemon.notices.delivery import Mailer, deliver_due, mailer_for
from caldaemon.service.cycle import Cycle, CycleReport
from caldaemon.service.jobs import follow, new_scheduler, schedule
from caldaemon.service.providers import Providers
from caldaemon.service.sharing import Sharing
from caldaemon.service.systemd import notify_systemd, under_systemd, watchdog_interval
from caldaemon.service.weekly import WeeklyOutcome, send_if_due
from caldaemon.state import State
from caldaemon.state.lock import StateLock
from caldaemon.text import plural

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("caldaemon.daemon")


def open_state(settings: Settings, *, dry_run: bool = False) -> State:
    """The state database; a dry run works on an in-memory copy and keeps nothing."""
    return State(settings.state_location, memory_copy=dry_run or settings.daemon.dry_run)


@dataclass
class Health:
    started: datetime
    last_cycle: dict[str, datetime] = field(default_factory=dict)
    last_report: dict[str, CycleReport] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, report: CycleReport, finished: datetime) -> None:
        with self.lock:
            self.last_cycle[report.clinician] = finished
            self.last_report[report.clinician] = report


class Daemon:
    def __init__(
        self,
        config_path: str | None,
        *,
        dry_run: bool = False,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        settings: Settings | None = None,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.dry_run = dry_run
        self.settings = settings or config_module.load(config_path)
        writes = not (dry_run or self.settings.daemon.dry_run)
        # On PostgreSQL, instances on any machine share the clinicians by leases
        # (:mod:`.sharing`); on SQLite, one process holds the state folder.
        shared = writes and self.settings.daemon.state is not None
        self.lock = StateLock(self.settings.daemon.state_dir)
        if writes and not shared:
            self.lock.acquire()  # a dry run changes nothing and may run beside the daemon
        try:
            self.state = open_state(self.settings, dry_run=dry_run)
        except BaseException:
            self.lock.release()
            raise
        self.sharing: Sharing | None = None
        if shared:
            self.sharing = Sharing(self.state, clock, self.settings.daemon.poll_interval)
            self.state.share_as(self.sharing.holder)
        self.sleep = sleep
        self.providers = Providers(self.settings, sleep, self._timestamp)
        self.cycle = Cycle(self.settings, self.state, self.providers, clock=clock, dry_run=dry_run)
        self.mailer = _mailer(self.settings, dry_run)
        if self.mailer is not None:
            # A restart usually follows a fixed config: held notices get another try.
            with self.state.transaction() as tables:
                tables.outbox.release_held(clock())
        self.health = Health(clock())
        # Cycles that failed as a whole (``run --once`` exits 2 when there are any).
        self.failed_cycles: list[str] = []
        # What the last weekly report attempt that found one due did, per clinician
        # (``run --once`` says it).
        self.weekly_outcomes: dict[str, WeeklyOutcome] = {}
        self._weekly_locks: dict[str, threading.Lock] = {}
        self._weekly_locks_lock = threading.Lock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self._mtime = _mtime(self.settings.path)
        self.scheduler: BackgroundScheduler | None = None
        # The clinicians whose polls are scheduled, when instances share them.
        self._polling: set[str] | None = None

    # -- one cycle ---------------------------------------------------------------------

    def _timestamp(self) -> float:
        return self.clock().timestamp()

    def run_clinician(self, clinician_id: str) -> CycleReport | None:
        """One cycle, when this instance holds the clinician (always, unless shared)."""
        if self.sharing is None:
            return self._run_clinician(clinician_id)
        if not self.sharing.begin(clinician_id):
            return None
        try:
            return self._run_clinician(clinician_id)
        finally:
            self.sharing.end(clinician_id)

    def _holds(self, clinician_id: str) -> bool:
        return self.sharing is None or self.sharing.holds(clinician_id)

    def heartbeat(self) -> None:
        """Renew and share out the leases (when shared), and poll the clinicians held."""
        if self.sharing is None:
            return
        held = self.sharing.heartbeat([c.id for c in self.settings.clinicians])
        if self.scheduler is not None and held != self._polling:
            follow(self.scheduler, self.settings, self, held)
            self._polling = held

    def _run_clinician(self, clinician_id: str) -> CycleReport | None:
        try:
            clinician = self.settings.clinician(clinician_id)
        except ConfigError:
            return None  # removed by a reload while this run was queued
        try:
            report = self.cycle.run(clinician)
        except LeaseLost as exc:
            log.warning("%s", exc)
            return None
        except Error as exc:
            log.error("cycle for %s failed: %s", clinician_id, exc)
            self.failed_cycles.append(f"{clinician_id}: {exc}")
            return None
        except Exception as exc:
            log.exception("cycle for %s failed unexpectedly", clinician_id)
            self.failed_cycles.append(f"{clinician_id}: {type(exc).__name__}")
            return None
        self.health.record(report, self.clock())
        self.send_weekly(clinician_id, report.calendar_errors)
        return report

    def deliver(self) -> tuple[int, int]:
        if self.mailer is None:
            return 0, 0
        try:
            return deliver_due(self.state, self.mailer, self.clock())
        except Exception:
            log.exception("delivering notices failed")
            return 0, 0

    def digest(self, clinician_id: str) -> None:
        if not self._holds(clinician_id):
            return
        try:
            outbox.queue_digest(
                self.state,
                self.settings,
                self.settings.clinician(clinician_id),
                self.clock(),
                self.cycle.titles.get(clinician_id),
            )
        except Exception:
            log.exception("the digest for %s failed", clinician_id)
        self.deliver()

    def send_weekly(
        self, clinician_id: str, known_errors: Sequence[CalendarError] | None = None
    ) -> None:
        """The clinician's weekly report, when due and not queued yet: at its scheduled
        moment, and after each cycle (a report missed while the daemon was down, or while
        a calendar could not be read, goes out as soon as it can). One attempt per
        clinician at a time: another one running does it."""
        if self.settings.notices.weekly_report is None or not self._holds(clinician_id):
            return
        with self._weekly_locks_lock:
            lock = self._weekly_locks.setdefault(clinician_id, threading.Lock())
        if not lock.acquire(blocking=False):
            return
        try:
            clinician = self.settings.clinician(clinician_id)
            outcome = send_if_due(
                self.state, self.settings, clinician, self.clock(), known_errors or ()
            )
        except ConfigError:
            return  # removed by a reload while this run was queued
        except Exception:
            log.exception("the weekly report for %s failed", clinician_id)
            return
        finally:
            lock.release()
        if outcome.week is not None:
            self.weekly_outcomes[clinician_id] = outcome
        if outcome.queued and known_errors is None:
            self.deliver()

    def once(self) -> list[CycleReport]:
        self.heartbeat()
        reports = [r for c in self.settings.clinicians if (r := self.run_clinician(c.id))]
        failpoints.reach("before-delivery")
        self.deliver()
        return reports

    # -- the service -------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self.scheduler is not None
        self._polling = self.sharing.held if self.sharing is not None else None
        schedule(self.scheduler, self.settings, self, self._polling)

    def reload(self) -> bool:
        """Load the config again; keep running the old one if the new one is broken."""
        self._mtime = _mtime(self.settings.path)
        try:
            settings = config_module.load(self.config_path)
        except ConfigError as exc:
            log.error("the new config is not valid; still running the previous one:\n%s", exc)
            problem, advice = compose.config_problem(exc)
            outbox.raise_problem(
                self.state,
                self.settings,
                f"config:{hash(str(exc)) & 0xFFFFFFFF:x}",
                problem,
                advice,
                None,
                self.clock(),
            )
            self.deliver()
            return False
        if settings.state_location != self.settings.state_location:
            log.error("the state cannot change while running; restart caldaemon for that")
            return False
        outbox.clear_problem(self.state, "config:")
        self.providers.close()
        self.settings = settings
        self.providers = Providers(settings, self.sleep, self._timestamp)
        self.cycle = Cycle(
            settings, self.state, self.providers, clock=self.clock, dry_run=self.dry_run
        )
        self.mailer = _mailer(settings, self.dry_run)
        with self.state.transaction() as tables:
            tables.calendars.resume_all()  # a fixed authorization resumes
            released = tables.outbox.release_held(self.clock())
        if released:
            log.info("%d held notice(s) will be sent again with the new config", released)
        if self.scheduler is not None:
            self._schedule()
        log.info("config reloaded: %d clinician(s)", len(settings.clinicians))
        return True

    def serve(self) -> int:
        self.scheduler = new_scheduler(self.settings)
        self._schedule()
        self.heartbeat()

        def on_signal(flag: threading.Event) -> Callable[..., None]:
            def handler(*_: object) -> None:
                flag.set()
                self._wake.set()

            return handler

        signal.signal(signal.SIGHUP, on_signal(self._reload))
        signal.signal(signal.SIGTERM, on_signal(self._stop))
        signal.signal(signal.SIGINT, on_signal(self._stop))
        self.scheduler.start()
        notify_systemd("READY=1\nSTATUS=" + self.status_line())
        log.info(
            "caldaemon running: %d clinician(s), polling every %s",
            len(self.settings.clinicians),
            self.settings.daemon.poll_interval,
        )
        tick = min(watchdog_interval() or 5.0, 5.0)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.heartbeat()
            if self._reload.is_set() or _mtime(self.settings.path) != self._mtime:
                self._reload.clear()
                notify_systemd("RELOADING=1")
                self.reload()
                notify_systemd("READY=1")
            # The status line reads the state: only worth it when systemd listens.
            if under_systemd() and self.healthy():
                notify_systemd("WATCHDOG=1\nSTATUS=" + self.status_line())
        notify_systemd("STOPPING=1\nSTATUS=finishing the current cycle")
        log.info("stopping: finishing running cycles")
        self.scheduler.shutdown(wait=True)
        self.deliver()
        self.close()
        return 0

    def healthy(self) -> bool:
        """Cycles are completing: every clinician's last run is recent enough."""
        limit = max(self.settings.daemon.poll_interval * 3, timedelta(minutes=5))
        now = self.clock()
        held = self.sharing.held if self.sharing is not None else None
        with self.health.lock:
            if now - self.health.started < limit:
                return True
            return all(
                now - self.health.last_cycle.get(c.id, self.health.started) < limit
                for c in self.settings.clinicians
                if held is None or c.id in held
            )

    def status_line(self) -> str:
        with self.state.read() as tables:
            open_violations = tables.violations.count_open()
        with self.health.lock:
            last = max(self.health.last_cycle.values(), default=None)
        when = last.astimezone(self.settings.tz).strftime("%H:%M") if last else "none yet"
        return (
            f"{plural(len(self.settings.clinicians), 'clinician')}, last cycle {when}, "
            f"{plural(open_violations, 'open violation')}"
        )

    def close(self) -> None:
        if self.sharing is not None:
            self.sharing.leave()
        self.providers.close()
        self.state.close()
        self.lock.release()


def _mailer(settings: Settings, dry_run: bool) -> Mailer | None:
    if dry_run or settings.daemon.dry_run:
        return None
    return mailer_for(settings)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
