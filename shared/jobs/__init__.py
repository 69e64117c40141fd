"""The job store: one home for what the service keeps about accepted work.

A job is one accepted command or batch. Its row in the database is the durable promise: the API
commits it before answering, and a worker finishes it in the same commit as its stock change, so a
terminal status means the effect is applied, exactly once. Around the row:

- `status`: the status names, defined once;
- `rows`: every write of a job row (accept, attempt, finish) and the reads that pick work;
- `outcome`: how an applied job ended, as the apply path reports it;
- `documents`: the job as `GET /v1/jobs/{id}` shows it;
- `copies`: an expiring copy of each finished job in Redis, and the wake-up of waiting clients.
"""
