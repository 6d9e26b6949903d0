"""The processes of benchmarks/scale.py: the daemons it starts (one, or several on one
PostgreSQL state), and /proc samples of them, of the PostgreSQL server and of the
benchmark's own process (where the Google and Graph fakes run: when it saturates a core,
the lag measured is the fakes', not caldaemon's).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .scale_log import DaemonLog

SAMPLE_EVERY = 0.1
_TICKS = os.sysconf("SC_CLK_TCK")


def _times(pid: int, reaped: bool) -> float:
    """CPU seconds of a process (utime + stime), and of its children it has waited for
    (cutime + cstime) when ``reaped``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # utime, stime, cutime, cstime are fields 14 to 17 of proc(5); fields[0] is field 3.
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])
    return used / _TICKS


@dataclass
class ProcessSampler:
    """CPU seconds and threads of one process, sampled from /proc; with ``tree``, the CPU
    of its children too (PostgreSQL's backends: the live ones, and the exited ones
    through the server's cutime/cstime)."""

    pid: int
    tree: bool = False
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def cpu(self) -> float:
        used = _times(self.pid, self.tree)
        if self.tree:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as children:
                for child in children.read().split():
                    try:
                        used += _times(int(child), reaped=True)
                    except OSError:
                        continue  # exited meanwhile: counted in the parent's next sample
        return used

    def status(self, key: str) -> int:
        """A number from /proc/<pid>/status (kB for the Vm* keys)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def loop(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                self.samples.append((time.time(), self.cpu(), self.status("Threads")))
            except OSError:
                return

    def started(self) -> ProcessSampler:
        threading.Thread(target=self.loop, daemon=True).start()
        return self

    def between(self, start: float, end: float) -> tuple[float, float, int]:
        """CPU seconds and wall seconds from ``start`` to ``end``, and most threads."""
        if not self.samples:
            return 0.0, 0.0, 0
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        last = min(self.samples, key=lambda s: abs(s[0] - end))
        inside = [s for s in self.samples if start <= s[0] <= end] or [first]
        return last[1] - first[1], last[0] - first[0], max(s[2] for s in inside)


@dataclass
class Fleet:
    """``count`` daemons started with one bootstrap on one config, their logs read into
    one :class:`DaemonLog`."""

    boot: str
    config: Path
    count: int
    cwd: Path
    log: DaemonLog = field(default_factory=DaemonLog)
    daemons: list[subprocess.Popen[str]] = field(default_factory=list)
    samplers: list[ProcessSampler] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)
    copy_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, copy: IO[str] | None) -> None:
        for _ in range(self.count):
            daemon = subprocess.Popen(
                self._command("run"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.cwd,
            )
            assert daemon.stderr is not None
            reader = threading.Thread(target=self._read, args=(daemon.stderr, copy), daemon=True)
            reader.start()
            self.daemons.append(daemon)
            self.readers.append(reader)
            self.samplers.append(ProcessSampler(daemon.pid).started())

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", self.boot, *args, "--config", str(self.config)]

    def _read(self, stream: IO[str], copy: IO[str] | None) -> None:
        for raw in stream:
            self.log.feed(raw.rstrip("\n"))
            if copy is not None:
                with self.copy_lock:
                    copy.write(raw)

    def check(self) -> None:
        """Raise when a daemon has exited (with the logs' last lines)."""
        for daemon in self.daemons:
            if daemon.poll() is not None:
                raise RuntimeError(
                    f"daemon {daemon.pid} exited early:\n" + "\n".join(self.log.tail)
                )

    def signal(self, number: signal.Signals) -> None:
        for daemon in self.daemons:
            daemon.send_signal(number)

    def peak_kb(self) -> list[int]:
        return [sampler.status("VmHWM") for sampler in self.samplers]

    def open_fds(self) -> list[int]:
        return [len(os.listdir(f"/proc/{daemon.pid}/fd")) for daemon in self.daemons]

    def leases(self) -> Counter[int]:
        """The clinicians each daemon (by pid) holds, as ``caldaemon status --json``
        shows them (a holder is named host:pid:random)."""
        shown = subprocess.run(
            self._command("status", "--json"),
            capture_output=True,
            text=True,
            cwd=self.cwd,
            timeout=300,
            check=True,
        )
        holders = json.loads(shown.stdout)["leases"].values()
        return Counter(int(holder.split(":")[-2]) for holder in holders if holder)

    def stop(self) -> None:
        for sampler in self.samplers:
            sampler.stop.set()
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGCONT)
                daemon.send_signal(signal.SIGTERM)
        for daemon in self.daemons:
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        for reader in self.readers:
            reader.join(timeout=10)
