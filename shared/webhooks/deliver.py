"""One attempt at one delivery: sign the event as the Standard Webhooks specification says (the
`standardwebhooks` package), POST it to the receiver's checked address, and record how it went.
No database transaction is open while the receiver is being waited for."""

import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
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


@dataclass(frozen=True)
class Attempt:
    """What to send, read in a short transaction before sending."""

    delivery_id: int
    subscription_id: str
    url: str
    secret: str
    message_id: str
    body: str
    event_created_at: datetime


def deliver(delivery_id: int) -> str:
    """Attempt the delivery if it is still claimed; returns how it went (for the metrics): succeeded,
    retry, failed (given up), gone (the receiver answered 410), or skipped."""
    with session_scope() as session:
        attempt = _read(session, delivery_id)
    if attempt is None:
        return "skipped"
    status_code, error = _post(attempt, get_settings())
    with session_scope() as session:
        outcome = _record(session, attempt, status_code, error, get_settings())
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    return outcome


def _read(session: Session, delivery_id: int) -> Attempt | None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != DELIVERING:
        return None
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    event = session.get(Event, delivery.event_position)
    if subscription is None or subscription.status != ACTIVE or event is None:
        delivery.status = FAILED
        delivery.last_error = "the subscription or the event is gone"
        return None
    key = session.get(ApiKey, subscription.api_key_id)
    viewer = Viewer(subscription.api_key_id, bool(key and "admin" in key.scopes.split(",")))
    body = json.dumps(shown(event, viewer), separators=(",", ":"))
    return Attempt(delivery.id, subscription.id, subscription.url, unseal(subscription.secret),
                   public_id(event.position), body, event.created_at)


def _post(attempt: Attempt, settings: Settings) -> tuple[int | None, str | None]:
    """The receiver's status code, or why there was none."""
    try:
        target = addresses.check(attempt.url, allow_private=settings.webhook_allow_private_addresses)
    except addresses.RefusedAddress as refused:
        return None, str(refused)
    now = datetime.now(UTC)
    headers = {"content-type": "application/json", "webhook-id": attempt.message_id,
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(attempt.secret).sign(attempt.message_id, now, attempt.body),
               "user-agent": "stock-command-service webhooks"}
    try:
        with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                          transport=_PinnedTransport(target)) as client:
            response = client.post(attempt.url, content=attempt.body, headers=headers)
        return response.status_code, None
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


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


def _record(session: Session, attempt: Attempt, status_code: int | None, error: str | None,
            settings: Settings) -> str:
    delivery = session.get(WebhookDelivery, attempt.delivery_id)
    if delivery is None:
        return "skipped"
    now = utcnow()
    delivery.last_status_code, delivery.last_error, delivery.claimed_until = status_code, error, None
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = SUCCEEDED, now
        WEBHOOK_LAG.observe(max((now - attempt.event_created_at).total_seconds(), 0.0))
        return "succeeded"
    if status_code == 410:
        delivery.status = FAILED
        subscription = session.get(WebhookSubscription, attempt.subscription_id)
        if subscription is not None:
            disable(subscription, "the receiver answered 410 Gone")
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.subscription_id == subscription.id,
                WebhookDelivery.status.in_((PENDING, DELIVERING)), WebhookDelivery.id != delivery.id)
                .values(status=FAILED, last_error="the subscription was disabled"))
        log.warning("webhook subscription %s disabled: its receiver answered 410", attempt.subscription_id)
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
    doubled = settings.webhook_retry_base_seconds * 2 ** (attempts - 1)
    ceiling = min(settings.webhook_retry_max_seconds, doubled)
    return ceiling * random.uniform(0.5, 1.0)
