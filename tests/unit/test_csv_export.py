"""The CSV export's pure parts: when a request gets CSV, and how a value becomes a cell."""

import csv
import io

import pytest

from api.csv_export import cell, columns_of, csv_text, wants_csv
from api.schemas import LedgerOut, StockOut


@pytest.mark.parametrize("accept, expected", [
    ("text/csv", True),
    ("text/csv; charset=utf-8", True),
    ("TEXT/CSV", True),
    ("text/csv, application/problem+json", True),
    ("application/json;q=0.5, text/csv", True),
    ("text/csv, */*", True),                      # the type named beats a wildcard of the same q
    ("text/csv, */*;q=0.1", True),
    (None, False),
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("text/csv;q=0.5, application/json", False),
    ("text/csv, application/json", False),        # a tie keeps the default, JSON
    ("text/csv;q=0", False),
    ("text/csv;q=0.5, */*", False),
    ("text/csv;q=nonsense", False),
    ("text/html,application/xhtml+xml,*/*;q=0.8", False),  # a browser
])
def test_csv_is_answered_only_when_preferred(accept, expected):
    assert wants_csv(accept) is expected


@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1", "'+1"),
    ("-SKU-1", "'-SKU-1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"),
    ("\rcmd", "'\rcmd"),
    ("SKU-=1", "SKU-=1"),     # only the first character matters
    ("'quoted", "'quoted"),
    ("", ""),
    (None, ""),
    (-3, -3),                 # numbers stay numbers, negative ones too
    (0, 0),
])
def test_a_cell_that_would_be_a_formula_is_quoted(value, expected):
    assert cell(value) == expected


def test_rows_are_rfc_4180_and_read_back():
    text = csv_text([["id", "reference", "delta"], [1, 'a "b", c\nd', -2], [2, "=1+1", None]])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["id", "reference", "delta"], ["1", 'a "b", c\nd', "-2"], ["2", "'=1+1", ""]]


def test_columns_are_the_json_fields_in_their_order():
    assert columns_of(StockOut) == list(StockOut(warehouse="W", sku="S", on_hand=1, version=1,
                                                 updated_at=None).model_dump())
    assert columns_of(LedgerOut)[:4] == ["id", "warehouse", "sku", "type"]
