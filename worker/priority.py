"""A worker process's share of the CPU against the other processes on its machine."""

import os
from collections.abc import Collection
from pathlib import Path

from shared.settings import Settings


def niceness_for(consumed: Collection[str], webhooks_queue: str, settings: Settings) -> int:
    """A worker on the webhooks queue alone yields to the stock workers (WEBHOOK_WORKER_NICENESS);
    any other runs at STOCK_WORKER_NICENESS, 0 unless asked: the clients waiting for outcomes wait
    on the stock workers as much as on the API (docs/performance.md)."""
    if set(consumed) == {webhooks_queue}:
        return settings.webhook_worker_niceness
    return settings.stock_worker_niceness


def yield_cpu(niceness: int) -> None:
    """Lower this process to `niceness` (never raise it: that takes privilege). Linux keeps a
    niceness per thread (a thread started later takes its starter's), and weighs a session's
    autogroup against other sessions' by the group's own niceness, so both are set. A container's
    or a systemd unit's CPU weight is the deployment's to set (docker-compose.yml)."""
    tasks = Path("/proc/self/task")
    threads = [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]
    for thread in threads:
        try:
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, max(current, niceness))
        except ProcessLookupError:
            pass  # it ended meanwhile
    autogroup = Path("/proc/self/autogroup")
    try:
        current = int(autogroup.read_text().rsplit("nice", 1)[1])
        if niceness > current:
            autogroup.write_text(str(niceness))
    except (OSError, IndexError, ValueError):
        pass  # no autogroups here (or not this kernel's format): the threads' niceness still holds
