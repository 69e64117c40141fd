"""Accepting stock commands and answering the client: the path of one command, end to end.

    event loop (a request)                 api/access.py: key, rate, scope, before the body is read
      |  authorize, then validate           (known_keys.py, key_lookup.py); fast_path.py: a plain
      |                                     single command skips FastAPI's routing; routes/commands.py
      |                                     serves the rest
      |  submit.py: the warehouse limit; the job's ordering slot (routing.py: a commit or release
      |  goes where its reserve went); register the wait (Prefer: wait) before the job exists
      v
    writer thread (writer.py, grouped.py)  one per process: every job that arrived while it was busy,
      |  idempotency, backlog, INSERT       idempotency, backlog (503), one INSERT that skips a job
      |                                     whose key was revoked meanwhile: the job rows are
      |                                     committed, the durable promise -> 202 can be answered
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
authorization decision's key reads the same way.
"""
