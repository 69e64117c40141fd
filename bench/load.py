"""Throughput scenarios against the service and against the synchronous baseline, in one run.

    .venv/bin/python -m bench.load [--seconds 20] [--clients 32] [--rounds 3] [--driver wrk] [--skip-bulk]

S1 hot SKU: CLIENTS concurrent clients alternating receive/issue of 1 unit on one SKU.
S2 spread:  the same over 10,000 SKUs in 20 warehouses.
S3 bulk:    the 100,000-line receiving run of bench.bulk_receive.
Each of S1 and S2 runs ROUNDS times, the baseline and the service taking turns to go first; the
ratio is the median of the rounds' ratios. Prints a table, writes var/bench-load.json, and
reconciles the books after every scenario.

The load generator shares the two cores with what it measures, and its CPU grows with the rate it
drives, so it takes most from the faster design. wrk (C; Debian's package `wrk`) spends about a twentieth of
the CPU per request that aiohttp does; `--driver aiohttp` needs nothing outside the virtualenv.
"""

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import redis
from sqlalchemy import create_engine, text

from bench import bulk_receive
from bench.stack import (
    LOGS,
    ROOT,
    Stack,
    bench_env,
    bench_key,
    fresh_database,
    shard_queues,
    workers_on_every_queue,
)

TERMINAL = "('succeeded', 'failed', 'partially_failed')"


def catalog(warehouses: int, skus: int) -> tuple[list[str], list[str]]:
    """Warehouse codes LW-00.. and SKUs LS-00000..; bench/commands.lua spells them the same way."""
    return [f"LW-{w:02d}" for w in range(warehouses)], [f"LS-{s:05d}" for s in range(skus)]


def seed(url: str, warehouses: int, skus: int, stock: int) -> None:
    """The catalog, with every level at `stock`."""
    codes, names = catalog(warehouses, skus)
    now = "NOW(6)"
    with create_engine(url).begin() as conn:
        conn.execute(text(f"INSERT INTO warehouse (code, name, active, created_at, updated_at) "
                          f"VALUES (:c, :c, 1, {now}, {now})"), [{"c": c} for c in codes])
        conn.execute(text(f"INSERT INTO product (sku, name, unit, created_at, updated_at) "
                          f"VALUES (:s, :s, 'unit', {now}, {now})"), [{"s": s} for s in names])
        # Opening stock, so issues succeed; it is a level with no ledger yet, so reconcile would
        # object: record it as one opening job and ledger row per level.
        conn.execute(text("INSERT INTO job (id, kind, status, payload, slot, attempts, submitted_at, "
                          "completed_at) VALUES ('opening', 'batch', 'succeeded', '{}', 0, 0, NOW(6), "
                          "NOW(6))"))
        conn.execute(text("UPDATE job SET result = JSON_OBJECT('total', :n, 'succeeded', :n, 'failed', 0) "
                          "WHERE id = 'opening'"), {"n": warehouses * skus})
        conn.execute(text("INSERT INTO stock_level (warehouse_id, product_id, on_hand, version, updated_at) "
                          "SELECT w.id, p.id, :q, 1, NOW(6) FROM warehouse w, product p"), {"q": stock})
        conn.execute(text("INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, version, "
                          "job_id, line, recorded_at) SELECT id, 'receive', :q, :q, 1, 'opening', id, NOW(6) "
                          "FROM stock_level"), {"q": stock})


@dataclass(frozen=True)
class Load:
    """What the clients saw: answers of the expected kind and others, and request latency."""

    accepted: int
    refused: int
    seconds: float
    p50_ms: float
    p99_ms: float


# (url, Authorization header or "", (warehouses, skus), clients, seconds, expected status) -> Load
Driver = Callable[[str, str, tuple[int, int], int, float, int], Load]
WRK_SCRIPT = Path(__file__).with_name("commands.lua")


def drive_wrk(url: str, authorization: str, shape: tuple[int, int], clients: int, seconds: float,
              expect: int) -> Load:
    """wrk, one thread, CLIENTS connections (bench/commands.lua). It counts answers of status 400
    and up as refused, so `expect` (a 2xx) is not told apart from other 2xx answers."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
         "-s", str(WRK_SCRIPT), url, "--", str(shape[0]), str(shape[1]), authorization],
        capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
    refused = result["error_statuses"] + result["socket_errors"]
    return Load(result["responses"] - result["error_statuses"], refused, result["seconds"],
                result["p50_ms"], result["p99_ms"])


def drive_aiohttp(url: str, authorization: str, shape: tuple[int, int], clients: int, seconds: float,
                  expect: int) -> Load:
    """CLIENTS asyncio loops alternating receive/issue of 1 unit, in this process."""
    codes, names = catalog(*shape)
    keys = [(code, name) for code in codes for name in names]
    headers = {"Authorization": authorization} if authorization else {}
    latencies: list[float] = []
    counts = {"ok": 0, "other": 0}
    started = time.monotonic()
    deadline = started + seconds

    async def client(http: aiohttp.ClientSession, n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < deadline:
            warehouse, sku = rng.choice(keys)
            for kind in ("receive", "issue"):
                sent = time.perf_counter()
                async with http.post(f"{url}/v1/commands", json={"type": kind, "warehouse": warehouse,
                                                                 "sku": sku, "quantity": 1}) as r:
                    await r.read()
                latencies.append(time.perf_counter() - sent)
                counts["ok" if r.status == expect else "other"] += 1

    async def run() -> None:
        async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=clients),
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(client(http, n) for n in range(clients)))

    asyncio.run(run())
    return Load(counts["ok"], counts["other"], time.monotonic() - started, pct(latencies, 50),
                pct(latencies, 99))


DRIVERS: dict[str, Driver] = {"wrk": drive_wrk, "aiohttp": drive_aiohttp}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else 0.0


def completion(url: str, since: str) -> tuple[float, float, float]:
    """Applied/s from first accept to last completion, and p50/p99 accept-to-complete in ms."""
    with create_engine(url).connect() as conn:
        rows = conn.execute(text(
            "SELECT TIMESTAMPDIFF(MICROSECOND, submitted_at, completed_at) / 1e6, submitted_at, "
            f"completed_at "
            f"FROM job WHERE id <> 'opening' AND submitted_at >= :s AND status IN {TERMINAL}"),
            {"s": since}).all()
    spans = [float(r[0]) for r in rows]
    window = (max(r[2] for r in rows) - min(r[1] for r in rows)).total_seconds()
    return len(rows) / window, pct(spans, 50), pct(spans, 99)


def wait_drained(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    with create_engine(url).connect() as conn:
        while time.monotonic() < deadline:
            left = conn.execute(text("SELECT COUNT(*) FROM job WHERE status IN ('queued', 'running')"))
            left = left.scalar()
            conn.commit()
            if not left:
                return
            time.sleep(0.2)
    raise RuntimeError("jobs did not drain")


def waiting_wakeups(env: dict[str, str]) -> int:
    """Wake-ups waiting in the shard queues (the benchmarks run on Redis). Not shared.queue_stats:
    importing the Celery app would read the settings before bench_env sets them."""
    with redis.Redis.from_url(env["REDIS_URL"]) as client:
        return sum(client.llen(queue) for queue in shard_queues(env))


def peak_rss_mb(pids: list[int]) -> float:
    """Peak resident memory (VmHWM) of the processes and their children, in MiB."""
    total = 0
    for pid in pids:
        tree = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
        for member in tree:
            try:
                for line in Path(f"/proc/{member}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
    return total / 1024


def service_scenario(name: str, shape: tuple[int, int], args: argparse.Namespace, workers: int = 2,
                     shards: int = 2) -> dict:
    """The service as bin/run starts it, with WORKERS workers each on every one of SHARDS queues."""
    env = bench_env(f"load_{name}", RATE_LIMIT_PER_SECOND="0", MAX_QUEUED_JOBS="1000000",
                    SHARD_COUNT=str(shards))
    fresh_database(env["DATABASE_URL"])
    seed(env["DATABASE_URL"], *shape, stock=1000)
    authorization = bench_key(env["DATABASE_URL"])["Authorization"]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    stack = Stack(env, layout=workers_on_every_queue(shard_queues(env), workers))
    try:
        load = DRIVERS[args.driver](stack.url, authorization, shape, args.clients, args.seconds, 202)
        wait_drained(env["DATABASE_URL"])
        # Wake-ups still queued once every job is applied: each costs a worker a look at its slots.
        wakeups_left = waiting_wakeups(env)
        applied, c50, c99 = completion(env["DATABASE_URL"], since)
        api_mem, worker_mem = peak_rss_mb(stack.pids()[:1]), peak_rss_mb(stack.pids()[1:])
    finally:
        stack.stop()
    mismatches = bulk_receive.reconcile(env["DATABASE_URL"])
    return {"design": "queued (this service)", "accepted": load.accepted, "refused": load.refused,
            "accepted_per_s": load.accepted / load.seconds, "applied_per_s": applied,
            "accept_p50_ms": load.p50_ms, "accept_p99_ms": load.p99_ms,
            "complete_p50_ms": c50, "complete_p99_ms": c99,
            "api_peak_mb": api_mem, "worker_peak_mb": worker_mem, "reconcile_mismatches": len(mismatches),
            "wakeups_left": wakeups_left}


def baseline_scenario(name: str, shape: tuple[int, int], args: argparse.Namespace) -> dict:
    env = bench_env(f"load_{name}_sync")
    fresh_database(env["DATABASE_URL"])
    seed(env["DATABASE_URL"], *shape, stock=1000)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / "sync-baseline.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.sync_baseline:app", "--port", "8766",
                             "--workers", "2", "--loop", "uvloop", "--http", "httptools",
                             "--no-access-log", "--log-level", "warning"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(100):
            try:
                httpx.get("http://127.0.0.1:8766/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        load = DRIVERS[args.driver]("http://127.0.0.1:8766", "", shape, args.clients, args.seconds, 200)
        mem = peak_rss_mb([proc.pid])
    finally:
        proc.terminate()
        proc.wait(20)
    throughput = load.accepted / load.seconds  # each answer came after its commit
    return {"design": "synchronous baseline", "accepted": load.accepted, "refused": load.refused,
            "accepted_per_s": throughput, "applied_per_s": throughput,
            "accept_p50_ms": load.p50_ms, "accept_p99_ms": load.p99_ms,
            "complete_p50_ms": load.p50_ms, "complete_p99_ms": load.p99_ms,
            "api_peak_mb": mem, "worker_peak_mb": 0.0,
            "reconcile_mismatches": len(bulk_receive.reconcile(env["DATABASE_URL"]))}


SCENARIOS = {"S1 hot SKU": (1, 1), "S2 spread": (20, 500)}


def run_rounds(name: str, shape: tuple[int, int], args: argparse.Namespace) -> dict:
    """ROUNDS pairs of runs, the baseline first in odd rounds and second in even ones, so a machine
    that speeds up or slows down over the pair favours neither design overall."""
    slug = name.split()[0].lower()
    runs = {"baseline": baseline_scenario, "service": service_scenario}
    rounds = []
    for n in range(args.rounds):
        order = list(runs) if n % 2 == 0 else list(runs)[::-1]
        pair = {role: runs[role](slug, shape, args) for role in order}
        pair["ratio"] = pair["service"]["applied_per_s"] / pair["baseline"]["applied_per_s"]
        rounds.append(pair)
    return {"rounds": rounds, "median_ratio": statistics.median(r["ratio"] for r in rounds)}


def print_table(results: dict[str, dict]) -> None:
    header = (f"{'scenario':<12}{'round':>6} {'design':<24}{'accepted/s':>11}{'applied/s':>10}{'acc p50':>9}"
              f"{'acc p99':>9}{'done p50':>10}{'done p99':>10}{'api MB':>8}{'wkr MB':>8}{'ok':>4}")
    print(header)
    for name, result in results.items():
        for n, pair in enumerate(result["rounds"], 1):
            for r in (pair["baseline"], pair["service"]):
                print(f"{name:<12}{n:>6} {r['design']:<24}{r['accepted_per_s']:>11.0f}"
                      f"{r['applied_per_s']:>10.0f}{r['accept_p50_ms']:>9.1f}{r['accept_p99_ms']:>9.1f}"
                      f"{r['complete_p50_ms']:>10.1f}{r['complete_p99_ms']:>10.1f}"
                      f"{r['api_peak_mb']:>8.0f}{r['worker_peak_mb']:>8.0f}"
                      f"{'yes' if not r['reconcile_mismatches'] else 'NO':>4}")
            print(f"{'':<19}ratio applied/s service / baseline: {pair['ratio']:.2f}")
        ratios = ", ".join(f"{pair['ratio']:.2f}" for pair in result["rounds"])
        print(f"{name}: median ratio {result['median_ratio']:.2f} (rounds: {ratios})")
    print("(latencies in ms; 'ok' = reconcile found no lost or duplicated command)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="wrk")
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()
    if args.driver == "wrk" and shutil.which("wrk") is None:
        sys.exit("wrk not found: install it (Debian: apt-get install wrk) or pass --driver aiohttp")

    results = {name: run_rounds(name, shape, args) for name, shape in SCENARIOS.items()}
    print_table(results)
    out = ROOT / "var" / "bench-load.json"
    out.write_text(json.dumps({"driver": args.driver, "clients": args.clients, "seconds": args.seconds,
                               "scenarios": results}, indent=2))
    print(f"wrote {out}")
    if not args.skip_bulk:
        print("\nS3 bulk:")
        sys.argv = [sys.argv[0]]
        bulk_receive.main()


if __name__ == "__main__":
    main()
