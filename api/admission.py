"""Telling a client to slow down (429 with Retry-After): a per-key rate limit shared by every API
process, and a per-address limit on keys that are not valid. The queue's high-water mark (503) is
the job writer's, which counts unfinished jobs (`api/accept/writer.py`).

Both are asked by the one authorization decision (api/access.py), for every /v1 request.
"""

import asyncio
import logging
import math
import time
import weakref
from functools import lru_cache

import redis

from api.problems import ProblemError
from shared.problems import Problem
from shared.redis_client import get_async_redis
from shared.settings import get_settings

log = logging.getLogger(__name__)

# A token bucket per key, on Redis's clock so every API process shares one bucket.
# Returns {allowed, milliseconds until a token is available}.
TOKEN_BUCKET = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.ceil((1 - tokens) * 1000 / rate)}
"""

# Every request of every key passes here: a hung Redis must not hold them for the usual client
# timeouts. So a check gets a short timeout, and after a failure the limit is skipped for a while
# instead of timing out again on every request.
REDIS_TIMEOUT_SECONDS = 0.25
SKIP_AFTER_FAILURE_SECONDS = 5.0


class KeyRateLimiter:
    """The per-key limit. The requests that arrive while a check is under way are checked together,
    in one Redis pipeline, on the event loop (no thread): one round trip per group, however many
    requests it holds. Alone, a request is checked at once."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, asyncio.Future[int | None]]] = []
        self._checking = False
        self._skip_until = 0.0

    async def take(self, key_id: int) -> None:
        """Returns if the key has a token; raises the 429 otherwise."""
        if get_settings().rate_limit_per_second <= 0 or time.monotonic() < self._skip_until:
            return  # off (always so in the embedded profile, which has no Redis), or Redis is down
        future = asyncio.get_running_loop().create_future()
        self._pending.append((key_id, future))
        if not self._checking:
            self._checking = True
            asyncio.get_running_loop().create_task(self._check_pending())
        wait_ms = await future
        if wait_ms is not None:
            raise _rate_limited(wait_ms, "This API key is over its rate of "
                                f"{get_settings().rate_limit_per_second}/s "
                                f"(burst {get_settings().rate_limit_burst}).")

    async def _check_pending(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                verdicts = await self._ask([key_id for key_id, _ in group])
                for (_, future), wait_ms in zip(group, verdicts, strict=True):
                    if not future.done():  # the client may have gone
                        future.set_result(wait_ms)
        finally:
            self._checking = False

    async def _ask(self, key_ids: list[int]) -> list[int | None]:
        """Per key id, None to let it through or the milliseconds to wait."""
        settings = get_settings()
        pipe = get_async_redis().pipeline(transaction=False)
        for key_id in key_ids:
            pipe.eval(TOKEN_BUCKET, 1, f"rate:{key_id}", settings.rate_limit_per_second,
                      settings.rate_limit_burst)
        try:
            verdicts = await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_SECONDS)
        except (redis.RedisError, OSError, TimeoutError):
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS
            log.warning("rate limiter unavailable; letting requests through for %.0f s",
                        SKIP_AFTER_FAILURE_SECONDS, exc_info=True)
            return [None] * len(key_ids)
        return [None if int(allowed) else int(wait_ms) for allowed, wait_ms in verdicts]


_limiters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KeyRateLimiter]" = \
    weakref.WeakKeyDictionary()


def key_rate_limiter() -> KeyRateLimiter:
    """One per event loop: its futures and Redis connections belong to the loop (uvicorn runs one
    per process; an in-process test client starts one per client)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = KeyRateLimiter()
    return limiter


class InvalidKeys:
    """A token bucket per client address for keys that are not valid (each costs a keyed hash and,
    for an unknown prefix, a database lookup). Kept in the process, not in Redis: an attacker's
    flood costs no Redis round trips, and it works in the embedded profile; so the limit holds per
    API process. Behind a proxy every client has the proxy's address: let uvicorn read the client's
    from X-Forwarded-For (`FORWARDED_ALLOW_IPS`) or this limit counts them all as one."""

    MAX_ADDRESSES = 10_000

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def count(self, address: str) -> None:
        """Count a key from this address that was not valid; raises the 429 if it had no more."""
        if self.per_second <= 0:
            return
        tokens = self._tokens(address)
        if tokens < 1:
            raise self._wait(tokens)
        if address not in self._buckets and len(self._buckets) >= self.MAX_ADDRESSES:
            self._buckets.pop(next(iter(self._buckets)))  # the longest known
        self._buckets[address] = (tokens - 1, time.monotonic())

    def refuse_if_waiting(self, address: str) -> None:
        """Raises the 429 if the address has no token left: no lookup for it meanwhile."""
        if self.per_second > 0 and address in self._buckets and (tokens := self._tokens(address)) < 1:
            raise self._wait(tokens)

    def _tokens(self, address: str) -> float:
        tokens, at = self._buckets.get(address, (float(self.burst), time.monotonic()))
        return min(float(self.burst), tokens + (time.monotonic() - at) * self.per_second)

    def _wait(self, tokens: float) -> ProblemError:
        wait_ms = math.ceil((1 - tokens) * 1000 / self.per_second)
        return _rate_limited(wait_ms, "Too many API keys that are not valid came from this address.")


@lru_cache
def invalid_keys() -> InvalidKeys:
    """One per API process (it runs on the event loop only)."""
    settings = get_settings()
    return InvalidKeys(settings.invalid_key_rate_per_second, settings.invalid_key_burst)


def _rate_limited(wait_ms: int, detail: str) -> ProblemError:
    retry_after = max(1, math.ceil(wait_ms / 1000))
    return ProblemError(Problem("rate-limited", 429, detail, {"retry_after": retry_after}),
                        {"Retry-After": str(retry_after)})
