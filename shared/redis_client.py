"""Redis clients with bounded pools: a process holds at most REDIS_POOL_SIZE connections per
client, however many requests are in flight (a request that finds them all busy waits briefly)."""

import asyncio
import weakref

import redis
import redis.asyncio

from shared.settings import get_settings

# Connections a client may hold: about the requests that use Redis at the same instant (the thread
# pool's reads, the rate limit's checks), never the requests that only wait.
REDIS_POOL_SIZE = 16
# How long a request waits for a free connection before failing like an unreachable Redis.
POOL_WAIT_SECONDS = 2.0


def bounded_pool(url: str, **options: object) -> redis.BlockingConnectionPool:
    return redis.BlockingConnectionPool.from_url(url, max_connections=REDIS_POOL_SIZE,
                                                 timeout=POOL_WAIT_SECONDS, **options)


_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]" = \
    weakref.WeakKeyDictionary()


def get_async_redis() -> redis.asyncio.Redis:
    """For async routes (the rate limit) without holding a thread. One per event loop: an asyncio
    client's connections belong to the loop that opened them (uvicorn has one loop per process; an
    in-process test client starts a new one per client)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            get_settings().redis_url, max_connections=REDIS_POOL_SIZE, timeout=POOL_WAIT_SECONDS,
            decode_responses=True, socket_connect_timeout=2)
        client = redis.asyncio.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client
