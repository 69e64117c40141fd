"""events and webhooks: the outbox, its sequence, subscriptions and deliveries; reorder points

Every finished job and stock change is an event row written in its transaction; positions come
from `event_sequence`, locked until commit, so they follow commit order (shared/events/). The
webhook tables hold subscriptions, one delivery per event and subscription, and the fan-out's
cursor (`webhook_dispatch`). Levels gain an optional reorder point.

Revision ID: 0004_events_and_webhooks
Revises: 0003_ordering_slots
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0004_events_and_webhooks'
down_revision: str | None = '0003_ordering_slots'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('stock_level', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reorder_point', sa.BigInteger(), nullable=True))
    op.create_table(
        'event',
        sa.Column('position', ID, autoincrement=False, nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('warehouse', sa.String(length=32), nullable=True),
        sa.Column('api_key_id', ID, nullable=True),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('position', name=op.f('pk_event')))
    op.create_index(op.f('ix_event_created_at'), 'event', ['created_at'], unique=False)
    sequence = op.create_table(
        'event_sequence',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('last_position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_event_sequence')))
    op.bulk_insert(sequence, [{'id': 1, 'last_position': 0}])
    op.create_table(
        'webhook_subscription',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('api_key_id', ID, nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('warehouses', sa.JSON(), nullable=True),
        sa.Column('secret', sa.String(length=500), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('disabled_at', TIMESTAMP, nullable=True),
        sa.Column('disabled_reason', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id'],
                                name=op.f('fk_webhook_subscription_api_key_id_api_key')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscription')))
    op.create_table(
        'webhook_delivery',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('subscription_id', sa.String(length=40), nullable=False),
        sa.Column('event_position', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', TIMESTAMP, nullable=False),
        sa.Column('claim', sa.String(length=32), nullable=True),
        sa.Column('claimed_until', TIMESTAMP, nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('delivered_at', TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscription.id'],
                                name=op.f('fk_webhook_delivery_subscription_id_webhook_subscription')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
        sa.UniqueConstraint('subscription_id', 'event_position',
                            name=op.f('uq_webhook_delivery_subscription_id_event_position')))
    op.create_index(op.f('ix_webhook_delivery_status_event_position'), 'webhook_delivery',
                    ['status', 'event_position'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_subscription_id_status_id'), 'webhook_delivery',
                    ['subscription_id', 'status', 'id'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_claim'), 'webhook_delivery', ['claim'], unique=False)
    dispatch = op.create_table(
        'webhook_dispatch',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('last_position', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_dispatch')))
    op.bulk_insert(dispatch, [{'id': 1, 'last_position': 0}])


def downgrade() -> None:
    op.drop_table('webhook_dispatch')
    op.drop_index(op.f('ix_webhook_delivery_claim'), table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_subscription_id_status_id'), table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_status_event_position'), table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_subscription')
    op.drop_table('event_sequence')
    op.drop_index(op.f('ix_event_created_at'), table_name='event')
    op.drop_table('event')
    with op.batch_alter_table('stock_level', schema=None) as batch_op:
        batch_op.drop_column('reorder_point')
