"""scopes catalog and webhooks, keys limited to warehouses, and who changed the catalog

Catalog writes (warehouses, products) get a scope of their own, `catalog`, apart from `write`
(stock commands and batches). Keys that had `write` before could change the catalog, and keep
that right: they are given `catalog` here. A key may be limited to warehouses (`warehouses`, a
comma-separated list of codes; NULL is every warehouse). `catalog_change` records each catalog
change made through the API and the key that made it.

Revision ID: 0005_key_limits
Revises: 0004_events_and_webhooks
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0005_key_limits'
down_revision: str | None = '0004_events_and_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')
Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
api_key = sa.table('api_key', sa.column('id', Id), sa.column('scopes', sa.String))


def _set_scopes(change) -> None:
    conn = op.get_bind()
    for key_id, scopes in conn.execute(sa.select(api_key.c.id, api_key.c.scopes)).all():
        new = change(set(scopes.split(',')))
        conn.execute(api_key.update().where(api_key.c.id == key_id).values(scopes=','.join(sorted(new))))


def upgrade() -> None:
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warehouses', sa.Text(), nullable=True))
    _set_scopes(lambda scopes: scopes | {'catalog'} if 'write' in scopes else scopes)
    op.create_table(
        'catalog_change',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('api_key_id', Id, nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.Column('changed_at', Timestamp, nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id'], name=op.f('fk_catalog_change_api_key_id_api_key')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_change')))
    with op.batch_alter_table('catalog_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_change_kind_code_id'), ['kind', 'code', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('catalog_change')
    _set_scopes(lambda scopes: (scopes - {'catalog', 'webhooks'}) or {'read'})
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('warehouses')
