"""Webhooks: events pushed to the receivers that API keys subscribe, at least once, signed as the
Standard Webhooks specification says.

    event rows (shared/events/) --fan_out--> one delivery row per matching subscription
    due deliveries --claim (at most WEBHOOK_MAX_IN_FLIGHT per subscription)--> Celery task on the
    webhooks queue --deliver--> POST, signed; 2xx: succeeded; 410: subscription disabled;
    anything else or no answer within WEBHOOK_TIMEOUT_SECONDS: tried again with exponential
    backoff and jitter until WEBHOOK_GIVE_UP_AFTER_SECONDS (at least a day), then failed

The fan-out follows the events feed with a cursor of its own (`webhook_dispatch`), so an event that
committed is turned into its deliveries however the workers fare; a delivery whose worker died
mid-attempt is claimed again once its claim runs out. Deliveries run on their own queue and
workers: a slow or dead receiver delays no stock command. Receivers deduplicate on `webhook-id`.
"""
