"""Config load: reading a platform's config with thousands of clinicians (issue 15).

For each size, a config like the scale benchmark's (one clinician per calendar,
alternately on Google and on Microsoft 365, each calendar also receiving the buffers) is
written with ``benchmarks.servers``; then, each in a new process:

- ``config.load``: the CPU of the call alone (``time.process_time`` around it), median of
  ``runs``, and the process's peak RSS;
- ``caldaemon validate``: the whole command's CPU (user + system, start-up included) and
  peak RSS.

Peak RSS is the child's own VmHWM (/proc/self/status), written as it exits: ``getrusage``'s
ru_maxrss would count this process's size at the fork too. A baseline process that only
imports the loader gives the RSS that is not the config's. Linux only.
Nothing here is timed against a target: the figures are printed.

    python -m benchmarks.config_load [--sizes 1000 5000 10000 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .servers import clinician_entry, write_config

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 5_000, 10_000, 20_000)
# Each child writes its peak RSS (VmHWM, kB) to stderr as it exits, however it exits.
_PEAK = (
    "import atexit, sys; atexit.register(lambda: sys.stderr.write(next(line for line in "
    "open('/proc/self/status') if line.startswith('VmHWM:')))); "
)
_LOAD = _PEAK + (
    "import time; from caldaemon.config import load; "
    "start = time.process_time(); settings = load(sys.argv[1]); "
    "print(time.process_time() - start, len(settings.clinicians))"
)
_VALIDATE = _PEAK + (
    "sys.argv = ['caldaemon', 'validate', '--config', sys.argv[1]]; "
    "from caldaemon.cli import main; main()"
)
_IMPORT_ONLY = _PEAK + "import caldaemon.config.load"


def calendar_entry(index: int, folder: Path) -> dict[str, Any]:
    """The calendar of clinician ``index``, with the keys the scale benchmark writes (the
    files it names need not exist: loading does not open them)."""
    if index % 2 == 0:
        return {
            "id": "work",
            "provider": "google",
            "calendar": f"c{index:05d}@bench.example",
            "credentials": str(folder / "google-client.json"),
            "token": str(folder / "tokens" / f"c{index:05d}-work.json"),
            "api_endpoint": "http://127.0.0.1:9/",
            "timeout": "30s",
        }
    return {
        "id": "work",
        "provider": "outlook",
        "tenant": "contoso.example",
        "client_id": "caldaemon-bench",
        "user": f"c{index:05d}@contoso.example",
        "auth": "client_credentials",
        "client_secret_file": str(folder / "graph-secret"),
        "authority": "https://127.0.0.1:9/contoso.example",
        "graph_endpoint": "https://127.0.0.1:9/v1.0",
        "ca_file": str(folder / "ca.pem"),
        "timeout": "30s",
    }


def write_platform(path: Path, clinicians: int) -> Path:
    """A config of ``clinicians`` clinicians at ``path``."""
    entries = [
        clinician_entry(f"c{index:05d}", calendar_entry(index, path.parent))
        for index in range(clinicians)
    ]
    return write_config(path, entries, poll_interval="1m", horizon="14d")


def _child(code: str, *args: str) -> tuple[str, float, float, int]:
    """Run ``python -c code args``; its stdout, CPU seconds (user + system), peak RSS in
    MB (its VmHWM), exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peaks = [line.split()[1] for line in process.stderr.splitlines() if line.startswith("VmHWM:")]
    return process.stdout, cpu, int(peaks[-1]) / 1024 if peaks else 0.0, process.returncode


def run(sizes: tuple[int, ...] = SIZES, runs: int = 3) -> dict[str, Any]:
    """``baseline_rss_mb`` and one row per size: ``clinicians``, ``bytes``,
    ``bytes_per_clinician``, ``load_cpu_s`` (median), ``load_rss_mb``, ``validate_cpu_s``,
    ``validate_rss_mb``, ``validate_exit``."""
    from caldaemon.config.load import MAX_CONFIG_BYTES

    _, _, baseline, _ = _child(_IMPORT_ONLY)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="caldaemon-bench-config-") as name:
        for clinicians in sizes:
            config = write_platform(Path(name) / f"config-{clinicians}.yaml", clinicians)
            size = config.stat().st_size
            loads: list[float] = []
            load_rss = 0.0
            for _ in range(runs):
                out, _, rss, code = _child(_LOAD, str(config))
                if code != 0:
                    break  # over the bound: refused, as validate shows below
                loads.append(float(out.split()[0]))
                load_rss = max(load_rss, rss)
            _, validate_cpu, validate_rss, validate_exit = _child(_VALIDATE, str(config))
            rows.append(
                {
                    "clinicians": clinicians,
                    "bytes": size,
                    "bytes_per_clinician": size / clinicians,
                    "load_cpu_s": statistics.median(loads) if loads else None,
                    "load_rss_mb": load_rss,
                    "validate_cpu_s": validate_cpu,
                    "validate_rss_mb": validate_rss,
                    "validate_exit": validate_exit,
                }
            )
    return {"baseline_rss_mb": baseline, "bound_bytes": MAX_CONFIG_BYTES, "rows": rows}


def table(figures: dict[str, Any]) -> str:
    lines = [
        "| clinicians | file | config.load CPU | its peak RSS | validate CPU | its peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for row in figures["rows"]:
        loaded = row["load_cpu_s"] is not None
        load = f"{row['load_cpu_s']:.2f} s" if loaded else "refused"
        load_rss = f"{row['load_rss_mb']:.0f} MB" if loaded else "—"
        validate = (
            f"{row['validate_cpu_s']:.2f} s"
            if row["validate_exit"] == 0
            else f"refused (exit {row['validate_exit']})"
        )
        lines.append(
            f"| {row['clinicians']:,} | {row['bytes'] / 1e6:.1f} MB "
            f"({row['bytes_per_clinician']:.0f} B each) | {load} | "
            f"{load_rss} | {validate} | {row['validate_rss_mb']:.0f} MB |"
        )
    lines.append("")
    lines.append(
        f"Bound: {figures['bound_bytes'] / 2**20:.0f} MiB; a process that only imports the "
        f"loader peaks at {figures['baseline_rss_mb']:.0f} MB."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.config_load")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(table(run(tuple(args.sizes), args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
