"""The receiving page: upload a CSV of receipts, see every line checked (receipts.py), send it as one
batch, then watch the job on its page until it ends.

The batch goes through the API's own submission (api/accept/submit.py), as POST /v1/batches would
send it: the key's warehouse limit, the backlog's 503, the job written before the answer. The
checked lines travel to the submission in the page's form and are checked again there (the form
is the browser's, so it proves nothing). The form also carries an idempotency key made when the
page was drawn: sending the same form twice (a double click, a reload) names the first job.
"""

import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api.accept.submit import Work, submit
from api.console.gate import Writer, checked_form
from api.console.pages import PREFIX, ConsoleRoute, render
from api.console.receipts import Receipts, check_catalog, parse_receipts, to_csv
from api.console.stock import read
from api.problems import ProblemError
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.models import Product, Warehouse
from shared.problems import Problem
from shared.settings import get_settings

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

CHECK_PATH = f"{PREFIX}/receiving/check"
SUBMIT_PATH = f"{PREFIX}/receiving/submit"
# Both carry a whole file: they take the batches' body limit (MAX_BATCH_BODY_BYTES), not 64 KiB.
LARGE_BODY_PATHS = frozenset({CHECK_PATH, SUBMIT_PATH})
TOKEN = re.compile(r"console-[A-Za-z0-9_-]{16,64}")
MODES = ("independent", "atomic")


@router.get("/receiving")
def receiving_form(request: Request, principal: Writer) -> Response:
    return render(request, "receiving.html", {"receipts": None, "csv_text": "", "token": "",
                                              "max_lines": get_settings().max_batch_lines})


def _known(session: Session, principal: Principal, receipts: Receipts) -> tuple[set[str], set[str]]:
    codes = sorted({c.warehouse for c in receipts.commands
                    if warehouse_limit.may_use(principal, c.warehouse)})
    skus = sorted({c.sku for c in receipts.commands})
    warehouses = set(session.scalars(select(Warehouse.code).where(Warehouse.code.in_(codes))))
    products = set(session.scalars(select(Product.sku).where(Product.sku.in_(skus))))
    return warehouses, products


async def _checked(data: bytes, principal: Principal) -> Receipts:
    receipts = parse_receipts(data, get_settings().max_batch_lines)
    if receipts.problems or not receipts.lines:
        return receipts
    warehouses, skus = await read(lambda s: _known(s, principal, receipts))
    return check_catalog(receipts, may_use=lambda code: warehouse_limit.may_use(principal, code),
                         known_warehouses=warehouses, known_skus=skus)


@router.post("/receiving/check")
async def check(request: Request, principal: Writer) -> Response:
    form = await checked_form(request)
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    receipts = await _checked(data, principal)
    return render(request, "receiving.html", {
        "receipts": receipts, "csv_text": to_csv(receipts) if receipts.sendable else "",
        "token": f"console-{secrets.token_urlsafe(24)}", "max_lines": get_settings().max_batch_lines,
        "filename": upload.filename if isinstance(upload, UploadFile) else ""},
        200 if receipts.sendable else 422)


def _refused(detail: str) -> ProblemError:
    return ProblemError(Problem("validation-error", 422, detail))


@router.post("/receiving/submit")
async def send(request: Request, principal: Writer) -> Response:
    form = await checked_form(request, max_part_size=get_settings().max_batch_body_bytes)
    token, mode, text = form.get("token"), form.get("mode"), form.get("csv")
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise _refused("The form has no valid submission token; check the file again.")
    if mode not in MODES:
        raise _refused(f"The mode must be one of {', '.join(MODES)}.")
    if not isinstance(text, str):
        raise _refused("The form carries no receipts; check the file again.")
    receipts = await _checked(text.encode(), principal)
    if not receipts.sendable:
        raise _refused("The receipts are not all valid any more; check the file again.")
    payload: dict[str, Any] = {"commands": [c.model_dump(exclude_none=True) for c in receipts.commands]}
    work = Work("batch", str(mode), payload, receipts.commands)
    answer = await submit(work, principal, idempotency_key=token)
    job_id = json.loads(bytes(answer.body))["job_id"]
    return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)
