"""Metrics of the webhook workers (served on their /metrics, worker/metrics.py)."""

from prometheus_client import Counter, Histogram

WEBHOOK_DELIVERIES = Counter(
    "stock_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: `succeeded`, `retry` (to be tried again), `failed` (given "
    "up after WEBHOOK_GIVE_UP_AFTER_SECONDS), `gone` (the receiver answered 410: subscription disabled).",
    ["outcome"])
WEBHOOK_LAG = Histogram(
    "stock_webhook_delivery_lag_seconds", "From an event's commit to its delivery's success.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400))

for _outcome in ("succeeded", "retry", "failed", "gone"):
    WEBHOOK_DELIVERIES.labels(_outcome)
