"""S4, the client that waits for its outcome: open loop at fixed offered rates, the way an
integration that POSTs a command and needs its result feels the service.

    .venv/bin/python -m bench.waiting [--seconds 8] [--rates 100,200,...] [--shapes spread,hot]

Designs, each on a fresh database, its rates rising until the outcome p99 passes 1 s:
- `wait`: this service, POST with `Prefer: wait=30`: the answer is the outcome (one round trip);
- `poll`: this service, POST, then `GET /v1/jobs/{id}` with `Prefer: wait=30` (a long poll);
- `baseline`: the synchronous peer (bench/sync_baseline.py), one locked transaction per request;
  its answer is the outcome.
Shapes: `spread` (receive/issue of 1 unit on 10,000 levels in 20 warehouses) and `hot` (one level).
For each step: achieved outcomes/s, accept and accept-to-outcome p50/p99, errors, and the API's CPU
per request; then the highest rate whose outcome p99 stayed under 100 ms and under 1 s. Writes
var/bench-waiting.json and reconciles the books of every run.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import bulk_receive
from bench.load import catalog, seed, wait_drained
from bench.openloop import Connection, Timing, Work, drive
from bench.stack import LOGS, ROOT, Stack, bench_env, bench_key, fresh_database

SHAPES = {"spread": (20, 500), "hot": (1, 1)}
DEFAULT_RATES = (100, 200, 400, 800, 1200, 1600, 2000, 2500, 3000, 4000)
TERMINAL = {"succeeded", "failed", "partially_failed"}
BASELINE_PORT = 8766


def spread_commands(shape: tuple[int, int], seed_: int) -> Callable[[int], bytes]:
    codes, skus = catalog(*shape)
    levels = [(w, s) for w in codes for s in skus]
    rng = random.Random(seed_)

    def command(n: int) -> bytes:
        warehouse, sku = rng.choice(levels)
        kind = "receive" if n % 2 == 0 else "issue"
        return json.dumps({"type": kind, "warehouse": warehouse, "sku": sku, "quantity": 1}).encode()

    return command


def _long_poll(job_id: str, auth: dict[str, str]) -> Callable[[Connection], object]:
    async def poll(connection: Connection) -> dict:
        while True:
            answer = await connection.send("GET", f"/v1/jobs/{job_id}", {**auth, "Prefer": "wait=30"})
            job = answer.json()
            if job.get("status") in TERMINAL:
                return job
    return poll


def wait_work(auth: dict[str, str], body: bytes) -> Work:
    async def work(connection: Connection, elapsed: Callable[[], float], timing: Timing) -> None:
        answer = await connection.send("POST", "/v1/commands", {**auth, "Prefer": "wait=30"}, body)
        timing.accepted, timing.status = elapsed(), answer.status
        if answer.status == 200:
            timing.outcome = timing.accepted
        elif answer.status == 202:
            await _long_poll(answer.json()["job_id"], auth)(connection)
            timing.outcome = elapsed()
    return work


def poll_work(auth: dict[str, str], body: bytes) -> Work:
    async def work(connection: Connection, elapsed: Callable[[], float], timing: Timing) -> None:
        answer = await connection.send("POST", "/v1/commands", auth, body)
        timing.accepted, timing.status = elapsed(), answer.status
        if answer.status == 202:
            await _long_poll(answer.json()["job_id"], auth)(connection)
            timing.outcome = elapsed()
    return work


def baseline_work(_auth: dict[str, str], body: bytes) -> Work:
    async def work(connection: Connection, elapsed: Callable[[], float], timing: Timing) -> None:
        answer = await connection.send("POST", "/v1/commands", {}, body)
        timing.accepted, timing.status = elapsed(), answer.status
        if answer.status in (200, 409):  # 409: not enough stock, an outcome too
            timing.outcome = timing.accepted
    return work


WORKS = {"wait": wait_work, "poll": poll_work, "baseline": baseline_work}
WARM_UP_SECONDS = 1.0


def _work(design: str, auth: dict[str, str], commands: Callable[[int], bytes]) -> Callable[[int], Work]:
    return lambda n: WORKS[design](auth, commands(n))


def pct(seconds: list[float], q: int) -> float:
    """The q-th percentile, in milliseconds."""
    return statistics.quantiles(seconds, n=100)[q - 1] * 1000 if len(seconds) > 1 else 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process group so far (the API: uvicorn and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    members = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    total = 0
    for member in members:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / ticks


def summarize(rate: float, timings: list[Timing], cpu: float | None) -> dict:
    accepted = [t.accepted for t in timings if t.accepted is not None]
    done = [t for t in timings if t.outcome is not None]
    window = max(t.due + t.outcome for t in done) - min(t.due for t in timings) if done else 0
    return {"offered_per_s": rate, "requests": len(timings), "outcomes": len(done),
            "achieved_per_s": len(done) / window if window else 0.0,
            "errors": sum(1 for t in timings if t.error or t.outcome is None),
            "accept_p50_ms": pct(accepted, 50), "accept_p99_ms": pct(accepted, 99),
            "outcome_p50_ms": pct([t.outcome for t in done], 50),
            "outcome_p99_ms": pct([t.outcome for t in done], 99),
            "api_cpu_us_per_request": cpu / len(timings) * 1e6 if cpu is not None and timings else None}


def start_baseline(env: dict[str, str], port: int = BASELINE_PORT) -> subprocess.Popen:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / "sync-baseline-waiting.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "uvicorn", "bench.sync_baseline:app", "--port", str(port),
               "--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the baseline did not start")


def ramp(design: str, shape_name: str, rates: list[int], seconds: float) -> dict:
    """One design on one shape: rising rates on a fresh database until the outcome p99 passes 1 s."""
    env = bench_env(f"wait_{design}_{shape_name}", RATE_LIMIT_PER_SECOND="0", MAX_QUEUED_JOBS="1000000",
                    MAX_WAITING_REQUESTS="100000", MAX_WAITING_REQUESTS_PER_KEY="100000")
    fresh_database(env["DATABASE_URL"])
    seed(env["DATABASE_URL"], *SHAPES[shape_name], stock=100_000)
    auth = {} if design == "baseline" else bench_key(env["DATABASE_URL"])
    stack = start_baseline(env) if design == "baseline" else Stack(env)
    url = f"http://127.0.0.1:{BASELINE_PORT}" if design == "baseline" else stack.url
    pid = stack.pid if design == "baseline" else stack.pids()[0]
    steps = []
    try:
        for n, rate in enumerate(rates):
            work = _work(design, auth, spread_commands(SHAPES[shape_name], n))
            drive(url, rate, WARM_UP_SECONDS, work)  # connections opened, caches warm: not counted
            before = cpu_seconds(pid)
            timings = drive(url, rate, seconds, work)
            step = summarize(rate, timings, cpu_seconds(pid) - before)
            steps.append(step)
            print(f"  {design:<9}{shape_name:<7}{rate:>6}/s: achieved {step['achieved_per_s']:>7.0f}/s, "
                  f"accept p50/p99 {step['accept_p50_ms']:.1f}/{step['accept_p99_ms']:.1f} ms, "
                  f"outcome p50/p99 {step['outcome_p50_ms']:.1f}/{step['outcome_p99_ms']:.1f} ms, "
                  f"errors {step['errors']}, API CPU {step['api_cpu_us_per_request'] or 0:.0f} us/req",
                  flush=True)
            if design != "baseline":
                wait_drained(env["DATABASE_URL"])
            if step["outcome_p99_ms"] > 1000 or step["errors"] > step["requests"] * 0.01:
                break
    finally:
        if design == "baseline":
            stack.terminate()
            stack.wait(20)
        else:
            stack.stop()
    return {"design": design, "shape": shape_name, "steps": steps,
            "best_under_100ms": best_rate(steps, 100), "best_under_1s": best_rate(steps, 1000),
            "reconcile_mismatches": len(bulk_receive.reconcile(env["DATABASE_URL"]))}


def best_rate(steps: list[dict], p99_ms: float) -> float:
    """The highest achieved rate among the steps whose outcome p99 stayed under the bound."""
    return max((s["achieved_per_s"] for s in steps
                if s["outcome_p99_ms"] < p99_ms and s["errors"] <= s["requests"] * 0.01), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--shapes", default="spread,hot")
    parser.add_argument("--designs", default="baseline,wait,poll")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    runs = [ramp(design, shape, rates, args.seconds)
            for shape in args.shapes.split(",") for design in args.designs.split(",")]
    print(f"\n{'design':<10}{'shape':<8}{'best rate, outcome p99 < 100 ms':>34}{'< 1 s':>10}{'books':>7}")
    for run in runs:
        print(f"{run['design']:<10}{run['shape']:<8}{run['best_under_100ms']:>34.0f}"
              f"{run['best_under_1s']:>10.0f}{'ok' if not run['reconcile_mismatches'] else 'BAD':>7}")
    for shape in args.shapes.split(","):
        best = {r["design"]: r["best_under_1s"] for r in runs if r["shape"] == shape}
        if best.get("baseline"):
            ratios = ", ".join(f"{d} {v / best['baseline']:.2f}x" for d, v in best.items() if d != "baseline")
            print(f"{shape}: best rate with outcome p99 < 1 s against the baseline's: {ratios}")
    out = ROOT / "var" / "bench-waiting.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seconds": args.seconds, "runs": runs}, indent=2))
    print(f"wrote {out}")
    if any(r["reconcile_mismatches"] for r in runs):
        sys.exit("the books did not balance after a run")


if __name__ == "__main__":
    main()
