"""Requests to Microsoft Graph: a fresh token on each, retries and throttling through
:mod:`caldaemon.retry`, JSON batching, and Graph's error envelope. The session they go
over and the per-mailbox concurrency cap are :mod:`caldaemon.providers.outlook.session`.

References: https://learn.microsoft.com/graph/throttling (429/503 with Retry-After),
https://learn.microsoft.com/graph/json-batching (at most 20 requests per batch, ids unique
within a batch, each response carries its own status and headers, Retry-After included),
https://learn.microsoft.com/graph/errors (the error envelope).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from caldaemon.errors import CalendarError, TransientError
from caldaemon.providers.outlook.session import (
    MAX_CONCURRENT_PER_MAILBOX,
    GraphSession,
    mailbox_slots,
)
from caldaemon.retry import RetryPolicy, RetryVerdict, parse_retry_after, with_retries

T = TypeVar("T")

MAX_BATCH = 20
DEFAULT_POLICY = RetryPolicy()


@dataclass
class BatchReply:
    """One response inside a ``$batch`` answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    # Sent more than once (a lost answer, a throttled or failed attempt): an earlier
    # attempt may have been carried out, so a 412 may be this very write's own doing.
    resent: bool = False


class _Retryable(Exception):
    """A response worth trying again (429, 503, other 5xx)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _ItemsRetryable(Exception):
    """Some items of a $batch were answered 429/5xx; ``delay`` is their longest
    Retry-After, None when none was given."""

    def __init__(self, delay: float | None) -> None:
        super().__init__("batch items to retry")
        self.delay = delay


def error_text(status: int, body: Any) -> str:
    """``403 ErrorAccessDenied: Access is denied…`` from Graph's error envelope."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        return f"{status} {error.get('code', '')}: {error.get('message', '')}".strip()
    return str(status)


def error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, Mapping) else None
    return str(error.get("code", "")) if isinstance(error, Mapping) else ""


def json_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


class GraphClient:
    """Sends requests to one mailbox on Graph, with a fresh token each time.

    ``token(force)`` returns an access token (``force``: refresh it; called after a 401);
    ``mailbox()`` names the mailbox for the concurrency cap."""

    def __init__(
        self,
        *,
        endpoint: str,
        calendar: str,
        where: str,
        session: GraphSession,
        token: Callable[[bool], str],
        mailbox: Callable[[], tuple[str, str]],
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.calendar = calendar
        self.where = where
        self.session = session
        self.token = token
        self.mailbox = mailbox
        self.sleep = sleep
        self.clock = clock
        self.policy = policy
        self.rng = random.Random()

    def _once(
        self, method: str, url: str, *, force: bool = False, slots: int = 1, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(force)}", **kwargs.pop("headers", {})}
        with mailbox_slots(self.mailbox()).hold(slots):
            return self.session.request(method, url, headers=headers, **kwargs)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The answer to one request after retries: 429/503 wait for Retry-After, other
        5xx, timeouts and dropped connections back off; the answer is returned whatever
        its status once it is not one to retry. Exhausted retries raise TransientError."""

        def attempt() -> requests.Response:
            return self._checked(method, url, params=params, json=json, headers=headers)

        return self._retrying(attempt)

    def _checked(self, method: str, url: str, slots: int = 1, **kwargs: Any) -> requests.Response:
        """One request; a 401 refreshes the token once; a status worth retrying raises."""
        kwargs["headers"] = dict(kwargs.get("headers") or {})
        response = self._once(method, url, slots=slots, **kwargs)
        if response.status_code == 401:
            # The token was revoked or expired early: refresh once, then resend.
            response = self._once(method, url, force=True, slots=slots, **kwargs)
        if retryable_status(response.status_code):
            raise _Retryable(response)
        return response

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt`` under one retry budget; exhausted retries become TransientError."""
        try:
            return with_retries(
                attempt, classify=self._classify, policy=self.policy, sleep=self.sleep, rng=self.rng
            )
        except _Retryable as exc:
            status = exc.response.status_code
            raise TransientError(
                self.calendar,
                self.where,
                "Microsoft Graph answered " + error_text(status, json_of(exc.response)),
            ) from None
        except requests.exceptions.SSLError as exc:
            raise CalendarError(
                self.calendar,
                self.where,
                f"the certificate of {self.endpoint} "
                f"could not be verified ({exc}); set ca_file if it uses a "
                "private CA",
            ) from None
        except requests.RequestException as exc:
            raise TransientError(
                self.calendar, self.where, f"cannot reach Microsoft Graph: {type(exc).__name__}"
            ) from None

    def _classify(self, exc: BaseException) -> RetryVerdict | None:
        if isinstance(exc, _ItemsRetryable):
            return RetryVerdict(exc.delay)
        if isinstance(exc, _Retryable):
            return RetryVerdict(
                parse_retry_after(exc.response.headers.get("Retry-After"), self.clock)
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return None
        if isinstance(
            exc,
            (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError),
        ):
            return RetryVerdict()
        return None

    def batch(self, items: Sequence[Mapping[str, Any]]) -> list[BatchReply]:
        """Send ``items`` ({method, url relative to the version, headers?, body?}) in JSON
        batches of at most 20; one reply per item, in order. Items answered 429, 503 or
        another 5xx are sent again (alone with the others that failed) after the longest
        Retry-After among them, or our backoff when none was given."""
        replies: list[BatchReply] = [BatchReply(0) for _ in items]
        for offset in range(0, len(items), MAX_BATCH):
            self._batch_chunk(
                items, list(range(offset, min(offset + MAX_BATCH, len(items)))), replies
            )
        return replies

    def _batch_chunk(
        self, items: Sequence[Mapping[str, Any]], pending: list[int], replies: list[BatchReply]
    ) -> None:
        """One retry budget for the whole chunk: a throttled $batch and throttled items
        inside it draw on the same attempts (JSON batching: each item is throttled on its
        own, https://learn.microsoft.com/graph/json-batching#handling-throttling)."""

        sends = dict.fromkeys(pending, 0)

        def attempt() -> None:
            nonlocal pending
            for index in pending:
                sends[index] += 1
            requests_ = []
            for number, index in enumerate(pending, start=1):
                item = dict(items[index])
                item_headers = dict(item.get("headers") or {})
                if "body" in item:
                    item_headers.setdefault("Content-Type", "application/json")
                requests_.append({**item, "id": str(number), "headers": item_headers})
            response = self._checked(
                "POST",
                f"{self.endpoint}/$batch",
                slots=min(len(requests_), MAX_CONCURRENT_PER_MAILBOX),
                json={"requests": requests_},
            )
            payload = json_of(response)
            if response.status_code != 200 or not isinstance(payload, Mapping):
                raise CalendarError(
                    self.calendar,
                    self.where,
                    "Microsoft Graph refused a batch: " + error_text(response.status_code, payload),
                )
            answered = {
                str(r.get("id")): r
                for r in payload.get("responses") or ()
                if isinstance(r, Mapping)
            }
            again: list[int] = []
            delays: list[float] = []
            for number, index in enumerate(pending, start=1):
                raw = answered.get(str(number))
                if raw is None:
                    replies[index] = BatchReply(500, {}, None)
                else:
                    headers = {
                        str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()
                    }
                    replies[index] = BatchReply(
                        int(raw.get("status") or 500), headers, raw.get("body")
                    )
                if retryable_status(replies[index].status):
                    again.append(index)
                    delay = parse_retry_after(replies[index].headers.get("retry-after"), self.clock)
                    if delay is not None:
                        delays.append(delay)
            if again:
                pending = again
                raise _ItemsRetryable(max(delays) if delays else None)

        try:
            # Items still throttled when the budget runs out keep their last answer.
            with contextlib.suppress(_ItemsRetryable):
                self._retrying(attempt)
        finally:
            for index, count in sends.items():
                replies[index].resent = count > 1
