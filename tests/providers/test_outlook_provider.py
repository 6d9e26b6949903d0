"""The outlook provider beyond the contract: delta paging and links, resync, JSON
batching, throttling and retries, idempotent creates, authorization failures, app-only
access, the token cache, the per-mailbox concurrency cap, the pure mapping, and notices
through sendMail. Everything runs against the local identity + Graph server over TLS
verified through ``ca_file``; sleeps are recorded, never waited."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from caldaemon.errors import (
    AuthorizationError,
    CalendarError,
    DeliveryError,
    TransientError,
    WriteConflict,
)
from caldaemon.model import Buffer, Create, Delete, Update
from caldaemon.notices.compose import Message
from caldaemon.notices.delivery import mailer_for
from caldaemon.notices.graph import GraphMailer
from caldaemon.providers.base import BUFFER_DESCRIPTION, OWNER_CATEGORY
from caldaemon.providers.outlook import auth as outlook_auth
from caldaemon.providers.outlook import mapping
from caldaemon.providers.outlook import session as outlook_session
from caldaemon.providers.outlook.provider import OutlookProvider
from tests.fakes.microsoft import DEFAULT_USER, Fault, MicrosoftServer, RecordedRequest
from tests.providers.contract import TZ, WINDOW, buffer
from tests.providers.outlook_support import Harness, buffers, seed
from tests.providers.test_contract_outlook import outlook_config, sign_in
from tests.support import make_settings

COMMAND = "caldaemon auth outlook --clinician lee --calendar work"


@pytest.fixture(autouse=True)
def unrelated_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests would let these override Session.verify; ca_file must win anyway."""
    bundle = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))


@pytest.fixture
def server() -> Iterator[MicrosoftServer]:
    with MicrosoftServer() as fake:
        yield fake


@pytest.fixture
def harness(server: MicrosoftServer, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(server, tmp_path / "state")
    h.sign_in()
    yield h
    h.close()


# -- reading -----------------------------------------------------------------------------


def test_delta_pages_with_prefer_headers_and_stores_the_whole_delta_link(harness: Harness) -> None:
    seed(harness.server, 5)
    provider = harness.provider()
    provider.page_size = 2
    listing = provider.changes(WINDOW, None)
    assert listing.full and len(listing.events) == 5 and listing.removed == ()

    pages = harness.graph_requests("GET")
    assert len(pages) == 3
    for page in pages:
        prefer = page.header("prefer") or ""
        assert "odata.maxpagesize=2" in prefer
        assert 'outlook.timezone="UTC"' in prefer and 'IdType="ImmutableId"' in prefer
    first = pages[0]
    assert first.path == "/v1.0/me/calendar/calendarView/delta"
    assert first.query["startdatetime"] == "2026-11-23T05:00:00Z"
    assert first.query["enddatetime"] == "2026-12-28T05:00:00Z"
    # calendarView/delta refuses these (docs "event: delta"); the fake answers 400 as Graph.
    assert not {"$expand", "$select", "$filter", "$orderby"} & set(first.query)
    assert all("$skiptoken=" in p.query_string for p in pages[1:])

    link = json.loads(listing.token or "")["delta"]
    assert link.startswith(harness.server.graph_url) and "$deltatoken=" in link
    harness.server.clear_requests()
    again = provider.changes(WINDOW, listing.token)
    assert not again.full and again.events == () and again.removed == ()
    [reused] = harness.graph_requests()
    assert harness.server.url + reused.target == link
    assert "odata.maxpagesize=2" in (reused.header("prefer") or "")


def test_changes_and_removals_come_from_the_delta_link(harness: Harness) -> None:
    kept, gone = seed(harness.server, 2)
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    harness.server.put_event(DEFAULT_USER, None, {**kept, "subject": "Session moved #heavy"})
    harness.server.delete_event(DEFAULT_USER, gone["id"])
    second = provider.changes(WINDOW, first.token)
    assert not second.full
    assert [e.title for e in second.events] == ["Session moved #heavy"]
    assert second.removed == (gone["id"],)


@pytest.mark.parametrize("status", [410, 400])
def test_an_expired_delta_link_gives_a_full_listing(harness: Harness, status: int) -> None:
    seed(harness.server, 2)
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    harness.server.delta_expired_status = status  # type: ignore[assignment]
    harness.server.expire_delta_tokens()
    harness.server.clear_requests()
    second = provider.changes(WINDOW, first.token)
    assert second.full and len(second.events) == 2 and second.removed == ()
    answered = [r.status for r in harness.graph_requests()]
    assert answered == [status, 200]
    assert json.loads(second.token or "")["delta"] != json.loads(first.token or "")["delta"]


def test_a_token_for_another_calendar_is_not_used(harness: Harness) -> None:
    seed(harness.server, 1)
    listing = harness.provider().changes(WINDOW, None)
    other = OutlookProvider(
        outlook_config(harness.server, calendar="Calendar"), harness.provider().context
    )
    harness.opened.append(other)
    assert other.changes(WINDOW, listing.token).full


def test_a_calendar_given_by_name_is_looked_up_once(harness: Harness) -> None:
    calendar_id = harness.server.add_calendar(DEFAULT_USER, "Buffers")
    seed(harness.server, 1, calendar=calendar_id)
    seed(harness.server, 1, day=2)  # on the primary calendar: not listed
    harness.config = outlook_config(harness.server, calendar="buffers")
    provider = harness.provider()
    listing = provider.changes(WINDOW, None)
    assert [e.title for e in listing.events] == ["Session 0 #heavy"]
    [result] = provider.apply([Create(buffer(), buffer().identity)])
    assert result.error is None
    assert [e["subject"] for e in harness.server.events(DEFAULT_USER, calendar_id)] == [
        "Session 0 #heavy",
        "Grounding time",
    ]
    lookups = [r for r in harness.graph_requests() if r.path == "/v1.0/me/calendars"]
    assert len(lookups) == 1
    fresh = harness.provider()  # a new process: the token knows the calendar
    fresh.changes(WINDOW, listing.token)
    fresh.apply([Delete(buffer().identity, result.remote)])
    assert len([r for r in harness.graph_requests() if r.path == "/v1.0/me/calendars"]) == 1

    harness.config = outlook_config(harness.server, calendar="Nope")
    with pytest.raises(CalendarError, match=r"no calendar named 'Nope'.*Calendar, Buffers"):
        harness.provider().changes(WINDOW, None)


def test_owner_markers_are_read_once_by_a_batched_look_up_and_kept_in_the_token(
    harness: Harness,
) -> None:
    b = buffer()
    [created] = harness.provider().apply([Create(b, b.identity)])
    seed(harness.server, 1)
    harness.server.clear_requests()
    fresh = harness.provider()  # a new process: nothing known of the buffer but the calendar
    listing = fresh.changes(WINDOW, None)
    listed = {e.id: e for e in listing.events}[created.remote.id]
    assert listed.owner == b.identity and listed.marked and listed.etag == created.remote.etag
    [lookup] = harness.graph_requests(parts=True)  # only the event with our category
    assert lookup.method == "GET" and lookup.path.endswith(created.remote.id)
    assert mapping.OWNER_EXPAND in unquote(lookup.query_string)

    [event] = [e for e in harness.server.events(DEFAULT_USER) if e["id"] == created.remote.id]
    harness.server.put_event(DEFAULT_USER, None, {**event, "subject": "Grounding walk"})
    harness.server.clear_requests()
    again = harness.provider().changes(WINDOW, listing.token)  # yet another process
    [edited] = again.events
    assert edited.title == "Grounding walk" and edited.owner == b.identity
    assert harness.graph_requests(parts=True) == []  # the token remembered the marker


# -- writing -----------------------------------------------------------------------------


def test_a_created_buffer_carries_both_markers_and_nothing_else(harness: Harness) -> None:
    b = buffer()
    [result] = harness.provider().apply([Create(b, b.identity)])
    [event] = harness.server.events(DEFAULT_USER)
    assert event["id"] == result.remote.id and event["@odata.etag"] == result.remote.etag
    assert event["categories"] == [OWNER_CATEGORY]
    assert event["singleValueExtendedProperties"] == [
        {"id": mapping.OWNER_PROPERTY_ID, "value": b.identity}
    ]
    assert event["transactionId"] == mapping.transaction_id(b.identity)
    assert event["attendees"] == [] and event["isReminderOn"] is False
    assert event["showAs"] == "busy" and event["subject"] == "Grounding time"
    assert event["body"] == {"contentType": "text", "content": BUFFER_DESCRIPTION}
    assert event["start"] == {"dateTime": "2026-11-30T15:50:00.0000000", "timeZone": "UTC"}


def test_45_writes_go_in_3_batches_of_at_most_20(harness: Harness) -> None:
    provider = harness.provider()
    wanted = buffers(45)
    results = provider.apply([Create(b, b.identity) for b in wanted])
    assert [r.error for r in results] == [None] * 45
    assert len({r.remote.id for r in results}) == 45
    batches = harness.graph_requests("POST")
    assert [r.path for r in batches] == ["/v1.0/$batch"] * 3
    sizes = [len(r.json["requests"]) for r in batches]
    assert sizes == [20, 20, 5]
    for batch in batches:
        ids = [item["id"] for item in batch.json["requests"]]
        assert len(set(ids)) == len(ids)
    assert len(harness.server.events(DEFAULT_USER)) == 45
    listed = {e.id: e for e in provider.changes(WINDOW, None).events}
    owners = [listed[r.remote.id].owner for r in results]
    assert owners == [b.identity for b in wanted]


def test_a_throttled_batch_item_is_retried_alone_after_its_retry_after(harness: Harness) -> None:
    wanted = buffers(3)
    second = mapping.format_datetime(wanted[1].start)["dateTime"]
    harness.server.inject(
        Fault(
            status=429,
            retry_after=7,
            in_batch=True,
            match=lambda r: (r.json or {}).get("start", {}).get("dateTime") == second,
        )
    )
    results = harness.provider().apply([Create(b, b.identity) for b in wanted])
    assert [r.error for r in results] == [None, None, None]
    assert harness.sleeps == [7]
    assert [len(r.json["requests"]) for r in harness.graph_requests("POST")] == [3, 1]
    assert [(r.batch_id, r.status) for r in harness.graph_requests(parts=True)] == [
        ("1", 201),
        ("2", 429),
        ("3", 201),
        ("1", 201),
    ]
    assert len(harness.server.events(DEFAULT_USER)) == 3


def test_a_batch_item_throttled_every_time_fails_alone(harness: Harness) -> None:
    wanted = buffers(2)
    first = mapping.format_datetime(wanted[0].start)["dateTime"]
    harness.server.inject(
        Fault(
            status=503,
            retry_after=1,
            in_batch=True,
            times=None,
            match=lambda r: (r.json or {}).get("start", {}).get("dateTime") == first,
        )
    )
    results = harness.provider().apply([Create(b, b.identity) for b in wanted])
    assert isinstance(results[0].error, TransientError) and results[1].error is None
    assert harness.sleeps == [1, 1, 1, 1]


def test_top_level_429_and_503_wait_for_retry_after(harness: Harness) -> None:
    seed(harness.server, 1)
    delta = "GET /v1.0/me/calendar/calendarView/delta"
    harness.server.inject(Fault(status=429, retry_after=3, match=delta))
    harness.server.inject(Fault(status=503, retry_after=5, match=delta))
    listing = harness.provider().changes(WINDOW, None)
    assert len(listing.events) == 1
    assert harness.sleeps == [3, 5]


def test_5xx_and_dropped_connections_back_off_then_succeed(harness: Harness) -> None:
    seed(harness.server, 1)
    harness.server.inject(Fault(status=502, match="/calendarView/delta"))
    harness.server.inject(Fault(kind="reset", match="/calendarView/delta"))
    assert len(harness.provider().changes(WINDOW, None).events) == 1
    assert len(harness.sleeps) == 2
    assert 0 <= harness.sleeps[0] <= 1 and 0 <= harness.sleeps[1] <= 2


def test_other_4xx_are_not_retried(harness: Harness) -> None:
    harness.server.inject(
        Fault(
            status=403,
            code="ErrorAccessDenied",
            message="Access is denied.",
            match="/calendarView/delta",
        )
    )
    with pytest.raises(CalendarError, match="403 ErrorAccessDenied") as caught:
        harness.provider().changes(WINDOW, None)
    assert not isinstance(caught.value, TransientError)
    assert harness.sleeps == []


def test_a_retry_after_beyond_the_cap_gives_up_for_this_cycle(harness: Harness) -> None:
    harness.server.inject(Fault(status=429, retry_after=3600, match="/calendarView/delta"))
    with pytest.raises(TransientError, match="429 TooManyRequests"):
        harness.provider().changes(WINDOW, None)
    assert harness.sleeps == []


def test_persistent_throttling_gives_up_after_five_attempts(harness: Harness) -> None:
    harness.server.inject(Fault(status=429, retry_after=2, times=None, match="/calendarView/delta"))
    with pytest.raises(TransientError):
        harness.provider().changes(WINDOW, None)
    assert harness.sleeps == [2, 2, 2, 2]


def test_a_create_retried_after_a_lost_answer_makes_no_duplicate(harness: Harness) -> None:
    harness.server.inject(Fault(kind="truncate", match="POST /v1.0/$batch"))
    b = buffer()
    [result] = harness.provider().apply([Create(b, b.identity)])
    assert result.error is None
    [stored] = harness.server.events(DEFAULT_USER)
    assert stored["id"] == result.remote.id and stored["@odata.etag"] == result.remote.etag
    posts = [r for r in harness.graph_requests(parts=True) if r.method == "POST"]
    assert len(posts) == 2
    assert {r.json["transactionId"] for r in posts} == {mapping.transaction_id(b.identity)}
    assert len(harness.sleeps) == 1


def test_an_update_whose_answer_was_lost_is_not_mistaken_for_a_user_edit(harness: Harness) -> None:
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    moved = buffer(start=b.start + timedelta(hours=1))
    harness.server.inject(Fault(kind="truncate", match="POST /v1.0/$batch"))
    [updated] = provider.apply([Update(moved, b.identity, created.remote)])
    assert updated.error is None and updated.remote.etag != created.remote.etag
    listed = {e.id: e for e in provider.changes(WINDOW, None).events}[created.remote.id]
    assert listed.etag == updated.remote.etag and listed.start == moved.start


def test_if_match_412_is_a_write_conflict(harness: Harness) -> None:
    provider = harness.provider()
    b = buffer()
    [created] = provider.apply([Create(b, b.identity)])
    [event] = harness.server.events(DEFAULT_USER)
    harness.server.put_event(DEFAULT_USER, None, {**event, "subject": "My walk"})
    moved = buffer(start=b.start + timedelta(hours=1))
    update, delete = provider.apply(
        [Update(moved, b.identity, created.remote), Delete(b.identity, created.remote)]
    )
    assert isinstance(update.error, WriteConflict) and isinstance(delete.error, WriteConflict)
    patch = [r for r in harness.graph_requests(parts=True) if r.method == "PATCH"]
    assert patch[0].header("if-match") == created.remote.etag
    assert [e["subject"] for e in harness.server.events(DEFAULT_USER)] == ["My walk"]


# -- authorization -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "revoke, reason",
    [
        (lambda s: s.revoke_refresh_tokens(), "revoked or has expired (AADSTS50173)"),
        (lambda s: s.revoke_refresh_tokens(error_code=70008), "AADSTS70008"),
        (
            lambda s: s.revoke_consent("caldaemon-desktop"),
            "consent to the app was withdrawn (AADSTS65001)",
        ),
    ],
)
def test_a_revoked_sign_in_is_an_authorization_error_naming_the_command(
    harness: Harness, revoke: Any, reason: str
) -> None:
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    revoke(harness.server)
    harness.server.expire_access_tokens()  # Graph answers 401; the refresh then fails
    with pytest.raises(AuthorizationError) as caught:
        provider.changes(WINDOW, first.token)
    assert caught.value.command == COMMAND and caught.value.calendar == "work"
    assert reason in caught.value.reason and COMMAND in str(caught.value)
    assert harness.sleeps == []


def test_an_expired_access_token_is_refreshed_once(harness: Harness) -> None:
    provider = harness.provider()
    first = provider.changes(WINDOW, None)
    harness.server.expire_access_tokens()
    harness.server.clear_requests()
    assert not provider.changes(WINDOW, first.token).full
    assert [r.status for r in harness.server.requests] == [401, 200, 200]
    assert "grant_type=refresh_token" in harness.server.requests[1].body.decode()


def test_without_a_sign_in_the_calendar_asks_for_one(
    server: MicrosoftServer, tmp_path: Path
) -> None:
    h = Harness(server, tmp_path / "state")
    with pytest.raises(AuthorizationError, match="not signed in") as caught:
        h.provider().changes(WINDOW, None)
    assert caught.value.command == COMMAND
    assert [r for r in server.requests if r.path.startswith("/v1.0")] == []


def test_the_token_cache_is_0600_in_a_0700_directory(harness: Harness) -> None:
    path = harness.state_dir / "tokens" / "lee-work.msal.json"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cache = json.loads(path.read_text())
    [account] = cache["Account"].values()
    assert account["username"] == DEFAULT_USER and cache["RefreshToken"]
    harness.provider().changes(WINDOW, None)
    assert sorted(p.name for p in path.parent.iterdir()) == ["lee-work.msal.json"]


def test_signing_in_again_as_someone_else_keeps_one_account(harness: Harness) -> None:
    harness.server.add_user("other@contoso.example")
    sign_in(harness.server, harness.config, harness.state_dir, user="other@contoso.example")
    cache = json.loads((harness.state_dir / "tokens" / "lee-work.msal.json").read_text())
    assert [a["username"] for a in cache["Account"].values()] == ["other@contoso.example"]


def test_tls_is_verified_against_ca_file_only(harness: Harness) -> None:
    harness.config = outlook_config(harness.server, ca_file=None)
    with pytest.raises(CalendarError, match="could not be verified"):
        harness.provider().changes(WINDOW, None)
    assert harness.sleeps == []


# -- app-only access -------------------------------------------------------------------------


def test_client_credentials_with_a_secret_file(server: MicrosoftServer, tmp_path: Path) -> None:
    server.register_client("caldaemon-service", secret="s3cret")
    (tmp_path / "secret").write_text("s3cret\n")
    h = Harness(
        server,
        tmp_path / "state",
        client_id="caldaemon-service",
        user=DEFAULT_USER,
        auth="client_credentials",
        client_secret_file=tmp_path / "secret",
    )
    shown: list[str] = []
    outlook_auth.sign_in(h.config, "lee", h.state_dir, echo=shown.append)
    assert shown == [f"The app caldaemon-service can act for {DEFAULT_USER}."]
    [token_request] = [r for r in server.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in token_request.body.decode()
    server.clear_requests()
    seed(server, 1)
    provider = h.provider()
    assert len(provider.changes(WINDOW, None).events) == 1
    [result] = provider.apply([Create(buffer(), buffer().identity)])
    assert result.error is None
    paths = {r.path for r in h.graph_requests()}
    assert paths == {f"/v1.0/users/{DEFAULT_USER}/calendar/calendarView/delta", "/v1.0/$batch"}
    # The app token from the check is in the cache: the provider asked for none.
    assert [r for r in server.requests if r.path.endswith("/oauth2/v2.0/token")] == []

    (tmp_path / "secret").write_text("wrong")
    h2 = Harness(server, tmp_path / "state2", **{**h.config.model_dump(), "id": "work"})
    with pytest.raises(AuthorizationError, match="credentials were refused"):
        h2.provider().changes(WINDOW, None)
    for p in h.opened + h2.opened:
        p.close()


def test_client_credentials_with_a_certificate(server: MicrosoftServer, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caldaemon")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    server.register_client(
        "caldaemon-cert", certificate=certificate.public_bytes(serialization.Encoding.PEM)
    )
    pem = tmp_path / "caldaemon.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    h = Harness(
        server,
        tmp_path / "state",
        client_id="caldaemon-cert",
        user=DEFAULT_USER,
        auth="client_credentials",
        certificate_file=pem,
        certificate_thumbprint=certificate.fingerprint(hashes.SHA1()).hex(),
    )
    assert h.provider().changes(WINDOW, None).full
    h.opened[0].close()


# -- the concurrency cap -------------------------------------------------------------------------


def test_eight_threads_on_one_mailbox_keep_at_most_four_requests_in_flight(
    harness: Harness,
) -> None:
    seed(harness.server, 1)
    providers = [harness.provider() for _ in range(8)]
    cap = outlook_session.MAX_CONCURRENT_PER_MAILBOX
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak
    full = threading.Event()
    dispatch = harness.server._dispatch

    def slow(request: RecordedRequest) -> Any:
        if not request.path.startswith("/v1.0"):
            return dispatch(request)
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            if in_flight[0] >= cap:
                full.set()
        try:
            # A slow server: hold answers until the cap is reached (or 2 s passed), so
            # that the clients' threads surely overlap; the clients' sleeps stay injected.
            full.wait(timeout=2)
            time.sleep(0.05)
            return dispatch(request)
        finally:
            with lock:
                in_flight[0] -= 1

    harness.server._dispatch = slow  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def work(provider: OutlookProvider) -> None:
        try:
            provider.changes(WINDOW, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert in_flight[1] == cap
    assert len(harness.graph_requests()) == 8


def test_every_request_has_a_timeout_and_the_configured_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def record(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        seen.append(kwargs)
        raise requests.ConnectionError("offline")

    monkeypatch.setattr(requests.Session, "request", record)
    session = outlook_session.GraphSession("/etc/caldaemon/ca.pem", 12.0)
    for call in (
        lambda: session.get("https://x.example"),
        lambda: session.post("https://x.example", timeout=None, verify=True),
    ):
        with pytest.raises(requests.ConnectionError):
            call()
    assert [(k["timeout"], k["verify"]) for k in seen] == [(12.0, "/etc/caldaemon/ca.pem")] * 2


# -- mapping (pure) ---------------------------------------------------------------------------


def resource(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "@odata.etag": 'W/"ck1"',
        "id": "AAMkEv1",
        "changeKey": "ck1",
        "subject": "Intake",
        "start": {"dateTime": "2026-12-01T14:00:00.1234567", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T14:50:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
        "showAs": "busy",
        "categories": [],
        "isCancelled": False,
        "responseStatus": {"response": "organizer"},
        "seriesMasterId": None,
        "body": {"contentType": "text", "content": "Notes #trauma"},
    }
    return base | fields


def test_mapping_reads_times_with_seven_fractional_digits_as_utc() -> None:
    event = mapping.event_from_graph(resource(), "work", TZ)
    assert event.start == datetime(2026, 12, 1, 14, 0, 0, 123456, tzinfo=dt.UTC)
    assert event.end == datetime(2026, 12, 1, 14, 50, tzinfo=dt.UTC)
    assert (event.id, event.title, event.description, event.etag) == (
        "AAMkEv1",
        "Intake",
        "Notes #trauma",
        'W/"ck1"',
    )
    assert event.busy and not (event.all_day or event.cancelled or event.declined)
    assert event.owner is None and event.series is None


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"dateTime": "2026-12-01T09:00:00", "timeZone": "Europe/Berlin"},
            datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC),
        ),
        (
            {"dateTime": "2026-12-01T09:00:00Z", "timeZone": "Europe/Berlin"},
            datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC),
        ),
        (
            {"dateTime": "2026-12-01T09:00:00.5-05:00"},
            datetime(2026, 12, 1, 14, 0, 0, 500000, tzinfo=dt.UTC),
        ),
        (
            {"dateTime": "2026-12-01T09:00", "timeZone": "UTC"},
            datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC),
        ),
    ],
)
def test_mapping_parses_graph_date_times(value: dict[str, str], expected: datetime) -> None:
    assert mapping.parse_datetime(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"dateTime": "1 Dec 2026"},
        {"dateTime": "2026-12-01T09:00:00", "timeZone": "Mars/Base"},
    ],
)
def test_mapping_refuses_what_it_cannot_read(value: Any) -> None:
    with pytest.raises(mapping.MappingError):
        mapping.parse_datetime(value)


def test_mapping_all_day_free_declined_cancelled_series_and_categories() -> None:
    event = mapping.event_from_graph(
        resource(
            isAllDay=True,
            showAs="free",
            isCancelled=True,
            seriesMasterId="AAMkMaster",
            responseStatus={"response": "declined"},
            categories=["Heavy", "Supervision"],
            start={"dateTime": "2026-12-02T00:00:00.0000000", "timeZone": "UTC"},
            end={"dateTime": "2026-12-03T00:00:00.0000000", "timeZone": "UTC"},
        ),
        "work",
        TZ,
    )
    assert event.all_day and event.start == datetime(2026, 12, 2, tzinfo=TZ)
    assert event.end == datetime(2026, 12, 3, tzinfo=TZ)
    assert not event.busy and event.cancelled and event.declined
    assert event.series == "AAMkMaster" and event.categories == ("Heavy", "Supervision")
    tentative = mapping.event_from_graph(resource(showAs="tentative"), "work", TZ)
    assert tentative.busy


def test_mapping_owner_needs_the_property_the_category_and_its_transaction_id() -> None:
    prop = [{"id": mapping.OWNER_PROPERTY_ID, "value": "abc123"}]
    ours = mapping.transaction_id("abc123")
    both = resource(categories=[OWNER_CATEGORY], singleValueExtendedProperties=prop)
    bound = mapping.event_from_graph({**both, "transactionId": ours}, "work", TZ)
    assert (bound.owner, bound.marked) == ("abc123", True)
    # A copy the user made in Outlook: the hidden property came along, our transactionId
    # did not. It is marked, and it is theirs.
    copy = mapping.event_from_graph(both, "work", TZ)
    assert (copy.owner, copy.marked) == (None, True)
    looked_up = mapping.event_from_graph(
        resource(categories=[OWNER_CATEGORY]), "work", TZ, marker="abc123", transaction=ours
    )
    assert (looked_up.owner, looked_up.marked) == ("abc123", True)
    property_only = resource(singleValueExtendedProperties=prop, transactionId=ours)
    assert mapping.event_from_graph(property_only, "work", TZ).marked is False
    category_only = resource(categories=["Caldaemon Buffer"])
    assert mapping.event_from_graph(category_only, "work", TZ).owner is None
    assert mapping.needs_owner_lookup(category_only)
    assert not mapping.needs_owner_lookup(both)


def test_mapping_etag_falls_back_to_the_change_key_and_html_becomes_text() -> None:
    plain = {k: v for k, v in resource().items() if k != "@odata.etag"}
    html = resource(
        body={"contentType": "html", "content": "<p>Client &amp; family</p><p>#heavy</p>"}
    )
    assert mapping.event_from_graph(plain, "work", TZ).etag == 'W/"ck1"'
    assert mapping.event_from_graph(html, "work", TZ).description == "Client & family\n#heavy"


def test_mapping_writes_buffers_in_utc_with_a_deterministic_transaction_id() -> None:
    b = buffer(start=datetime(2026, 11, 30, 10, 50, tzinfo=ZoneInfo("America/Toronto")))
    body = mapping.create_body(b, b.identity)
    assert body["start"] == {"dateTime": "2026-11-30T15:50:00", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-11-30T16:05:00", "timeZone": "UTC"}
    assert body["attendees"] == [] and body["isReminderOn"] is False
    assert body["categories"] == [OWNER_CATEGORY] and body["showAs"] == "busy"
    assert body["transactionId"] == mapping.transaction_id(b.identity)
    assert len(body["transactionId"]) == 36
    assert mapping.transaction_id(b.identity) != mapping.transaction_id(
        hashlib.sha256(b"other").hexdigest()[:40]
    )
    assert "transactionId" not in mapping.buffer_fields(b)
    assert (body["sensitivity"], body["isAllDay"]) == ("private", False)


def test_mapping_writes_an_all_day_block_at_local_midnights_in_a_windows_zone() -> None:
    # Graph refuses IANA names it does not list (America/Toronto is not listed): the
    # Windows name of the clinician's zone is always taken.
    day = datetime(2026, 12, 5, tzinfo=TZ)
    off = Buffer(
        "lee",
        "work",
        day,
        day + timedelta(days=2),
        "Days off",
        "off/12-05",
        "protect",
        all_day=True,
    )
    body = mapping.create_body(off, off.identity, TZ)
    zone = "Eastern Standard Time"
    assert body["start"] == {"dateTime": "2026-12-05T00:00:00", "timeZone": zone}
    assert body["end"] == {"dateTime": "2026-12-07T00:00:00", "timeZone": zone}
    assert (body["isAllDay"], body["showAs"], body["sensitivity"]) == (True, "busy", "private")
    tokyo = mapping.block_times(off, ZoneInfo("Asia/Tokyo"))[0]
    assert tokyo == {"dateTime": "2026-12-05T00:00:00", "timeZone": "Tokyo Standard Time"}
    assert mapping.zone_name(dt.UTC) == "UTC" and mapping.zone_name(ZoneInfo("Etc/UTC")) == "UTC"
    # Read back in UTC (what the provider asks for), all-day events keep their dates.
    listed = {
        **resource(subject="Days off", isAllDay=True, categories=[OWNER_CATEGORY]),
        "singleValueExtendedProperties": [{"id": mapping.OWNER_PROPERTY_ID, "value": off.identity}],
        "start": {"dateTime": "2026-12-05T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-07T00:00:00.0000000", "timeZone": "UTC"},
    }
    assert mapping.matches_buffer(listed, off, off.identity, TZ)
    assert not mapping.matches_buffer({**listed, "isAllDay": False}, off, off.identity, TZ)
    timed_off = Buffer("lee", "work", day, day + timedelta(days=2), "Days off", "off/12-05", "p")
    assert not mapping.matches_buffer(listed, timed_off, off.identity, TZ)
    event = mapping.event_from_graph(listed, "work", TZ)
    assert event.all_day and (event.start, event.end) == (off.start, off.end)


def test_mapping_reads_windows_zone_names_and_out_of_office() -> None:
    # Outlook names zones the Windows way; an all-day event may come in its own zone.
    windows = {"dateTime": "2026-12-05T00:00:00.0000000", "timeZone": "Eastern Standard Time"}
    assert mapping.parse_datetime(windows) == datetime(
        2026, 12, 5, tzinfo=ZoneInfo("America/New_York")
    )
    away = mapping.event_from_graph(resource(showAs="oof"), "work", TZ)
    assert away.out_of_office and away.busy
    for show_as in ("busy", "free", "tentative", "workingElsewhere"):
        assert not mapping.event_from_graph(resource(showAs=show_as), "work", TZ).out_of_office


# -- notices through sendMail -------------------------------------------------------------

MESSAGE = Message(
    message_id="<0123456789abcdef@caldaemon>",
    to="lee@example.org",
    subject="caldaemon: a boundary crossed on Mon 30 Nov",
    text="Hello,\n\n3 high-intensity sessions\n",
    html="<p>Hello,</p><p>3 high-intensity sessions</p>",
)


def test_graph_mailer_sends_through_send_mail(server: MicrosoftServer, tmp_path: Path) -> None:
    h = Harness(server, tmp_path / "state")
    h.sign_in(scopes=["Calendars.ReadWrite", "Mail.Send"])
    mailer = GraphMailer(h.config, "lee", h.state_dir)
    try:
        mailer.send(MESSAGE)
    finally:
        mailer.close()
    [sent] = server.sent_mail
    assert sent["from"] == DEFAULT_USER and sent["saveToSentItems"] is False
    message = sent["message"]
    assert message["subject"] == MESSAGE.subject
    assert message["body"] == {"contentType": "HTML", "content": MESSAGE.html}
    assert message["toRecipients"] == [{"emailAddress": {"address": "lee@example.org"}}]
    assert message["internetMessageId"] == MESSAGE.message_id


@pytest.mark.parametrize(
    "fault, permanent",
    [
        (Fault(status=429, retry_after=30), False),
        (Fault(status=503), False),
        (Fault(kind="reset"), False),
        (Fault(status=400, code="ErrorInvalidRecipients", message="bad recipient"), True),
        (Fault(status=403, code="ErrorAccessDenied", message="Access is denied."), True),
    ],
)
def test_graph_mailer_failures_say_whether_to_retry(
    server: MicrosoftServer, tmp_path: Path, fault: Fault, permanent: bool
) -> None:
    h = Harness(server, tmp_path / "state")
    h.sign_in(scopes=["Calendars.ReadWrite", "Mail.Send"])
    sleeps: list[float] = []
    mailer = GraphMailer(h.config, "lee", h.state_dir, sleep=sleeps.append)
    fault.match = "POST /v1.0/me/sendMail"
    server.inject(fault)
    with pytest.raises(DeliveryError) as caught:
        mailer.send(MESSAGE)
    mailer.close()
    assert caught.value.permanent is permanent
    assert server.sent_mail == [] and sleeps == []


def test_mailer_for_graph_uses_the_named_outlook_calendar(
    server: MicrosoftServer, tmp_path: Path
) -> None:
    calendars = [
        {"id": "home", "provider": "ics", "path": "home.ics"},
        {"id": "work", "provider": "outlook", "tenant": server.tenant, "client_id": "a"},
        {
            "id": "admin",
            "provider": "outlook",
            "tenant": server.tenant,
            "client_id": "b",
            "user": "it@contoso.example",
        },
    ]
    daemon = {"state_dir": str(tmp_path / "state")}

    def settings(**email: Any) -> Any:
        return make_settings(
            {},
            daemon=daemon,
            clinician={"calendars": calendars},
            notices={"email": {"from": "caldaemon@example.org", "via": "graph", **email}},
        )

    first = mailer_for(settings())
    assert isinstance(first, GraphMailer) and first.calendar.id == "work"
    assert first.url == "https://graph.microsoft.com/v1.0/me/sendMail"
    named = mailer_for(settings(graph_calendar="admin"))
    assert isinstance(named, GraphMailer)
    assert named.url == "https://graph.microsoft.com/v1.0/users/it@contoso.example/sendMail"
    assert os.path.basename(named.tokens.path) == "lee-admin.msal.json"
    from caldaemon.errors import ConfigError

    with pytest.raises(ConfigError, match="outlook calendar with id 'nope'"):
        mailer_for(settings(graph_calendar="nope"))
