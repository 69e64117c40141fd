"""One task's attempts: the deliveries of one claim (shared/webhooks/dispatch.py), all to one
receiver, sent one after another over one kept-alive connection to the address that was checked,
each signed as the Standard Webhooks specification says (the `standardwebhooks` package); then how
each went is recorded. No database transaction is open while the receiver is being waited for."""

import functools
import json
import logging
import random
import ssl
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import certifi
import urllib3
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from shared.db import session_scope
from shared.events.feed import Viewer, public_id, shown
from shared.models import ApiKey, Event, WebhookDelivery, WebhookSubscription, utcnow
from shared.settings import Settings, get_settings
from shared.webhooks import addresses
from shared.webhooks.dispatch import DELIVERING, FAILED, PENDING, SUCCEEDED
from shared.webhooks.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LAG
from shared.webhooks.secrets import unseal
from shared.webhooks.subscriptions import ACTIVE, disable

log = logging.getLogger(__name__)

GONE = 410


@dataclass(frozen=True)
class Message:
    delivery_id: int
    message_id: str  # the event's id: receivers deduplicate on it
    body: str
    event_created_at: datetime


@dataclass(frozen=True)
class Claim:
    subscription_id: str
    url: str
    secret: str
    messages: list[Message]


def deliver(claim: str) -> list[str]:
    """Attempt the claim's deliveries; returns how each went (for the metrics and tests)."""
    with session_scope() as session:
        work = _read(session, claim)
    if work is None:
        return []
    settings = get_settings()
    answers = _send(work, settings)
    with session_scope() as session:
        outcomes = _record(session, work, answers, settings)
    for outcome in outcomes:
        WEBHOOK_DELIVERIES.labels(outcome).inc()
    return outcomes


def _read(session: Session, claim: str) -> Claim | None:
    deliveries = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.subscription_id, WebhookDelivery.event_position)
        .where(WebhookDelivery.claim == claim, WebhookDelivery.status == DELIVERING)
        .order_by(WebhookDelivery.id)).all()
    if not deliveries:
        return None  # released meanwhile (it ran out), or done
    subscription = session.get(WebhookSubscription, deliveries[0].subscription_id)
    if subscription is None or subscription.status != ACTIVE:
        _fail(session, [d.id for d in deliveries], "the subscription is disabled or gone")
        return None
    key = session.get(ApiKey, subscription.api_key_id)
    viewer = Viewer(subscription.api_key_id, bool(key and "admin" in key.scopes.split(",")))
    events = {e.position: e for e in session.scalars(
        select(Event).where(Event.position.in_([d.event_position for d in deliveries])))}
    past_retention = [d.id for d in deliveries if d.event_position not in events]
    _fail(session, past_retention, "the event is no longer kept")
    messages = [Message(d.id, public_id(d.event_position),
                        json.dumps(shown(events[d.event_position], viewer), separators=(",", ":")),
                        events[d.event_position].created_at)
                for d in deliveries if d.event_position in events]
    return Claim(subscription.id, subscription.url, unseal(subscription.secret), messages)


def _fail(session: Session, delivery_ids: list[int], why: str) -> None:
    if delivery_ids:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)).values(
            status=FAILED, last_error=why, claim=None, claimed_until=None))


def _send(work: Claim, settings: Settings) -> list[tuple[int | None, str | None]]:
    """Each message's status code, or why there was none."""
    try:
        target = addresses.check(work.url, allow_private=settings.webhook_allow_private_addresses)
    except addresses.RefusedAddress as refused:
        return [(None, str(refused))] * len(work.messages)
    signer = Webhook(work.secret)
    answers: list[tuple[int | None, str | None]] = []
    with _pool(target, settings.webhook_timeout_seconds) as pool:
        for message in work.messages:
            if answers and answers[-1][0] == GONE:
                answers.append((GONE, "not sent: the receiver answered 410 Gone"))
                continue
            now = datetime.now(UTC)
            headers = {"host": target.netloc, "content-type": "application/json",
                       "webhook-id": message.message_id, "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": signer.sign(message.message_id, now, message.body),
                       "user-agent": "stock-command-service webhooks"}
            try:
                response = pool.urlopen("POST", target.path, body=message.body.encode(), headers=headers,
                                        redirect=False, retries=False, preload_content=False)
                response.drain_conn()  # the body is not read: the connection is kept for the next one
                answers.append((response.status, None))
            except urllib3.exceptions.HTTPError as exc:
                answers.append((None, f"{type(exc).__name__}: {exc}"[:500]))
    return answers


def _pool(target: addresses.Target, timeout: float) -> urllib3.HTTPConnectionPool:
    """One kept-alive connection to the checked address, whatever the name resolves to by now;
    the Host header and TLS (SNI and the certificate's name) still name the host."""
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, maxsize=1)
    return urllib3.HTTPSConnectionPool(target.address, target.port, timeout=timeout, maxsize=1,
                                       ssl_context=_tls_context(), server_hostname=target.host,
                                       assert_hostname=target.host)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One for the process: loading the CA bundle costs tens of milliseconds, far more than the
    requests of a claim, and a context may serve any number of connections and threads."""
    return ssl.create_default_context(cafile=certifi.where())


def _record(session: Session, work: Claim, answers: list[tuple[int | None, str | None]],
            settings: Settings) -> list[str]:
    """Nearly every answer is a success: those are written with one statement per status code;
    the rest row by row, since each has its own retry time."""
    now = utcnow()
    outcomes = []
    succeeded: dict[int, list[int]] = defaultdict(list)
    not_succeeded: list[tuple[Message, int | None, str | None]] = []
    for message, (status_code, error) in zip(work.messages, answers, strict=True):
        if status_code is not None and 200 <= status_code < 300:
            succeeded[status_code].append(message.delivery_id)
            WEBHOOK_LAG.observe(max((now - message.event_created_at).total_seconds(), 0.0))
            outcomes.append("succeeded")
        else:
            not_succeeded.append((message, status_code, error))
    for status_code, ids in succeeded.items():
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(
            status=SUCCEEDED, delivered_at=now, last_status_code=status_code, last_error=None,
            claim=None, claimed_until=None))
    if not_succeeded:
        deliveries = {d.id: d for d in session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.id.in_([m.delivery_id for m, _, _ in not_succeeded])))}
        for message, status_code, error in not_succeeded:
            delivery = deliveries.get(message.delivery_id)
            if delivery is not None:
                outcomes.append(_not_delivered(delivery, status_code, error, now, settings))
    if GONE in (code for code, _ in answers):
        subscription = session.get(WebhookSubscription, work.subscription_id)
        if subscription is not None:
            disable(subscription, "the receiver answered 410 Gone")
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.subscription_id == subscription.id,
                WebhookDelivery.status.in_((PENDING, DELIVERING)))
                .values(status=FAILED, last_error="the subscription was disabled"))
            log.warning("webhook subscription %s disabled: its receiver answered 410", work.subscription_id)
    return outcomes


def _not_delivered(delivery: WebhookDelivery, status_code: int | None, error: str | None, now: datetime,
                   settings: Settings) -> str:
    delivery.last_status_code, delivery.last_error = status_code, error
    delivery.claim, delivery.claimed_until = None, None
    if status_code == GONE:
        delivery.status = FAILED
        return "gone"
    if (now - delivery.created_at).total_seconds() >= settings.webhook_give_up_after_seconds:
        delivery.status = FAILED
        return "failed"
    delivery.status = PENDING
    delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts, settings))
    return "retry"


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from the base up to
    the cap, with jitter between half and all of it, so receivers coming back are not hit by
    every retry at once."""
    doubled: float = settings.webhook_retry_base_seconds * 2 ** (attempts - 1)
    return min(settings.webhook_retry_max_seconds, doubled) * random.uniform(0.5, 1.0)
