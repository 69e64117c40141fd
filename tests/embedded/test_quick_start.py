"""The quick start: the embedded profile with real API and worker processes, and no MySQL or Redis.

The processes get the embedded profile's settings in their environment, a data folder of this
module's own, and a REDIS_URL where nothing listens: if any part of the embedded profile still
reached for Redis, accepting work would answer 503 and the worker would never publish.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shared.celery_app import all_queues
from shared.ordering import slot_for
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import ROOT, Process, start_api, start_worker

_worker_names = count(1)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="module")
def env(data_dir: Path) -> dict[str, str]:
    return {"PROFILE": "embedded", "EMBEDDED_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite:///{data_dir / 'stock.db'}", "BROKER_URL": "filesystem://localhost/",
            "REDIS_URL": "redis://127.0.0.1:9/0"}


@pytest.fixture(scope="module")
def api_key(env: dict[str, str]) -> str:
    """What bin/run does before starting the processes: migrate, then make a key."""
    _run(env, "cli.prestart")
    created = _run(env, "cli.keys", "create", "--name", "quick-start", "--scopes", "read,write,catalog")
    return next(word for word in created.stdout.split() if word.startswith("sk_"))


def start_embedded_worker(env: dict[str, str]) -> Process:
    # One worker process for every shard queue, as bin/run starts it in this profile.
    return start_worker(f"embedded-{os.getpid()}-{next(_worker_names)}", all_queues(), env, pool="threads")


@pytest.fixture(scope="module")
def worker(env: dict[str, str], api_key: str) -> Iterator[list[Process]]:
    """A list holding the running worker, so a test may replace it."""
    running = [start_embedded_worker(env)]
    yield running
    running[0].stop()


@pytest.fixture(scope="module")
def client(env: dict[str, str], api_key: str, worker: list[Process]) -> Iterator[httpx.Client]:
    api, base = start_api(env)
    with httpx.Client(base_url=base, timeout=30,
                      headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c
    api.stop()


def _stock(client: httpx.Client, warehouse: str, sku: str) -> tuple[int, int]:
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    return level["on_hand"], level["version"]


def _metrics(client: httpx.Client, url: str = "/metrics") -> list[Sample]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def _values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    return [s.value for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def _reconcile(env: dict[str, str]) -> None:
    assert "OK: the books balance" in _run(env, "cli.reconcile").stdout


def test_walk_through_catalog_commands_batches_jobs_and_ledger(client, env, data_dir):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}

    sel, bus = unique("SEL"), unique("BUS")
    book, pen = unique("BOOK"), unique("PEN")
    create_catalog(client, [sel, bus], [book, pen])
    assert client.get(f"/v1/warehouses/{sel}").json()["code"] == sel

    # A command, polled until it is done.
    job_id = submit(client, {"type": "receive", "warehouse": sel, "sku": book, "quantity": 10,
                             "reference": "PO-1"})
    job = wait_for_jobs(client, [job_id], timeout=20)[job_id]
    assert job["status"] == "succeeded" and job["result"] == {"on_hand_after": 10, "version_after": 1}

    # A long poll answers as soon as the job is done (the board re-reads the database).
    job_id = submit(client, {"type": "issue", "warehouse": sel, "sku": book, "quantity": 3})
    started = time.monotonic()
    job = client.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=10"}).json()
    assert job["status"] == "succeeded" and time.monotonic() - started < 5

    # An atomic batch: all lines apply.
    r = client.post("/v1/batches", json={"mode": "atomic", "commands": [
        {"type": "transfer", "from_warehouse": sel, "to_warehouse": bus, "sku": book, "quantity": 2},
        {"type": "receive", "warehouse": sel, "sku": pen, "quantity": 5},
        {"type": "receive", "warehouse": bus, "sku": pen, "quantity": 8},
    ]})
    assert r.status_code == 202, r.text
    batch = r.json()["job_id"]
    assert wait_for_jobs(client, [batch], timeout=20)[batch]["result"] == {
        "total": 3, "succeeded": 3, "failed": 0}
    lines = client.get(f"/v1/jobs/{batch}/lines", params={"status": "succeeded"}).json()["items"]
    assert [line["line"] for line in lines] == [0, 1, 2]

    # An atomic batch with a bad line changes nothing; the line is reported.
    r = client.post("/v1/batches", json={"mode": "atomic", "commands": [
        {"type": "receive", "warehouse": sel, "sku": pen, "quantity": 1},
        {"type": "issue", "warehouse": sel, "sku": pen, "quantity": 100},
    ]})
    failed = r.json()["job_id"]
    job = wait_for_jobs(client, [failed], timeout=20)[failed]
    assert job["status"] == "failed" and job["error"]["line"] == 1
    bad = client.get(f"/v1/jobs/{failed}/lines", params={"status": "failed"}).json()["items"]
    assert [(b["line"], b["error"]["type"]) for b in bad] == [(1, "/problems/insufficient-stock")]

    # Never oversold.
    job_id = submit(client, {"type": "issue", "warehouse": bus, "sku": book, "quantity": 3})
    job = wait_for_jobs(client, [job_id], timeout=20)[job_id]
    assert job["status"] == "failed" and job["error"]["type"] == "/problems/insufficient-stock"

    # Reads and the ledger.
    assert _stock(client, sel, book) == (5, 3)
    assert _stock(client, bus, book) == (2, 1)
    assert _stock(client, sel, pen) == (5, 1)
    ledger = client.get("/v1/ledger", params={"warehouse": sel, "sku": book}).json()["items"]
    assert [(e["type"], e["delta"], e["version"]) for e in ledger] == [
        ("receive", 10, 1), ("issue", -3, 2), ("transfer_out", -2, 3)]
    assert ledger[0]["reference"] == "PO-1"

    # A retried POST with its Idempotency-Key names the original job.
    command = {"type": "receive", "warehouse": bus, "sku": pen, "quantity": 1}
    first = client.post("/v1/commands", json=command, headers={"Idempotency-Key": "retry-1"})
    again = client.post("/v1/commands", json=command, headers={"Idempotency-Key": "retry-1"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["job_id"] == first.json()["job_id"]

    # It all went through the SQLite file (in WAL mode) and the queue folder, which is drained.
    with sqlite3.connect(data_dir / "stock.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    wait_for_jobs(client, [first.json()["job_id"]], timeout=20)
    assert list((data_dir / "queue" / "messages").glob("*.msg")) == []
    _reconcile(env)


def test_concurrent_issues_across_processes_never_oversell(client, env):
    warehouse, sku = unique("HOT"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    receipt = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 10})
    wait_for_jobs(client, [receipt], timeout=20)

    issue = {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 1}
    with ThreadPoolExecutor(max_workers=8) as pool:
        job_ids = list(pool.map(lambda _: submit(client, issue), range(25)))
    jobs = wait_for_jobs(client, job_ids, timeout=30)
    statuses = sorted(job["status"] for job in jobs.values())
    assert statuses == ["failed"] * 15 + ["succeeded"] * 10
    assert _stock(client, warehouse, sku) == (0, 11)
    _reconcile(env)


def test_work_queued_while_the_worker_is_down_is_applied_when_it_starts(client, env, data_dir, worker):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    worker[0].kill()

    first = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
    second = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 2})
    # Nobody applies them meanwhile: a long poll gives up after its wait, saying so.
    r = client.get(f"/v1/jobs/{first}", headers={"Prefer": "wait=1"})
    assert r.json()["status"] == "queued" and r.headers["Preference-Applied"] == "wait=1"
    # The first job's wake-up is lost, as when a worker dies after taking it from the folder; the
    # job row is the durable record, and the next worker applies it: with the second job's
    # wake-up, which drains the whole slot in order, or with its sweep. (The two jobs' wake-ups
    # may travel as one message.)
    messages = sorted((data_dir / "queue" / "messages").glob("*.msg"))
    assert len(messages) in (1, 2)
    # /metrics sees them wait: two unfinished job rows, and their message files in the queue folder.
    samples = _metrics(client)
    assert sum(_values(samples, "stock_queue_depth", state="queued")) == 2
    assert sum(_values(samples, "stock_queue_messages")) == len(messages)
    assert _values(samples, "stock_queue_metrics_up", source="queue_folder") == [1]
    messages[0].unlink()

    worker[0] = start_embedded_worker(env)
    jobs = wait_for_jobs(client, [first, second], timeout=20)
    assert [jobs[j]["result"]["version_after"] for j in (first, second)] == [1, 2]  # in accepted order
    assert _stock(client, warehouse, sku) == (3, 2)
    _reconcile(env)


def test_a_wakeup_goes_through_the_folder_and_applies_its_slots_jobs_in_order(client, env, data_dir, worker):
    """The API sends each committed group's slots as one message: through the folder transport,
    the worker drains the slot and applies every job waiting there, oldest first."""
    warehouse, sku = unique("G"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with sqlite3.connect(data_dir / "stock.db") as db:  # job rows as the writer commits them
        db.executemany(
            "INSERT INTO job (id, kind, status, payload, slot, line_count, attempts, submitted_at) "
            "VALUES (?, 'command', 'queued', ?, ?, 1, 0, datetime('now', ?))",
            [(job_id, json.dumps({"type": "receive", "warehouse": warehouse, "sku": sku,
                                  "quantity": quantity}), slot_for(warehouse), f"+{quantity} seconds")
             for job_id, quantity in zip(ids, (1, 2, 3), strict=True)])
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from shared.celery_app import send_wakeups; "
         "send_wakeups({0: [int(sys.argv[1])]})", str(slot_for(warehouse))],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 4  # sooner than the sweep (jobs waiting over 5 s)
    while _stock(client, warehouse, sku)[1] < 3:
        assert time.monotonic() < deadline, "the slot's jobs were not applied by the wake-up"
        time.sleep(0.1)
    ledger = client.get("/v1/ledger", params={"warehouse": warehouse, "sku": sku}).json()["items"]
    assert [(e["delta"], e["version"]) for e in ledger] == [(1, 1), (2, 2), (3, 3)]
    with sqlite3.connect(data_dir / "stock.db") as db:
        statuses = dict(db.execute(f"SELECT id, status FROM job WHERE id IN ({', '.join('?' * 3)})", ids))
    assert statuses == dict.fromkeys(ids, "succeeded")


def test_metrics_and_json_logs_as_in_the_server_profile(client, worker):
    """Main's operations work unchanged here, without Redis: the API's and the worker's /metrics,
    the queue read at scrape time (messages from the queue folder), and JSON lines per job."""
    job_id = submit(client, {"type": "receive", "warehouse": unique("M"), "sku": unique("SKU"),
                             "quantity": 1})
    assert wait_for_jobs(client, [job_id], timeout=20)[job_id]["status"] == "failed"  # unknown codes
    api = _metrics(client)
    assert sum(_values(api, "stock_commands_accepted_total", kind="command")) >= 1
    assert _values(api, "stock_queue_metrics_up", source="queue_folder") == [1]
    assert _values(api, "stock_queue_metrics_up", source="database") == [1]
    assert _values(api, "stock_queue_metrics_up", source="redis") == []
    assert sum(_values(api, "stock_queue_messages")) == 0
    assert sum(_values(api, "stock_queue_depth")) == 0

    applied = _metrics(client, worker[0].metrics_url)
    assert sum(_values(applied, "stock_commands_applied_total")) >= 1
    assert sum(_values(applied, "stock_worker_batch_jobs_count")) >= 1
    lines = [json.loads(line) for line in worker[0].log_path.read_text().splitlines()
             if line.startswith("{")]
    assert any(line.get("job_id") == job_id and line["message"] == "job failed" for line in lines)
