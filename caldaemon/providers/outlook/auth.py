"""Signing in to Microsoft 365 for an Outlook calendar, and the tokens the daemon uses.

Two ways (``auth`` in the calendar's config):

* ``device_code``: the clinician signs in once with ``caldaemon auth outlook`` (the OAuth
  device authorization grant, RFC 8628: a code typed into a browser anywhere); the daemon
  then refreshes silently from msal's token cache.
* ``client_credentials``: the practice's IT registers one app with application
  permissions; a client secret or a certificate, no person signs in.

The token cache is msal-extensions' file persistence (a lock file around every change)
with writes made atomic here: a temporary file, 0600, renamed over the cache, in a 0700
directory. One cache per calendar: ``state_dir/tokens/{clinician}-{calendar}.msal.json``;
under ``client_credentials`` the calendars of one app share its token (:class:`AppToken`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msal
import requests
from msal_extensions import FilePersistence, PersistedTokenCache

from caldaemon.errors import AuthorizationError, CalendarError, Error, TransientError
from caldaemon.providers.base import token_file
from caldaemon.providers.outlook.session import GraphSession
from caldaemon.secret import read_secret

if TYPE_CHECKING:
    from caldaemon.providers.outlook.settings import OutlookCalendar

CALENDAR_SCOPES = ["Calendars.ReadWrite"]  # msal adds openid, profile and offline_access
MAIL_SCOPES = ["Mail.Send"]
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
# Graph's national clouds name their own resource for ".default"; any other endpoint (a
# proxy, a test server) stands in for the global service.
_GRAPH_HOSTS = (
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
)
# AADSTS codes meaning "a person must sign in again"
# (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_SIGN_IN_AGAIN = {50076, 50078, 50079, 50173, 65001, 70008, 700082, 700084, 7000215, 7000222}
_AUTH_ERRORS = {
    "invalid_grant",
    "interaction_required",
    "consent_required",
    "login_required",
    "invalid_client",
    "unauthorized_client",
}


def authority_of(calendar: OutlookCalendar) -> str:
    return (calendar.authority or f"https://login.microsoftonline.com/{calendar.tenant}").rstrip(
        "/"
    )


def graph_endpoint_of(calendar: OutlookCalendar) -> str:
    return (calendar.graph_endpoint or DEFAULT_GRAPH).rstrip("/")


def app_scope(calendar: OutlookCalendar) -> str:
    """The client-credentials scope: ``{Graph resource}/.default``."""
    parts = urlsplit(graph_endpoint_of(calendar))
    if (parts.hostname or "").lower() in _GRAPH_HOSTS:
        return f"{parts.scheme}://{parts.hostname}/.default"
    return "https://graph.microsoft.com/.default"


def token_path(calendar: OutlookCalendar, clinician: str, state_dir: Path) -> Path:
    return token_file(calendar.token, state_dir, clinician, calendar.id, "msal")


def auth_command(clinician: str, calendar_id: str) -> str:
    return f"caldaemon auth outlook --clinician {clinician} --calendar {calendar_id}"


def describe(calendar: OutlookCalendar) -> str:
    who = "the signed-in account" if calendar.user == "me" else calendar.user
    return f"Outlook calendar '{calendar.calendar or 'primary'}' of {who}"


class _AtomicFilePersistence(FilePersistence):
    """msal-extensions' file persistence, saving through a temporary file and a rename, so
    that a crash never leaves half a token cache."""

    def save(self, content: str) -> None:
        location = Path(self.get_location())
        handle, temporary = tempfile.mkstemp(prefix=f".{location.name}.", dir=location.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, location)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


def open_cache(path: Path, *, own_directory: bool) -> PersistedTokenCache:
    """The persistent token cache at ``path``. Its directory is made 0700 when caldaemon
    creates it or owns it (``state_dir/tokens``); a configured ``token`` path's existing
    directory is left as it is."""
    created = not path.parent.exists()
    # mkdir(parents=True) would make the missing parents with the umask's mode (often
    # 0755): the state folder above tokens/ is made on the first sign-in, and must be
    # private as well (DESIGN.md §7; caldaemon doctor refuses one readable by others).
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    if created or own_directory:
        os.chmod(path.parent, 0o700)
    if path.exists():
        os.chmod(path, 0o600)
    return PersistedTokenCache(_AtomicFilePersistence(str(path)))


def build_app(
    calendar: OutlookCalendar,
    cache: PersistedTokenCache,
    session: GraphSession,
    credential: str | dict[str, str] | None = None,
) -> msal.ClientApplication:
    """An msal app using our HTTP session (so ``ca_file`` and timeouts apply). Instance
    discovery is off: it would ask login.microsoftonline.com about any authority, and the
    configured authority is trusted as it is."""
    options: dict[str, Any] = {
        "authority": authority_of(calendar),
        "token_cache": cache,
        "http_client": session,
        "instance_discovery": False,
    }
    if calendar.auth == "client_credentials":
        return msal.ConfidentialClientApplication(
            calendar.client_id, client_credential=credential or _credential(calendar), **options
        )
    return msal.PublicClientApplication(calendar.client_id, **options)


def _credential(calendar: OutlookCalendar) -> str | dict[str, str]:
    if calendar.certificate_file is not None:
        path = Path(calendar.certificate_file).expanduser()
        try:
            key = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _unreadable(path, exc) from None
        return {"private_key": key, "thumbprint": str(calendar.certificate_thumbprint or "")}
    value = read_secret(
        calendar.client_secret_file, calendar.client_secret_env, what="the Outlook client secret"
    )
    if not value:
        raise _unreadable(None, None)
    return value


def _unreadable(path: Path | None, exc: OSError | None) -> Error:
    if path is None:
        return Error("no client secret or certificate is configured for client_credentials")
    return Error(f"cannot read the certificate {path}: {exc.strerror if exc else ''}")


class AppToken:
    """The access token of one app under ``client_credentials``, shared by every mailbox
    it reads in this process: an app-only token is the app's, not a mailbox's ("the
    access token is for the application itself", learn.microsoft.com/graph/auth-v2-service).
    One token per mailbox meant a token request and a cache written to disk per mailbox
    whenever tokens expired: 5,000 of each in one poll for a practice of 5,000 (issue 15).

    The cache is the file of the calendar that opened the app first (where ``caldaemon
    auth`` put the token it checked). When Graph refuses a token, only the first mailbox
    to say so gets a new one; the others find it already replaced."""

    def __init__(self, app: msal.ConfidentialClientApplication, scope: str) -> None:
        self.app = app
        self.scope = scope
        self.lock = threading.Lock()

    def acquire(self, rejected: str | None) -> dict[str, Any]:
        with self.lock:
            if rejected is not None:
                current = self.app.acquire_token_for_client(scopes=[self.scope])
                if current.get("access_token") not in (None, rejected):
                    return dict(current)
                self.app.remove_tokens_for_client()
            return dict(self.app.acquire_token_for_client(scopes=[self.scope]))


# The apps of the calendars open in this process, while any of them is: by authority,
# client id, the credential's digest (a changed secret, read again on reload, is another
# app) and HTTP session.
_apps: weakref.WeakValueDictionary[tuple[str, str, str, int], AppToken] = (
    weakref.WeakValueDictionary()
)
_apps_lock = threading.Lock()


def app_token(calendar: OutlookCalendar, path: Path, session: GraphSession) -> AppToken:
    credential = _credential(calendar)
    digest = hashlib.sha256(repr(credential).encode()).hexdigest()
    key = (authority_of(calendar), calendar.client_id, digest, id(session))
    with _apps_lock:
        shared = _apps.get(key)
        if shared is None:
            cache = open_cache(path, own_directory=calendar.token is None)
            app = build_app(calendar, cache, session, credential)
            assert isinstance(app, msal.ConfidentialClientApplication)
            shared = _apps[key] = AppToken(app, app_scope(calendar))
        return shared


class TokenSource:
    """Access tokens for one calendar's account, from the persistent cache (refreshed by
    msal as needed). Failures that need a person raise AuthorizationError naming the
    command that fixes them; network trouble raises TransientError."""

    def __init__(
        self, calendar: OutlookCalendar, clinician: str, state_dir: Path, session: GraphSession
    ) -> None:
        self.calendar = calendar
        self.clinician = clinician
        self.path = token_path(calendar, clinician, state_dir)
        self.session = session
        self.where = describe(calendar)
        self.command = auth_command(clinician, calendar.id)
        self._app: msal.ClientApplication | None = None
        self._app_token: AppToken | None = None
        self._last: str | None = None
        self._account: str | None = None
        self._lock = threading.Lock()

    @property
    def app_only(self) -> bool:
        return self.calendar.auth == "client_credentials"

    def mailbox(self) -> tuple[str, str]:
        """Which mailbox requests go to (for the concurrency cap): the configured user,
        or for ``me`` the signed-in account."""
        user = self.calendar.user
        if user == "me":
            user = self._account or f"me:{self.path}"
        return authority_of(self.calendar), user.lower()

    def _fail(self, reason: str) -> AuthorizationError:
        return AuthorizationError(self.calendar.id, self.where, reason, self.command)

    def token(self, force: bool = False, scopes: list[str] | None = None) -> str:
        try:
            with self._lock:
                result = self._acquire(scopes or CALENDAR_SCOPES, force)
        except requests.exceptions.SSLError as exc:
            raise CalendarError(
                self.calendar.id,
                self.where,
                "the certificate of the sign-in "
                f"service could not be verified ({exc}); set ca_file if it "
                "uses a private CA",
            ) from None
        except requests.RequestException as exc:
            raise TransientError(
                self.calendar.id,
                self.where,
                f"cannot reach the Microsoft sign-in service: {type(exc).__name__}",
            ) from None
        except Error as exc:
            if isinstance(exc, CalendarError):
                raise
            raise self._fail(str(exc)) from None
        except ValueError as exc:  # msal: the authority's OpenID configuration is unusable
            raise CalendarError(self.calendar.id, self.where, f"sign-in service: {exc}") from None
        if "access_token" in result:
            self._last = str(result["access_token"])
            return self._last
        raise self._failure(result)

    def _acquire(self, scopes: list[str], force: bool) -> dict[str, Any]:
        if self.app_only:
            if self._app_token is None:
                self._app_token = app_token(self.calendar, self.path, self.session)
            return self._app_token.acquire(self._last if force else None)
        if self._app is None:
            cache = open_cache(self.path, own_directory=self.calendar.token is None)
            self._app = build_app(self.calendar, cache, self.session)
        app = self._app
        accounts = app.get_accounts()
        if not accounts:
            raise self._fail("not signed in to Microsoft 365")
        self._account = str(accounts[0].get("username") or "") or None
        result = app.acquire_token_silent_with_error(
            scopes, account=accounts[0], force_refresh=force
        )
        if result is None:
            raise self._fail("the stored sign-in has no usable token")
        return dict(result)

    def _failure(self, result: dict[str, Any]) -> CalendarError:
        error = str(result.get("error") or "unknown_error")
        codes = {int(c) for c in result.get("error_codes") or () if str(c).isdigit()}
        code = f"AADSTS{min(codes)}" if codes else error
        if 65001 in codes or result.get("classification") == "consent_required":
            return self._fail(f"consent to the app was withdrawn ({code})")
        if error in ("invalid_client", "unauthorized_client"):
            return self._fail(f"the app's credentials were refused ({code})")
        if error in _AUTH_ERRORS or codes & _SIGN_IN_AGAIN:
            return self._fail(f"the sign-in was revoked or has expired ({code})")
        if error in ("temporarily_unavailable", "server_error") or not codes:
            return TransientError(
                self.calendar.id, self.where, f"the Microsoft sign-in service failed ({code})"
            )
        return CalendarError(self.calendar.id, self.where, f"sign-in failed ({code})")


def sign_in(
    calendar: OutlookCalendar,
    clinician: str,
    state_dir: Path,
    *,
    echo: Callable[[str], None],
    scopes: list[str] | None = None,
) -> Path:
    """Sign the calendar's account in and store its tokens; returns the cache's path.

    ``device_code``: prints Microsoft's instructions (``flow["message"]``) through ``echo``
    and waits for the person to finish; accounts other than the one just signed in are
    removed from the cache (the cache belongs to this calendar only).
    ``client_credentials``: checks that the app's secret or certificate gets a token."""
    path = token_path(calendar, clinician, state_dir)
    session = GraphSession(calendar.ca_file, calendar.timeout.total_seconds())
    try:
        app = build_app(calendar, open_cache(path, own_directory=calendar.token is None), session)
        if isinstance(app, msal.ConfidentialClientApplication):
            result = app.acquire_token_for_client(scopes=[app_scope(calendar)])
            if "access_token" not in result:
                raise Error(f"Microsoft refused the app's credentials: {_first_line(result)}")
            echo(f"The app {calendar.client_id} can act for {calendar.user}.")
            return path
        flow = app.initiate_device_flow(scopes=scopes or CALENDAR_SCOPES)
        if "user_code" not in flow:
            raise Error(f"Microsoft did not start the sign-in: {_first_line(flow)}")
        echo(flow["message"])
        result = app.acquire_token_by_device_flow(flow)
        if "access_token" not in result:
            raise Error(f"the sign-in did not complete: {_first_line(result)}")
        username = (result.get("id_token_claims") or {}).get("preferred_username")
        for account in app.get_accounts():
            if username and account.get("username") != username:
                app.remove_account(account)
        return path
    except requests.RequestException as exc:
        raise Error(f"cannot reach {authority_of(calendar)}: {exc}") from None
    except ValueError as exc:
        raise Error(f"the sign-in service at {authority_of(calendar)} is unusable: {exc}") from None
    finally:
        session.close()


def _first_line(result: dict[str, Any]) -> str:
    text = str(result.get("error_description") or result.get("error") or "no reason given")
    return text.splitlines()[0]
