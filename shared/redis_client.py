"""One Redis connection pool per process."""

from functools import lru_cache

import redis

from shared.settings import get_settings


@lru_cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True,
                                socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
