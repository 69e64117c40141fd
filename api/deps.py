"""Request dependencies: a session per request, the job status board.

The session commits when the route function returns and before the answer is sent
(`scope="function"`): with FastAPI's default scope the code after `yield` runs after the response
has gone out, so a client could read before the commit it was told of, or be told of a success
whose commit then failed."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from shared.db import get_session_factory
from shared.status_board import StatusBoard, get_status_board


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


SessionDep = Annotated[Session, Depends(_session, scope="function")]
StatusBoardDep = Annotated[StatusBoard, Depends(get_status_board)]
