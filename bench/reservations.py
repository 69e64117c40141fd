"""Checkout pairs on a hot SKU: a reserve, then its commit, the way a shop holds a unit while its
customer pays. Open loop at rising rates of pairs (bench/openloop.py), against the synchronous
baseline (bench/sync_baseline.py: one locked transaction per request) in the same run.

    .venv/bin/python -m bench.reservations [--seconds 8] [--rates 50,100,200,...]

A pair's outcome is known when its commit's outcome is:
- `service`: POST the reserve (202, nobody waits for it), then POST the commit with
  `Prefer: wait=30`: the commit is ordered after its reserve, so a client needs one wait per pair;
- `baseline`: POST the reserve, which answers once committed, then POST the commit, likewise.
Both on one level (warehouse LW-00, sku LS-00000) with plenty of stock, so every pair succeeds and
every pair contends for the same row. Reports, per rate, pairs/s achieved and the pair's time p50
and p99, the highest rate whose p99 stays under 100 ms and under 1 s, and the ratio of the
service's best to the baseline's. Writes var/bench-reservations.json; reconciles the books.
"""

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench import bulk_receive
from bench.load import seed, wait_drained
from bench.openloop import Connection, Timing, Work, drive
from bench.stack import ROOT, Stack, bench_env, bench_key, free_port, fresh_database
from bench.waiting import WARM_UP_SECONDS, best_rate, start_baseline, summarize

DEFAULT_RATES = (50, 100, 200, 300, 400, 600, 800, 1000, 1300, 1600)
WAIT = "wait=30"


def _pair(design: str, auth: dict[str, str]) -> Callable[[int], Work]:
    def make(n: int) -> Work:
        reservation = f"p-{uuid.uuid4().hex[:20]}"
        reserve = json.dumps({"type": "reserve", "warehouse": "LW-00", "sku": "LS-00000", "quantity": 1,
                              "reservation": reservation, "expires_in": 600}).encode()
        commit = json.dumps({"type": "commit", "reservation": reservation}).encode()

        async def work(connection: Connection, elapsed: Callable[[], float], timing: Timing) -> None:
            first = await connection.send("POST", "/v1/commands", auth, reserve)
            timing.accepted, timing.status = elapsed(), first.status
            if first.status not in (200, 202):
                return
            headers = {**auth, "Prefer": WAIT} if design == "service" else auth
            second = await connection.send("POST", "/v1/commands", headers, commit)
            timing.status = second.status
            if second.status == 200 and (design == "baseline" or second.json()["status"] == "succeeded"):
                timing.outcome = elapsed()
            else:
                timing.error = f"commit answered {second.status}"
        return work
    return make


def ramp(design: str, rates: list[int], seconds: float) -> dict:
    env = bench_env(f"reserve_{design}", RATE_LIMIT_PER_SECOND="0", MAX_QUEUED_JOBS="1000000",
                    MAX_WAITING_REQUESTS="100000", MAX_WAITING_REQUESTS_PER_KEY="100000")
    fresh_database(env["DATABASE_URL"])
    seed(env["DATABASE_URL"], 1, 1, stock=10_000_000)
    auth = {} if design == "baseline" else bench_key(env["DATABASE_URL"])
    port = free_port()  # not the other benchmarks' ports: one may be running
    process = start_baseline(env, port) if design == "baseline" else Stack(env, port=port)
    url = f"http://127.0.0.1:{port}"
    steps = []
    try:
        for rate in rates:
            drive(url, rate, WARM_UP_SECONDS, _pair(design, auth))
            step = summarize(rate, drive(url, rate, seconds, _pair(design, auth)), None)
            steps.append(step)
            print(f"  {design:<9}{rate:>6} pairs/s: achieved {step['achieved_per_s']:>7.0f}/s, "
                  f"pair p50/p99 {step['outcome_p50_ms']:.1f}/{step['outcome_p99_ms']:.1f} ms, "
                  f"errors {step['errors']}", flush=True)
            if design != "baseline":
                wait_drained(env["DATABASE_URL"])
            if step["outcome_p99_ms"] > 1000 or step["errors"] > step["requests"] * 0.01:
                break
    finally:
        if design == "baseline":
            process.terminate()
            process.wait(20)
        else:
            process.stop()
    return {"design": design, "steps": steps, "best_under_100ms": best_rate(steps, 100),
            "best_under_1s": best_rate(steps, 1000),
            "reconcile_mismatches": len(bulk_receive.reconcile(env["DATABASE_URL"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    results = {design: ramp(design, rates, args.seconds) for design in ("baseline", "service")}
    base, ours = results["baseline"], results["service"]
    print(f"{'design':<10}{'best pairs/s, p99 < 100 ms':>28}{'best pairs/s, p99 < 1 s':>26}{'books':>7}")
    for name, r in results.items():
        print(f"{name:<10}{r['best_under_100ms']:>28.0f}{r['best_under_1s']:>26.0f}"
              f"{'ok' if not r['reconcile_mismatches'] else 'NO':>7}")
    if base["best_under_1s"]:
        print(f"service / baseline, best pairs/s with p99 < 1 s: "
              f"{ours['best_under_1s'] / base['best_under_1s']:.2f}")
    out = Path(ROOT) / "var" / "bench-reservations.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "seconds": args.seconds, "results": results}, indent=2))
    print(f"wrote {out}")
    if any(r["reconcile_mismatches"] for r in results.values()):
        sys.exit("reconcile found mismatches")


if __name__ == "__main__":
    main()
