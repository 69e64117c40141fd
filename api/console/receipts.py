"""A CSV of receipts, `warehouse,sku,quantity[,reference]`, checked line by line before anything is
sent: each line with the API's own command model (shared/schemas/commands.py `Receive`: codes,
quantities, free text), so a line that passes here is one POST /v1/batches would take.

A header row is optional (its first cell names a column) and may put the columns in any order.
Line numbers are the file's, counting the header. What the catalog and the key's warehouse limit
say about a line is added by `check_catalog`, which reads the database.
"""

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from shared.schemas.commands import Receive

REQUIRED = ("warehouse", "sku", "quantity")
COLUMNS = (*REQUIRED, "reference")
INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class ReceiptLine:
    number: int  # the line in the file
    fields: dict[str, str]
    command: Receive | None
    errors: tuple[str, ...] = ()  # the line cannot be sent
    warnings: tuple[str, ...] = ()  # it can, but will fail when applied (an unknown SKU)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Receipts:
    lines: list[ReceiptLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the file as a whole

    @property
    def sendable(self) -> bool:
        """Whether every line can be sent, as one batch."""
        return bool(self.lines) and not self.problems and all(line.ok for line in self.lines)

    @property
    def commands(self) -> list[Receive]:
        return [line.command for line in self.lines if line.command is not None]


def _command(fields: dict[str, str]) -> tuple[Receive | None, tuple[str, ...]]:
    quantity: Any = fields["quantity"]
    # The model is strict: only real integer text becomes an int, so "1.5" or "ten" is reported
    # as not an integer and "-5" as out of range.
    if INTEGER.fullmatch(quantity):
        quantity = int(quantity)
    try:
        return Receive(type="receive", warehouse=fields["warehouse"], sku=fields["sku"], quantity=quantity,
                       reference=fields.get("reference") or None), ()
    except ValidationError as exc:
        return None, tuple(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())


def _header(row: list[str]) -> list[str] | None:
    """The columns a header row names, or None if the row is data."""
    cells = [cell.strip().lower() for cell in row]
    return cells if cells and cells[0] in COLUMNS else None


def parse_receipts(data: bytes, max_lines: int) -> Receipts:
    """Every line of the file, each checked; a file that cannot be read is one problem."""
    receipts = Receipts()
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte order mark in front of UTF-8
    except UnicodeDecodeError:
        receipts.problems.append("The file is not UTF-8 text.")
        return receipts
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = list(COLUMNS)
    try:
        for record in _records(reader):
            number, row = record
            if not receipts.lines and number == 1 and (named := _header(row)) is not None:
                unknown = sorted(set(named) - set(COLUMNS))
                missing = [c for c in REQUIRED if c not in named]
                if unknown or missing or len(set(named)) != len(named):
                    receipts.problems.append(
                        f"Line 1: the header must name {', '.join(REQUIRED)} and optionally reference"
                        f"{'; not ' + ', '.join(unknown) if unknown else ''}.")
                    return receipts
                columns = named
                continue
            if len(receipts.lines) == max_lines:
                receipts.problems.append(f"More than {max_lines} lines: a batch takes at most {max_lines}.")
                return receipts
            receipts.lines.append(_line(number, row, columns))
    except csv.Error as exc:
        receipts.problems.append(f"Line {reader.line_num}: {exc}")
    if not receipts.lines and not receipts.problems:
        receipts.problems.append("The file has no receipts.")
    return receipts


def _records(reader: Any) -> Iterable[tuple[int, list[str]]]:
    """(line where the record starts, its cells) for each record that is not blank."""
    while True:
        number = reader.line_num + 1
        row = next(reader, None)
        if row is None:
            return
        if any(cell.strip() for cell in row):
            yield number, row


def _line(number: int, row: list[str], columns: list[str]) -> ReceiptLine:
    if not len(REQUIRED) <= len(row) <= len(columns):
        fields = dict(zip(columns, (cell.strip() for cell in row), strict=False))
        return ReceiptLine(number, fields, None, (
            f"expected {len(REQUIRED)} to {len(columns)} fields, found {len(row)}"
            if len(columns) > len(REQUIRED) else f"expected {len(REQUIRED)} fields, found {len(row)}",))
    fields = {name: "" for name in COLUMNS} | dict(zip(columns, (cell.strip() for cell in row), strict=False))
    command, errors = _command(fields)
    return ReceiptLine(number, fields, command, errors)


def check_catalog(receipts: Receipts, *, may_use: Callable[[str], bool],
                  known_warehouses: set[str], known_skus: set[str]) -> Receipts:
    """Add what the key's warehouse limit refuses (an error: the API would refuse the whole batch)
    and what the catalog does not know (a warning: that line alone fails when applied)."""
    checked = Receipts(problems=list(receipts.problems))
    for line in receipts.lines:
        if line.command is None:
            checked.lines.append(line)
            continue
        command, errors, warnings = line.command, list(line.errors), list(line.warnings)
        if not may_use(command.warehouse):
            errors.append(f"this API key is not limited to the warehouse {command.warehouse!r}")
        else:
            if command.warehouse not in known_warehouses:
                warnings.append(f"unknown warehouse {command.warehouse!r}: this line will fail")
            if command.sku not in known_skus:
                warnings.append(f"unknown SKU {command.sku!r}: this line will fail")
        checked.lines.append(replace(line, errors=tuple(errors), warnings=tuple(warnings)))
    return checked


def to_csv(receipts: Receipts) -> str:
    """The lines as a CSV with a header, to carry from the checked page to the submission."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in receipts.lines:
        writer.writerow([line.fields.get(name, "") for name in COLUMNS])
    return out.getvalue()
