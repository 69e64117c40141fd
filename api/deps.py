"""Request dependencies: a session per request (committed by the edge), the job status board."""

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


SessionDep = Annotated[Session, Depends(_session)]
StatusBoardDep = Annotated[StatusBoard, Depends(get_status_board)]
