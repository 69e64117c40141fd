"""/console: the operator web page, served by the API.

    browser --cookie--> gate.py: the session (session.py: an encrypted cookie holding the API key
      |                   and a CSRF token), then the API's own decision for that key
      |                   (api/access.py: revocation, rate, scope) -> a Principal
      v
    a page module         login.py (sign in and out, static files), stock.py (levels, a level's
      |                   ledger and chart.py's SVG), jobs.py (a job, a batch's failed lines),
      |                   queues.py (depth, age, throughput, polled by static/console.js),
      |                   receiving.py (receipts.py checks a CSV; submitted through
      |                   api/accept/submit.py like POST /v1/batches), reconcile.py (admin)
      v
    pages.py              Jinja2 templates (templates/), the Content-Security-Policy and other
                          headers, the login redirect and error pages (problem+json under /console/api/)

Pages are server-rendered and work without scripts; the script adds the live queue charts and the
job's progress. Every read and submission goes through the API's own functions with the
operator's principal, so the console can do nothing the key could not do through /v1.
"""

from fastapi import APIRouter

from api.console import jobs, login, queues, receiving, reconcile, stock
from api.console.receiving import LARGE_BODY_PATHS

__all__ = ["LARGE_BODY_PATHS", "router"]

router = APIRouter()
for module in (login, stock, jobs, queues, receiving, reconcile):
    router.include_router(module.router)
