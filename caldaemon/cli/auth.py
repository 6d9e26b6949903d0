"""``caldaemon auth google|outlook``: sign a calendar account in and store its token. The
interactive flows live here; the providers keep only what the daemon needs to use a
token (refresh, cache, scopes)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from caldaemon.cli.app import config_option, load_settings, main, user_errors
from caldaemon.errors import Error

if TYPE_CHECKING:
    from caldaemon.config import ClinicianSettings, Settings
    from caldaemon.providers.google.settings import GoogleCalendar
    from caldaemon.providers.outlook.settings import OutlookCalendar
    from caldaemon.providers.settings import CalendarSettings


@main.group()
def auth() -> None:
    """Sign a calendar account in (Google or Microsoft 365) and store its token."""


def _calendar_for(
    settings: Settings, clinician_id: str, calendar_id: str | None, provider: str
) -> tuple[ClinicianSettings, CalendarSettings]:
    clinician = settings.clinician(clinician_id)
    candidates = [
        c
        for c in clinician.calendars
        if c.provider == provider and (calendar_id is None or c.id == calendar_id)
    ]
    if len(candidates) != 1:
        known = ", ".join(c.id for c in clinician.calendars if c.provider == provider) or "none"
        if calendar_id is not None:
            problem = f"{clinician_id} has no {provider} calendar '{calendar_id}'"
        elif candidates:
            problem = f"{clinician_id} has several {provider} calendars; choose one with --calendar"
        else:
            problem = f"{clinician_id} has no {provider} calendar to sign in"
        raise Error(f"{problem} ({provider} calendars: {known})")
    return clinician, candidates[0]


def _resume(settings: Settings, clinician_id: str, calendar_id: str) -> None:
    """A calendar paused for an expired authorization is read again from the next cycle."""
    from caldaemon.state import State

    if settings.has_state:
        state = State(settings.state_location)
        try:
            with state.transaction() as tables:
                tables.calendars.resume(clinician_id, calendar_id)
                tables.problems.clear(f"calendar:{clinician_id}/{calendar_id}:")
        finally:
            state.close()


def authorize_google(
    settings: Settings,
    clinician: ClinicianSettings,
    calendar: GoogleCalendar,
    *,
    port: int,
    echo: Callable[[str], None],
) -> Path:
    """The installed-app flow (https://developers.google.com/identity/protocols/oauth2/
    native-app): a local redirect server on ``port``, no browser opened here; the URL is
    shown, so signing in works over ``ssh -L port:localhost:port`` too."""
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    from caldaemon.providers.google.auth import (
        COVERS_EVENTS,
        SCOPE_EVENTS,
        SIGN_IN_WAIT,
        auth_command,
        read_client,
        save_token,
        scopes_for,
        token_path,
    )

    command = auth_command(clinician.id, calendar.id)
    source = f"Google Calendar '{calendar.calendar}'"
    client = read_client(calendar.credentials, calendar.id, source, command)
    if client.kind != "installed":
        raise Error(
            f"{calendar.credentials} is a service-account key: there is nobody to "
            "sign in; domain-wide delegation and 'subject' give it access"
        )
    scopes = scopes_for(calendar.id, clinician.buffers_to)

    class Flow(InstalledAppFlow):
        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            echo(
                f"Open this address in a browser and allow caldaemon to "
                f"{'manage' if scopes == [SCOPE_EVENTS] else 'see'} your calendar's events:"
                f"\n\n    {url}\n\nWaiting for Google to return to http://localhost:{port}/ "
                f"(on a server, first forward the port: ssh -L {port}:localhost:{port} HOST)"
            )
            return url, state

    # With Google's granular consent a person may leave calendar access unticked: the
    # granted scopes are checked below rather than refused by oauthlib with a Warning.
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    flow = Flow.from_client_config({"installed": client.info}, scopes=scopes)
    try:
        credentials = flow.run_local_server(
            host="localhost",
            port=port,
            open_browser=False,
            authorization_prompt_message=None,
            success_message="caldaemon is signed in. You can close this tab.",
            timeout_seconds=SIGN_IN_WAIT,
            prompt="consent",
        )
    except OSError as exc:
        raise Error(
            f"cannot listen on localhost:{port} ({exc.strerror}); choose another port with --port"
        ) from None
    except WSGITimeoutError:
        raise Error(
            f"no answer from the browser within {SIGN_IN_WAIT // 60} minutes; run the command again"
        ) from None
    except OAuth2Error as exc:
        raise Error(f"Google did not grant access ({exc.error})") from None
    finally:
        flow.oauth2session.close()
    granted = set(credentials.granted_scopes or scopes)
    if not (set(scopes) & granted or COVERS_EVENTS & granted):
        raise Error(
            "Google did not grant access to your calendar (the box for Google "
            "Calendar was left unticked); run the command again and allow it"
        )
    if not credentials.refresh_token:
        raise Error("Google sent no refresh token; run the command again")
    path = token_path(calendar, settings.daemon.state_dir, clinician.id)
    try:
        save_token(path, credentials.to_json())
    except OSError as exc:
        raise Error(f"cannot write the token to {path}: {exc.strerror}") from None
    return path


def authorize_outlook(
    settings: Settings,
    clinician: ClinicianSettings,
    calendar: OutlookCalendar,
    *,
    echo: Callable[[str], None],
) -> Path:
    """Sign in with the device-code flow (also to send mail when this calendar's account
    sends the notices), then check the calendar can be found."""
    from caldaemon.notices.graph import sending_calendar
    from caldaemon.providers.outlook.auth import CALENDAR_SCOPES, MAIL_SCOPES, sign_in
    from caldaemon.providers.outlook.provider import OutlookProvider
    from caldaemon.service.providers import provider_context

    sender = sending_calendar(settings)
    sends = sender is not None and (sender[0].id, sender[1].id) == (clinician.id, calendar.id)
    scopes = CALENDAR_SCOPES + (MAIL_SCOPES if sends else [])
    path = sign_in(calendar, clinician.id, settings.daemon.state_dir, echo=echo, scopes=scopes)
    provider = OutlookProvider(calendar, provider_context(settings, clinician))
    try:
        echo(f"Found the calendar '{provider.check()}'.")
    finally:
        provider.close()
    return path


@auth.command("google")
@config_option
@click.option("--clinician", "clinician_id", required=True, metavar="ID")
@click.option("--calendar", "calendar_id", metavar="ID", help="Which Google calendar (if several).")
@click.option(
    "--port",
    default=8085,
    show_default=True,
    help="Local port for Google's redirect (forward it when signing in over SSH).",
)
@user_errors
def auth_google(
    config_path: str | None, clinician_id: str, calendar_id: str | None, port: int
) -> None:
    """Sign in to Google Calendar (installed-app flow; prints the URL to open)."""
    from caldaemon.providers.google.settings import GoogleCalendar

    settings = load_settings(config_path)
    clinician, calendar = _calendar_for(settings, clinician_id, calendar_id, "google")
    assert isinstance(calendar, GoogleCalendar)
    token = authorize_google(settings, clinician, calendar, port=port, echo=click.echo)
    _resume(settings, clinician.id, calendar.id)
    click.echo(f"Signed in. The token is kept in {token}.")


@auth.command("outlook")
@config_option
@click.option("--clinician", "clinician_id", required=True, metavar="ID")
@click.option(
    "--calendar", "calendar_id", metavar="ID", help="Which Outlook calendar (if several)."
)
@user_errors
def auth_outlook(config_path: str | None, clinician_id: str, calendar_id: str | None) -> None:
    """Sign in to Microsoft 365 / Outlook (device-code flow; prints the code to enter)."""
    from caldaemon.providers.outlook.settings import OutlookCalendar

    settings = load_settings(config_path)
    clinician, calendar = _calendar_for(settings, clinician_id, calendar_id, "outlook")
    assert isinstance(calendar, OutlookCalendar)
    token = authorize_outlook(settings, clinician, calendar, echo=click.echo)
    _resume(settings, clinician.id, calendar.id)
    click.echo(f"Signed in. The token cache is kept in {token}.")
