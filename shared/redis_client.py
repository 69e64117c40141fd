"""One Redis connection pool per process."""

from functools import lru_cache

import redis
import redis.asyncio

from shared.settings import get_settings


@lru_cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True,
                                socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


@lru_cache
def get_async_redis() -> redis.asyncio.Redis:
    """For waiting in async routes (long polls) without holding a worker thread."""
    return redis.asyncio.Redis.from_url(get_settings().redis_url, decode_responses=True,
                                        socket_connect_timeout=2)
