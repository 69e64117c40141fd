"""When the client sends a request again, and how long it waits first.

Again after a network error, or an answer of 429 (the key is over its rate, or has too many waiting
requests), 503 (the service is overloaded or a process holds too many waiting requests), or 502 or
504 (a proxy in between). Every submission carries its Idempotency-Key on each try, so sending one
again never applies a command twice.

How long: what the answer's `Retry-After` asks for (RFC 9110, section 10.2.3: delay-seconds or an
HTTP-date), plus up to a tenth more at random, so that many clients told the same second do not all
come back within it; an answer that asks for longer than `max_retry_after` is handed back to the
caller instead of being waited for. Without the header: exponential backoff with full jitter, a
random wait between 0 and min(max_backoff, base_backoff * 2 ** (tries - 1)). tenacity runs the loop.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import tenacity

RETRY_STATUSES = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """The seconds a `Retry-After` value asks to wait, or None when there is none or it is not valid.

    delay-seconds is `1*DIGIT` (no sign, no fraction). An HTTP-date may come in any of the three
    forms RFC 9110 has recipients accept (IMF-fixdate, RFC 850, asctime; all UTC); one in the past
    asks for no wait.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime carries no zone: HTTP-dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The wait a retryable answer asks for, or None (no header, or another status)."""
    if response.status_code not in RETRY_STATUSES:
        return None
    return parse_retry_after(response.headers.get("Retry-After"), now=now)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to try again; `sleep` is there for tests."""

    max_attempts: int = 8
    base_backoff: float = 0.2
    max_backoff: float = 10.0
    max_retry_after: float = 120.0
    retry_after_jitter: float = 0.1
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def send(self, request: Callable[[], httpx.Response]) -> httpx.Response:
        """Call `request` until it answers with a status not to retry, or the tries run out: then
        the last answer is returned, or the last network error raised."""
        retrying = tenacity.Retrying(
            retry=(tenacity.retry_if_exception_type(httpx.TransportError)
                   | tenacity.retry_if_result(lambda response: response.status_code in RETRY_STATUSES)),
            wait=self.wait, stop=self.stop, sleep=self.sleep,
            retry_error_callback=_last_outcome)
        return retrying(request)

    def wait(self, state: tenacity.RetryCallState) -> float:
        asked = _asked_wait(state)
        if asked is not None:
            return asked + random.uniform(0, asked * self.retry_after_jitter)
        backoff = tenacity.wait_random_exponential(multiplier=self.base_backoff, max=self.max_backoff)
        return backoff(state)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        asked = _asked_wait(state)
        return asked is not None and asked > self.max_retry_after


def _asked_wait(state: tenacity.RetryCallState) -> float | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    return retry_after(outcome.result())


def _last_outcome(state: tenacity.RetryCallState) -> httpx.Response:
    """When the tries run out: the last answer as it is, or its network error raised again."""
    assert state.outcome is not None
    return state.outcome.result()
