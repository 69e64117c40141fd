"""One fault after another under load, each followed by a recovery check and the invariants.

For each fault: the mixed load runs for a warm-up, the fault is injected and lifted, the load goes
on for a while, then stops. From the moment the fault is over a watcher waits until every job
accepted for a request sent before then is terminal, and then until a fresh command on each shard
completes: that time is the recovery time. A job not terminal within the recovery bound is stuck;
then the campaign restarts the workers, as an operator would, so the next fault starts from a
working service, and says so. Last, the books are checked in the database.
"""

import asyncio
import time
import uuid
from typing import Any

from bench.faults import checks
from bench.faults.catalogue import Fault
from bench.faults.rig import Rig
from bench.faults.traffic import Clients, Tally
from bench.stack import free_port
from shared.ordering import shard_for_slot, slot_for


async def _probe(rig: Rig, tally: Tally, deadline: float) -> bool:
    """A fresh receive on each shard, each answered and completed: the service works again."""
    clients = Clients(rig.http, rig.authorization, tally, rig.catalog, rig.timing.give_up)  # type: ignore[arg-type]
    warehouses = {shard_for_slot(slot_for(w), rig.shards): w for w in rig.catalog[0]}
    job_ids = await asyncio.gather(*(
        clients.send(rig.stack.url, "/v1/commands", clients.command("receive", w), f"probe-{uuid.uuid4()}")
        for w in warehouses.values()))
    if None in job_ids:
        return False
    while time.monotonic() < deadline:
        fates = await _in_db(checks.job_fates, rig.engine, job_ids)
        if fates and all(fates.get(j, ("", None))[0] in checks.TERMINAL for j in job_ids):
            return all(fates[j][0] == "succeeded" for j in job_ids)
        await asyncio.sleep(0.1)
    return False


async def _in_db(read: Any, *args: Any) -> Any:
    """A read in a thread; None while the database does not answer."""
    try:
        return await asyncio.to_thread(read, *args)
    except Exception:  # noqa: BLE001  (the database may be coming back)
        return None


async def _watch_recovery(rig: Rig, tally: Tally, ended: float) -> float | None:
    """Seconds from `ended` until every job of a request sent before it is terminal and a fresh
    command completes on each shard; None if that took longer than the bound."""
    deadline = ended + rig.timing.bound
    while time.monotonic() < deadline:
        if not tally.open_since_before(ended):
            before = {j for j, sent in tally.accepted.items() if sent < ended}
            waiting = await _in_db(checks.unfinished, rig.engine)
            if waiting is not None and not before & waiting:
                if await _probe(rig, tally, deadline):
                    return time.monotonic() - ended
        await asyncio.sleep(0.2)
    return None


async def _settle(rig: Rig, tally: Tally, deadline: float) -> set[str]:
    """Wait for every accepted job to be terminal; returns those that are not by the deadline."""
    while True:
        waiting = await _in_db(checks.unfinished, rig.engine)
        left = set(tally.accepted) & waiting if waiting is not None else set(tally.accepted)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.2)


async def _heal(rig: Rig, tally: Tally, stuck: set[str]) -> dict[str, Any]:
    """Restart every worker, then see whether the stuck jobs finish (late) or not (never)."""
    for name in rig.stack.workers:
        await asyncio.to_thread(rig.stack.restart, name)
    never = await _settle(rig, tally, time.monotonic() + rig.timing.bound)
    return {"workers_restarted": True, "late": len(stuck - never), "never": sorted(never)}


async def run_fault(rig: Rig, fault: Fault) -> dict[str, Any]:
    timing = rig.timing
    tally = Tally()
    assert rig.http is not None
    clients = [Clients(rig.http, rig.authorization, tally, rig.catalog, timing.give_up, seed=n)
               for n in range(timing.clients)]
    rig.burst_clients = Clients(rig.http, rig.burst_authorization, tally, rig.catalog, timing.give_up)
    if fault.api_settings:
        rig.extra_url = await asyncio.to_thread(rig.stack.start_api, "api-burst", free_port(),
                                                **fault.api_settings)
    stop = asyncio.Event()
    load = [asyncio.create_task(c.run(rig.stack.url, stop, timing.pause)) for c in clients]
    await asyncio.sleep(timing.warmup)
    started = time.monotonic()
    await fault.inject(rig)
    ended = time.monotonic()
    watcher = asyncio.create_task(_watch_recovery(rig, tally, ended))
    await asyncio.sleep(timing.after)
    stop.set()
    await asyncio.gather(*load)
    recovery = await watcher
    stuck = await _settle(rig, tally, max(ended + timing.bound, time.monotonic() + 10))
    if fault.api_settings:
        await asyncio.to_thread(rig.stack.stop_one, "api-burst")
    healed = await _heal(rig, tally, stuck) if stuck or recovery is None else None
    fates = await asyncio.to_thread(checks.account, rig.engine, tally)
    duplicates = await asyncio.to_thread(checks.idempotency_breaches, rig.engine, tally)
    broken = await asyncio.to_thread(checks.broken_invariants, rig.engine, timing.bound)
    if healed and healed["never"]:
        broken["every accepted job terminal"] = [f"{len(healed['never'])} jobs", *healed["never"][:5]]
    return {
        "fault": fault.name, "what": fault.what, "fault_seconds": round(ended - started, 1),
        "requests": sum(tally.statuses.values()) + tally.counts["connection errors"],
        "accepted": fates["accepted"], "applied": fates["applied"],
        "business_failed": fates["business_failed"], "lost": len(fates["lost"]),
        "duplicated": len(duplicates), "stuck": len(stuck), "http_5xx": sum(
            n for status, n in tally.statuses.items() if status >= 500),
        "http_503": tally.statuses[503], "http_429": tally.statuses[429],
        "connection_errors": tally.counts["connection errors"],
        "recovery_seconds": None if recovery is None else round(recovery, 1),
        "invariants_ok": not broken, "broken": broken, "healed": healed,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())}, "counts": dict(tally.counts),
        "problems": fates["problems"], "lost_jobs": fates["lost"][:20], "stuck_jobs": sorted(stuck)[:20],
        "duplicate_answers": duplicates[:20],
    }
