"""indexes for monitoring and time-window ledger reads

The queue metrics ask, at every scrape, for the oldest queued or running job of each shard: with
`shard` between `status` and `submitted_at` that is a loose index scan, a few dives whatever the
table size (the old (status, submitted_at) index served only the status part; the job writer's
count of unfinished jobs and start-up recovery, which filters on shard too, are served as well). `GET /v1/ledger?since=&until=` read the
ledger from its first row without an index on recorded_at; the new one appends at its right edge,
the cheapest kind of index to keep up on the write path.

Revision ID: 0002_ops_indexes
Revises: 0001
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0002_ops_indexes'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_status_shard_submitted_at'),
                              ['status', 'shard', 'submitted_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_job_status_submitted_at'))
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_recorded_at'), ['recorded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_recorded_at'))
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_status_submitted_at'), ['status', 'submitted_at'],
                              unique=False)
        batch_op.drop_index(batch_op.f('ix_job_status_shard_submitted_at'))
