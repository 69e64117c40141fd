"""The CSV import tool, run as a real process against a MariaDB database of its own.

Each test gets a fresh `stock_import_test` database. The tool reads DATABASE_URL once per process
(settings are cached), so the tests pass it in the child's environment and read the database
through their own engine rather than the project's cached one.
"""

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from cli.prestart import create_database_if_missing, upgrade

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SAMPLE_ARGS = ["--warehouses", str(SAMPLES / "warehouses.csv"),
               "--products", str(SAMPLES / "products.csv"),
               "--stock", str(SAMPLES / "opening_stock.csv")]
DEFAULT_URL = "mysql+pymysql://root:@127.0.0.1:3306/stock"
TEST_URL = (make_url(os.environ.get("DATABASE_URL", DEFAULT_URL))
            .set(database="stock_import_test").render_as_string(hide_password=False))


@pytest.fixture
def db() -> Iterator[Engine]:
    """A freshly migrated, empty database for one test."""
    url = make_url(TEST_URL)
    server = create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    server.dispose()
    create_database_if_missing(TEST_URL)
    upgrade(TEST_URL)
    engine = create_engine(TEST_URL)
    yield engine
    engine.dispose()


def run_import(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": TEST_URL, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "cli.import_csv", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the import may write, in a comparable form."""
    return {
        "warehouses": rows(engine, "SELECT code, name, address, active FROM warehouse"
                                   " ORDER BY code"),
        "products": rows(engine, "SELECT sku, name, unit FROM product ORDER BY sku"),
        "levels": rows(engine, """
            SELECT w.code, p.sku, s.on_hand, s.version FROM stock_level s
            JOIN warehouse w ON w.id = s.warehouse_id JOIN product p ON p.id = s.product_id
            ORDER BY w.code, p.sku"""),
        "ledger": rows(engine, "SELECT id, stock_level_id, delta, version, job_id FROM ledger_entry"
                               " ORDER BY id"),
        "jobs": rows(engine, "SELECT id, status FROM job ORDER BY id"),
    }


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, content: str, encoding: str = "utf-8") -> str:
    path.write_text(content, encoding=encoding)
    return str(path)


def test_samples_import_once_and_a_rerun_changes_nothing(db: Engine) -> None:
    first = run_import(*SAMPLE_ARGS, "--batch-size", "7")
    assert first.returncode == 0, first.stderr
    assert "warehouses: 5 created, 0 existing" in first.stdout
    assert "products: 18 created, 0 existing" in first.stdout
    assert "5 applied, 0 already applied, 0 failed; 30 lines received" in first.stdout

    state = snapshot(db)
    assert len(state["warehouses"]) == 5 and len(state["products"]) == 18
    expected = {(r["warehouse"], r["sku"]): int(r["quantity"])
                for r in read_csv(SAMPLES / "opening_stock.csv")}
    assert {(w, s): on_hand for w, s, on_hand, _ in state["levels"]} == expected
    assert len(state["ledger"]) == 30
    assert [status for _, status in state["jobs"]] == ["succeeded"] * 5  # 30 lines, 7 per batch
    # Each balance is exactly what its ledger says, with versions 1..n and no gaps.
    mismatched = rows(db, """
        SELECT s.id FROM stock_level s JOIN ledger_entry l ON l.stock_level_id = s.id
        GROUP BY s.id, s.on_hand, s.version
        HAVING s.on_hand <> SUM(l.delta) OR s.version <> COUNT(*) OR MAX(l.version) <> COUNT(*)""")
    assert mismatched == []
    assert rows(db, "SELECT DISTINCT type, reference FROM ledger_entry") == [
        ("receive", "opening-stock")]
    assert ("FOOD-005", "보리차 티백", "unit") in state["products"]  # empty unit -> default

    second = run_import(*SAMPLE_ARGS, "--batch-size", "7")
    assert second.returncode == 0, second.stderr
    assert "warehouses: 0 created, 5 existing" in second.stdout
    assert "products: 0 created, 18 existing" in second.stdout
    assert "0 applied, 5 already applied, 0 failed; 0 lines received" in second.stdout
    assert snapshot(db) == state


def test_euc_kr_file_imports_the_same_names_as_utf8(db: Engine) -> None:
    utf8 = (SAMPLES / "warehouses.csv").read_text(encoding="utf-8")
    assert (SAMPLES / "warehouses_euckr.csv").read_bytes() == utf8.encode("euc-kr")

    result = run_import("--warehouses", str(SAMPLES / "warehouses_euckr.csv"),
                        "--encoding", "euc-kr")
    assert result.returncode == 0, result.stderr
    expected = sorted((r["code"], r["name"], r["address"])
                      for r in read_csv(SAMPLES / "warehouses.csv"))
    assert rows(db, "SELECT code, name, address FROM warehouse ORDER BY code") == expected
    assert any(name == "송파 물류센터" for _, name, _ in expected)

    again = run_import("--warehouses", str(SAMPLES / "warehouses.csv"))
    assert "warehouses: 0 created, 5 existing" in again.stdout


def test_utf8_bom_is_accepted(db: Engine, tmp_path: Path) -> None:
    content = (SAMPLES / "products.csv").read_text(encoding="utf-8")
    path = write(tmp_path / "products_bom.csv", content, encoding="utf-8-sig")
    result = run_import("--products", path)
    assert result.returncode == 0, result.stderr
    assert rows(db, "SELECT COUNT(*) FROM product") == [(18,)]


def test_bad_rows_are_all_listed_and_nothing_is_written(db: Engine, tmp_path: Path) -> None:
    warehouses = write(tmp_path / "w.csv", "code,name,address\n"
                       "OK-1,좋은 창고,\n"          # line 2: fine
                       "bad code!,이름,\n"          # 3: code pattern
                       "OK-2,,주소\n"               # 4: empty name
                       "OK-1,중복,\n"               # 5: duplicate code
                       "OK-3,필드 부족\n")          # 6: too few fields
    products = write(tmp_path / "p.csv", "sku,name,unit\n"
                     f"{'X' * 65},너무 긴 SKU,개\n"  # 2: sku over 64
                     f"P-1,{'가' * 201},개\n"        # 3: name over 200
                     "P-2,괜찮은 상품,개\n")         # 4: fine
    stock = write(tmp_path / "s.csv", "warehouse,sku,quantity\n"
                  "OK-1,P-2,0\n"                    # 2: below 1
                  "OK-1,P-2,1.5\n"                  # 3: not an integer
                  "OK-1,P-2,1000000001\n"           # 4: over the limit
                  "OK-1,P-2,10\n")                  # 5: fine
    result = run_import("--warehouses", warehouses, "--products", products, "--stock", stock)

    assert result.returncode != 0
    for where in [f"{warehouses}:{n}:" for n in (3, 4, 5, 6)] + \
                 [f"{products}:{n}:" for n in (2, 3)] + [f"{stock}:{n}:" for n in (2, 3, 4)]:
        assert where in result.stderr, where
    for fine in (f"{warehouses}:2:", f"{products}:4:", f"{stock}:5:"):
        assert fine not in result.stderr
    assert "9 problem(s); nothing was written" in result.stderr
    assert all(not table for table in snapshot(db).values())


def test_stock_naming_an_unknown_warehouse_or_sku_writes_nothing(db: Engine,
                                                                 tmp_path: Path) -> None:
    stock = write(tmp_path / "s.csv", "warehouse,sku,quantity\n"
                  "SEL-1,BOOK-001,5\nNOPE-9,BOOK-001,5\nSEL-1,NO-SUCH-SKU,5\n")
    result = run_import("--warehouses", str(SAMPLES / "warehouses.csv"),
                        "--products", str(SAMPLES / "products.csv"), "--stock", stock)
    assert result.returncode != 0
    assert f"{stock}:3: unknown warehouse 'NOPE-9'" in result.stderr
    assert f"{stock}:4: unknown sku 'NO-SUCH-SKU'" in result.stderr
    assert all(not table for table in snapshot(db).values())


def test_failed_batch_is_reported_and_can_be_retried(db: Engine, tmp_path: Path) -> None:
    catalog = run_import(*SAMPLE_ARGS[:4])
    assert catalog.returncode == 0, catalog.stderr
    with db.begin() as conn:
        conn.execute(text("UPDATE warehouse SET active = 0 WHERE code = 'BUS-4'"))
    stock = write(tmp_path / "s.csv", "warehouse,sku,quantity\n"
                  "SEL-1,BOOK-001,5\nBUS-4,BOOK-001,7\n")

    failed = run_import("--stock", stock)
    assert failed.returncode != 0
    assert f"{stock}:3: batch" in failed.stderr and "inactive" in failed.stderr
    assert rows(db, "SELECT COUNT(*) FROM ledger_entry") == [(0,)]  # atomic: nothing applied
    assert rows(db, "SELECT status FROM job") == [("failed",)]

    # Once the cause is fixed, the same file goes in (a failed attempt applied nothing)...
    with db.begin() as conn:
        conn.execute(text("UPDATE warehouse SET active = 1 WHERE code = 'BUS-4'"))
    retried = run_import("--stock", stock)
    assert retried.returncode == 0, retried.stderr
    assert "1 applied, 0 already applied, 0 failed; 2 lines received" in retried.stdout
    state = snapshot(db)
    assert len(state["ledger"]) == 2

    # ...and exactly once.
    again = run_import("--stock", stock)
    assert again.returncode == 0, again.stderr
    assert "0 applied, 1 already applied" in again.stdout
    assert snapshot(db) == state


def test_progress_is_plain_lines_when_stdout_is_not_a_terminal(db: Engine) -> None:
    """Captured output is a pipe: a line per file checked and per batch, no bar, no escape codes."""
    result = run_import(*SAMPLE_ARGS, "--batch-size", "7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, count in (("warehouses.csv", 5), ("products.csv", 18), ("opening_stock.csv", 30)):
        assert any(line.startswith(f"checking {name}: done, {count} rows in ") for line in lines), lines
    assert [line for line in lines if line.startswith("stock: ") and "batch" in line] == [
        f"stock: {done} of 30 lines: batch {n} of 5 applied"
        for n, done in enumerate((7, 14, 21, 28, 30), 1)]
    assert any(line.startswith("stock: done, 30 of 30 lines in ") for line in lines)
    assert lines[-1] == "stock batches: 5 applied, 0 already applied, 0 failed; 30 lines received"
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
