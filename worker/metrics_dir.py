"""A private directory for this worker's metrics files, chosen before prometheus-client is imported.

With the solo pool (bin/run, the images) one process applies jobs and serves /metrics; with the
prefork pool jobs are applied in a child process while the main process serves /metrics (and
finishes abandoned jobs at start). prometheus-client's multiprocess mode lets the main process serve
what every process of this worker counted, whichever pool runs; it decides where values live when
it is imported, from PROMETHEUS_MULTIPROC_DIR. Each worker makes a fresh directory of its own,
whatever that variable says in the environment (bin/run sets one for the API), so two workers never
add up each other's counts and no stale files survive a restart.
"""

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

PREFIX = "stock-worker-metrics-"


def use_private_metrics_dir() -> str:
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the worker chose its metrics "
                           "directory; import worker.metrics_dir first")
    _remove_dirs_of_dead_workers()
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    owner = os.getpid()
    # Only the process that made it removes it: forked pool children inherit this hook.
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(path, ignore_errors=True))
    return path


def _remove_dirs_of_dead_workers() -> None:
    """A worker killed outright (SIGKILL, OOM) leaves its directory behind; the next one tidies up."""
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = re.fullmatch(rf"{PREFIX}(\d+)-.*", path.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
