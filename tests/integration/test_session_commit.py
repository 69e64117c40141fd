"""A route's session commits before its answer is sent: a commit that fails turns the answer into
an error, and a write answered with success is there for the client's next read."""

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.deps import SessionDep
from shared.db import get_session_factory
from shared.models import Warehouse, utcnow


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/warehouses/{code}")
    def create(code: str, session: SessionDep) -> dict[str, str]:
        # Not flushed: the INSERT, and its unique key's refusal, happen at the commit.
        session.add(Warehouse(code=code, name=code, active=True, created_at=utcnow(), updated_at=utcnow()))
        return {"created": code}

    return app


def test_a_commit_that_fails_is_not_answered_as_a_success():
    code = f"SC-{uuid.uuid4().hex[:8]}"
    with TestClient(_app(), raise_server_exceptions=False) as client:
        assert client.post(f"/warehouses/{code}").status_code == 200
        with get_session_factory()() as session:  # answered, so committed
            assert session.scalar(select(Warehouse.code).where(Warehouse.code == code)) == code
        assert client.post(f"/warehouses/{code}").status_code == 500  # the duplicate fails at commit
