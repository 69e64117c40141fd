"""What a webhook subscription costs the stock commands, and how far behind its deliveries run.

    .venv/bin/python -m bench.webhooks [--seconds 15] [--rounds 3] [--clients 32] [--lag-rate 300]

S2's fire-and-forget load (wrk, receive/issue on 10,000 levels in 20 warehouses) against the
service with no subscription and with one subscription to `stock.changed` whose receiver (a small
ASGI app under uvicorn, bench/receiver.py) answers 200; the rounds alternate which goes first. For
each: accepted and applied commands/s; with the subscription, the events delivered and the delivery
lag (event commit to delivery, from the database) p50/p99 over the run. The figure is the median
of the rounds' applied/s ratios (target: at least 0.8).

Saturated, the deliveries wait for the CPU the commands leave (the webhook worker yields it), so
their lag is about the length of the load. The lag a receiver sees at a load the machine carries
is measured next, on the subscribed service: commands sent open loop at --lag-rate a second
(bench/openloop.py) for --seconds, then each of their events' lag p50/p99.

Writes var/bench-webhooks.json and reconciles the books of every run.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from sqlalchemy import create_engine, text

from bench import bulk_receive
from bench.load import DRIVERS, completion, pct, seed, wait_drained
from bench.openloop import Connection, Timing, Work, drive
from bench.stack import LOGS, ROOT, Stack, bench_env, bench_key, free_port, fresh_database
from bench.waiting import spread_commands

SHAPE = (20, 500)


def start_receiver() -> tuple[subprocess.Popen, str]:
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / "webhook-receiver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.receiver:app", "--port", str(port),
                             "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                             "--log-level", "warning"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/hook"
    for _ in range(100):
        try:
            httpx.post(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the receiver did not start")


def run(subscribed: bool, args: argparse.Namespace) -> dict:
    env = bench_env(f"hooks_{int(subscribed)}", RATE_LIMIT_PER_SECOND="0", MAX_QUEUED_JOBS="1000000",
                    WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true")
    fresh_database(env["DATABASE_URL"])
    seed(env["DATABASE_URL"], *SHAPE, stock=1000)
    auth = bench_key(env["DATABASE_URL"])
    engine = create_engine(env["DATABASE_URL"])
    with engine.begin() as conn:  # the bench key may subscribe
        conn.execute(text("UPDATE api_key SET scopes = 'read,webhooks,write'"))
    receiver, receiver_url = start_receiver()
    stack = Stack(env, webhooks=True)
    try:
        if subscribed:
            r = httpx.post(f"{stack.url}/v1/webhooks", headers=auth,
                           json={"url": receiver_url, "events": ["stock.changed"]})
            r.raise_for_status()
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        load = DRIVERS["wrk"](stack.url, auth["Authorization"], SHAPE, args.clients, args.seconds, 202)
        wait_drained(env["DATABASE_URL"])
        applied, _, _ = completion(env["DATABASE_URL"], since)
        lags = _delivered(engine) if subscribed else []
        at_rate = _lag_at_rate(stack.url, auth, env["DATABASE_URL"], args) if subscribed else {}
    finally:
        stack.stop()
        receiver.terminate()
        receiver.wait(10)
    return {"subscribed": subscribed, "accepted_per_s": load.accepted / load.seconds,
            "applied_per_s": applied,
            "delivered": len(lags), "lag_p50_ms": pct(lags, 50), "lag_p99_ms": pct(lags, 99),
            "at_rate": at_rate, "reconcile_mismatches": len(bulk_receive.reconcile(env["DATABASE_URL"]))}


def _fire_and_forget(auth: dict[str, str], body: bytes) -> Work:
    async def work(connection: Connection, elapsed: Callable[[], float], timing: Timing) -> None:
        answer = await connection.send("POST", "/v1/commands", auth, body)
        timing.accepted, timing.status = elapsed(), answer.status
    return work


def _lag_at_rate(url: str, auth: dict[str, str], database_url: str, args: argparse.Namespace) -> dict:
    """Commands open loop at --lag-rate; their events' delivery lag."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        after = conn.execute(text("SELECT COALESCE(MAX(position), 0) FROM event")).scalar()
    commands = spread_commands(SHAPE, 7)
    timings = drive(url, args.lag_rate, args.seconds, lambda n: _fire_and_forget(auth, commands(n)))
    wait_drained(database_url)
    lags = _delivered(engine, after)
    return {"offered_per_s": args.lag_rate, "sent": len(timings),
            "accepted": sum(t.status == 202 for t in timings), "delivered": len(lags),
            "lag_p50_ms": pct(lags, 50), "lag_p99_ms": pct(lags, 99)}


def _delivered(engine, after: int = 0, timeout: float = 300) -> list[float]:  # type: ignore[no-untyped-def]
    """Wait for every event to be delivered; the lag of each one past position `after`, in seconds."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            left = conn.execute(text("SELECT COUNT(*) FROM webhook_delivery "
                                     "WHERE status IN ('pending', 'delivering')")).scalar()
            conn.commit()
            if not left:
                break
            time.sleep(0.5)
        rows = conn.execute(text(
            "SELECT TIMESTAMPDIFF(MICROSECOND, e.created_at, d.delivered_at) / 1e6 FROM webhook_delivery d "
            "JOIN event e ON e.position = d.event_position "
            "WHERE d.status = 'succeeded' AND e.position > :after"), {"after": after}).all()
    return [float(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--lag-rate", type=float, default=300, help="commands/s offered for the lag figure")
    args = parser.parse_args()
    rounds = []
    for n in range(args.rounds):
        order = (False, True) if n % 2 == 0 else (True, False)
        pair = {subscribed: run(subscribed, args) for subscribed in order}
        pair_out = {"none": pair[False], "one subscription": pair[True],
                    "ratio": pair[True]["applied_per_s"] / pair[False]["applied_per_s"]}
        rounds.append(pair_out)
        at_rate = pair[True]["at_rate"]
        print(f"round {n + 1}: applied/s {pair[False]['applied_per_s']:.0f} without, "
              f"{pair[True]['applied_per_s']:.0f} with a subscription (ratio {pair_out['ratio']:.2f}); "
              f"{pair[True]['delivered']} deliveries, lag p50 {pair[True]['lag_p50_ms']:.0f} ms, "
              f"p99 {pair[True]['lag_p99_ms']:.0f} ms saturated; at {args.lag_rate:.0f}/s offered, "
              f"lag p50 {at_rate['lag_p50_ms']:.0f} ms, p99 {at_rate['lag_p99_ms']:.0f} ms", flush=True)
    median = statistics.median(r["ratio"] for r in rounds)
    print(f"median ratio of applied/s with one subscription to without: {median:.2f} (target >= 0.80)")
    out = ROOT / "var" / "bench-webhooks.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seconds": args.seconds, "clients": args.clients, "lag_rate": args.lag_rate,
                               "rounds": rounds,
                               "median_ratio": median}, indent=2))
    print(f"wrote {out}")
    if any(r[k]["reconcile_mismatches"] for r in rounds for k in ("none", "one subscription")):
        sys.exit("the books did not balance after a run")


if __name__ == "__main__":
    main()
