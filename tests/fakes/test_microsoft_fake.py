"""The fake Microsoft identity platform + Graph works with the real msal and requests.

TLS is always verified against the fake's trustme CA.  Note: requests lets
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override ``Session.verify``
(psf/requests#3829), and MSAL passes ``verify=`` as ``Session.verify``; the
``server`` fixture therefore points those variables at the fake's CA too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .graph_users import out_of_office
from .microsoft import DEFAULT_USER, Fault, MicrosoftServer

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
DELEGATED = ["Calendars.ReadWrite", "Mail.Send"]
BUFFER_PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name caldaemon-buffer"
WINDOW = {"startDateTime": "2026-11-30T00:00:00Z", "endDateTime": "2026-12-07T00:00:00Z"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
        monkeypatch.setenv("CURL_CA_BUNDLE", fake.ca_path)
        yield fake


@pytest.fixture
def cleanup() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def http(server: MicrosoftServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.verify = server.ca_path
        session.headers["Authorization"] = f"Bearer {server.mint_access_token()}"
        yield session


def public_app(
    server: MicrosoftServer, cleanup: ExitStack, cache: msal.TokenCache | None = None
) -> msal.PublicClientApplication:
    app = msal.PublicClientApplication(
        "caldaemon-desktop",
        authority=server.authority,
        instance_discovery=False,  # there is no instance discovery endpoint to ask
        verify=server.ca_path,
        token_cache=cache,
    )
    cleanup.callback(app.http_client.close)  # MSAL never closes its requests.Session
    return app


def confidential_app(
    server: MicrosoftServer, cleanup: ExitStack, client_id: str, credential: str | dict[str, str]
) -> msal.ConfidentialClientApplication:
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca_path,
    )
    cleanup.callback(app.http_client.close)
    return app


def sign_in(server: MicrosoftServer, app: msal.PublicClientApplication) -> dict[str, Any]:
    flow = app.initiate_device_flow(scopes=DELEGATED)
    server.approve_device_code(user_code=flow["user_code"])
    result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    return result


def event_body(subject: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        **extra,
    }


def collect_delta(
    http: requests.Session, url: str, **kwargs: Any
) -> tuple[list[list[dict[str, Any]]], str]:
    """Follow nextLinks; return the pages' values and the final deltaLink."""
    pages = []
    while True:
        response = http.get(url, **kwargs)
        assert response.status_code == 200, response.text
        payload = response.json()
        pages.append(payload["value"])
        kwargs.pop("params", None)
        if "@odata.deltaLink" in payload:
            return pages, payload["@odata.deltaLink"]
        url = payload["@odata.nextLink"]


# -- identity -----------------------------------------------------------------------------


def test_device_code_flow_then_silent_from_serializable_cache(
    server: MicrosoftServer, cleanup: ExitStack
) -> None:
    cache = msal.SerializableTokenCache()
    app = public_app(server, cleanup, cache)

    unapproved = app.initiate_device_flow(scopes=DELEGATED)
    assert unapproved["message"] == (
        f"To sign in, use a web browser to open the page {server.url}/devicelogin "
        f"and enter the code {unapproved['user_code']} to authenticate."
    )
    pending = app.acquire_token_by_device_flow(unapproved, exit_condition=lambda flow: True)
    assert pending["error"] == "authorization_pending"
    assert pending["error_codes"] == [70016]

    result = sign_in(server, app)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == DEFAULT_USER
    assert result["id_token_claims"]["oid"] == server.user_id()

    restored = msal.SerializableTokenCache()
    restored.deserialize(cache.serialize())
    second_app = public_app(server, cleanup, restored)
    [account] = second_app.get_accounts()
    assert account["username"] == DEFAULT_USER
    assert account["home_account_id"] == f"{server.user_id()}.{server.tenant}"

    silent = second_app.acquire_token_silent(DELEGATED, account=account)
    assert silent is not None and silent["token_source"] == "cache"
    assert silent["access_token"] == result["access_token"]

    server.clear_requests()
    refreshed = second_app.acquire_token_silent(DELEGATED, account=account, force_refresh=True)
    assert refreshed is not None and refreshed["token_source"] == "identity_provider"
    [token_request] = server.requests
    assert token_request.path == f"/{server.tenant}/oauth2/v2.0/token"
    assert "grant_type=refresh_token" in token_request.body.decode()
    assert refreshed["refresh_token"] != result["refresh_token"]  # rotated

    calendars = requests.get(
        f"{server.graph_url}/me/calendars",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        verify=server.ca_path,
    )
    assert calendars.status_code == 200
    assert [c["name"] for c in calendars.json()["value"]] == ["Calendar"]


@pytest.mark.parametrize("error_code", [50173, 70008])
def test_refresh_after_revocation_is_invalid_grant(
    server: MicrosoftServer, cleanup: ExitStack, error_code: int
) -> None:
    app = public_app(server, cleanup)
    assert "access_token" in sign_in(server, app)
    server.revoke_refresh_tokens(error_code=error_code)  # type: ignore[arg-type]

    [account] = app.get_accounts()
    result = app.acquire_token_silent_with_error(DELEGATED, account=account, force_refresh=True)

    assert result is not None
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [error_code]
    assert result["error_description"].startswith(f"AADSTS{error_code}: ")


def test_refresh_after_consent_revoked_is_aadsts65001(
    server: MicrosoftServer, cleanup: ExitStack
) -> None:
    app = public_app(server, cleanup)
    assert "access_token" in sign_in(server, app)
    server.revoke_consent("caldaemon-desktop")

    [account] = app.get_accounts()
    result = app.acquire_token_silent_with_error(DELEGATED, account=account, force_refresh=True)

    assert result is not None
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [65001]
    assert result["classification"] == "consent_required"


def test_client_credentials_with_secret(server: MicrosoftServer, cleanup: ExitStack) -> None:
    server.register_client("caldaemon-service", secret="s3cret")
    app = confidential_app(server, cleanup, "caldaemon-service", "s3cret")
    result = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert "refresh_token" not in result

    headers = {"Authorization": f"Bearer {result['access_token']}"}
    mine = requests.get(f"{server.graph_url}/me/calendars", headers=headers, verify=server.ca_path)
    assert mine.status_code == 400  # /me needs a delegated token
    theirs = requests.get(
        f"{server.graph_url}/users/{DEFAULT_USER}/calendars", headers=headers, verify=server.ca_path
    )
    assert theirs.status_code == 200

    wrong_app = confidential_app(server, cleanup, "caldaemon-service", "not-the-secret")
    wrong = wrong_app.acquire_token_for_client(GRAPH_DEFAULT)
    assert wrong["error"] == "invalid_client"
    assert wrong["error_codes"] == [7000215]

    bad_scope = app.acquire_token_for_client(["Calendars.Read"])
    assert bad_scope["error"] == "invalid_scope"


def test_client_credentials_with_certificate_assertion(
    server: MicrosoftServer, cleanup: ExitStack
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caldaemon")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    server.register_client("caldaemon-cert", certificate=cert_pem)

    def app(private_key: str) -> msal.ConfidentialClientApplication:
        credential = {"private_key": private_key, "public_certificate": cert_pem}
        return confidential_app(server, cleanup, "caldaemon-cert", credential)

    assert "access_token" in app(key_pem).acquire_token_for_client(GRAPH_DEFAULT)
    [token_request] = [r for r in server.requests if r.path.endswith("/token")]
    assert "client_assertion=" in token_request.body.decode()

    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    rejected = app(impostor_key.decode()).acquire_token_for_client(GRAPH_DEFAULT)
    assert rejected["error"] == "invalid_client"
    assert rejected["error_codes"] == [700027]


# -- graph: delta -----------------------------------------------------------------------


def test_delta_pages_then_reports_updates_and_deletions(
    server: MicrosoftServer, http: requests.Session
) -> None:
    seeded = [
        server.put_event(
            DEFAULT_USER,
            None,
            event_body(f"Patient {n}", f"2026-12-0{n}T09:00:00", f"2026-12-0{n}T09:30:00"),
        )
        for n in range(1, 6)
    ]
    outside = event_body("Outside", "2027-01-04T09:00:00", "2027-01-04T10:00:00")
    server.put_event(DEFAULT_USER, None, outside)
    prefer = {"Prefer": 'odata.maxpagesize=2, outlook.timezone="UTC"'}

    first = http.get(f"{server.graph_url}/me/calendarView/delta", params=WINDOW, headers=prefer)
    assert first.headers["Preference-Applied"] == 'outlook.timezone="UTC", odata.maxpagesize=2'
    pages, delta_link = collect_delta(
        http, f"{server.graph_url}/me/calendarView/delta", params=WINDOW, headers=prefer
    )
    assert [len(page) for page in pages] == [2, 2, 1]
    assert "$skiptoken=" in first.json()["@odata.nextLink"]
    assert "$deltatoken=" in delta_link
    everything = [event for page in pages for event in page]
    assert [e["subject"] for e in everything] == [f"Patient {n}" for n in range(1, 6)]
    assert everything[0]["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}
    assert everything[0]["type"] == "singleInstance"
    assert everything[0]["@odata.etag"] == f'W/"{everything[0]["changeKey"]}"'

    quiet = http.get(delta_link, headers=prefer).json()
    assert quiet["value"] == []

    changed = server.put_event(DEFAULT_USER, None, {**seeded[1], "subject": "Patient 2 (moved)"})
    server.delete_event(DEFAULT_USER, seeded[3]["id"])
    assert changed["changeKey"] != seeded[1]["changeKey"]

    changes, _ = collect_delta(http, delta_link, headers=prefer)
    [[updated, removed]] = changes
    assert updated["id"] == seeded[1]["id"]
    assert updated["subject"] == "Patient 2 (moved)"
    assert updated["@odata.etag"] != seeded[1]["@odata.etag"]
    assert removed == {
        "@odata.type": "#microsoft.graph.event",
        "id": seeded[3]["id"],
        "@removed": {"reason": "deleted"},
    }


def test_delta_expands_a_weekly_series_into_occurrences(
    server: MicrosoftServer, http: requests.Session
) -> None:
    master = server.put_event(
        DEFAULT_USER,
        None,
        {
            "subject": "Clinic",
            "start": {"dateTime": "2026-11-02T09:00:00", "timeZone": "Europe/London"},
            "end": {"dateTime": "2026-11-02T12:00:00", "timeZone": "Europe/London"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
                "range": {"type": "noEnd", "startDate": "2026-11-02"},
            },
        },
    )
    prefer = {"Prefer": 'outlook.timezone="Europe/London"'}
    delta_url = f"{server.graph_url}/me/calendarView/delta"
    pages, delta_link = collect_delta(http, delta_url, params=WINDOW, headers=prefer)
    occurrences = [e for page in pages for e in page]
    assert [(e["type"], e["start"]["dateTime"][:16]) for e in occurrences] == [
        ("occurrence", "2026-11-30T09:00"),
        ("occurrence", "2026-12-02T09:00"),
    ]
    assert {e["seriesMasterId"] for e in occurrences} == {master["id"]}

    moved = http.patch(
        f"{server.graph_url}/me/events/{occurrences[1]['id']}",
        json={
            "start": {"dateTime": "2026-12-02T14:00:00", "timeZone": "Europe/London"},
            "end": {"dateTime": "2026-12-02T15:00:00", "timeZone": "Europe/London"},
        },
        headers=prefer,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["type"] == "exception"
    assert moved.json()["start"] == {
        "dateTime": "2026-12-02T14:00:00.0000000",
        "timeZone": "Europe/London",
    }
    [[exception]] = collect_delta(http, delta_link, headers=prefer)[0]
    assert exception["id"] == occurrences[1]["id"]
    assert exception["type"] == "exception"


def test_expired_delta_link_is_410_with_location(
    server: MicrosoftServer, http: requests.Session
) -> None:
    server.put_event(
        DEFAULT_USER, None, event_body("A", "2026-12-01T09:00:00", "2026-12-01T10:00:00")
    )
    _, delta_link = collect_delta(http, f"{server.graph_url}/me/calendarView/delta", params=WINDOW)
    server.expire_delta_tokens()

    gone = http.get(delta_link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"
    restart = gone.headers["Location"]
    assert restart.startswith(f"{server.graph_url}/me/calendarView/delta?startDateTime=")
    pages, _ = collect_delta(http, restart)
    assert [e["subject"] for page in pages for e in page] == ["A"]

    server.delta_expired_status = 400
    _, newer_link = collect_delta(http, restart)
    server.expire_delta_tokens()
    bad = http.get(newer_link)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "syncStateNotFound"


# -- graph: writes ----------------------------------------------------------------------


def test_batch_of_creates_with_one_throttled_item(
    server: MicrosoftServer, http: requests.Session
) -> None:
    calendar_id = server.add_calendar(DEFAULT_USER, "Buffers")
    server.inject(
        Fault(status=429, retry_after=7, in_batch=True, match=lambda r: r.json["subject"] == "B")
    )
    batch: dict[str, Any] = {
        "requests": [
            {
                "id": str(n),
                "method": "POST",
                "url": f"/me/calendars/{calendar_id}/events",
                "headers": {"Content-Type": "application/json"},
                "body": event_body(subject, "2026-12-01T08:45:00", "2026-12-01T09:00:00"),
            }
            for n, subject in enumerate("ABC", start=1)
        ]
    }

    response = http.post(f"{server.graph_url}/$batch", json=batch)

    assert response.status_code == 200
    by_id = {item["id"]: item for item in response.json()["responses"]}
    assert {k: v["status"] for k, v in by_id.items()} == {"1": 201, "2": 429, "3": 201}
    assert by_id["2"]["headers"]["Retry-After"] == "7"
    assert by_id["2"]["body"]["error"]["code"] == "TooManyRequests"
    assert by_id["1"]["body"]["subject"] == "A"
    assert sorted(e["subject"] for e in server.events(DEFAULT_USER, calendar_id)) == ["A", "C"]
    parts = [r for r in server.requests if r.batch_part]
    assert [(r.batch_id, r.status) for r in parts] == [("1", 201), ("2", 429), ("3", 201)]


def test_batch_limits(server: MicrosoftServer, http: requests.Session) -> None:
    def get(n: int) -> dict[str, str]:
        return {"id": str(n), "method": "GET", "url": "/me/calendar"}

    url = f"{server.graph_url}/$batch"
    too_many = http.post(url, json={"requests": [get(n) for n in range(21)]})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "BadRequest"
    duplicated = http.post(url, json={"requests": [get(1), get(1)]})
    assert duplicated.status_code == 400
    fine = http.post(url, json={"requests": [get(n) for n in range(20)]})
    assert fine.status_code == 200
    assert {item["status"] for item in fine.json()["responses"]} == {200}


def test_if_match_mismatch_is_412(server: MicrosoftServer, http: requests.Session) -> None:
    created = http.post(
        f"{server.graph_url}/me/events",
        json=event_body("Buffer", "2026-12-01T08:45:00", "2026-12-01T09:00:00"),
    ).json()
    url = f"{server.graph_url}/me/events/{created['id']}"
    server.put_event(DEFAULT_USER, None, {**created, "subject": "Edited in Outlook"})

    stale = http.patch(url, json={"showAs": "free"}, headers={"If-Match": created["@odata.etag"]})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert http.delete(url, headers={"If-Match": created["@odata.etag"]}).status_code == 412

    current = http.get(url).json()["@odata.etag"]
    ok = http.patch(url, json={"showAs": "free"}, headers={"If-Match": current})
    assert ok.status_code == 200 and ok.json()["showAs"] == "free"
    assert ok.json()["@odata.etag"] != current
    assert http.delete(url, headers={"If-Match": ok.json()["@odata.etag"]}).status_code == 204
    missing = http.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_transaction_id_retry_returns_the_same_event(
    server: MicrosoftServer, http: requests.Session
) -> None:
    body = event_body("Buffer", "2026-12-01T08:45:00", "2026-12-01T09:00:00", transactionId="tx-42")
    server.inject(Fault(kind="truncate", match="POST /v1.0/me/events"))

    with pytest.raises(requests.exceptions.RequestException):
        http.post(f"{server.graph_url}/me/events", json=body)  # created, but the answer was lost
    retried = http.post(f"{server.graph_url}/me/events", json=body)

    assert retried.status_code == 201
    [stored] = server.events(DEFAULT_USER)
    assert retried.json()["id"] == stored["id"]
    assert retried.json()["transactionId"] == "tx-42"


def test_extended_properties_round_trip_with_expand_filter(
    server: MicrosoftServer, http: requests.Session
) -> None:
    other = "String {00020329-0000-0000-c000-000000000046} Name other"
    created = http.post(
        f"{server.graph_url}/me/events",
        json=event_body(
            "Buffer",
            "2026-12-01T08:45:00",
            "2026-12-01T09:00:00",
            singleValueExtendedProperties=[
                {"id": BUFFER_PROP, "value": "v1"},
                {"id": other, "value": "x"},
            ],
        ),
    ).json()
    assert "singleValueExtendedProperties" not in created

    url = f"{server.graph_url}/me/events/{created['id']}"
    expand = {"$expand": f"singleValueExtendedProperties($filter=id eq '{BUFFER_PROP}')"}
    assert http.get(url, params=expand).json()["singleValueExtendedProperties"] == [
        {"id": BUFFER_PROP, "value": "v1"}
    ]
    assert "singleValueExtendedProperties" not in http.get(url).json()

    # The user renames it in Outlook: the hidden property survives the edit.
    server.put_event(DEFAULT_USER, None, {**created, "subject": "Renamed by the user"})
    edited = http.get(url, params=expand).json()
    assert edited["subject"] == "Renamed by the user"
    assert edited["singleValueExtendedProperties"] == [{"id": BUFFER_PROP, "value": "v1"}]


def test_send_mail_is_recorded(server: MicrosoftServer, http: requests.Session) -> None:
    message: dict[str, Any] = {
        "subject": "Buffer sync failed",
        "body": {"contentType": "Text", "content": "Please sign in again."},
        "toRecipients": [{"emailAddress": {"address": DEFAULT_USER}}],
    }
    response = http.post(f"{server.graph_url}/me/sendMail", json={"message": message})
    assert response.status_code == 202
    assert response.content == b""
    [sent] = server.sent_mail
    assert sent["from"] == DEFAULT_USER
    assert sent["message"] == message


# -- faults and auth ----------------------------------------------------------------------


def test_top_level_429_with_retry_after(server: MicrosoftServer, http: requests.Session) -> None:
    server.inject(Fault(status=429, retry_after=3, match="GET /v1.0/me/calendars"))

    throttled = http.get(f"{server.graph_url}/me/calendars")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    error = throttled.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert http.get(f"{server.graph_url}/me/calendars").status_code == 200


def test_reset_fault_drops_the_connection_before_processing(
    server: MicrosoftServer, http: requests.Session
) -> None:
    server.inject(Fault(kind="reset", match="POST /v1.0/me/events"))
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(
            f"{server.graph_url}/me/events",
            json=event_body("X", "2026-12-01T08:00:00", "2026-12-01T09:00:00"),
        )
    assert server.events(DEFAULT_USER) == []
    assert [r.status for r in server.requests] == [None]


def test_graph_requires_a_valid_bearer_token(server: MicrosoftServer) -> None:
    url = f"{server.graph_url}/me/calendar"
    anonymous = requests.get(url, verify=server.ca_path)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"

    token = server.mint_access_token()
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=server.ca_path).ok
    server.expire_access_tokens()
    expired = requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=server.ca_path)
    assert expired.status_code == 401
    assert "expired" in json.loads(expired.content)["error"]["message"]


def test_all_day_events_follow_graphs_rules_and_keep_their_dates(
    server: MicrosoftServer, http: requests.Session
) -> None:
    events = f"{server.graph_url}/me/events"

    def all_day(start: str, end: str, zone: str = "Eastern Standard Time", **extra: Any) -> Any:
        body = {
            "subject": "Day off",
            "start": {"dateTime": start, "timeZone": zone},
            "end": {"dateTime": end, "timeZone": zone},
            "isAllDay": True,
            **extra,
        }
        return http.post(events, json=body)

    made = all_day("2026-12-05T00:00:00", "2026-12-06T00:00:00", sensitivity="private")
    assert made.status_code == 201, made.text
    assert made.json()["sensitivity"] == "private" and made.json()["isAllDay"]
    # Read in any zone, the midnights stay midnights: the event is its dates.
    tokyo = http.get(
        f"{events}/{made.json()['id']}", headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'}
    ).json()
    assert tokyo["start"] == {"dateTime": "2026-12-05T00:00:00.0000000", "timeZone": "Asia/Tokyo"}
    assert tokyo["originalStartTimeZone"] == "Eastern Standard Time"
    refused = [
        all_day("2026-12-05T09:00:00", "2026-12-06T00:00:00"),  # not midnight
        all_day("2026-12-05T00:00:00", "2026-12-05T00:00:00"),  # no day at all
        http.post(
            events,
            json={
                "subject": "Day off",
                "start": {"dateTime": "2026-12-05T00:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-12-06T00:00:00", "timeZone": "Eastern Standard Time"},
                "isAllDay": True,
            },
        ),  # two zones
        all_day("2026-12-05T00:00:00", "2026-12-06T00:00:00", sensitivity="secret"),
    ]
    assert [r.status_code for r in refused] == [400] * 4


def test_writes_take_windows_zones_and_listed_iana_ones_and_users_any(
    server: MicrosoftServer, http: requests.Session
) -> None:
    def post(zone: str) -> requests.Response:
        start, end = "2026-12-01T09:00:00", "2026-12-01T10:00:00"
        body = {
            "subject": "x",
            "start": {"dateTime": start, "timeZone": zone},
            "end": {"dateTime": end, "timeZone": zone},
        }
        return http.post(f"{server.graph_url}/me/events", json=body)

    for taken in ("Eastern Standard Time", "Tokyo Standard Time", "America/New_York", "UTC"):
        assert post(taken).status_code == 201, taken
    refused = post("America/Toronto")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "TimeZoneNotSupportedException"
    # The user's own Outlook is no API client: seeding takes any IANA name.
    seeded = server.put_event(
        DEFAULT_USER,
        None,
        {
            "subject": "Session",
            "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "America/Toronto"},
            "end": {"dateTime": "2026-12-01T10:00:00", "timeZone": "America/Toronto"},
        },
    )
    assert seeded["start"] == {"dateTime": "2026-12-01T14:00:00.0000000", "timeZone": "UTC"}


def test_a_users_out_of_office_days_are_all_day_and_shown_as_away(
    server: MicrosoftServer, http: requests.Session
) -> None:
    away = server.put_event(
        DEFAULT_USER, None, out_of_office(dt.date(2026, 12, 3), dt.date(2026, 12, 4))
    )
    [listed] = [
        e
        for page in collect_delta(http, f"{server.graph_url}/me/calendarView/delta", params=WINDOW)[
            0
        ]
        for e in page
    ]
    assert listed["id"] == away["id"]
    assert (listed["showAs"], listed["isAllDay"]) == ("oof", True)
    assert listed["start"]["dateTime"] == "2026-12-03T00:00:00.0000000"
    assert listed["end"]["dateTime"] == "2026-12-05T00:00:00.0000000"
