"""Google credentials: a person's OAuth token (installed-app flow) or a service account
with domain-wide delegation (a group practice on Google Workspace).

The ``credentials`` file is what Google Cloud console downloads: an OAuth client of type
"Desktop app" (``{"installed": {...}}``) or a service-account key
(``{"type": "service_account", ...}``). A person's token is kept in its own file, 0600 in
a 0700 directory, replaced atomically (DESIGN.md §7). Nothing here logs or prints a token.

Scopes (https://developers.google.com/calendar/api/auth): ``calendar.events`` for the
calendar that receives buffers, ``calendar.events.readonly`` for every other one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caldaemon.errors import AuthorizationError, CalendarError, TransientError
from caldaemon.providers.base import token_file

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from caldaemon.providers.google.settings import GoogleCalendar

SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
# Broader scopes a token may carry that include what caldaemon needs.
COVERS_EVENTS = frozenset({SCOPE_EVENTS, "https://www.googleapis.com/auth/calendar"})
EXPIRED = "the Google authorization has expired or was revoked"
SIGN_IN_WAIT = 600  # seconds the local redirect server waits for the browser


def scopes_for(calendar_id: str, buffers_to: str | None) -> list[str]:
    """Least privilege: write access only where caldaemon places buffers."""
    return [SCOPE_EVENTS if buffers_to == calendar_id else SCOPE_READONLY]


def token_path(config: GoogleCalendar, state_dir: Path, clinician_id: str) -> Path:
    return token_file(config.token, state_dir, clinician_id, config.id, "google")


def auth_command(clinician_id: str, calendar_id: str) -> str:
    return f"caldaemon auth google --clinician {clinician_id} --calendar {calendar_id}"


@dataclass(frozen=True)
class ClientFile:
    """The ``credentials`` file: ``kind`` is "installed" or "service_account"."""

    kind: str
    info: dict[str, Any]


def read_client(path: Path, calendar_id: str, source: str, command: str) -> ClientFile:
    """Read and recognise the credentials file by its shape: a service-account key has
    ``"type": "service_account"``; an OAuth client has an ``installed`` (Desktop app) or
    ``web`` section."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthorizationError(
            calendar_id,
            source,
            f"cannot read the Google credentials file {path} ({exc.strerror})",
            command,
        ) from None
    except ValueError:
        raise CalendarError(
            calendar_id,
            source,
            f"{path} is not JSON; download the OAuth client (or service-account key) again",
        ) from None
    if isinstance(data, dict) and data.get("type") == "service_account":
        return ClientFile("service_account", data)
    if isinstance(data, dict) and isinstance(data.get("installed"), dict):
        return ClientFile("installed", data["installed"])
    if isinstance(data, dict) and "web" in data:
        raise CalendarError(
            calendar_id,
            source,
            f"{path} is an OAuth client of type "
            "'Web application'; create one of type 'Desktop app'",
        )
    raise CalendarError(
        calendar_id,
        source,
        f"{path} is neither an OAuth client ('Desktop app') nor a service-account key",
    )


def load_credentials(
    config: GoogleCalendar,
    *,
    clinician_id: str,
    state_dir: Path,
    buffers_to: str | None,
    source: str,
) -> tuple[Credentials, Path | None]:
    """Credentials for one calendar, and the token file to save refreshed tokens to (None
    for a service account, which signs a new assertion instead). No network I/O."""
    command = auth_command(clinician_id, config.id)
    client = read_client(config.credentials, config.id, source, command)
    scopes = scopes_for(config.id, buffers_to)
    if client.kind == "service_account":
        from google.oauth2 import service_account

        if not config.subject and config.calendar == "primary":
            raise CalendarError(
                config.id,
                source,
                "a service account needs 'subject' (the "
                "clinician's Google address) to act on their calendar",
            )
        try:
            # google-auth leaves these constructors unannotated.
            sa = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                client.info, scopes=scopes, subject=config.subject or None
            )
        except (ValueError, KeyError) as exc:
            raise CalendarError(
                config.id,
                source,
                f"the service-account key is incomplete or damaged ({type(exc).__name__})",
            ) from None
        return sa, None

    from google.oauth2.credentials import Credentials as UserCredentials

    path = token_path(config, state_dir, clinician_id)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthorizationError(
            config.id,
            source,
            "caldaemon has not been signed in to this Google account yet",
            command,
        ) from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise AuthorizationError(
            config.id, source, f"cannot read the token file {path} ({why})", command
        ) from None
    if not isinstance(stored, dict) or not stored.get("refresh_token"):
        raise AuthorizationError(
            config.id, source, f"the token file {path} holds no refresh token", command
        )
    granted = stored.get("scopes")
    if (
        scopes == [SCOPE_EVENTS]
        and isinstance(granted, list)
        and not (COVERS_EVENTS & set(granted))
    ):
        raise AuthorizationError(
            config.id,
            source,
            "the stored Google authorization is read-only and this calendar receives buffers",
            command,
        )
    # The token file (written by ``authorize``) names its client; the client file fills
    # in whatever an older or hand-made token file lacks. The token endpoint comes from
    # the client file only: google-auth ignores a token file's token_uri, so that a
    # tampered token file cannot send the refresh token elsewhere.
    defaults = {
        key: client.info[key] for key in ("client_id", "client_secret") if client.info.get(key)
    }
    try:
        credentials = UserCredentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            defaults | stored
        )
    except ValueError as exc:
        raise AuthorizationError(
            config.id, source, f"the token file {path} is incomplete ({exc})", command
        ) from None
    if client.info.get("token_uri"):
        credentials = credentials.with_token_uri(client.info["token_uri"])
    return credentials, path


def _stored_refresh_token(path: Path) -> str | None:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return stored.get("refresh_token") if isinstance(stored, dict) else None


def _private_dir(directory: Path) -> None:
    """Create ``directory`` and any missing parents 0700."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def save_token(path: Path, text: str) -> None:
    """Write beside the file (mkstemp creates it 0600) and rename over it: a reader
    never sees half a token, and it is never readable by others."""
    _private_dir(path.parent)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class Authorization:
    """One calendar's credentials for a long-lived provider: read on first use, read
    again after they stopped working (the person may have signed in again meanwhile),
    and a refreshed access token saved back so a restart costs no refresh."""

    def __init__(
        self,
        config: GoogleCalendar,
        *,
        clinician_id: str,
        state_dir: Path,
        buffers_to: str | None,
        source: str,
        log: logging.Logger,
    ) -> None:
        self.config, self.clinician_id, self.state_dir = config, clinician_id, state_dir
        self.buffers_to, self.source, self.log = buffers_to, source, log
        self.command = auth_command(clinician_id, config.id)
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._token_file: Path | None = None
        self._saved: str | None = None
        self.generation = 0

    def credentials(self) -> tuple[Credentials, int]:
        """The credentials and a number that changes whenever they are read anew."""
        with self._lock:
            if self._credentials is None:
                self._credentials, self._token_file = load_credentials(
                    self.config,
                    clinician_id=self.clinician_id,
                    state_dir=self.state_dir,
                    buffers_to=self.buffers_to,
                    source=self.source,
                )
                self._saved = self._credentials.token
                self.generation += 1
            return self._credentials, self.generation

    def forget(self) -> None:
        with self._lock:
            self._credentials = None

    def save_refreshed(self) -> None:
        from google.oauth2.credentials import Credentials as UserCredentials

        with self._lock:
            credentials, path = self._credentials, self._token_file
            if (
                not isinstance(credentials, UserCredentials)  # a service account keeps none
                or path is None
                or not credentials.token
                or (credentials.token == self._saved)
            ):
                return
            try:
                if _stored_refresh_token(path) != credentials.refresh_token:
                    # Signed in again meanwhile: keep the new token, use it from now on.
                    self._credentials = None
                    return
                save_token(path, credentials.to_json())  # type: ignore[no-untyped-call]
            except OSError as exc:
                self.log.warning(
                    "%s: cannot save the refreshed token to %s: %s", self.source, path, exc.strerror
                )
                return
            self._saved = credentials.token

    def refused(self, exc: Exception) -> CalendarError:
        """What a failed token refresh (google.auth RefreshError) means for the person:
        ``invalid_grant`` is an expired or revoked authorization (RFC 6749 §5.2)."""
        service_account = self._token_file is None
        self.forget()
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        code = str(data.get("error") or "")
        if getattr(exc, "retryable", False):
            return TransientError(
                self.config.id, self.source, f"Google's sign-in service failed ({code})"
            )
        if service_account:
            return CalendarError(
                self.config.id,
                self.source,
                f"Google refused the service "
                f"account ({code or 'no token'}); check its domain-wide "
                "delegation and 'subject'",
            )
        reason = (
            EXPIRED
            if code in ("", "invalid_grant")
            else (f"Google refused the stored authorization ({code})")
        )
        return AuthorizationError(self.config.id, self.source, reason, self.command)
