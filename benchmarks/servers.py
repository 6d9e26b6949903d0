"""Shared set-up for the API and scale benchmarks: the local fakes of Google Calendar API
v3 and of Microsoft identity + Graph (tests/fakes), the credentials caldaemon reads to
reach them, generated sessions, and the config file of a practice whose clinicians live
on them.

Google calendars sign in as an OAuth "Desktop app" client with a stored refresh token
(what ``caldaemon auth google`` leaves behind); Outlook calendars use one app registered
by the practice's IT with a client secret (``auth: client_credentials``, one mailbox per
calendar), so no person has to approve a device code for each of a thousand mailboxes.
Session titles are neutral ("Session #heavy"): no client names exist anywhere here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from caldaemon.providers.google.auth import SCOPE_EVENTS
from tests.fakes.google_calendar import GoogleCalendarServer
from tests.fakes.microsoft import MicrosoftServer

ZONE = "America/Toronto"
TZ = ZoneInfo(ZONE)
GOOGLE_CLIENT_ID = "caldaemon-bench.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "bench-secret"
GRAPH_CLIENT_ID = "caldaemon-bench"
GRAPH_SECRET = "bench-app-secret"
GRAPH_DOMAIN = "contoso.example"
SESSION_MINUTES = 50
# Working hours wide enough for every session generated here, moved ones included.
RULES: dict[str, Any] = {
    "working_hours": {"mon-fri": "08:00-19:00"},
    "buffers": [{"after": "high", "length": "15m", "title": "Grounding time"}],
}
CLASSIFICATION: dict[str, Any] = {
    "tags": {"heavy": "high", "moderate": "moderate"},
    "default_level": "moderate",
}


@dataclass(frozen=True)
class Session:
    """One generated session: ``key`` is stable (it names the event on the server)."""

    key: str
    start: datetime
    heavy: bool

    @property
    def title(self) -> str:
        return "Session #heavy" if self.heavy else "Session #moderate"


def weekday_sessions(
    first_day: datetime, days: int, hours: Iterable[tuple[int, bool]], prefix: str
) -> list[Session]:
    """Sessions at the given (hour, heavy) slots on every weekday of ``days`` days from
    ``first_day`` (a local midnight)."""
    sessions: list[Session] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for hour, heavy in hours:
            start = day.replace(hour=hour)
            sessions.append(Session(f"{prefix}{len(sessions):04d}", start, heavy))
    return sessions


# -- Google ---------------------------------------------------------------------------------


def write_google_client(path: Path, server: GoogleCalendarServer) -> Path:
    """An OAuth "Desktop app" client file pointing at the fake's token endpoint."""
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": GOOGLE_CLIENT_ID,
                    "client_secret": GOOGLE_CLIENT_SECRET,
                    "auth_uri": server.url + "auth",
                    "token_uri": server.token_url,
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    return path


def write_google_token(path: Path, server: GoogleCalendarServer, refresh_token: str) -> Path:
    """The authorized-user file ``caldaemon auth google`` writes (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(
        json.dumps(
            {
                "refresh_token": refresh_token,
                "token_uri": server.token_url,
                "client_id": GOOGLE_CLIENT_ID,
                "client_secret": GOOGLE_CLIENT_SECRET,
                "scopes": [SCOPE_EVENTS],
            }
        )
    )
    path.chmod(0o600)
    return path


def google_event_id(key: str) -> str:
    """Google ids are base32hex (a-v, 0-9): the keys generated here already are."""
    return key.lower()


def google_resource(session: Session, start: datetime | None = None) -> dict[str, Any]:
    begin = start or session.start
    end = begin + timedelta(minutes=SESSION_MINUTES)
    return {
        "id": google_event_id(session.key),
        "summary": session.title,
        "start": {"dateTime": begin.isoformat(), "timeZone": ZONE},
        "end": {"dateTime": end.isoformat(), "timeZone": ZONE},
    }


@dataclass
class GoogleSide:
    """The practice's Google accounts on one fake server: credentials written once, and
    a calendar per clinician (named by its owner's address)."""

    server: GoogleCalendarServer
    root: Path
    client: Path = field(init=False)
    refresh_token: str = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = write_google_client(self.root / "google-client.json", self.server)
        self.refresh_token = self.server.issue_refresh_token()

    def calendar(
        self,
        clinician: str,
        calendar_id: str,
        sessions: Iterable[Session],
        *,
        primary: bool = False,
    ) -> dict[str, Any]:
        """Seed the clinician's calendar; returns its entry for the config file."""
        name = "primary" if primary else f"{clinician}@bench.example"
        if not primary:
            self.server.add_calendar(name, time_zone=ZONE)
        for session in sessions:
            self.server.put_event(name, google_resource(session))
        token = write_google_token(
            self.root / "tokens" / f"{clinician}-{calendar_id}.json",
            self.server,
            self.refresh_token,
        )
        return {
            "id": calendar_id,
            "provider": "google",
            "calendar": name,
            "credentials": str(self.client),
            "token": str(token),
            "api_endpoint": self.server.url,
            "timeout": "30s",
        }


# -- Microsoft Graph ------------------------------------------------------------------------


def graph_resource(session: Session, start: datetime | None = None) -> dict[str, Any]:
    begin = start or session.start
    end = begin + timedelta(minutes=SESSION_MINUTES)
    return {
        "subject": session.title,
        "body": {"contentType": "text", "content": ""},
        "start": {"dateTime": begin.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": ZONE},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": ZONE},
    }


@dataclass
class GraphSide:
    """The practice's Microsoft 365 tenant on one fake server: one confidential app with
    a secret file, and a mailbox per clinician."""

    server: MicrosoftServer
    root: Path
    secret: Path = field(init=False)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.server.register_client(GRAPH_CLIENT_ID, secret=GRAPH_SECRET)
        self.secret = self.root / "graph-secret"
        self.secret.write_text(GRAPH_SECRET + "\n")
        self.secret.chmod(0o600)

    def calendar(
        self, clinician: str, calendar_id: str, sessions: Iterable[Session]
    ) -> dict[str, Any]:
        """Add the clinician's mailbox and seed its default calendar; returns its entry
        for the config file. Event ids are kept in ``ids`` by (mailbox, session key)."""
        user = f"{clinician}@{GRAPH_DOMAIN}"
        self.server.add_user(user)
        for session in sessions:
            stored = self.server.put_event(user, None, graph_resource(session))
            self.ids[(user, session.key)] = str(stored["id"])
        return {
            "id": calendar_id,
            "provider": "outlook",
            "tenant": self.server.tenant,
            "client_id": GRAPH_CLIENT_ID,
            "user": user,
            "auth": "client_credentials",
            "client_secret_file": str(self.secret),
            "authority": self.server.authority,
            "graph_endpoint": self.server.graph_url,
            "ca_file": self.server.ca_path,
            "timeout": "30s",
        }

    def move(self, clinician: str, session: Session, start: datetime) -> None:
        """The user drags the session to ``start`` in Outlook."""
        user = f"{clinician}@{GRAPH_DOMAIN}"
        resource = {"id": self.ids[(user, session.key)], **graph_resource(session, start)}
        self.server.put_event(user, None, resource)


# -- the config file ------------------------------------------------------------------------


def clinician_entry(clinician: str, calendar: dict[str, Any]) -> dict[str, Any]:
    """A clinician with one calendar that also receives the buffers."""
    return {
        "id": clinician,
        "email": f"{clinician}@practice.example",
        "rules": "standard",
        "calendars": [calendar],
        "buffers_to": calendar["id"],
    }


def write_config(
    path: Path,
    clinicians: list[dict[str, Any]],
    *,
    poll_interval: str,
    horizon: str,
    daemon: dict[str, str] | None = None,
) -> Path:
    """A practice's config file; its state (and the Maildir the notices go to) live next
    to it, unless ``daemon`` names another state (``state``, ``state_password_file``)."""
    data = {
        "timezone": ZONE,
        "daemon": {
            "state_dir": str(path.parent / "state"),
            "poll_interval": poll_interval,
            "horizon": horizon,
            **(daemon or {}),
        },
        "classification": CLASSIFICATION,
        "clinicians": clinicians,
        "rule_sets": {"standard": RULES},
        "notices": {"quiet_outside_working_hours": False},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def started_google(latency: float = 0.0, page_size_cap: int = 2500) -> GoogleCalendarServer:
    server = GoogleCalendarServer(
        primary_email="primary@bench.example", page_size_cap=page_size_cap
    ).start()
    server.latency = latency
    return server


def started_graph(latency: float = 0.0) -> MicrosoftServer:
    server = MicrosoftServer().start()
    server.latency = latency
    return server
