"""The embedded profile's status board (the job rows answer reads), the queue folder's count of
waiting messages, and the backpressure count, on a migrated SQLite file."""

import uuid

from kombu import Connection, Exchange, Queue
from sqlalchemy.orm import sessionmaker

from api.accept.writer import Backlog
from shared.celery_app import all_queues
from shared.file_queue import celery_options, waiting_messages
from shared.models import Job, utcnow
from shared.status_board import DatabaseStatusBoard


def _add_jobs(engine, *statuses: str) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in statuses]
    with sessionmaker(bind=engine).begin() as session:
        session.add_all(Job(id=job_id, kind="command", status=status, slot=0, attempts=0,
                            payload={"type": "receive"}, submitted_at=utcnow())
                        for job_id, status in zip(ids, statuses, strict=True))
    return ids


def test_backpressure_counts_the_jobs_not_finished(engine):
    """The job writer's high-water mark, which has no Redis to ask in this profile either."""
    _add_jobs(engine, "queued", "queued", "running", "succeeded", "failed", "partially_failed")
    backlog = Backlog()
    with engine.connect() as conn:
        backlog.refresh(conn)
    assert backlog.estimate == 3


def test_reads_come_from_the_job_row_and_publishing_is_not_needed(engine, tmp_path):
    board = DatabaseStatusBoard()
    job_id, = _add_jobs(engine, "queued")
    board.publish_many([{"job_id": job_id, "status": "succeeded"}])  # the row, not a copy, is the status
    with sessionmaker(bind=engine)() as session:
        doc = board.read(session, job_id)
        assert doc["job_id"] == job_id and doc["status"] == "queued" and doc["owner"] is None
        assert board.read(session, str(uuid.uuid4())) is None


def test_waiting_messages_are_the_message_files_of_each_shard_queue(tmp_path):
    folder = tmp_path / "queue"
    first, second = all_queues()[:2]
    assert waiting_messages(folder, [first, second]) == [0, 0]  # before the folder is made
    options = celery_options(folder)
    with Connection("filesystem://", transport=options["broker_transport"],
                    transport_options=options["broker_transport_options"]) as conn:
        producer = conn.Producer()
        for name, messages in ((first, 2), (second, 1)):
            queue = Queue(name, Exchange(name), routing_key=name)
            for _ in range(messages):
                # A wake-up names slots, as the API sends them.
                producer.publish({"args": [[1, 2]]},
                                 exchange=queue.exchange, routing_key=name, declare=[queue],
                                 serializer="json")
    (folder / "messages" / f"writing-0_x.{first}.msg.part").write_text("")  # not yet a message
    assert waiting_messages(folder, [first, second]) == [2, 1]
