"""One Redis connection pool per process (and one asyncio client per event loop)."""

import asyncio
import weakref
from functools import lru_cache

import redis
import redis.asyncio

from shared.settings import get_settings


@lru_cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True,
                                socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = \
    weakref.WeakKeyDictionary()


def get_async_redis() -> redis.asyncio.Redis:
    """For async routes (long polls, the rate limit) without holding a thread. One per event loop:
    an asyncio client's connections belong to the loop that opened them (uvicorn has one loop per
    process; an in-process test client starts a new one per client)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = redis.asyncio.Redis.from_url(get_settings().redis_url, decode_responses=True,
                                              socket_connect_timeout=2)
        _async_clients[loop] = client
    return client
