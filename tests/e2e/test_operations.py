"""Operations: after real traffic through a real API and worker, both /metrics endpoints show the
series the dashboard and the alerts use, with non-zero values, and the JSON logs follow one command
from its request to its commit.

The stack here is its own (a database and queue names of its own, a tiny high-water mark, a low rate
limit, a short lock wait), so it can be driven into 503s, 429s and lock-wait retries without touching
other tests, and its worker's start-up recovery finds no other test's jobs.
"""

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.samples import Sample
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cli.prestart import create_database_if_missing, upgrade
from shared.api_keys import create_key
from tests.support.client import unique
from tests.support.processes import Process, start_api, start_worker
from tests.support.promql import metric_names, scrape

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "stock.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"

RUN = uuid.uuid4().hex[:6]
ENV = {"QUEUE_PREFIX": f"ops-{RUN}", "SHARD_COUNT": "2", "MAX_QUEUED_JOBS": "3",
       "RATE_LIMIT_PER_SECOND": "10", "RATE_LIMIT_BURST": "30", "LOCK_WAIT_TIMEOUT_SECONDS": "1",
       "LOG_LEVEL": "DEBUG"}


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    for _ in range(6):
        body = client.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=10"}).json()
        if body["status"] in {"succeeded", "failed", "partially_failed"}:
            return body
    raise AssertionError(f"job {job_id} did not finish: {body}")


def _until_drained(metrics_url: str) -> None:
    deadline = time.monotonic() + 30
    while total(scrape(metrics_url), "stock_queue_depth") > 0:
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.2)


def _until_logged(process: Process, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in process.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{process.name} never logged {text}"
        time.sleep(0.1)


@contextmanager
def _row_locked(engine: Engine, warehouse: str, sku: str) -> Iterator[None]:
    """Hold the stock row's lock, as a long transaction of another client would."""
    with engine.connect() as conn, conn.begin():
        locked = conn.execute(text(
            "SELECT sl.id FROM stock_level sl JOIN warehouse w ON w.id = sl.warehouse_id "
            "JOIN product p ON p.id = sl.product_id WHERE w.code = :w AND p.sku = :s FOR UPDATE"),
            {"w": warehouse, "s": sku}).all()
        assert len(locked) == 1
        yield


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, Engine]]:
    url = make_url(os.environ["DATABASE_URL"])
    url = url.set(database=f"{url.database}_ops")
    server = create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
    address = url.render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    create_database_if_missing(address)
    upgrade(address)
    engine = create_engine(url)
    yield address, engine
    engine.dispose()
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))


def _key(engine: Engine, scopes: set[str], name: str) -> str:
    with Session(engine) as session, session.begin():
        return create_key(session, name=name, scopes=frozenset(scopes))


@pytest.fixture(scope="module")
def traffic(database: tuple[str, Engine]) -> Iterator[dict[str, Any]]:
    address, engine = database
    env = {**ENV, "DATABASE_URL": address}
    api, base = start_api(env)
    worker: Process | None = None
    key, other_key = _key(engine, {"read", "write", "catalog"}, "ops"), _key(engine, {"write"}, "ops-burst")
    try:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as client:
            warehouse, sku = unique("OPS"), unique("SKU")
            assert client.post("/v1/warehouses", json={"code": warehouse, "name": "w"}).status_code == 201
            assert client.post("/v1/products", json={"sku": sku, "name": "p"}).status_code == 201
            line = {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5}
            submitted = [  # no worker yet: these wait in the queue up to the high-water mark (3)
                client.post("/v1/commands", json={**line, "quantity": 10}),
                client.post("/v1/commands", json={**line, "type": "issue", "quantity": 100}),
                client.post("/v1/batches", json={"mode": "atomic", "commands": [line, line]}),
            ]
            assert [r.status_code for r in submitted] == [202, 202, 202]
            # Each API process recounts unfinished jobs at most every 0.1 s (api/accept/writer.py).
            time.sleep(0.3)
            overloaded = client.post("/v1/commands", json=line)
            assert overloaded.status_code == 503, overloaded.text
            invalid = client.post("/v1/commands", json={**line, "quantity": "5"})
            assert invalid.status_code == 422
            queued_scrape = scrape(api.metrics_url)

            worker = start_worker(f"ops-{RUN}", [f"ops-{RUN}.0", f"ops-{RUN}.1"], env=env)
            finished = [_wait(client, r.json()["job_id"]) for r in submitted]
            _until_drained(api.metrics_url)
            time.sleep(0.3)  # each API process recounts unfinished jobs at most every 0.1 s

            # A command whose row another transaction holds past the worker's 1 s lock wait:
            # the worker rolls back, retries, and applies it once the lock is gone.
            request_id = f"ops-test-{uuid.uuid4().hex}"
            with _row_locked(engine, warehouse, sku):
                held = client.post("/v1/commands", json={**line, "type": "issue", "quantity": 1},
                                   headers={"X-Request-ID": request_id})
                assert held.status_code == 202, held.text
                assert held.headers["x-request-id"] == request_id
                _until_logged(worker, '"lock conflict 1205')  # then let go
            retried = _wait(client, held.json()["job_id"])

        # Another key bursts past its bucket (30, refilling 10/s) with bad bodies: 422s, then a 429.
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {other_key}"}) as burst:
            statuses: list[int] = []
            while 429 not in statuses and len(statuses) < 300:
                statuses.append(burst.post("/v1/commands", json={"type": "receive"}).status_code)
        assert 429 in statuses and statuses.count(422) >= 30

        yield {"api": api, "worker": worker, "queued": queued_scrape,
               "api_samples": scrape(api.metrics_url), "worker_samples": scrape(worker.metrics_url),
               "finished": finished, "retried": retried, "request_id": request_id,
               "keys": [key, other_key]}
    finally:
        if worker is not None:
            worker.stop()
        api.stop()


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    return [s.value for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    found = values(samples, name, **labels)
    assert found, f"no series {name}{labels}"
    return sum(found)


def test_the_jobs_ended_as_expected(traffic):
    assert [job["status"] for job in traffic["finished"]] == ["succeeded", "failed", "succeeded"]
    assert traffic["finished"][1]["error"]["type"] == "/problems/insufficient-stock"
    assert traffic["retried"]["status"] == "succeeded"


def test_queue_depth_and_age_are_read_at_scrape_time(traffic):
    queued = traffic["queued"]
    assert total(queued, "stock_queue_depth", state="queued") == 3  # accepted, waiting for a worker
    assert total(queued, "stock_queue_messages") >= 1  # one or more jobs per message
    for shard in ("0", "1"):
        assert values(queued, "stock_queue_depth", shard=shard, state="running")
        assert values(queued, "stock_queue_oldest_job_age_seconds", shard=shard)
        assert values(queued, "stock_queue_messages", shard=shard)
    assert max(values(queued, "stock_queue_oldest_job_age_seconds")) > 0
    assert total(queued, "stock_queue_high_water_mark") == 3
    assert values(queued, "stock_queue_metrics_up", source="redis") == [1]
    assert values(queued, "stock_queue_metrics_up", source="database") == [1]
    # Drained: nothing waits and nothing is old any more.
    assert total(traffic["api_samples"], "stock_queue_depth") == 0
    assert total(traffic["api_samples"], "stock_queue_messages") == 0
    assert max(values(traffic["api_samples"], "stock_queue_oldest_job_age_seconds")) == 0


def test_api_metrics_count_every_process_requests(traffic):
    api = traffic["api_samples"]
    # Exact: the two API processes' counts are added up, not one process's share.
    assert total(api, "stock_commands_accepted_total", kind="command") == 3
    assert total(api, "stock_commands_accepted_total", kind="batch") == 1
    assert total(api, "stock_commands_rejected_total", kind="command", reason="overloaded") == 1
    assert total(api, "stock_commands_rejected_total", kind="command", reason="validation-error") >= 31
    assert total(api, "stock_commands_rejected_total", kind="command", reason="rate-limited") > 0
    for status in ("202", "422", "429", "503"):
        assert total(api, "stock_http_requests_total", route="/v1/commands", status=status) > 0
    assert total(api, "stock_http_requests_total", route="/v1/jobs/{job_id}", status="200") > 0
    assert total(api, "stock_http_request_duration_seconds_count", route="/v1/commands", status="202") == 3
    assert total(api, "stock_http_request_duration_seconds_sum", route="/v1/commands", status="202") > 0


def test_worker_metrics_after_traffic(traffic):
    worker = traffic["worker_samples"]
    assert total(worker, "stock_commands_applied_total", type="receive", outcome="succeeded") == 1
    assert total(worker, "stock_commands_applied_total", type="issue", outcome="insufficient-stock") == 1
    assert total(worker, "stock_commands_applied_total", type="issue", outcome="succeeded") == 1
    assert total(worker, "stock_commands_applied_total", type="batch", outcome="succeeded") == 1
    assert total(worker, "stock_batch_lines_applied_total", outcome="succeeded") == 2
    assert total(worker, "stock_worker_batch_jobs_count") > 0
    assert total(worker, "stock_worker_batch_jobs_sum") >= 4
    assert total(worker, "stock_worker_transaction_seconds_count", transaction="apply",
                 result="committed") > 0
    assert total(worker, "stock_worker_transaction_seconds_sum", transaction="apply") > 0
    assert total(worker, "stock_worker_transaction_retries_total", transaction="apply",
                 reason="lock_wait") > 0
    assert values(worker, "stock_worker_transaction_retries_total", reason="deadlock")  # at 0 until one
    assert total(worker, "stock_job_accept_to_complete_seconds_count", kind="command") == 3
    assert total(worker, "stock_job_accept_to_complete_seconds_sum", kind="command") > 1  # it waited


def _exported(traffic: dict[str, Any]) -> set[str]:
    return {s.name for s in traffic["api_samples"] + traffic["worker_samples"]}


# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up"}


def test_every_dashboard_panel_queries_series_the_service_exports(traffic):
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported(traffic)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            assert names <= exported, f"{panel['title']}: {sorted(names - exported)} not exported"


def test_every_alert_names_series_the_service_exports(traffic):
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert rules
    exported = _exported(traffic) | PROMETHEUS_SERIES
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric in {rule['expr']}"
        assert names <= exported, f"{rule['alert']}: {sorted(names - exported)} not exported"


def _json_lines(process: Process) -> list[dict[str, Any]]:
    lines = []
    for raw in process.log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))  # a line that looks like JSON must be JSON
    return lines


def test_logs_are_json_and_follow_a_command_from_request_to_commit(traffic):
    request_id, job_id = traffic["request_id"], traffic["retried"]["job_id"]
    api_lines, worker_lines = _json_lines(traffic["api"]), _json_lines(traffic["worker"])
    assert any(line.get("request_id") == request_id and line.get("job_id") == job_id
               and line.get("route") == "/v1/commands" and line.get("status") == 202
               for line in api_lines)
    applied = [line for line in worker_lines if line.get("job_id") == job_id]
    assert any(line["message"] == "job succeeded" and line.get("request_id") == request_id
               for line in applied), applied
    retry_lines = [line for line in worker_lines if line["message"].startswith("lock conflict")]
    assert retry_lines and all("batch_id" in line for line in retry_lines)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in api_lines + worker_lines)


def test_logs_hold_no_api_key_and_no_pepper(traffic):
    logs = traffic["api"].log_path.read_text() + traffic["worker"].log_path.read_text()
    for key in traffic["keys"]:
        secret = key.split("_", 2)[2]
        assert secret not in logs
    assert os.environ["API_KEY_PEPPER"] not in logs
