"""Telling clients to slow down before anything breaks: per-key rate limits (429) and a queue
high-water mark (503), both with Retry-After."""

import logging
import math

import redis

from api.problems import ProblemError
from shared.backpressure import queue_depth
from shared.problems import Problem
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


def enforce_rate_limit(client: redis.Redis, key_id: int) -> None:
    settings = get_settings()
    if settings.rate_limit_per_second <= 0:
        return
    try:
        allowed, wait_ms = client.eval(TOKEN_BUCKET, 1, f"rate:{key_id}",
                                       settings.rate_limit_per_second, settings.rate_limit_burst)
    except redis.RedisError:
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return
    if not allowed:
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        raise ProblemError(
            Problem("rate-limited", 429, f"This API key is over its rate of "
                    f"{settings.rate_limit_per_second}/s (burst {settings.rate_limit_burst}).",
                    {"retry_after": retry_after}),
            {"Retry-After": str(retry_after)})


def enforce_high_water_mark(client: redis.Redis) -> None:
    """Refuse new work while the queue is over the mark; reads and polls are not affected."""
    settings = get_settings()
    try:
        depth = queue_depth(client)
    except redis.RedisError:
        raise ProblemError(Problem("unavailable", 503, "The queue is unavailable; retry later."),
                           {"Retry-After": str(settings.overload_retry_after_seconds)}) from None
    if depth >= settings.max_queued_jobs:
        retry_after = settings.overload_retry_after_seconds
        raise ProblemError(
            Problem("overloaded", 503, f"{depth} jobs are waiting (high-water mark "
                    f"{settings.max_queued_jobs}); retry after {retry_after}s.",
                    {"queued": depth, "retry_after": retry_after}),
            {"Retry-After": str(retry_after)})
