"""Apply accepted jobs in accepted order, each exactly once, with any number of workers.

A wake-up message names ordering slots (shared/ordering.py); `drain(slots)` applies everything
waiting in them:

    repeat:
      1. which of the slots have unfinished jobs? (one read, outside any lock)  none: done
      2. in one transaction:
         - read the oldest waiting jobs (at most APPLY_BATCH_SIZE), choose their slots, each
           slot's jobs before the next slot's, for about APPLY_BATCH_LINES lines (`_take_next`),
           and lock those slots' rows in `apply_slot`, skipping the rows another worker holds
           (SELECT ... FOR UPDATE SKIP LOCKED); all skipped: choose again from the rest; none
           left: done (their holders take the jobs);
         - slots still waiting that this transaction leaves: wake the other workers for them
           (once a drain);
         - take the held slots' jobs read above;
         - count an attempt on them, committed at once on a second connection, so a job that
           keeps killing workers is given up after MAX_JOB_ATTEMPTS;
         - apply them (shared/stock/apply.py) and commit, with their outcomes;
      3. publish the outcomes (status copies, wake-ups, metrics, log lines) and go on with the
         slots of 1 that no other worker held in 2.

Order: a slot's jobs are applied only under its lock, oldest accepted first, so one warehouse's
commands never run in two places at once nor overtake each other. Exactly once: `apply_jobs` locks
each job row and skips a finished one. Nothing left behind: a worker that skips a slot does so
while another holds it, and the jobs it came for were committed before its message was sent; the
holder's next step 1 runs after its commit released the lock, and sees them. Every worker busy: a
transaction locks only the slots it takes jobs from and wakes the others for the rest, so while
one worker applies a warehouse's bulk upload another applies the next warehouse's. No timer: an
idle worker applies a job as soon as its wake-up arrives; a busy one takes everything that arrived
meanwhile into its next transaction.

Wake-ups are not drained twice: under load they arrive faster than drains end, and each one drained
cost a read of the waiting slots and a transaction that found them applied or held. A drain of
every slot that ends (nothing waiting, or the rest held by other workers) began by reading every
slot at some S, then went on with the slots it did not find held until they were empty: every
job committed before S is applied, or will be by its slot's holder. A wake-up sent before S, less
CLOCK_SKEW_SECONDS for the API's clock against this one, announces jobs committed before it was
sent, so it is `covered` and dropped (`wakeup_covered`). Were a clock further off than that, a job
would wait for the sweep, never be lost.

A worker that dies releases its locks with its connection; one that hangs inside a transaction
has it ended by the server after DB_IDLE_TRANSACTION_TIMEOUT_SECONDS (shared/db.py); either way
the next wake-up for the slot, or the sweep (worker/sweep.py), applies what it left.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, NamedTuple, TypeVar

from sqlalchemy import Connection, bindparam, select

from shared.apply_metrics import BATCH_SIZE, DRAINS, HANDED_OFF, record_outcomes
from shared.celery_app import send_wakeups
from shared.held_connection import HeldConnection
from shared.jobs.documents import from_outcome
from shared.jobs.outcome import JobOutcome
from shared.jobs.rows import WaitingJob, mark_attempt, oldest_waiting, slots_with_unfinished
from shared.logs import log_context
from shared.models import ApplySlot, utcnow
from shared.ordering import shard_for_slot
from shared.settings import get_settings
from shared.status_board import StatusBoardUnavailable, get_status_board
from shared.stock.apply import apply_jobs
from shared.transaction import run_in_held_transaction, with_retries

log = logging.getLogger(__name__)

# Built once; SQLite (the embedded profile) has no row locks and renders it as a plain SELECT: its
# transactions take the whole database's write lock at BEGIN, which serialises the drains anyway.
_LOCK_SLOTS = (select(ApplySlot.slot).where(ApplySlot.slot.in_(bindparam("slots", expanding=True)))
               .order_by(ApplySlot.slot).with_for_update(skip_locked=True))

_connections = threading.local()

# How far apart the API's and the workers' clocks may be (NTP keeps hosts within milliseconds).
CLOCK_SKEW_SECONDS = 0.25


class _Coverage:
    """Before when every committed job of every slot is known to be applied or held (wall clock,
    seconds): the start of the latest drain of every slot that ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = 0.0

    def extend(self, read_at: float) -> None:
        with self._lock:
            self._since = max(self._since, read_at)

    def covers(self, sent_at: float) -> bool:
        with self._lock:
            return sent_at < self._since - CLOCK_SKEW_SECONDS


_coverage = _Coverage()


def wakeup_covered(sent_at: float | None) -> bool:
    """A wake-up sent at `sent_at` (the API's wall clock; None from an older API) announces only
    jobs a finished drain has seen; counted as a `covered` drain."""
    if sent_at is None or not _coverage.covers(sent_at):
        return False
    DRAINS.labels("covered").inc()
    return True


def _held(use: Literal["statements", "transactions"]) -> HeldConnection:
    """The thread's own connection (a worker drains on its consuming thread and on its sweep
    thread): `statements` autocommits single statements, `transactions` runs the apply
    transactions."""
    held: HeldConnection | None = getattr(_connections, use, None)
    if held is None:
        held = HeldConnection(autocommit=use == "statements")
        setattr(_connections, use, held)
    return held


class _Step(NamedTuple):
    held: list[int]
    skipped: list[int]  # held by other workers
    outcomes: list[JobOutcome]
    handed_off: bool = False  # other workers were woken for waiting slots this step left


def drain(slots: Iterable[int] | None = None) -> list[JobOutcome]:
    """Apply the unfinished jobs of these slots (None: of every slot) that no other worker is
    applying; returns their outcomes."""
    focus = None if slots is None else sorted(set(slots))
    max_jobs = get_settings().apply_batch_size
    applied: list[JobOutcome] = []
    ended = "nothing_waiting"
    started = time.time()
    handed_off = False
    while focus is None or focus:
        waiting = _waiting(focus)
        if not waiting:
            break
        try:
            step = _apply_next(waiting, max_jobs, hand_off=not handed_off)
        except Exception:
            if max_jobs == 1:
                raise
            # A job whose transaction fails for a reason no retry cures: go one job at a time, so
            # only that job's attempts add up to MAX_JOB_ATTEMPTS, not its neighbours'.
            log.exception("applying jobs of slots %s failed; going on one job at a time", waiting)
            max_jobs = 1
            continue
        if not step.held:
            ended = "held_elsewhere" if step.skipped and not applied else ended
            break
        handed_off = handed_off or step.handed_off
        publish_outcomes(step.outcomes)
        applied.extend(step.outcomes)
        ended = "applied" if applied else ended
        focus = [slot for slot in waiting if slot not in step.skipped]
    if slots is None:  # its first read was of every slot: what was committed before it is seen to
        _coverage.extend(started)
    DRAINS.labels(ended).inc()
    return applied


def _waiting(slots: list[int] | None) -> list[int]:
    """Which of the slots (None: of all) have unfinished jobs; waits out a database outage like a
    transaction."""

    def read() -> list[int]:
        with _held("statements").use() as conn:
            return slots_with_unfinished(conn, slots)

    return with_retries(read, max_lock_retries=get_settings().max_transaction_retries,
                        name="find_waiting")


def _apply_next(slots: list[int], max_jobs: int, hand_off: bool) -> _Step:
    settings = get_settings()
    counted: set[str] = set()  # attempts already counted, should the transaction be retried

    def work(conn: Connection) -> _Step:
        held, skipped, job_ids, left = _take_next(conn, slots, max_jobs, settings.apply_batch_lines)
        if not held:
            return _Step([], skipped, [])
        handing_off = bool(left) and hand_off
        if handing_off:
            _hand_off.send(left)
        if not job_ids:
            return _Step(held, skipped, [], handing_off)
        _count_attempt(conn, [j for j in job_ids if j not in counted])
        counted.update(job_ids)
        BATCH_SIZE.observe(len(job_ids))
        outcomes = apply_jobs(conn, job_ids, max_attempts=settings.max_job_attempts)
        # A job read before its slot was locked may have been finished meanwhile by the slot's
        # previous holder, which published it: `apply_jobs` skipped it, and so does the drain.
        return _Step(held, skipped, [o for o in outcomes if not o.already_applied], handing_off)

    with log_context(batch_id=uuid.uuid4().hex[:12]):
        return run_in_held_transaction(work, _held("transactions"), name="apply",
                                       max_lock_retries=settings.max_transaction_retries)


class _Take(NamedTuple):
    held: list[int]
    skipped: list[int]  # held by other workers
    job_ids: list[str]  # in accepted order
    left: list[int]  # slots with jobs waiting that this transaction leaves


def _take_next(conn: Connection, slots: list[int], max_jobs: int, max_lines: int) -> _Take:
    """Lock the slots of the next transaction's work and pick its jobs.

    The oldest waiting jobs are read first and their slots chosen, a slot's jobs before the next
    slot's, while they fit in `max_jobs` and `max_lines`: many small commands' slots go together,
    a slot whose jobs fill a transaction (a bulk upload) goes alone and leaves the rest to another
    worker. Locking every waiting slot had kept the other workers idle while one applied a bulk
    upload (docs/performance.md). A slot found held is skipped and the choice made again from the
    rest."""
    if len(slots) == 1:  # one hot warehouse: nothing to choose, so the lock first and a fresh read
        held = list(conn.scalars(_LOCK_SLOTS, {"slots": slots}))
        if not held:
            return _Take([], slots, [], [])
        jobs = _within(oldest_waiting(conn, held, max_jobs=max_jobs), max_lines)
        return _Take(held, [], [job.id for job in jobs], [])
    untried, skipped = slots, []
    waiting = oldest_waiting(conn, untried, max_jobs=max_jobs)
    seen_all = len(waiting) < max_jobs  # every waiting job of the untried slots is in `waiting`
    while waiting:
        chosen = _slots_of(waiting, max_lines)
        held = list(conn.scalars(_LOCK_SLOTS, {"slots": chosen}))
        skipped += [slot for slot in chosen if slot not in held]
        if held:
            # Slots that were waiting at the first read but have no job in this one were emptied
            # meanwhile by another worker: not left, nobody is woken for them.
            maybe = {job.slot for job in waiting} if seen_all else set(untried)
            left = sorted(maybe.difference(held, skipped))
            ours = [job for job in waiting if job.slot in held]
            return _Take(held, skipped, [job.id for job in _within(ours, max_lines)], left)
        untried = [slot for slot in untried if slot not in chosen]
        waiting = [job for job in waiting if job.slot not in chosen]
        if not waiting and untried and not seen_all:
            waiting = oldest_waiting(conn, untried, max_jobs=max_jobs)
            seen_all = len(waiting) < max_jobs
    return _Take([], skipped, [], [])


def _slots_of(waiting: list[WaitingJob], max_lines: int) -> list[int]:
    """The slots of the oldest jobs, each slot with all its jobs here, while they fit in `max_lines`
    (the first slot whatever its lines)."""
    lines_by_slot: dict[int, int] = {}  # in the order of each slot's oldest job
    for job in waiting:
        lines_by_slot[job.slot] = lines_by_slot.get(job.slot, 0) + job.line_count
    return sorted(_fitting(list(lines_by_slot), lines_by_slot.__getitem__, max_lines))


def _within(jobs: list[WaitingJob], max_lines: int) -> list[WaitingJob]:
    """The first jobs while their lines fit in `max_lines` (the first job whatever its lines)."""
    return _fitting(jobs, lambda job: job.line_count, max_lines)


_Item = TypeVar("_Item")


def _fitting(items: list[_Item], lines_of: Callable[[_Item], int], max_lines: int) -> list[_Item]:
    """The first items while their lines add up to at most `max_lines`; the first item whatever
    its lines, or a job (or slot) larger than a transaction would never be applied."""
    taken: list[_Item] = []
    lines = 0
    for item in items:
        if taken and lines + lines_of(item) > max_lines:
            break
        taken.append(item)
        lines += lines_of(item)
    return taken


class _HandOff:
    """Wakes the other workers for slots a drain's transaction leaves waiting. Without it, the
    wake-ups that reached them while one transaction held every slot were spent, and one worker
    applied a whole bulk upload alone while the other sat idle. A wake-up is only a hint (this
    drain, and the sweep, still apply what waits), so it is sent on a thread of its own, never
    holding a transaction open on a slow broker, and dropped while the previous one is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hand-off")
        self._in_flight: Future[None] | None = None

    def send(self, slots: list[int]) -> None:
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._pool.submit(self._wake, slots)

    @staticmethod
    def _wake(slots: list[int]) -> None:
        shard_count = get_settings().shard_count
        by_shard: dict[int, list[int]] = {}
        for slot in slots:
            by_shard.setdefault(shard_for_slot(slot, shard_count), []).append(slot)
        try:
            send_wakeups(by_shard)
        except Exception:  # noqa: BLE001 - a hint lost: the jobs wait for this drain or the sweep
            log.warning("could not wake other workers for slots %s", slots[:20], exc_info=True)
        else:
            HANDED_OFF.inc()


_hand_off = _HandOff()


def _count_attempt(conn: Connection, job_ids: Sequence[str]) -> None:
    if not job_ids:
        return
    if conn.dialect.name == "sqlite":
        # One writer at a time: a second connection would wait for this transaction's lock. The
        # embedded profile counts the attempt in the transaction, so a crash does not count it.
        mark_attempt(conn, job_ids, utcnow())
        return
    with _held("statements").use() as own:
        mark_attempt(own, job_ids, utcnow())


def publish_outcomes(outcomes: Sequence[JobOutcome]) -> None:
    """After the commit: metrics, the status copies that wake waiting clients, a log line per job."""
    if not outcomes:
        return
    record_outcomes(outcomes)
    try:
        get_status_board().publish_many([from_outcome(o) for o in outcomes])
    except StatusBoardUnavailable:
        # The database has the outcomes; polls and waiting clients fall back to it.
        log.warning("could not publish %d job outcomes", len(outcomes), exc_info=True)
    for outcome in outcomes:
        with log_context(job_id=outcome.job_id, request_id=outcome.request_id):
            _log_outcome(outcome)


def _log_outcome(outcome: JobOutcome) -> None:
    if outcome.already_applied:
        log.info("job %s was already applied; nothing changed", outcome.job_id)
        return
    seconds = (outcome.completed_at - outcome.submitted_at).total_seconds() if outcome.completed_at else None
    log.info("job %s", outcome.status, extra={
        "kind": outcome.kind, "type": outcome.command_type, "status": outcome.status,
        "problem": (outcome.error or {}).get("type"), "accept_to_complete_ms":
        round(seconds * 1000, 1) if seconds is not None else None})
