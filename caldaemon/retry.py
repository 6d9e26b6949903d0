"""Our own retry layer for calendar APIs: capped exponential backoff with full jitter
(AWS Architecture Blog, "Exponential Backoff And Jitter"), honouring Retry-After
(RFC 9110 §10.2.3). Clock-free: the sleep and the random source are injected, so tests
run it without waiting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base: float = 1.0
    cap: float = 32.0
    # A server's Retry-After is honoured up to this; beyond it we give up for this cycle
    # rather than hold a worker thread for minutes (the next poll tries again).
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


class RetryVerdict:
    """What ``classify`` says of an exception: retry (after ``delay`` seconds if the
    server said so, else after our backoff) or not."""

    __slots__ = ("delay",)

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay


def with_retries(
    operation: Callable[[], T],
    *,
    classify: Callable[[BaseException], RetryVerdict | None],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``operation``; on an exception ``classify`` calls retryable, wait and try again,
    at most ``policy.attempts`` times in all. The last exception propagates."""
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or attempt == policy.attempts - 1:
                raise
            if verdict.delay is not None and verdict.delay > policy.max_retry_after:
                raise
            delay = verdict.delay if verdict.delay is not None else policy.backoff(attempt, rng)
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop either returns or raises


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None
