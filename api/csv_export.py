"""Lists as CSV (`Accept: text/csv` on `GET /v1/stock` and `GET /v1/ledger`), for the spreadsheets
warehouses live in.

The rows are the JSON items themselves, made by the same query and the same item function as a
JSON page, so the filters, the warehouse limit and the hidden job ids and references cannot drift
apart between the two. The export is streamed: it reads `EXPORT_CHUNK_ROWS` rows at a time, each
chunk in a short transaction of its own (no connection is held while a slow client reads), and
writes them as they come; a whole ledger is never in memory.

A text cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or
a carriage return) gets a single quote in front, as OWASP's "CSV injection" page advises. Numbers
are written as numbers: a `delta` of -3 stays -3, not '-3.
"""

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shared.db import get_session_factory

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
EXPORT_CHUNK_ROWS = 1000  # the largest JSON page: one index range scan of the same size
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Reads up to `limit` rows after the id given (None: from the start), in id order.
ReadRows = Callable[[Session, int | None, int], Sequence[Any]]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "A page of items as JSON, or, with `Accept: text/csv`, every item that "
                         "matches the filters as CSV (a header row, then one row per item), streamed."}}


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header prefers `text/csv` to JSON, the default answer: it names text/csv
    with a q above 0, above that of application/json and no lower than that of a wildcard."""
    best = {"text/csv": 0.0, "application/json": 0.0, "*": 0.0}
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip().lower() for part in media_range.split(";"))
        kind = "*" if media_type in ("*/*", "application/*", "text/*") else media_type
        if kind in best:
            best[kind] = max(best[kind], _quality(params))
    csv_q = best["text/csv"]
    return csv_q > 0 and csv_q > best["application/json"] and csv_q >= best["*"]


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def cell(value: Any) -> Any:
    """A value as a CSV cell: None empty, a formula-leading text quoted, anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def columns_of(model: type[BaseModel]) -> list[str]:
    """The item's fields in the order its JSON shows them."""
    return [*model.model_fields, *model.model_computed_fields]


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes where a cell needs them
    writer.writerows([[cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def stream_rows(read: ReadRows, to_item: Callable[[Any], BaseModel], row_id: Callable[[Any], int],
                columns: list[str], after: int | None) -> Iterator[str]:
    """The header, then the items chunk by chunk until a chunk comes back short."""
    yield csv_text([columns])
    while True:
        with get_session_factory()() as session:  # read only: closing it rolls back
            rows = read(session, after, EXPORT_CHUNK_ROWS)
        if rows:
            items = [to_item(r).model_dump() for r in rows]
            yield csv_text([[item[c] for c in columns] for item in items])
            after = row_id(rows[-1])
        if len(rows) < EXPORT_CHUNK_ROWS:
            return


def csv_response(name: str, model: type[BaseModel], read: ReadRows, to_item: Callable[[Any], BaseModel],
                 row_id: Callable[[Any], int], after: int | None) -> StreamingResponse:
    """Every row `read` gives from `after` on, as a CSV attachment named `name`.csv."""
    # A sync iterator: Starlette pulls each chunk in its thread pool, so the reads never block the loop.
    return StreamingResponse(
        stream_rows(read, to_item, row_id, columns_of(model), after), media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Vary": "Accept"})
