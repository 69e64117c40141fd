"""One task's attempts: the deliveries of one claim (shared/webhooks/dispatch.py), all to one
receiver, sent one after another over one kept-alive connection to the address that was checked,
each signed as the Standard Webhooks specification says (the `standardwebhooks` package); then how
each went is recorded. No database transaction is open while the receiver is being waited for."""

import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
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
    deliveries = list(session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.claim == claim, WebhookDelivery.status == DELIVERING).order_by(WebhookDelivery.id)))
    if not deliveries:
        return None  # released meanwhile (it ran out), or done
    subscription = session.get(WebhookSubscription, deliveries[0].subscription_id)
    if subscription is None or subscription.status != ACTIVE:
        for delivery in deliveries:
            delivery.status, delivery.last_error = FAILED, "the subscription is disabled or gone"
        return None
    key = session.get(ApiKey, subscription.api_key_id)
    viewer = Viewer(subscription.api_key_id, bool(key and "admin" in key.scopes.split(",")))
    events = {e.position: e for e in session.scalars(
        select(Event).where(Event.position.in_([d.event_position for d in deliveries])))}
    messages = []
    for delivery in deliveries:
        event = events.get(delivery.event_position)
        if event is None:  # past retention
            delivery.status, delivery.last_error = FAILED, "the event is no longer kept"
            continue
        messages.append(Message(delivery.id, public_id(event.position),
                                json.dumps(shown(event, viewer), separators=(",", ":")), event.created_at))
    return Claim(subscription.id, subscription.url, unseal(subscription.secret), messages)


def _send(work: Claim, settings: Settings) -> list[tuple[int | None, str | None]]:
    """Each message's status code, or why there was none."""
    try:
        target = addresses.check(work.url, allow_private=settings.webhook_allow_private_addresses)
    except addresses.RefusedAddress as refused:
        return [(None, str(refused))] * len(work.messages)
    signer = Webhook(work.secret)
    answers: list[tuple[int | None, str | None]] = []
    with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                      transport=_PinnedTransport(target)) as client:
        for message in work.messages:
            if answers and answers[-1][0] == GONE:
                answers.append((GONE, "not sent: the receiver answered 410 Gone"))
                continue
            now = datetime.now(UTC)
            headers = {"content-type": "application/json", "webhook-id": message.message_id,
                       "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": signer.sign(message.message_id, now, message.body),
                       "user-agent": "stock-command-service webhooks"}
            try:
                response = client.post(work.url, content=message.body, headers=headers)
                answers.append((response.status_code, None))
            except httpx.HTTPError as exc:
                answers.append((None, f"{type(exc).__name__}: {exc}"[:500]))
    return answers


class _PinnedTransport(httpx.HTTPTransport):
    """Connects to the checked address, whatever the name resolves to by now."""

    def __init__(self, target: addresses.Target) -> None:
        super().__init__(retries=0)
        self._target = target

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Connect to the checked address; the Host header and TLS still name the host.
        request.url = request.url.copy_with(host=self._target.address)
        request.extensions = {**request.extensions, "sni_hostname": self._target.host}
        return super().handle_request(request)


def _record(session: Session, work: Claim, answers: list[tuple[int | None, str | None]],
            settings: Settings) -> list[str]:
    now = utcnow()
    outcomes = []
    deliveries = {d.id: d for d in session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.id.in_([m.delivery_id for m in work.messages])))}
    for message, (status_code, error) in zip(work.messages, answers, strict=True):
        delivery = deliveries.get(message.delivery_id)
        if delivery is not None:
            outcomes.append(_one(delivery, message, status_code, error, now, settings))
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


def _one(delivery: WebhookDelivery, message: Message, status_code: int | None, error: str | None,
         now: datetime, settings: Settings) -> str:
    delivery.last_status_code, delivery.last_error = status_code, error
    delivery.claim, delivery.claimed_until = None, None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = SUCCEEDED, now
        WEBHOOK_LAG.observe(max((now - message.event_created_at).total_seconds(), 0.0))
        return "succeeded"
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
