"""Load warehouses, products and opening stock from CSV files.

    python -m cli.import_csv --warehouses samples/warehouses.csv --products samples/products.csv \\
        --stock samples/opening_stock.csv [--encoding utf-8|euc-kr|cp949] [--batch-size 5000]

Columns: warehouses `code,name,address`; products `sku,name,unit`; stock `warehouse,sku,quantity`
(a header row first; --encoding applies to every file). Every row is checked with the API's own
rules first, plus: no key twice in a file, and stock names known warehouses and skus. If any row is
bad, all of them are listed and nothing is written. Existing warehouses and products are left as
they are.

Opening stock goes in as atomic batches of `receive` commands: each is written as a job and applied
in this process by the workers' own drain (shared/drain.py), in its warehouse's order with whatever
else waits there. No Celery worker is needed, and the balances and ledger come out exactly as if
the API had queued them. A batch's job id is derived from its rows, so running the import again
finds each batch already applied and changes nothing -- as long as the files and --batch-size are
the same (other chunking, other ids).

On a terminal, bars show each file's rows being checked and the stock lines applied, batch by batch;
when the output is a pipe or a file, plain lines say the same (cli/progress.py).
"""

import argparse
import csv
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import count
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cli.progress import Task, task
from shared.db import session_scope
from shared.drain import drain
from shared.jobs.documents import from_row
from shared.jobs.rows import new_row
from shared.jobs.status import FAILED, SUCCEEDED, TERMINAL
from shared.models import Job, Product, Warehouse, utcnow
from shared.ordering import slot_for
from shared.schemas.catalog import ProductCreate, WarehouseCreate
from shared.schemas.commands import Receive
from shared.settings import get_settings

# Never change it: every batch imported so far would get a new id and be received a second time.
OPENING_STOCK_NAMESPACE = uuid.UUID("9b21bf00-762c-4fbd-8563-c94f093c1f7b")
REFERENCE = "opening-stock"
# Excel and many editors write a BOM in front of UTF-8; 'utf-8-sig' reads files with or without.
ENCODINGS = {"utf-8": "utf-8-sig", "euc-kr": "euc-kr", "cp949": "cp949"}
LOOKUP_CHUNK = 5000  # keeps IN (...) lists and multi-row INSERTs a sane size
Rows = list[tuple[int, BaseModel]]  # (line number in the file, validated row)


def _warehouse(f: dict[str, str]) -> BaseModel:
    return WarehouseCreate(code=f["code"], name=f["name"], address=f["address"] or None)


def _product(f: dict[str, str]) -> BaseModel:
    return ProductCreate(sku=f["sku"], name=f["name"], **({"unit": f["unit"]} if f["unit"] else {}))


def _receive(f: dict[str, str]) -> BaseModel:
    # The models are strict: turn only real integer text into an int, so "1.5" or "ten" is
    # reported as "not a valid integer" and "-5" as out of range.
    qty: Any = int(f["quantity"]) if re.fullmatch(r"[+-]?[0-9]+", f["quantity"]) else f["quantity"]
    return Receive(type="receive", warehouse=f["warehouse"], sku=f["sku"], quantity=qty,
                   reference=REFERENCE)


# kind -> (columns, row builder, key that must be unique within the file)
KINDS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, str]], BaseModel], Callable]] = {
    "warehouses": (("code", "name", "address"), _warehouse, lambda r: r.code),
    "products": (("sku", "name", "unit"), _product, lambda r: r.sku),
    "stock": (("warehouse", "sku", "quantity"), _receive, lambda r: (r.warehouse, r.sku)),
}


def _records(path: Path, columns: Sequence[str], encoding: str,
             problems: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, fields) for each non-blank record; file-level problems go to `problems`."""
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if sorted(header) != sorted(columns):
            found = ",".join(header) or "an empty file"
            problems.append(f"{path}:1: header must be {','.join(columns)}, found {found}")
            return
        while True:
            # Where the record starts, even when a quoted field spans several lines.
            line = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                return
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                problems.append(
                    f"{path}:{line}: expected {len(header)} fields, found {len(record)}")
                continue
            yield line, dict(zip(header, (cell.strip() for cell in record), strict=True))


def load(path: Path, kind: str, encoding: str, problems: list[str],
         progress: Task | None = None) -> Rows:
    """Validate every row of one file, collecting each bad row's problem instead of stopping."""
    columns, build, key = KINDS[kind]
    rows: Rows = []
    first_seen: dict[Any, int] = {}
    try:
        for line, fields in _records(path, columns, encoding, problems):
            if progress is not None:
                progress.advance()
            try:
                row = build(fields)
            except ValidationError as exc:
                detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}"
                                   for e in exc.errors())
                problems.append(f"{path}:{line}: {detail}")
                continue
            if (first := first_seen.setdefault(key(row), line)) != line:
                problems.append(f"{path}:{line}: duplicate of line {first}")
                continue
            rows.append((line, row))
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror or exc}")
    except UnicodeDecodeError:
        problems.append(f"{path}: not valid {encoding}; is --encoding right?")
    except csv.Error as exc:
        problems.append(f"{path}: {exc}")
    return rows


def _existing(session: Session, column: Any, values: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(values)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        found.update(session.scalars(select(column).where(
            column.in_(ordered[start:start + LOOKUP_CHUNK]))))
    return found


def check_references(session: Session, path: Path, stock: Rows, warehouses: Rows,
                     products: Rows, problems: list[str]) -> None:
    """A stock row must name a warehouse and a product from the files or the database; checking
    here lists them all up front instead of failing whole batches one at a time."""
    codes = {r.code for _, r in warehouses}  # type: ignore[attr-defined]
    skus = {r.sku for _, r in products}  # type: ignore[attr-defined]
    codes |= _existing(session, Warehouse.code, {r.warehouse for _, r in stock} - codes)
    skus |= _existing(session, Product.sku, {r.sku for _, r in stock} - skus)
    for line, row in stock:
        if row.warehouse not in codes:
            problems.append(f"{path}:{line}: unknown warehouse {row.warehouse!r}")
        if row.sku not in skus:
            problems.append(f"{path}:{line}: unknown sku {row.sku!r}")


def insert_missing(session: Session, model: type, key: str, rows: Rows) -> tuple[int, int]:
    """Insert the rows whose key is not in the table yet; return (created, existing)."""
    column = getattr(model, key)
    existing = _existing(session, column, {getattr(r, key) for _, r in rows})
    new = [r.model_dump() for _, r in rows if getattr(r, key) not in existing]
    for start in range(0, len(new), LOOKUP_CHUNK):
        session.execute(insert(model), new[start:start + LOOKUP_CHUNK])
    return len(new), len(rows) - len(new)


def batch_ids(commands: list[dict[str, Any]]) -> Iterator[str]:
    """The job ids a batch may use, derived from its rows. The first is the one a batch normally
    gets; the next ones are only for retrying after a failed attempt (which applied nothing)."""
    canonical = json.dumps([[c["warehouse"], c["sku"], c["quantity"]] for c in commands],
                           ensure_ascii=False, separators=(",", ":"))
    for attempt in count():
        suffix = f"\nretry {attempt}" if attempt else ""
        yield str(uuid.uuid5(OPENING_STOCK_NAMESPACE, canonical + suffix))


# While another process (a worker) applies the batch's slot, how often to look again.
WAIT_FOR_SLOT_SECONDS = 0.05


def apply_batch(commands: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Write the batch's job if it is not there yet and see it applied; returns the job (as
    GET /v1/jobs shows it) and whether an earlier run had applied it already."""
    slot = slot_for(commands[0]["warehouse"])
    for job_id in batch_ids(commands):
        with session_scope() as session:
            # One prefix per dialect name: prefix_with compares `dialect` to a single name, so a
            # tuple of names would silently emit a plain INSERT.
            written = session.connection().execute(
                insert(Job.__table__).prefix_with("IGNORE", dialect="mysql")
                .prefix_with("IGNORE", dialect="mariadb").prefix_with("OR IGNORE", dialect="sqlite"),
                new_row(job_id=job_id, kind="batch", mode="atomic", payload={"commands": commands},
                        slot=slot, line_count=len(commands), api_key_id=None, idempotency_key=None,
                        request_hash=None, request_id=None, submitted_at=utcnow())).rowcount
        job = _until_terminal(job_id, slot)
        # An earlier run's failed attempt changed nothing (atomic): try again under the next id.
        if written or job["status"] != FAILED:
            return job, not written
    raise AssertionError("unreachable")


def _until_terminal(job_id: str, slot: int) -> dict[str, Any]:
    while True:
        drain([slot])
        with session_scope() as session:
            job = from_row(session.get_one(Job, job_id))
        if job["status"] in TERMINAL:
            return job
        time.sleep(WAIT_FOR_SLOT_SECONDS)  # a worker holds the slot and will get to it


def import_stock(path: Path, stock: Rows, batch_size: int, out: IO[str]) -> bool:
    """Apply the stock rows batch by batch, with a bar of the lines done; print one line per failed
    batch and the totals."""
    outcomes: Counter[str] = Counter()
    received = 0
    batches = -(-len(stock) // batch_size)
    with task("stock", len(stock), "lines", stream=out) as progress:
        for number, start in enumerate(range(0, len(stock), batch_size), 1):
            chunk = stock[start:start + batch_size]
            outcome, lines = _apply_chunk(path, chunk)
            outcomes[outcome] += 1
            received += lines
            progress.advance(len(chunk), f"batch {number} of {batches} {outcome}")
    print(f"stock batches: {outcomes['applied']} applied, {outcomes['already applied']} already "
          f"applied, {outcomes['failed']} failed; {received} lines received", file=out)
    return outcomes["failed"] == 0


def _apply_chunk(path: Path, chunk: Rows) -> tuple[str, int]:
    """Apply one batch: ("applied", lines received), ("already applied", 0), or ("failed", 0),
    saying on stderr why it failed."""
    commands = [row.model_dump(exclude_none=True) for _, row in chunk]
    job, was_applied = apply_batch(commands)
    if job["status"] != SUCCEEDED:
        error = job.get("error") or {}
        where = chunk[error["line"]][0] if "line" in error else chunk[0][0]
        bad = (job.get("result") or {}).get("failed", "?")
        print(f"{path}:{where}: batch {job['job_id']} {job['status']} ({bad} of {len(chunk)}"
              f" lines bad, first shown): {error.get('detail', error)}", file=sys.stderr)
        return "failed", 0
    return ("already applied", 0) if was_applied else ("applied", job["result"]["total"])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cli.import_csv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouses", type=Path, help="CSV with code,name,address")
    parser.add_argument("--products", type=Path, help="CSV with sku,name,unit")
    parser.add_argument("--stock", type=Path, help="CSV with warehouse,sku,quantity")
    parser.add_argument("--encoding", choices=sorted(ENCODINGS), default="utf-8")
    parser.add_argument("--batch-size", type=int, default=5000,
                        help="stock lines per job (default 5000)")
    args = parser.parse_args(argv)
    if not (args.warehouses or args.products or args.stock):
        parser.error("give at least one of --warehouses, --products, --stock")
    # The same limit the API puts on a batch, so an import job is one the service could accept.
    limit = get_settings().max_batch_lines
    if not 1 <= args.batch_size <= limit:
        parser.error(f"--batch-size must be between 1 and {limit}")
    return args


def _checked(path: Path | None, kind: str, encoding: str, problems: list[str], out: IO[str]) -> Rows:
    if path is None:
        return []
    with task(f"checking {path.name}", None, "rows", stream=out) as progress:
        return load(path, kind, encoding, problems, progress)


def main(argv: Sequence[str] | None = None, *, stream: IO[str] | None = None) -> int:
    args = parse_args(argv)
    out = stream if stream is not None else sys.stdout
    encoding = ENCODINGS[args.encoding]
    problems: list[str] = []
    files = {kind: getattr(args, kind) for kind in KINDS}
    rows = {kind: _checked(files[kind], kind, encoding, problems, out)
            for kind in ("warehouses", "products")}
    # References are only worth checking against catalog files that are themselves clean.
    catalog_clean = not problems
    rows["stock"] = _checked(files["stock"], "stock", encoding, problems, out)
    if files["stock"] and catalog_clean:
        with session_scope() as session:
            check_references(session, files["stock"], rows["stock"], rows["warehouses"],
                             rows["products"], problems)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s); nothing was written", file=sys.stderr)
        return 1

    with session_scope() as session:  # the catalog goes in whole or not at all
        counts = {kind: insert_missing(session, model, key, rows[kind])
                  for kind, model, key in (("warehouses", Warehouse, "code"),
                                           ("products", Product, "sku")) if files[kind]}
    for kind, (created, existing) in counts.items():
        print(f"{kind}: {created} created, {existing} existing", file=out)
    if files["stock"] and not import_stock(files["stock"], rows["stock"], args.batch_size, out):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
