"""A worker yields the CPU at the niceness asked for (worker/priority.py): every thread of the
process, the ones started later too, and its session's autogroup run at the niceness asked for."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.settings import Settings
from worker.priority import niceness_for

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, os, threading
    from pathlib import Path
    from worker.priority import yield_cpu
    before = threading.Thread(target=threading.Event().wait, daemon=True)
    before.start()
    yield_cpu(%d)
    seen = {}
    def record():
        seen["later"] = os.getpriority(os.PRIO_PROCESS, 0)
    later = threading.Thread(target=record)
    later.start(); later.join()
    autogroup = Path("/proc/self/autogroup")
    print(json.dumps({
        "threads": [os.getpriority(os.PRIO_PROCESS, int(t.name)) for t in Path("/proc/self/task").iterdir()],
        "later": seen["later"],
        "autogroup": autogroup.read_text() if autogroup.exists() else None}))
""")


def _run(niceness: int, start_at: int = 0) -> dict:
    import json
    out = subprocess.run(["nice", "-n", str(start_at), sys.executable, "-c", CHILD % niceness], cwd=ROOT,
                         capture_output=True, text=True, check=True, start_new_session=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def test_every_thread_and_the_autogroup_take_the_niceness():
    seen = _run(12)
    assert seen["threads"] and set(seen["threads"]) == {12}
    assert seen["later"] == 12
    if seen["autogroup"] is not None:
        assert seen["autogroup"].strip().endswith("nice 12")


def test_a_process_already_nicer_stays_so():
    seen = _run(5, start_at=15)
    assert set(seen["threads"]) == {15} and seen["later"] == 15


def test_each_kind_of_worker_takes_its_own_niceness():
    settings = Settings(webhook_worker_niceness=10, stock_worker_niceness=5)
    assert niceness_for({"wh"}, "wh", settings) == 10
    assert niceness_for({"stock.0", "stock.1"}, "wh", settings) == 5
    # The embedded profile's one worker applies stock commands too.
    assert niceness_for({"stock.0", "wh"}, "wh", settings) == 5
    assert niceness_for({"stock.0"}, "wh", Settings()) == 0  # the default: stock workers do not yield
