"""The API process: `uvicorn api.main:app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import console, metrics, problems
from api.accept.fast_path import FastCommands
from api.accept.publisher import get_publisher
from api.accept.waiters import get_waiters
from api.body_limit import BodySizeLimit
from api.routes import (
    catalog,
    commands,
    docs,
    events,
    health,
    jobs,
    reorder_points,
    reservations,
    stock,
    webhooks,
)
from api.routes.commands import BATCHES_PATH
from api.telemetry import RequestTelemetry
from shared.logs import configure_logging
from shared.settings import get_settings

log = logging.getLogger(__name__)

# The groups of operations in /docs and /redoc, in this order.
TAGS = [
    {"name": "commands", "description": "Stock commands and batches: accepted (202) and applied once by "
     "the workers; `Prefer: wait=N` waits for the outcome."},
    {"name": "jobs", "description": "Where an accepted command or batch stands, its outcome, "
     "a batch's lines."},
    {"name": "stock", "description": "Stock levels, the ledger of every movement (both as CSV too), "
     "reorder points."},
    {"name": "reservations", "description": "Units held for a checkout until committed, released "
     "or expired."},
    {"name": "catalog", "description": "Warehouses and products."},
    {"name": "events", "description": "The feed of what happened, to read from a position."},
    {"name": "webhooks", "description": "Events sent to a receiver's URL, with retries."},
    {"name": "operations", "description": "Liveness, readiness and metrics; no API key needed."},
]

@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Per server process: JSON logs from the start, and its metrics files retired at the end."""
    settings = get_settings()
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else ""
    configure_logging(settings.log_level, secrets=(pepper,))
    # Subscribed before the first request, so no finished job is announced to nobody.
    get_waiters().start()
    yield
    await get_waiters().stop()
    if get_publisher.cache_info().currsize and not get_publisher().flush(timeout=10):
        log.warning("shutting down with job messages unpublished; the workers' sweep applies them")
    metrics.process_exiting()


def create_app() -> FastAPI:
    # FastAPI's own OpenTelemetry layer is off: metrics and logs are ours (api/telemetry.py), and
    # it asked the global providers on every request whether anyone listens (a few % of the loop).
    # /docs and /redoc are served from the service's own assets (api/routes/docs.py), not FastAPI's
    # pages, which load Swagger UI and ReDoc from a CDN.
    app = FastAPI(title="Stock command service", version="1.0.0", lifespan=lifespan,
                  description="Stock commands are queued and applied exactly once; see docs/design.md.",
                  telemetry={"tracing": False, "metrics": False, "logs": False}, openapi_tags=TAGS,
                  docs_url=None, redoc_url=None)
    problems.install(app)
    # Routes are matched in order, one by one: the busiest first (commands, then job polls).
    for module in (commands, jobs, stock, reservations, reorder_points, catalog, events, webhooks, health):
        app.include_router(module.router)
    docs.install(app)
    app.include_router(console.router)  # /console, the operator web page (api/console/)
    # Innermost: a valid command is answered before FastAPI's routing; see api/accept/fast_path.py.
    app.add_middleware(FastCommands)
    settings = get_settings()
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       large=frozenset({BATCHES_PATH, *console.LARGE_BODY_PATHS}),
                       large_bytes=settings.max_batch_body_bytes)
    # Added last, so it runs first: it sees the body limit's 413s too.
    app.add_middleware(RequestTelemetry, slow_request_seconds=get_settings().slow_request_seconds)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI builds and caches the document once; the error responses are added to it once.
        spec = generate_openapi()
        if "Problem" not in spec.get("components", {}).get("schemas", {}):
            problems.document_errors(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
# Everything made at start-up (the app, routes, models, SQLAlchemy's metadata) lives as long as the
# process: keep it out of the collector's generations, so a full collection under load walks only
# the request objects and the accept path's p99 does not pay for scanning the whole app.
gc.freeze()
