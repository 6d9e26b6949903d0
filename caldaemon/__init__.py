"""caldaemon: keeps a trauma therapist's calendar inside the boundaries they set."""

from __future__ import annotations

__version__ = "0.1.0"
