"""`python -m bench.faults`: run the campaign, print the table, write var/faults/*.json; exit 1 if
any fault lost, duplicated or stuck a job, did not recover within the bound, or broke the books."""

import argparse
import asyncio
import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.faults import report
from bench.faults.campaign import run_fault
from bench.faults.catalogue import BROKERS, FAULTS, Fault, faults_for
from bench.faults.rig import FULL, OUT, SHORT, Timing, open_rig


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--short", action="store_true",
                        help="one pass, a few seconds of load per fault, a short SIGSTOP (for CI)")
    parser.add_argument("--broker", choices=BROKERS, default="redis",
                        help="the Celery broker: redis (also the status board), or a RabbitMQ node of the "
                             "campaign's own (Redis then keeps the status copies); its faults follow it")
    parser.add_argument("--only", help="comma-separated fault names (default: all of the broker's): "
                        + ", ".join(f.name for f in FAULTS))
    parser.add_argument("--passes", type=int, default=1, help="times through the list")
    parser.add_argument("--recovery-bound", type=float,
                        help=f"seconds after a fault before an unfinished job counts as stuck "
                             f"(default {FULL.bound:.0f}, short {SHORT.bound:.0f})")
    parser.add_argument("--sigstop-seconds", type=float)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--shards", type=int, default=2, help="SHARD_COUNT")
    parser.add_argument("--workers", default="every-queue:2",
                        help="worker layout: every-queue:N (N workers on every queue, as bin/run) or "
                             "per-shard (one worker per shard queue)")
    parser.add_argument("--api-workers", type=int, help="uvicorn processes (default as bin/run)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where the JSON (and logs/, the processes' logs) go; default var/faults")
    parser.add_argument("--sweep-seconds", type=float, default=1,
                        help="the service's SWEEP_INTERVAL_SECONDS (SWEEP_AFTER_SECONDS stays at its 5 s)")
    return parser.parse_args(argv)


def chosen_faults(only: str | None, broker: str = "redis") -> list[Fault]:
    faults = faults_for(broker)
    if not only:
        return faults
    names = [n.strip() for n in only.split(",")]
    unknown = set(names) - {f.name for f in faults}
    if unknown:
        sys.exit(f"unknown fault(s) with {broker} as the broker: {', '.join(sorted(unknown))}")
    return [f for f in faults if f.name in names]


def timing_from(args: argparse.Namespace) -> Timing:
    timing = SHORT if args.short else FULL
    given = {"bound": args.recovery_bound, "sigstop": args.sigstop_seconds, "clients": args.clients}
    return dataclasses.replace(timing, **{k: v for k, v in given.items() if v is not None})


async def campaign(args: argparse.Namespace, timing: Timing, faults: list[Fault]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open_rig(timing, args.shards, args.workers, args.api_workers, args.sweep_seconds,
                  args.out / "logs", args.broker) as rig:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512),
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            rig.http = http
            for _ in range(args.passes):
                for fault in faults:
                    print(f"[faults] {fault.name}: {fault.what}", flush=True)
                    rows.append(await run_fault(rig, fault))
                    print(report.table(rows[-1:]).splitlines()[1], flush=True)
    return rows


def _stop_on_term(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # so the servers and processes are torn down


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    faults = chosen_faults(args.only, args.broker)
    timing = timing_from(args)
    signal.signal(signal.SIGTERM, _stop_on_term)
    started = time.monotonic()
    rows = asyncio.run(campaign(args, timing, faults))
    settings = {"argv": sys.argv[1:], "broker": args.broker, "timing": dataclasses.asdict(timing),
                "shards": args.shards,
                "workers": args.workers, "sweep_seconds": args.sweep_seconds,
                "seconds": round(time.monotonic() - started)}
    print()
    print(report.table(rows))
    if text := report.notes(rows, timing.bound):
        print(text)
    print(f"wrote {report.write(rows, settings, args.out)} ({settings['seconds']} s)")
    return 1 if any(report.failed(row) for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
