"""reservations: held units on levels, the reservations themselves, and their routes

Levels gain `reserved` (available = on_hand - reserved, never below zero: a check); ledger entries
gain the change of reserved units and its value after; `reservation` holds each hold's state and
`reservation_route` where a reservation's commands are ordered, known from when its reserve is
accepted (shared/stock/holds.py).

Revision ID: 0006_reservations
Revises: 0005_key_limits
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0006_reservations'
down_revision: str | None = '0005_key_limits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = (sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb')
             .with_variant(mysql.DATETIME(fsp=6), 'mysql'))
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('stock_level', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_check_constraint(op.f('ck_stock_level_available_not_negative'),
                                         'reserved >= 0 AND on_hand >= reserved')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_delta', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reserved_after', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reservation_id', ID, nullable=True))
    op.create_table(
        'reservation',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('api_key_id', ID, nullable=True),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('stock_level_id', ID, nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('committed', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('expires_at', TIMESTAMP, nullable=False),
        sa.Column('slot', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('ended_at', TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(['stock_level_id'], ['stock_level.id'],
                                name=op.f('fk_reservation_stock_level_id_stock_level')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation')),
        sa.UniqueConstraint('api_key_id', 'client_id', name=op.f('uq_reservation_api_key_id_client_id')))
    op.create_index(op.f('ix_reservation_status_expires_at'), 'reservation', ['status', 'expires_at'])
    op.create_index(op.f('ix_reservation_stock_level_id_status_created_at'), 'reservation',
                    ['stock_level_id', 'status', 'created_at'])
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_foreign_key(op.f('fk_ledger_entry_reservation_id_reservation'), 'reservation',
                                    ['reservation_id'], ['id'])
    op.create_table(
        'reservation_route',
        sa.Column('api_key_id', ID, autoincrement=False, nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('slot', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('api_key_id', 'client_id', name=op.f('pk_reservation_route')))


def downgrade() -> None:
    op.drop_table('reservation_route')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_ledger_entry_reservation_id_reservation'), type_='foreignkey')
        batch_op.drop_column('reservation_id')
    op.drop_index(op.f('ix_reservation_stock_level_id_status_created_at'), table_name='reservation')
    op.drop_index(op.f('ix_reservation_status_expires_at'), table_name='reservation')
    op.drop_table('reservation')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_column('reserved_after')
        batch_op.drop_column('reserved_delta')
    with op.batch_alter_table('stock_level', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_stock_level_available_not_negative'), type_='check')
        batch_op.drop_column('reserved')
