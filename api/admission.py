"""Telling one client to slow down: a per-key rate limit (429 with Retry-After). The queue's
high-water mark (503) is the job writer's, which counts unfinished jobs (`api/accept/writer.py`)."""

import logging
import math
import time
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


async def enforce_rate_limit(key_id: int) -> None:
    settings = get_settings()
    if settings.rate_limit_per_second <= 0:
        return  # off; always so in the embedded profile, which has no Redis to share a bucket in
    try:
        allowed, wait_ms = await get_async_redis().eval(*_take_token(key_id))
    except redis.RedisError:
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return
    if not allowed:
        raise _rate_limited(int(wait_ms))


# The job writer's thread serves every submission of its process: a hung Redis must not hold it
# for the usual client timeouts. So its checks get a short timeout, and after a failure the limit is
# skipped for a while instead of timing out again on every group.
WRITER_REDIS_TIMEOUT_SECONDS = 0.1
SKIP_AFTER_FAILURE_SECONDS = 5.0
_skip_until = 0.0


@lru_cache
def _writer_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=WRITER_REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=WRITER_REDIS_TIMEOUT_SECONDS)


def rate_limit_all(key_ids: list[int]) -> list[ProblemError | None]:
    """The same check for many requests at once, one Redis round trip, for the job writer's thread:
    per request, None to let it through or the 429 to answer."""
    global _skip_until
    settings = get_settings()
    if settings.rate_limit_per_second <= 0 or not key_ids or time.monotonic() < _skip_until:
        return [None] * len(key_ids)
    pipe = _writer_redis().pipeline(transaction=False)
    for key_id in key_ids:
        pipe.eval(*_take_token(key_id))
    try:
        verdicts = pipe.execute()
    except redis.RedisError:
        _skip_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS
        log.warning("rate limiter unavailable; letting requests through for %.0f s",
                    SKIP_AFTER_FAILURE_SECONDS, exc_info=True)
        return [None] * len(key_ids)
    return [None if int(allowed) else _rate_limited(int(wait_ms)) for allowed, wait_ms in verdicts]


def _take_token(key_id: int) -> tuple[str, int, str, float, int]:
    """EVAL's arguments for one request of this key."""
    settings = get_settings()
    return TOKEN_BUCKET, 1, f"rate:{key_id}", settings.rate_limit_per_second, settings.rate_limit_burst


def _rate_limited(wait_ms: int) -> ProblemError:
    settings = get_settings()
    retry_after = max(1, math.ceil(wait_ms / 1000))
    return ProblemError(
        Problem("rate-limited", 429, f"This API key is over its rate of "
                f"{settings.rate_limit_per_second}/s (burst {settings.rate_limit_burst}).",
                {"retry_after": retry_after}),
        {"Retry-After": str(retry_after)})
