"""The shipped systemd units are valid, and the system unit stays hardened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
analyze = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def _copy(unit: str, tmp_path: Path, placeholder: str) -> Path:
    # verify checks that ExecStart= names an executable; point it at this Python.
    text = (UNITS / unit).read_text().replace(placeholder, sys.executable)
    target = tmp_path / unit
    target.write_text(text)
    return target


def test_system_unit_verifies(tmp_path):
    unit = _copy("caldaemon.service", tmp_path, "/usr/local/bin/caldaemon")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "caldaemon.service" not in result.stderr, result.stderr


def test_user_unit_verifies(tmp_path):
    unit = _copy("caldaemon-user.service", tmp_path, "%h/.local/bin/caldaemon")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert result.returncode == 0, result.stderr


def test_system_unit_exposure_stays_low(tmp_path):
    unit = _copy("caldaemon.service", tmp_path, "/usr/local/bin/caldaemon")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for caldaemon.service: ([0-9.]+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot score units offline: {result.stderr.strip()}")
    assert float(match.group(1)) <= 2.0, result.stdout


def test_system_unit_keeps_its_hardening():
    text = (UNITS / "caldaemon.service").read_text()
    for directive in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=caldaemon",
        "ConfigurationDirectory=caldaemon",
        "LoadCredential=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "ExecReload=",
    ):
        assert directive in text, directive


def _exposure(unit: Path, name: str, *user: str, env: dict[str, str] | None = None) -> float:
    assert analyze is not None
    result = subprocess.run(
        [analyze, *user, "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        env=env,
    )
    match = re.search(rf"Overall exposure level for {name}: ([0-9.]+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot score units offline: {result.stderr.strip()}")
    return float(match.group(1))


def test_user_unit_exposure_stays_low(tmp_path):
    # Was 8.9-9.1 ("EXPOSED"/"UNSAFE") before the user unit was sandboxed.
    unit = _copy("caldaemon-user.service", tmp_path, "%h/.local/bin/caldaemon")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    assert _exposure(unit, "caldaemon-user.service", "--user", env=env) <= 2.0


def test_user_unit_keeps_its_hardening():
    text = (UNITS / "caldaemon-user.service").read_text()
    for directive in (
        "Type=notify",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "ReadWritePaths=%S/caldaemon",
        "PrivateTmp=yes",
        "PrivateUsers=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "UMask=0077",
    ):
        assert directive in text, directive
