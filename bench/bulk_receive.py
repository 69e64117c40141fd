"""Bulk receiving benchmark: 100,000 receive lines in batches of 5,000, end to end through the API,
queue and worker, next to the practical ceiling measured in the same run: the same lines written by
one process with plain multi-row SQL under the same locks.

    .venv/bin/python -m bench.bulk_receive [--lines 100000] [--batch 5000] [--skus 5000]
"""

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from sqlalchemy import bindparam, create_engine, text

from bench.stack import ROOT, Stack, bench_env, bench_key, fresh_database
from shared.ordering import slot_for

TERMINAL = {"succeeded", "failed", "partially_failed"}


def seed_catalog(url: str, warehouses: list[str], skus: int) -> list[str]:
    names = [f"BULK-{i:06d}" for i in range(skus)]
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO warehouse (code, name, active, created_at, updated_at) "
                          "VALUES (:c, :c, 1, NOW(6), NOW(6))"), [{"c": w} for w in warehouses])
        conn.execute(text("INSERT INTO product (sku, name, unit, created_at, updated_at) "
                          "VALUES (:s, :s, 'unit', NOW(6), NOW(6))"), [{"s": s} for s in names])
    return names


def make_batches(warehouses: list[str], skus: list[str], lines: int, size: int) -> list[list[dict]]:
    batches = []
    for start in range(0, lines, size):
        warehouse = warehouses[(start // size) % len(warehouses)]
        batches.append([{"type": "receive", "warehouse": warehouse, "sku": skus[i % len(skus)],
                         "quantity": 1 + i % 5} for i in range(start, min(lines, start + size))])
    return batches


def plain_sql_ceiling(url: str, batches: list[list[dict]]) -> float:
    """One process, one transaction per batch: lock sorted levels, multi-row ledger insert and
    balance upsert. No HTTP, no queue, no job bookkeeping: what the storage alone can do."""
    engine = create_engine(url, isolation_level="READ COMMITTED")
    with engine.connect() as conn:
        wid = dict(conn.execute(text("SELECT code, id FROM warehouse")).all())
        pid = dict(conn.execute(text("SELECT sku, id FROM product")).all())
    started = time.perf_counter()
    for n, batch in enumerate(batches):
        with engine.begin() as conn:
            keys = sorted({(wid[c["warehouse"]], pid[c["sku"]]) for c in batch})
            now = datetime.now(UTC).replace(tzinfo=None)
            # Every value a parameter: pymysql turns executemany into one multi-row INSERT only then.
            conn.execute(text("INSERT IGNORE INTO stock_level (warehouse_id, product_id, on_hand, version, "
                              "updated_at) VALUES (:w, :p, :o, :v, :t)"),
                         [{"w": w, "p": p, "o": 0, "v": 0, "t": now} for w, p in keys])
            rows = conn.execute(text(
                "SELECT id, warehouse_id, product_id, on_hand, version FROM stock_level "
                "WHERE warehouse_id = :w AND product_id IN :ps ORDER BY product_id FOR UPDATE")
                .bindparams(bindparam("ps", expanding=True)),
                {"w": keys[0][0], "ps": [p for _, p in keys]}).all()
            state = {(r.warehouse_id, r.product_id): [r.id, r.on_hand, r.version] for r in rows}
            job = f"ceiling-{n}"
            conn.execute(text("INSERT INTO job (id, kind, mode, status, payload, slot, attempts, "
                              "submitted_at) VALUES (:j, 'batch', 'atomic', 'succeeded', '{}', 0, 0, "
                              "NOW(6))"), {"j": job})
            ledger = []
            for line, c in enumerate(batch):
                s = state[(wid[c["warehouse"]], pid[c["sku"]])]
                s[1] += c["quantity"]
                s[2] += 1
                ledger.append({"l": s[0], "y": "receive", "d": c["quantity"], "a": s[1], "v": s[2],
                               "j": job, "n": line, "t": now})
            conn.execute(text("INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, "
                              "version, job_id, line, recorded_at) VALUES "
                              "(:l, :y, :d, :a, :v, :j, :n, :t)"), ledger)
            conn.execute(text("INSERT INTO stock_level (id, warehouse_id, product_id, on_hand, version, "
                              "updated_at) VALUES (:i, :w, :p, :o, :v, :t) ON DUPLICATE KEY UPDATE "
                              "on_hand = VALUES(on_hand), version = VALUES(version), "
                              "updated_at = VALUES(updated_at)"),
                         [{"i": s[0], "w": k[0], "p": k[1], "o": s[1], "v": s[2], "t": now}
                          for k, s in state.items()])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return sum(len(b) for b in batches) / elapsed


def end_to_end(stack: Stack, headers: dict[str, str], batches: list[list[dict]],
               clients: int) -> tuple[float, float]:
    """Lines per second from the first POST to the last job completion, and the accept rate."""

    def post(batch: list[dict]) -> str:
        with httpx.Client(base_url=stack.url, timeout=120, headers=headers) as client:
            r = client.post("/v1/batches", json={"mode": "atomic", "commands": batch})
            r.raise_for_status()
            return r.json()["job_id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        job_ids = list(pool.map(post, batches))
    accepted = time.perf_counter() - started
    with httpx.Client(base_url=stack.url, timeout=60, headers=headers) as client:
        pending = set(job_ids)
        while pending:
            for job_id in list(pending):
                body = client.get(f"/v1/jobs/{job_id}").json()
                if body["status"] in TERMINAL:
                    if body["status"] != "succeeded":
                        raise RuntimeError(f"job {job_id} ended {body}")
                    pending.discard(job_id)
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    lines = sum(len(b) for b in batches)
    return lines / elapsed, lines / accepted


def reconcile(url: str) -> list[str]:
    from sqlalchemy.orm import Session

    from shared.stock.reconcile import find_mismatches
    engine = create_engine(url)
    with Session(engine) as session:
        return find_mismatches(session)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--skus", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    # Two warehouses, as a receiving day spread over warehouses would be: in two ordering slots,
    # so two workers can apply their batches at the same time.
    warehouses = ["BULK-A", "BULK-D"]
    assert len({slot_for(w) for w in warehouses}) == 2
    ceiling_env = bench_env("ceiling")
    fresh_database(ceiling_env["DATABASE_URL"])
    skus = seed_catalog(ceiling_env["DATABASE_URL"], warehouses, args.skus)
    batches = make_batches(warehouses, skus, args.lines, args.batch)
    ceiling = plain_sql_ceiling(ceiling_env["DATABASE_URL"], batches)

    env = bench_env("bulk")
    fresh_database(env["DATABASE_URL"])
    seed_catalog(env["DATABASE_URL"], warehouses, args.skus)
    stack = Stack(env)
    try:
        applied, accepted = end_to_end(stack, bench_key(env["DATABASE_URL"]), batches, args.clients)
    finally:
        stack.stop()
    mismatches = reconcile(env["DATABASE_URL"])

    result = {"lines": args.lines, "batch": args.batch, "ceiling_lines_per_s": round(ceiling),
              "end_to_end_lines_per_s": round(applied), "accept_lines_per_s": round(accepted),
              "ratio_to_ceiling": round(applied / ceiling, 2), "reconcile_mismatches": len(mismatches)}
    print(f"{'path':<34}{'lines/s':>12}")
    print(f"{'plain multi-row SQL (ceiling)':<34}{ceiling:>12,.0f}")
    print(f"{'API -> queue -> worker (end to end)':<34}{applied:>12,.0f}")
    print(f"{'  accepted by the API':<34}{accepted:>12,.0f}")
    print(f"ratio end to end / ceiling: {applied / ceiling:.2f}  (target >= 0.50 and >= 15,000 lines/s)")
    print(f"reconcile: {'OK' if not mismatches else mismatches[:5]}")
    out = ROOT / "var" / "bench-bulk_receive.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
