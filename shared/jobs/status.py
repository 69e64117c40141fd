"""Job status names. A job is `queued` when accepted, `running` once a worker has started an
attempt on it, and then ends in one of the terminal statuses, which never change again."""

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
PARTIALLY_FAILED = "partially_failed"  # a batch of independent lines, some of which failed

UNFINISHED = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, PARTIALLY_FAILED)
# Statuses whose job has ledger entries: a failed job changed nothing.
APPLIED = (SUCCEEDED, PARTIALLY_FAILED)
