"""Group commit for accepted jobs: many requests, one INSERT, then their messages.

A job row must be committed before the 202: the row is the durable promise. Done per request,
that is a commit for every command, and it caps the accept path. Instead each API process has one
writer thread: requests hand it their job and await the answer; it takes everything that arrived
while it was busy and writes it together (the same idea as InnoDB's group commit). Under no load a
group is one job and nothing waits for company. The committed jobs' messages are the publisher's to
send (api/accept/publisher.py), a few groups at a time; while the broker refuses them, new jobs are
refused (503) rather than written.

The writer also decides what the accept path needs the database for: Idempotency-Key replays
(looked up for the whole group at once) and the high-water mark (a count of unfinished jobs it
refreshes at most every BACKLOG_REFRESH_SECONDS, plus what it accepted since). The count is
refreshed after a group is answered, not before, unless the group would pass the mark: no request
waits for it. Callers were
authorized before (api/access.py), with a key that may have been revoked since: the INSERT writes a
job only if its key is not revoked at that moment, and a replay is refused for a revoked key, so a
revocation counts from the next command.

Its connection autocommits (shared/held_connection.py): each INSERT (one per group, unless large batches
split it) is its own durable transaction, with no COMMIT round trip after it. Nothing here needs more
than one statement to be atomic: the key check that must hold at the moment of writing is part of
the INSERT.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, func, select, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from api.accept.grouped import GroupThread, Waiting
from api.accept.publisher import get_publisher
from api.problems import ProblemError, unavailable
from shared.clock import rfc3339
from shared.jobs.rows import insert_jobs, new_row
from shared.jobs.status import QUEUED, UNFINISHED
from shared.logs import current as current_log_field
from shared.models import ApiKey, Job, utcnow
from shared.ordering import shard_for_slot
from shared.problems import Problem
from shared.settings import get_settings

log = logging.getLogger(__name__)

# 500: also SQLite's limit on the SELECTs of one compound statement (shared/stock/upsert.py).
MAX_JOBS_PER_WRITE = 500
# One statement stays well inside max_allowed_packet (16 MiB on MariaDB, 64 MiB on MySQL 8) even
# if the estimate is off by several times: a 10,000-line batch (about 1 MB) goes alone.
MAX_INSERT_BYTES = 1_000_000
BATCH_LINE_BYTES = 120
COMMAND_BYTES = 200
# A few counts per second at most: COUNT over the (status, slot, submitted_at) index of up to
# MAX_QUEUED_JOBS entries is cheap at that rate, and the jobs this process accepts in between are
# added to the estimate, so a burst from one client still meets the mark exactly.
BACKLOG_REFRESH_SECONDS = 0.1


@dataclass(frozen=True)
class Acceptance:
    """What the 202 (or the replayed 202) says."""

    job_id: str
    kind: str
    status: str
    submitted_at: str
    replayed: bool = False


@dataclass(eq=False)
class Submission(Waiting):
    """One request's job, waiting for the writer. The job's id is made by the request, so that it
    can wait for the job before the job exists."""

    job_id: str
    api_key_id: int
    kind: str
    mode: str | None
    payload: Any
    slot: int
    line_count: int
    idempotency_key: str | None
    request_hash: str | None
    row: dict[str, Any] | None = None
    request_id: str | None = field(default_factory=lambda: current_log_field("request_id"))


def _overloaded(depth: int) -> ProblemError:
    settings = get_settings()
    retry_after = settings.overload_retry_after_seconds
    return ProblemError(
        Problem("overloaded", 503, f"{depth} jobs are waiting (high-water mark "
                f"{settings.max_queued_jobs}); retry after {retry_after}s.",
                {"queued": depth, "retry_after": retry_after}),
        {"Retry-After": str(retry_after)})


class KeyRevoked(Exception):
    """The caller's key was revoked since it was checked: nothing was written (api/accept/submit.py
    answers 401)."""


def _mismatch(job_id: str) -> ProblemError:
    return ProblemError(Problem("idempotency-key-mismatch", 422,
                                "This Idempotency-Key was used with a different request body.",
                                {"job_id": job_id}))


class Backlog:
    """Unfinished jobs as last counted, plus the ones this process accepted since."""

    def __init__(self) -> None:
        self.counted = 0
        self.accepted_since = 0
        self.counted_at = float("-inf")

    @property
    def estimate(self) -> int:
        return self.counted + self.accepted_since

    def stale(self) -> bool:
        return time.monotonic() - self.counted_at >= BACKLOG_REFRESH_SECONDS

    def refresh(self, conn: Connection) -> None:
        self.counted = conn.scalar(select(func.count()).select_from(Job)
                                   .where(Job.status.in_(UNFINISHED))) or 0
        self.accepted_since = 0
        self.counted_at = time.monotonic()


class JobWriter(GroupThread):
    max_group = MAX_JOBS_PER_WRITE
    idle_seconds = BACKLOG_REFRESH_SECONDS

    def __init__(self) -> None:
        self.gather_seconds = get_settings().accept_group_wait_seconds
        self.backlog = Backlog()
        self.inserting = False  # this group's INSERT has been sent: it must not be served again
        super().__init__("job-writer")

    async def submit(self, *, job_id: str, api_key_id: int, kind: str, mode: str | None,
                     payload: Any, slot: int, line_count: int, idempotency_key: str | None,
                     request_hash: str | None) -> Acceptance:
        """Raises KeyRevoked if the key was revoked meanwhile, or a ProblemError to answer."""
        acceptance: Acceptance = await self.wait_for(Submission(
            job_id, api_key_id, kind, mode, payload, slot, line_count, idempotency_key, request_hash))
        return acceptance

    def idle(self) -> None:
        """While the last estimate was non-zero, keep counting so a drained queue lets work in."""
        if self.backlog.estimate == 0 or not self.backlog.stale():
            return
        self._refresh_backlog()

    def _refresh_backlog(self) -> None:
        try:
            with self.connection.use() as conn:
                self.backlog.refresh(conn)
        except DBAPIError:
            log.warning("could not count the backlog", exc_info=True)

    def may_serve_again(self) -> bool:
        return not self.inserting

    def serve(self, group: list[Submission]) -> None:
        deferred: list[Submission] = []
        self.inserting = False
        with self.connection.use() as conn:
            if self.backlog.stale() and self.backlog.estimate + len(group) > get_settings().max_queued_jobs:
                self.backlog.refresh(conn)  # a refusal is decided on a recent count
            originals = _originals(conn, [s for s in group if s.idempotency_key])
            fresh = self._admit(conn, group, originals, deferred)
            if fresh:
                self.inserting = True
                fresh = self._insert(conn, fresh)
        self._queue(fresh)
        for submission in deferred:  # written now: the next group answers them as replays
            self.requeue(submission)
        if self.backlog.stale():  # after the answers, so that no request waits for the count
            self._refresh_backlog()

    def _admit(self, conn: Connection, group: list[Submission], originals: dict[tuple[int, str], Any],
               deferred: list[Submission]) -> list[Submission]:
        """Settle replays, mismatches and refusals; return the submissions that make a new job."""
        settings = get_settings()
        fresh: list[Submission] = []
        claimed: set[tuple[int, str]] = set()
        oldest_kept = utcnow() - timedelta(seconds=settings.idempotency_ttl_seconds)
        for submission in group:
            key = (submission.api_key_id, submission.idempotency_key or "")
            original = originals.get(key) if submission.idempotency_key else None
            if original is not None and original.key_revoked_at is not None:
                submission.settle(KeyRevoked())
                continue
            if original is not None and original.submitted_at < oldest_kept:
                # Past retention the key is free again: release it from the old job.
                conn.execute(update(Job).where(Job.id == original.id).values(idempotency_key=None))
                original = None
            if original is not None:
                submission.settle(_replay_or_mismatch(submission, original))
            elif submission.idempotency_key and key in claimed:
                deferred.append(submission)  # the same key twice in one group
            elif not get_publisher().healthy:
                submission.settle(unavailable("queue"))  # not written: nothing to take back
            elif self.backlog.estimate >= settings.max_queued_jobs:
                submission.settle(_overloaded(self.backlog.estimate))
            else:
                submission.row = _new_row(submission)
                if submission.idempotency_key:
                    claimed.add(key)
                self.backlog.accepted_since += 1
                fresh.append(submission)
        return fresh

    def _insert(self, conn: Connection, fresh: list[Submission]) -> list[Submission]:
        """Write the jobs; return those written. A job is written only if its key is still not
        revoked; the others are settled KeyRevoked. Each statement is its own transaction (the
        connection autocommits), so a group of large batches is written in statements of at most
        about MAX_INSERT_BYTES, each all or nothing."""
        written: list[Submission] = []
        for chunk in _by_size(fresh):
            try:
                count = insert_jobs(conn, [s.row for s in chunk], [True] * len(chunk))  # type: ignore[misc]
            except IntegrityError:
                # A racing request in another process took one of the keys: one at a time.
                conn.rollback()
                written += self._insert_one_by_one(conn, chunk)
                continue
            if count < len(chunk):
                # Some key was revoked since it was checked (a rare race): which jobs are there?
                ids = [s.row["id"] for s in chunk]  # type: ignore[index]
                present = set(conn.scalars(select(Job.id).where(Job.id.in_(ids))))
                for submission in chunk:
                    if submission.row["id"] not in present:  # type: ignore[index]
                        self._refuse(submission)
            written += [s for s in chunk if not s.settled]
        return written

    def _insert_one_by_one(self, conn: Connection, fresh: list[Submission]) -> list[Submission]:
        written = []
        for submission in fresh:
            try:
                if insert_jobs(conn, [submission.row], [True]):  # type: ignore[list-item]
                    written.append(submission)
                else:
                    self._refuse(submission)
            except IntegrityError:
                conn.rollback()
                original = _originals(conn, [submission]).get(
                    (submission.api_key_id, submission.idempotency_key or ""))
                if original is None:
                    raise
                self.backlog.accepted_since -= 1
                submission.settle(_replay_or_mismatch(submission, original))
        return written

    def _refuse(self, submission: Submission) -> None:
        """A job not written because its key was revoked."""
        self.backlog.accepted_since -= 1
        submission.settle(KeyRevoked())

    def _queue(self, written: list[Submission]) -> None:
        """Hand the committed jobs' slots to the publisher, which wakes the workers, and answer
        202. No status copy goes to Redis: a poll of a job that is not finished reads its row."""
        if not written:
            return
        shard_count = get_settings().shard_count
        slots_by_shard: dict[int, set[int]] = {}
        for submission in written:
            shard = shard_for_slot(submission.slot, shard_count)
            slots_by_shard.setdefault(shard, set()).add(submission.slot)
        get_publisher().submit(slots_by_shard)
        for submission in written:
            submission.settle(_acceptance(submission.row))  # type: ignore[arg-type]


def _by_size(submissions: list[Submission]) -> list[list[Submission]]:
    """Consecutive runs of submissions whose INSERT stays under about MAX_INSERT_BYTES (a batch
    line is estimated at BATCH_LINE_BYTES, a single command at COMMAND_BYTES); a batch larger
    than that goes alone."""
    chunks: list[list[Submission]] = [[]]
    size = 0
    for submission in submissions:
        estimate = (submission.line_count * BATCH_LINE_BYTES if submission.kind == "batch"
                    else COMMAND_BYTES)
        if chunks[-1] and size + estimate > MAX_INSERT_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(submission)
        size += estimate
    return chunks


def _new_row(submission: Submission) -> dict[str, Any]:
    return new_row(job_id=submission.job_id, kind=submission.kind, mode=submission.mode,
                   payload=submission.payload, slot=submission.slot, line_count=submission.line_count,
                   api_key_id=submission.api_key_id, idempotency_key=submission.idempotency_key,
                   request_hash=submission.request_hash, request_id=submission.request_id,
                   submitted_at=utcnow())


def _acceptance(row: dict[str, Any]) -> Acceptance:
    return Acceptance(row["id"], row["kind"], QUEUED, rfc3339(row["submitted_at"]))


def _replay_or_mismatch(submission: Submission, original: Any) -> Acceptance | Exception:
    if original.request_hash != submission.request_hash:
        return _mismatch(original.id)
    return Acceptance(original.id, original.kind, original.status, rfc3339(original.submitted_at),
                      replayed=True)


def _originals(conn: Connection, keyed: list[Submission]) -> dict[tuple[int, str], Any]:
    """The jobs these (api key, Idempotency-Key) pairs already made, with whether their key is
    revoked now, in one query."""
    if not keyed:
        return {}
    pairs = {(s.api_key_id, s.idempotency_key) for s in keyed}
    rows = conn.execute(select(Job.id, Job.kind, Job.status, Job.request_hash, Job.submitted_at,
                               Job.api_key_id, Job.idempotency_key,
                               ApiKey.revoked_at.label("key_revoked_at"))
                        .join(ApiKey, ApiKey.id == Job.api_key_id)
                        .where(tuple_(Job.api_key_id, Job.idempotency_key).in_(pairs))).all()
    return {(r.api_key_id, r.idempotency_key): r for r in rows}


@lru_cache
def get_job_writer() -> JobWriter:
    """One writer per API process, started on first use (after uvicorn has forked its workers)."""
    return JobWriter()
