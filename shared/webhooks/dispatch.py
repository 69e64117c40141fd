"""Turning events into deliveries and handing the due ones out (run by the webhook workers' dispatch
thread, worker/webhooks.py; any number of them may run: each step takes its rows under a lock).

- `fan_out`: the events after the dispatch cursor, up to the last committed position, become one
  delivery per matching active subscription, and the cursor moves past them, in one transaction;
- `claim_due`: pending deliveries whose time has come become `delivering` under claims, one per
  task, at most WEBHOOK_MAX_IN_FLIGHT claims per subscription at once, until the claim runs out;
- `release_lost`: a claim that ran out (its worker died mid-attempt) is pending again;
- `clean_up`: events and deliveries older than EVENT_RETENTION_DAYS are deleted.
"""

import uuid
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.orm import Session

from shared.db import rows_matched
from shared.events.kinds import JOB_COMPLETED, RESERVATION_EXPIRED
from shared.models import Event, EventSequence, WebhookDelivery, WebhookDispatch, WebhookSubscription
from shared.webhooks.subscriptions import ACTIVE

PENDING, DELIVERING, SUCCEEDED, FAILED = "pending", "delivering", "succeeded", "failed"
FAN_OUT_BATCH = 1000
# Most deliveries one task sends (one after another, on one kept-alive connection).
CLAIM_SIZE = 50
# Events that concern one key's own job (another key's subscription never gets them).
_OWNED = (JOB_COMPLETED, RESERVATION_EXPIRED)

_LOCK_CURSOR = (select(WebhookDispatch.last_position).where(WebhookDispatch.id == 1)
                .with_for_update(skip_locked=True))


def fan_out(session: Session, now: datetime) -> int:
    """Returns how many events it passed (0: nothing new, or another worker is at it)."""
    after = session.execute(_LOCK_CURSOR).scalar()
    if after is None:
        return 0
    head = session.scalar(select(EventSequence.last_position).where(EventSequence.id == 1)) or 0
    until = min(head, after + FAN_OUT_BATCH)
    if until <= after:
        return 0
    subscriptions = list(session.scalars(select(WebhookSubscription)
                                         .where(WebhookSubscription.status == ACTIVE)))
    if subscriptions:
        events = session.execute(select(Event.position, Event.type, Event.warehouse, Event.api_key_id)
                                 .where(Event.position > after, Event.position <= until)).all()
        rows = [{"subscription_id": s.id, "event_position": e.position, "status": PENDING, "attempts": 0,
                 "next_attempt_at": now, "created_at": now}
                for e in events for s in subscriptions if _wants(s, e)]
        if rows:
            session.execute(insert(WebhookDelivery), rows)
    session.execute(update(WebhookDispatch).where(WebhookDispatch.id == 1).values(last_position=until))
    return until - after


def _wants(subscription: WebhookSubscription, event: Row[int, str, str | None, int | None]) -> bool:
    if event.type not in subscription.events:
        return False
    if event.type in _OWNED:
        return bool(event.api_key_id == subscription.api_key_id)
    return subscription.warehouses is None or event.warehouse in subscription.warehouses


def claim_due(session: Session, now: datetime, *, max_in_flight: int, claim_seconds: float) -> list[str]:
    """Claims for this worker's tasks (their deliveries' attempts counted): for each active
    subscription, its due deliveries, oldest first, shared out over as many claims as it has room
    for in flight (each claim is one task sending its deliveries one after another on one
    connection, so a receiver never has more than WEBHOOK_MAX_IN_FLIGHT requests at once). Asked
    per subscription, so one slow receiver with a long queue keeps no other waiting."""
    busy = Counter(dict(session.execute(
        select(WebhookDelivery.subscription_id, func.count(func.distinct(WebhookDelivery.claim)))
        .where(WebhookDelivery.status == DELIVERING).group_by(WebhookDelivery.subscription_id)).all()))
    claims: list[str] = []
    for subscription_id in session.scalars(select(WebhookSubscription.id)
                                           .where(WebhookSubscription.status == ACTIVE)):
        room = max_in_flight - busy[subscription_id]
        if room <= 0:
            continue
        due = list(session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == PENDING,
                   WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id).limit(room * CLAIM_SIZE).with_for_update(skip_locked=True)))
        for chunk in _shared_out(due, room):
            claim = uuid.uuid4().hex
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(chunk)).values(
                status=DELIVERING, attempts=WebhookDelivery.attempts + 1, claim=claim,
                claimed_until=now + timedelta(seconds=claim_seconds * len(chunk))))
            claims.append(claim)
    return claims


def _shared_out(due: list[int], room: int) -> list[list[int]]:
    """The due deliveries in at most `room` chunks of at most CLAIM_SIZE, as even as they go."""
    if not due:
        return []
    size = min(CLAIM_SIZE, -(-len(due) // room))
    return [due[start:start + size] for start in range(0, len(due), size)]


def release_lost(session: Session, now: datetime) -> int:
    return rows_matched(session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == DELIVERING, WebhookDelivery.claimed_until < now)
        .values(status=PENDING, claim=None, claimed_until=None, next_attempt_at=now)))


def clean_up(session: Session, now: datetime, retention: timedelta) -> None:
    before = now - retention
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.created_at < before))
    session.execute(delete(Event).where(Event.created_at < before))
