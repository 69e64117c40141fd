"""Request dependencies: a session per request (committed by the edge), Redis, the caller's key."""

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends
from sqlalchemy.orm import Session

from shared.db import get_session_factory
from shared.redis_client import get_redis


def _session() -> Iterator[Session]:
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(_session)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
