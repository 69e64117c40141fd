"""Webhook subscriptions and their deliveries (shared/webhooks/). Scope `webhooks`; a key sees and
changes only its own subscriptions."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from api import examples
from api.auth import GuardedRoute, require
from api.deps import SessionDep
from api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import ProblemError, not_found
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.clock import rfc3339
from shared.events.feed import public_id
from shared.events.kinds import TYPES
from shared.models import Warehouse, WebhookDelivery, WebhookSubscription, utcnow
from shared.problems import Problem
from shared.schemas.commands import Code
from shared.webhooks import subscriptions
from shared.webhooks.addresses import MAX_URL_LENGTH, RefusedAddress
from shared.webhooks.dispatch import FAILED, PENDING

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=GuardedRoute)
Subscriber = Annotated[Principal, Depends(require("webhooks"))]
SubscriptionId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{1,32}$")]
EventType = Literal[TYPES]  # type: ignore[valid-type]


class SubscriptionIn(BaseModel):
    model_config = {"extra": "forbid", "strict": True}

    url: Annotated[str, StringConstraints(min_length=8, max_length=MAX_URL_LENGTH)]
    events: list[EventType] = Field(min_length=1, max_length=len(TYPES))
    warehouses: list[Code] | None = Field(None, min_length=1, max_length=1000,
                                          description="Only these warehouses' stock events; all if left out.")


class SubscriptionOut(BaseModel):
    id: str
    url: str
    events: list[str]
    warehouses: list[str] | None
    status: str
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None
    secret: str | None = Field(None, description="Shown once, when the subscription is made: it signs "
                                                 "every delivery (Standard Webhooks).")


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _subscription(session: SessionDep, subscription_id: str, principal: Principal) -> WebhookSubscription:
    found = subscriptions.visible(session, subscription_id, principal.key_id,
                                   warehouse_limit.sees_every_job(principal))
    if found is None:
        raise not_found(f"Webhook subscription {subscription_id!r}")
    return found


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=SubscriptionOut,
             summary="Subscribe a receiver to events")
def create_subscription(body: Annotated[SubscriptionIn, Body(openapi_examples=examples.SUBSCRIPTION)],
                        session: SessionDep, principal: Subscriber) -> dict[str, Any]:
    warehouses = body.warehouses
    if principal.warehouses is not None:
        # A key limited to warehouses subscribes to its own only (all of them if it names none).
        warehouses = warehouses if warehouses is not None else sorted(principal.warehouses)
        refused = warehouse_limit.refusal(principal, [warehouses], batch=False)
        if refused is not None:
            raise ProblemError(refused)
    if warehouses is not None:
        known = set(session.scalars(select(Warehouse.code).where(Warehouse.code.in_(warehouses))))
        unknown = sorted(set(warehouses) - known)
        if unknown:
            raise ProblemError(Problem("unknown-warehouse", 422, f"No warehouse with code {unknown[0]!r}.",
                                       {"warehouse": unknown[0]}))
    try:
        subscription, secret = subscriptions.create(session, api_key_id=principal.key_id, url=body.url,
                                                    events=body.events, warehouses=warehouses)
    except RefusedAddress as refused:
        raise ProblemError(Problem("receiver-refused", 422, str(refused), {"url": body.url[:200]})) from None
    return subscriptions.shown(subscription, secret)


@router.get("/webhooks", response_model=SubscriptionPage, summary="List subscriptions")
def list_subscriptions(session: SessionDep, principal: Subscriber, limit: Limit = 100,
                       cursor: Cursor = None) -> dict[str, Any]:
    after = cursor if cursor is None else _decode_id(cursor)
    rows = subscriptions.listed(session, principal.key_id, warehouse_limit.sees_every_job(principal), after,
                                limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [subscriptions.shown(s) for s in rows],
            "next_cursor": _encode_id(rows[-1].id) if more else None}


@router.get("/webhooks/{subscription_id}", response_model=SubscriptionOut, summary="Get a subscription")
def get_subscription(subscription_id: SubscriptionId, session: SessionDep,
                     principal: Subscriber) -> dict[str, Any]:
    return subscriptions.shown(_subscription(session, subscription_id, principal))


@router.delete("/webhooks/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a subscription")
def delete_subscription(subscription_id: SubscriptionId, session: SessionDep,
                        principal: Subscriber) -> Response:
    subscriptions.remove(session, _subscription(session, subscription_id, principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{subscription_id}/deliveries", response_model=DeliveryPage,
            summary="List a subscription's deliveries")
def list_deliveries(subscription_id: SubscriptionId, session: SessionDep, principal: Subscriber,
                    status: Annotated[Literal["pending", "delivering", "succeeded", "failed"] | None,
                                      Query()] = None,
                    limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Newest first: how each event's delivery went, and when it is tried next."""
    _subscription(session, subscription_id, principal)
    query = (select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
             .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_delivery(d) for d in rows],
            "next_cursor": encode_cursor(rows[-1].id) if more else None}


@router.post("/webhooks/{subscription_id}/deliveries/{delivery_id}/retry", response_model=DeliveryOut,
             summary="Retry a failed delivery now")
def retry_delivery(subscription_id: SubscriptionId, delivery_id: Annotated[int, Path(ge=1, le=2**62)],
                   session: SessionDep, principal: Subscriber) -> dict[str, Any]:
    """Try a failed (or waiting) delivery again now; the attempt budget starts afresh."""
    _subscription(session, subscription_id, principal)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise not_found(f"Delivery {delivery_id}")
    if delivery.status in (FAILED, PENDING):
        delivery.status, delivery.next_attempt_at, delivery.created_at = PENDING, utcnow(), utcnow()
        session.flush()
    return _delivery(delivery)


def _delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "event_id": public_id(delivery.event_position), "status": delivery.status,
            "attempts": delivery.attempts, "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
            "next_attempt_at": rfc3339(delivery.next_attempt_at) if delivery.status == PENDING else None,
            "created_at": rfc3339(delivery.created_at), "delivered_at": rfc3339(delivery.delivered_at)}


def _encode_id(subscription_id: str) -> str:
    return subscription_id


def _decode_id(cursor: str) -> str:
    if not cursor.startswith("wh_") or len(cursor) > 40:
        raise ProblemError(Problem("validation-error", 422, "The cursor is not valid.",
                                   {"errors": [{"loc": ["query", "cursor"], "msg": "invalid cursor",
                                                "type": "cursor_invalid"}]}))
    return cursor
