"""Talking to systemd without libsystemd: sd_notify(3) datagrams and the watchdog
interval it asks for."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("caldaemon.daemon")


def under_systemd() -> bool:
    """Whether systemd listens for sd_notify(3) messages (so a STATUS is worth making)."""
    return bool(os.environ.get("NOTIFY_SOCKET"))


def notify_systemd(message: str) -> bool:
    """sd_notify(3): one datagram to $NOTIFY_SOCKET; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)
        return False


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (sd_watchdog_enabled(3)), in seconds."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or (os.environ.get("WATCHDOG_PID") not in (None, str(os.getpid()))):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
