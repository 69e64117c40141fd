"""Accepting stock commands and answering the client: the path of one command, end to end.

    event loop (a request)                 fast_path.py: a plain single command skips FastAPI's
      |  validate, authorize                routing; routes/commands.py serves the rest
      |  submit.py: register the wait (Prefer: wait) before the job exists
      v
    writer thread (writer.py, grouped.py)  one per process: every job that arrived while it was busy,
      |  key check (known_keys.py),         idempotency, backlog (503), one INSERT: the job rows are
      |  rate limit, idempotency, INSERT    committed, the durable promise -> 202 can be answered
      v
    publisher thread (publisher.py)        one per process: the jobs' ordering slots, one wake-up
      |  merged while busy                  per shard queue, at once when idle
      v
    broker (Redis or RabbitMQ) -> worker   shared/drain.py: lock the slots, apply their oldest jobs,
      |                                     commit outcomes with the stock change
      v
    status: copy + announcement            shared/jobs/copies.py: one message per transaction
      |
      v
    waiters.py                             one subscription per process wakes every waiting
                                            request (and a database recheck, should it be lost)
      |
      v
    the answer: 202 Accepted (Location), or with Prefer: wait the outcome, 200 (Content-Location)

Two thread hand-offs (event loop -> writer -> publisher) are the price of grouping: each thread
serves everything that arrived while it was busy, so one commit and one message serve many
requests, and an idle service still answers a lone request at once. key_lookup.py serves the
routes' key reads the same way.
"""
