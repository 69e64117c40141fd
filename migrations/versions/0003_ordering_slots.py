"""ordering slots: any number of workers, each warehouse's commands still in accepted order

Jobs carry the ordering slot of their first warehouse (shared/ordering.py) instead of the shard
queue they were sent to, and `apply_slot` holds one row per slot for the workers to lock
(shared/drain.py). The index that picks a slot's next jobs replaces the per-shard one. Jobs also
carry their line count (what a transaction may take at once) and the request id that accepted them
(for the worker's log lines, whichever worker applies them).

Unfinished jobs get their slot from their payload here. Stop the old API processes before
migrating: they would write the dropped `shard` column.

Revision ID: 0003_ordering_slots
Revises: 0002_ops_indexes
"""
import json
import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_ordering_slots'
down_revision: str | None = '0002_ops_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# shared.ordering.SLOT_COUNT at the time of this migration; a migration never imports app code.
SLOT_COUNT = 1024


def _first_warehouse(kind: str, payload: dict) -> str:
    command = payload if kind == "command" else payload["commands"][0]
    return command.get("warehouse") or command["from_warehouse"]


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('line_count', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('request_id', sa.String(length=128), nullable=True))
    job = sa.table('job', sa.column('id', sa.String), sa.column('kind', sa.String),
                   sa.column('status', sa.String), sa.column('payload', sa.JSON),
                   sa.column('slot', sa.Integer), sa.column('line_count', sa.Integer))
    conn = op.get_bind()
    unfinished = conn.execute(sa.select(job.c.id, job.c.kind, job.c.payload)
                              .where(job.c.status.in_(('queued', 'running')))).all()
    for job_id, kind, payload in unfinished:
        payload = json.loads(payload) if isinstance(payload, str) else payload
        conn.execute(job.update().where(job.c.id == job_id).values(
            slot=zlib.crc32(_first_warehouse(kind, payload).encode()) % SLOT_COUNT,
            line_count=1 if kind == 'command' else len(payload['commands'])))
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_status_slot_submitted_at'),
                              ['status', 'slot', 'submitted_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_job_status_shard_submitted_at'))
        batch_op.drop_column('shard')
    apply_slot = op.create_table(
        'apply_slot',
        sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('slot', name=op.f('pk_apply_slot')))
    op.bulk_insert(apply_slot, [{'slot': slot} for slot in range(SLOT_COUNT)])


def downgrade() -> None:
    op.drop_table('apply_slot')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shard', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_job_status_shard_submitted_at'),
                              ['status', 'shard', 'submitted_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_job_status_slot_submitted_at'))
        batch_op.drop_column('request_id')
        batch_op.drop_column('line_count')
        batch_op.drop_column('slot')
