"""The scale benchmark's reading of several daemons' logs (benchmarks/scale_log.py): each
cycle stays with the process that ran it, and the checks made after a run find a
clinician cycled by two processes at once, or left out of a round."""

from __future__ import annotations

from benchmarks.scale_log import CycleTimes, DaemonLog, overlapping, unpolled

SCHEDULED = "2026-11-30 09:00:00+00:00"
AT = 1796029200.0  # SCHEDULED as a timestamp


def line(at: float, pid: int, message: str, thread: str = "ThreadPoolExecutor-0_0") -> str:
    return f"{at:.6f} {pid} {thread} INFO caldaemon.x: {message}"


def running(at: float, pid: int) -> str:
    job = 'Running job "Daemon.run_clinician (trigger: interval[0:01:00], next run at: x)"'
    return line(at, pid, f"{job} (scheduled at {SCHEDULED})")


def cycle(at: float, pid: int, clinician: str) -> str:
    report = f"cycle {clinician}: 1 calendars ok, 0 failed, 3 events, +2 ~0 -0 buffers"
    return line(at, pid, report)


def test_interleaved_logs_keep_each_cycle_with_the_process_whose_worker_ran_it() -> None:
    log = DaemonLog()
    # Two processes, the same worker thread name in each, their lines interleaved.
    for text in (
        running(AT + 0.1, 11),
        running(AT + 0.2, 22),
        cycle(AT + 0.5, 22, "c00001"),
        cycle(AT + 0.9, 11, "c00000"),
    ):
        log.feed(text)
    assert sorted(log.cycles, key=lambda c: c.process) == [
        CycleTimes("c00000", 11, AT, AT + 0.1, AT + 0.9),
        CycleTimes("c00001", 22, AT, AT + 0.2, AT + 0.5),
    ]
    assert log.buffers_placed == 4


def test_a_skipped_job_leaves_no_cycle_and_the_next_one_is_timed_from_its_own_start() -> None:
    log = DaemonLog()
    log.feed(running(AT + 0.1, 11))  # not held by process 11: no cycle line follows
    log.feed(running(AT + 3.0, 11))
    log.feed(cycle(AT + 3.5, 11, "c00002"))
    assert [(c.started, c.finished) for c in log.cycles] == [(AT + 3.0, AT + 3.5)]


def test_lease_changes_and_skipped_runs_are_kept_per_process() -> None:
    log = DaemonLog()
    log.feed(line(AT, 11, "holding 100 clinician(s) (0 taken, 200 given back)", "MainThread"))
    missed = 'Run time of job "Daemon.run_clinician (trigger: x)" was missed by 0:00:03'
    log.feed(line(AT + 1, 22, missed))
    assert [(h.process, h.held, h.taken, h.given) for h in log.holdings] == [(11, 100, 0, 200)]
    assert log.missed == [(AT + 1, 22)]


def test_two_processes_on_one_clinician_at_overlapping_times_are_found() -> None:
    first = CycleTimes("c1", 11, 0.0, 0.0, 2.0)
    second = CycleTimes("c1", 22, 60.0, 1.5, 3.0)
    assert overlapping([second, first]) == [(first, second)]


def test_handing_a_clinician_over_after_its_cycle_ends_is_no_overlap() -> None:
    cycles = [
        CycleTimes("c1", 11, 0.0, 0.0, 2.0),
        CycleTimes("c1", 22, 60.0, 2.0, 3.0),  # starts as the other one finishes
        CycleTimes("c2", 11, 0.0, 0.5, 1.5),  # another clinician, at the same time
        CycleTimes("c1", 22, 120.0, 2.5, 4.0),  # one process, two runs: not a handover
    ]
    assert overlapping(cycles) == []


def test_a_clinician_with_no_cycle_scheduled_in_a_round_is_unpolled() -> None:
    cycles = [
        CycleTimes("c1", 11, 10.0, 10.0, 11.0),
        CycleTimes("c2", 22, 120.5, 120.5, 121.0),  # jittered just past the round's end
        CycleTimes("c3", 22, 130.0, 130.0, 131.0),
    ]
    assert unpolled(cycles, ["c1", "c2", "c3"], 60.0, 120.0) == {"c1", "c3"}
