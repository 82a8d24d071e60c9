"""Bounded retries of cloud calls: exponential backoff with jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import context_value

logger = get_logger(__name__)

T = TypeVar("T")

#: HTTP statuses worth retrying: timeout, conflict, rate limit, server errors.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed cloud call is retried before the step fails.

    Attempt ``k`` (1-based) waits ``min(max_delay, base_delay * 2**(k-1))`` scaled by a random
    factor in ``[1 - jitter, 1]``; a ``Retry-After`` from the server replaces that delay (capped at
    ``max_retry_after``). Only rate limits, timeouts, connection errors and 5xx are retried.

    Attributes:
        attempts: Total attempts (1 = no retry).
        base_delay: First backoff, seconds.
        max_delay: Backoff cap, seconds.
        jitter: Fraction of the delay randomised away (0 = none).
        max_retry_after: Longest Retry-After honoured, seconds (longer ones fail the step).
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts!r}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError(
                "delays must be >= 0, got "
                f"base_delay={self.base_delay}, max_delay={self.max_delay}, "
                f"max_retry_after={self.max_retry_after}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter!r}")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay after failed attempt ``attempt`` (1-based), without Retry-After."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * (1 - self.jitter * (rng or random).random())


NO_RETRY = RetryPolicy(attempts=1)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``Retry-After`` / ``retry-after-ms``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts, connection errors and 5xx (by type name or HTTP status)."""
    status = _status(exc)
    if status is not None:
        return status in RETRY_STATUSES
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names
        & {
            "APITimeoutError",
            "APIConnectionError",
            "RateLimitError",
            "InternalServerError",
            "TimeoutException",
            "ConnectError",
            "TimeoutError",
            "ConnectionError",
        }
    )


def _plan(policy: RetryPolicy, attempt: int, exc: BaseException) -> tuple[float, str] | None:
    """(delay, why) before the next attempt, or ``None`` when the call must fail now."""
    if attempt >= policy.attempts or not is_retryable(exc):
        return None
    asked = retry_after(exc)
    if asked is not None:
        if asked > policy.max_retry_after:
            return None
        return asked, f"Retry-After {asked:g} s"
    delay = policy.backoff(attempt)
    return delay, f"backoff {delay:.2f} s"


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException, float, str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()`` with retries; the last error is raised when the attempts run out."""
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            plan = _plan(policy, attempt, exc)
            if plan is None:
                raise
            if on_retry:
                on_retry(attempt, exc, *plan)
            sleep(plan[0])
            attempt += 1


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException, float, str], None] | None = None,
) -> T:
    """Async `call_with_retries`."""
    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as exc:
            plan = _plan(policy, attempt, exc)
            if plan is None:
                raise
            if on_retry:
                on_retry(attempt, exc, *plan)
            await asyncio.sleep(plan[0])
            attempt += 1


def retry_note(
    step: int, target: str, notes: list[str]
) -> Callable[[int, BaseException, float, str], None]:
    """An ``on_retry`` that logs each retried attempt and appends a line for it to ``notes``
    (the node records them in ``state["errors"]``)."""

    def note(attempt: int, exc: BaseException, delay: float, why: str) -> None:
        line = (
            f"step {step}: {target} attempt {attempt} failed ({error_text(exc)}); "
            f"retrying in {delay:.2f} s ({why})"
        )
        logger.info(line)
        notes.append(line)

    return note


def cloud_retry_policy(context: Any) -> RetryPolicy:
    """The run's ``cloud_retry`` (`HeraContext`), or the default `RetryPolicy`."""
    policy = context_value(context, "cloud_retry")
    return policy if policy is not None else RetryPolicy()
