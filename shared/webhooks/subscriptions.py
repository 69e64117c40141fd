"""Subscriptions: which events of which warehouses an API key's receiver gets."""

import secrets as random_ids
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.clock import rfc3339
from shared.models import WebhookDelivery, WebhookSubscription, utcnow
from shared.settings import get_settings
from shared.webhooks import addresses
from shared.webhooks.secrets import new_secret, seal

ACTIVE, DISABLED = "active", "disabled"


def create(session: Session, *, api_key_id: int, url: str, events: Collection[str],
           warehouses: Collection[str] | None) -> tuple[WebhookSubscription, str]:
    """Raises addresses.RefusedAddress. Returns the subscription and its secret, which is never
    shown again."""
    addresses.check(url, allow_private=get_settings().webhook_allow_private_addresses)
    secret = new_secret()
    subscription = WebhookSubscription(
        id=f"wh_{random_ids.token_hex(12)}", api_key_id=api_key_id, url=url,
        events=sorted(set(events)), warehouses=sorted(set(warehouses)) if warehouses is not None else None,
        secret=seal(secret), status=ACTIVE, created_at=utcnow())
    session.add(subscription)
    session.flush()
    return subscription, secret


def visible(session: Session, subscription_id: str, api_key_id: int,
            is_admin: bool) -> WebhookSubscription | None:
    """The subscription, if this key made it (or is an admin key)."""
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None or (subscription.api_key_id != api_key_id and not is_admin):
        return None
    return subscription


def listed(session: Session, api_key_id: int, is_admin: bool, after: str | None,
           limit: int) -> list[WebhookSubscription]:
    query = select(WebhookSubscription).order_by(WebhookSubscription.id).limit(limit)
    if not is_admin:
        query = query.where(WebhookSubscription.api_key_id == api_key_id)
    if after is not None:
        query = query.where(WebhookSubscription.id > after)
    return list(session.scalars(query))


def remove(session: Session, subscription: WebhookSubscription) -> None:
    """Gone, with its deliveries: nothing more is sent to it."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    session.delete(subscription)


def disable(subscription: WebhookSubscription, reason: str) -> None:
    subscription.status = DISABLED
    subscription.disabled_at = utcnow()
    subscription.disabled_reason = reason[:200]


def shown(subscription: WebhookSubscription, secret: str | None = None) -> dict[str, Any]:
    doc = {"id": subscription.id, "url": subscription.url, "events": subscription.events,
           "warehouses": subscription.warehouses, "status": subscription.status,
           "created_at": rfc3339(subscription.created_at),
           "disabled_at": rfc3339(subscription.disabled_at), "disabled_reason": subscription.disabled_reason}
    if secret is not None:
        doc["secret"] = secret
    return doc
