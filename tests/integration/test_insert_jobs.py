"""The job writer's INSERT on real MySQL: one statement that writes a job only if the key that came
with it is still live, so a revocation counts from the next command (api/accept/writer.py)."""

import uuid

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from shared.api_keys import create_key, revoke_key
from shared.held_connection import HeldConnection
from shared.jobs.rows import insert_jobs, new_row
from shared.models import ApiKey, Job, utcnow
from shared.settings import get_settings


def _key(session: Session) -> tuple[int, str]:
    prefix = create_key(session, name="insert-jobs", scopes=frozenset({"write"})).split("_")[1]
    return session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)), prefix


def _row(api_key_id: int) -> dict:
    return new_row(job_id=str(uuid.uuid4()), kind="command", mode=None,
                   payload={"type": "receive", "warehouse": "W", "sku": "S", "quantity": 1}, slot=0,
                   line_count=1, api_key_id=api_key_id, idempotency_key=None, request_hash=None,
                   request_id="req-1", submitted_at=utcnow())


def test_only_jobs_of_live_keys_are_written_where_asked_and_the_count_says_how_many():
    with Session(create_engine(get_settings().database_url)) as session:
        (live, _), (revoked, revoked_prefix) = _key(session), _key(session)
        assert revoke_key(session, prefix=revoked_prefix)
        session.commit()
        rows = [_row(live), _row(revoked), _row(revoked), _row(live)]
        # The third row's key is not to be checked (a route already authenticated its caller).
        checks = [True, True, False, True]

        held = HeldConnection()
        with held.use() as conn:
            written = insert_jobs(conn, rows, checks)
        held.discard()

        stored = set(session.scalars(select(Job.id).where(Job.id.in_([r["id"] for r in rows]))))
    assert written == 3
    assert stored == {rows[0]["id"], rows[2]["id"], rows[3]["id"]}


def test_the_writers_connection_autocommits_so_the_insert_is_durable_when_it_returns():
    with Session(create_engine(get_settings().database_url)) as session:
        key_id, _ = _key(session)
        session.commit()
        row = _row(key_id)
        held = HeldConnection()
        with held.use() as conn:
            assert insert_jobs(conn, [row], [True]) == 1
            # Seen from another connection before this one does anything else: committed.
            assert session.scalar(select(Job.status).where(Job.id == row["id"])) == "queued"
        held.discard()


def test_text_that_needs_escaping_reads_back_as_given_through_the_checked_insert():
    awkward = ("it's \"quoted\", back\\slash, %s and 50%, line\nbreak, nul\x00, ünïcødé 𝄞, "
               "'; DROP TABLE job; --")
    with Session(create_engine(get_settings().database_url)) as session:
        key_id, _ = _key(session)
        session.commit()
        row = {**_row(key_id), "request_id": "%s'\\", "idempotency_key": awkward[:100]}
        row["payload"] = {**row["payload"], "note": awkward * 3}
        held = HeldConnection()
        with held.use() as conn:
            assert insert_jobs(conn, [row], [True]) == 1
        held.discard()
        stored = session.execute(select(Job.payload, Job.request_id, Job.idempotency_key)
                                 .where(Job.id == row["id"])).one()
    assert tuple(stored) == (row["payload"], "%s'\\", awkward[:100])
