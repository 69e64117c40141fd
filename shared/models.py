"""Tables. Singular snake_case names, `_at` timestamps stored as UTC, ids never leave the service."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Microsecond precision on MySQL/MariaDB, so `as_of` and ledger times are exact.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Naive UTC: what the DATETIME columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    if TYPE_CHECKING:
        # Every model here is one declared table; SQLAlchemy types __table__ as any FROM clause,
        # which insert() and update() do not take.
        __table__: ClassVar[Table]


class Warehouse(Base):
    __tablename__ = "warehouse"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class Product(Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32), default="unit")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class StockLevel(Base):
    """The balance of one product in one warehouse; created the first time it moves."""

    __tablename__ = "stock_level"
    __table_args__ = (
        UniqueConstraint("warehouse_id", "product_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        # Nothing is ever promised twice: what is held fits in what is on hand.
        CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="available_not_negative"),
        Index(None, "product_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouse.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    # Units held by active reservations: available = on_hand - reserved.
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Below this many available units the level announces `stock.low` (once per crossing).
    reorder_point: Mapped[int | None] = mapped_column(BigInteger)


class ApiKey(Base):
    """A client credential: only a hash of the secret is kept."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(64))
    # Comma-separated warehouse codes the key is limited to; NULL: every warehouse.
    warehouses: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class CatalogChange(Base):
    """Who changed the shared catalog: one row per warehouse or product created or updated through
    the API, written in the same transaction as the change."""

    __tablename__ = "catalog_change"
    __table_args__ = (Index(None, "kind", "code", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    kind: Mapped[str] = mapped_column(String(16))  # warehouse, product
    code: Mapped[str] = mapped_column(String(64))  # the warehouse's code or the product's sku
    action: Mapped[str] = mapped_column(String(16))  # create, update
    changes: Mapped[Any] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    """One accepted command or batch. Written by the API at accept time, finished by the worker
    in the same transaction as its stock change: a terminal status means the effect is applied."""

    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key"),
        # A slot's next jobs in accepted order (shared/drain.py), the slots with waiting jobs (the
        # sweep), the oldest waiting job per queue (metrics) and the backlog count.
        Index(None, "status", "slot", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="queued")
    payload: Mapped[Any] = mapped_column(JSON)
    # The ordering slot of the job's first warehouse (shared/ordering.py).
    slot: Mapped[int] = mapped_column(Integer, default=0)
    # 1 for a command, the number of commands for a batch: what a transaction may take at once.
    line_count: Mapped[int] = mapped_column(Integer, default=1)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the request that accepted the job, for the worker's log lines.
    request_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[Any | None] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ApplySlot(Base):
    """One row per ordering slot (shared/ordering.py). A worker applies a slot's jobs only while it
    holds the slot's row locked, so two workers never apply one warehouse's commands at once."""

    __tablename__ = "apply_slot"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class JobLine(Base):
    """A failed line of a batch; succeeded lines are read from the ledger."""

    __tablename__ = "job_line"

    job_id: Mapped[str] = mapped_column(ForeignKey("job.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    error: Mapped[Any] = mapped_column(JSON)


class LedgerEntry(Base):
    """One movement of one stock level. Its `version` is the level's version after the move."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("stock_level_id", "version"),
        Index(None, "stock_level_id", "id"),
        Index(None, "stock_level_id", "type", "id"),
        Index(None, "job_id", "line"),
        Index(None, "recorded_at"),  # ledger reads by time window
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_level.id"))
    type: Mapped[str] = mapped_column(String(16))
    delta: Mapped[int] = mapped_column(BigInteger)
    on_hand_after: Mapped[int] = mapped_column(BigInteger)
    # The change of the level's reserved units (reserve, release, commit, expire), and after it.
    reserved_delta: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reserved_after: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The reservation it changed, if it changed one.
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"))
    version: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id"))
    line: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(200))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    recorded_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Event(Base):
    """Something that happened, in commit order (shared/events/). `position` is the feed's order
    and cursor: assigned under `event_sequence`'s lock, so in commit order, without gaps."""

    __tablename__ = "event"
    __table_args__ = (Index(None, "created_at"),)  # retention

    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                          autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    warehouse: Mapped[str | None] = mapped_column(String(32))
    api_key_id: Mapped[int | None] = mapped_column(Id)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    data: Mapped[Any] = mapped_column(JSON)


class EventSequence(Base):
    """One row: the last position handed out. Locked by each transaction that appends events."""

    __tablename__ = "event_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookSubscription(Base):
    """A receiver of events for one API key (shared/webhooks/)."""

    __tablename__ = "webhook_subscription"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[Any] = mapped_column(JSON)  # event types
    warehouses: Mapped[Any | None] = mapped_column(JSON)  # codes, or null for every warehouse
    # The signing secret, encrypted with a key derived from API_KEY_PEPPER (shown once, in clear,
    # when the subscription is made).
    secret: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(Base):
    """One event to one subscription, and how sending it went."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_position"),
        # The oldest undelivered event (a dive per status, for monitoring).
        Index(None, "status", "event_position"),
        Index(None, "subscription_id", "status", "id"),
        Index(None, "claim"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscription.id"))
    event_position: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    # While `delivering`: the claim (one task's chunk of deliveries to one receiver) and when the
    # attempt counts as lost (its worker died) and is tried again.
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)


class WebhookDispatch(Base):
    """One row: the last event position turned into deliveries (the fan-out's cursor)."""

    __tablename__ = "webhook_dispatch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(Base):
    """A hold on a level's units for a checkout or a pick list (shared/stock/holds.py). `quantity`
    is what was reserved, `committed` what has been issued from it; while `active`, the rest is
    held, until it is released, committed in full, or expires."""

    __tablename__ = "reservation"
    __table_args__ = (
        UniqueConstraint("api_key_id", "client_id"),
        Index(None, "status", "expires_at"),  # the expiry scan
        Index(None, "stock_level_id", "status", "created_at"),  # a count's releases, newest first
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int | None] = mapped_column(Id)
    client_id: Mapped[str] = mapped_column(String(64))  # the client's id: unique per API key
    stock_level_id: Mapped[int] = mapped_column(ForeignKey("stock_level.id"))
    quantity: Mapped[int] = mapped_column(BigInteger)
    committed: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    slot: Mapped[int] = mapped_column(Integer)  # where its commands are ordered (its reserve's slot)
    job_id: Mapped[str] = mapped_column(String(36))  # the reserve's job
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ReservationRoute(Base):
    """Where a reservation's commands are ordered, known when its reserve is accepted: a commit or
    release names only the reservation, and must be applied in the order of the reserve's slot
    (its warehouse's), even before the reserve itself has been applied."""

    __tablename__ = "reservation_route"

    api_key_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer)
