"""Scaling: the fire-and-forget spread scenario with 1, 2 and 4 worker processes and 2, 8 and 32
shards, every cell in the same run.

    .venv/bin/python -m bench.scaling [--seconds 20] [--clients 32] [--workers 1,2,4] [--shards 2,8,32]
                                      [--rounds 1] [--driver wrk]

Each cell is S2 of bench.load (CLIENTS connections alternating receive/issue of 1 unit over 10,000
SKUs in 20 warehouses; nobody waits for an outcome) against a fresh database and the service as
bin/run starts it, with WORKERS workers each consuming every one of SHARDS queues. It reports
accepted/s (202s over the load's seconds), applied/s (jobs from the first accept to the last
completion), accept-to-complete p50/p99, the wake-ups still queued once every job was applied, and
whether the books reconcile; and each cell's ratios against the 2-worker, 2-shard cell (bin/run's
default) of the same round. With ROUNDS above one, the cells run in reverse order every other round
(so a machine that speeds up or slows down favours no cell) and the table shows each cell's median.
Writes var/bench-scaling.json.

On two cores every process shares the same CPUs, so more workers cannot add throughput there: the
point is that neither more workers nor more shards cost any, and where the limit moves (the API,
the database's commits, the workers' CPU).
"""

import argparse
import json
import shutil
import statistics
import sys
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.load import DRIVERS, SCENARIOS, service_scenario
from bench.stack import ROOT, bench_env

REFERENCE = (2, 2)  # (workers, shards) of bin/run's default
SHAPE = SCENARIOS["S2 spread"]
OUT = ROOT / "var" / "bench-scaling.json"


def _numbers(text_: str) -> list[int]:
    return [int(n) for n in text_.split(",") if n.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="load per cell")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=_numbers, default=[1, 2, 4], help="worker processes, e.g. 1,2,4")
    parser.add_argument("--shards", type=_numbers, default=[2, 8, 32], help="SHARD_COUNT values, e.g. 2,8,32")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="wrk")
    args = parser.parse_args(argv)
    if REFERENCE[0] not in args.workers or REFERENCE[1] not in args.shards:
        parser.error(f"the cells must include the reference: {REFERENCE[0]} workers, {REFERENCE[1]} shards")
    return args


def _cell_name(workers: int, shards: int) -> str:
    return f"scaling_w{workers}_s{shards}"


def _forget(workers: int, shards: int) -> None:
    """Drop the cell's database and the wake-ups it left queued, so that runs leave nothing."""
    env = bench_env(f"load_{_cell_name(workers, shards)}")
    url = make_url(env["DATABASE_URL"])
    with create_engine(url.set(database=""), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    client = redis.Redis.from_url(env["REDIS_URL"])
    for key in client.scan_iter(f"{env['QUEUE_PREFIX']}*"):
        client.delete(key)


def run_cells(args: argparse.Namespace) -> dict[tuple[int, int], list[dict[str, Any]]]:
    cells = [(w, s) for w in args.workers for s in args.shards]
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {cell: [] for cell in cells}
    for n in range(args.rounds):
        for workers, shards in cells if n % 2 == 0 else cells[::-1]:
            print(f"[scaling] round {n + 1}: {workers} worker(s), {shards} shards", flush=True)
            runs[(workers, shards)].append(
                service_scenario(_cell_name(workers, shards), SHAPE, args, workers=workers, shards=shards))
            _forget(workers, shards)
    return runs


def summarise(runs: dict[tuple[int, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per cell: medians over the rounds, and the median of each round's ratios against the
    reference cell of that round."""
    reference = runs[REFERENCE]
    rows = []
    for (workers, shards), results in runs.items():
        row: dict[str, Any] = {"workers": workers, "shards": shards, "rounds": results}
        for key in ("accepted_per_s", "applied_per_s", "complete_p50_ms", "complete_p99_ms", "wakeups_left"):
            row[key] = statistics.median(r[key] for r in results)
        for key in ("accepted_per_s", "applied_per_s"):
            row[f"{key}_ratio"] = statistics.median(
                r[key] / ref[key] for r, ref in zip(results, reference, strict=True))
        row["books_ok"] = all(not r["reconcile_mismatches"] for r in results)
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'workers':>7}{'shards':>7}{'accepted/s':>11}{'applied/s':>10}{'x acc':>7}{'x appl':>7}"
          f"{'done p50':>9}{'done p99':>9}{'wake-ups left':>14}{'ok':>4}")
    for r in rows:
        print(f"{r['workers']:>7}{r['shards']:>7}{r['accepted_per_s']:>11.0f}{r['applied_per_s']:>10.0f}"
              f"{r['accepted_per_s_ratio']:>7.2f}{r['applied_per_s_ratio']:>7.2f}"
              f"{r['complete_p50_ms']:>9.0f}{r['complete_p99_ms']:>9.0f}{r['wakeups_left']:>14.0f}"
              f"{'yes' if r['books_ok'] else 'NO':>4}")
    print(f"(x: ratio to the {REFERENCE[0]}-worker, {REFERENCE[1]}-shard cell of the same round; "
          "done: accept-to-complete in ms; ok: reconcile found no lost or duplicated command)")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.driver == "wrk" and shutil.which("wrk") is None:
        sys.exit("wrk not found: install it (Debian: apt-get install wrk) or pass --driver aiohttp")
    rows = summarise(run_cells(args))
    print()
    print_table(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"driver": args.driver, "clients": args.clients, "seconds": args.seconds,
                               "rounds": args.rounds, "reference": REFERENCE, "cells": rows}, indent=2))
    print(f"wrote {OUT}")
    return 0 if all(r["books_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
