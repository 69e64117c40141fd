"""Run the API (uvicorn, through api/server.py) under bin/run's supervisord, and answer for every
process it starts.

    python -m cli.serve_api GROUP_FILE SERVER_ARGS...     (the arguments of python -m api.server)

supervisord watches the one process it started. uvicorn with `--workers N` starts more (its workers
and multiprocessing's resource tracker) that do not watch their master: killed outright, the master
leaves them serving on the port, so the master started in its place could not bind it and nothing
would ever stop them; stopped by TERM, it exits a moment before the resource tracker does. So
supervisord starts this instead, which:

- runs uvicorn in a process group of its own (its processes stay in it when the master dies) and
  writes the group's number to GROUP_FILE;
- passes TERM and INT on to uvicorn, and kills its group if it has not stopped STOP_SECONDS later;
- when uvicorn exits, however, stops what is left of the group and waits until all of it is gone,
  then exits, so that supervisord sees the API gone only once it all is (and starts it again unless
  it was told to stop);
- at start, kills whatever is still in the group GROUP_FILE names: what an uvicorn left if this
  launcher itself was killed outright. A group number is not handed out again while any process is
  in it, and bin/run deletes GROUP_FILE before it starts supervisord, so the group can only be ours.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# After TERM, how long uvicorn gets to answer the requests under way (long polls are cut, and
# their clients ask again); then how long the rest of its group gets to follow the master out,
# and, once killed, to be reaped.
# supervisord's wait for the API program covers both.
STOP_SECONDS = 10
GRACE_SECONDS = 5


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(group: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_alive(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def end_group(group: int, grace: float) -> None:
    """Give the group `grace` seconds to exit, then SIGKILL it; return once none of it is left.
    Killed processes are gone once reaped, by init as a rule; if nobody reaps them they hold nothing
    but their process ids, so the wait for that is bounded."""
    if gone_within(group, grace):
        return
    print(f"serve_api: killing what is left of the API's process group {group}",
          file=sys.stderr, flush=True)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not gone_within(group, GRACE_SECONDS):
        print(f"serve_api: process group {group} still has processes after SIGKILL (not reaped?)",
              file=sys.stderr, flush=True)


def kill_leftovers(group_file: Path) -> None:
    try:
        group = int(group_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    end_group(group, grace=0)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m cli.serve_api GROUP_FILE SERVER_ARGS...", file=sys.stderr)
        return 2
    group_file = Path(argv[0])
    kill_leftovers(group_file)
    stopping: list[int] = []
    # Until uvicorn runs, a stop request is only remembered; it is passed on right after the start.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda sig, _frame: stopping.append(sig))
    uvicorn = subprocess.Popen([sys.executable, "-m", "api.server", *argv[1:]], process_group=0)
    group_file.write_text(f"{uvicorn.pid}\n")

    def pass_on(sig: int, _frame: object) -> None:
        if not stopping:
            signal.alarm(STOP_SECONDS)
        stopping.append(sig)
        uvicorn.send_signal(sig)

    def out_of_time(_sig: int, _frame: object) -> None:
        print(f"serve_api: uvicorn did not stop within {STOP_SECONDS}s; killing its process group",
              file=sys.stderr, flush=True)
        os.killpg(uvicorn.pid, signal.SIGKILL)

    signal.signal(signal.SIGALRM, out_of_time)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, pass_on)
    if stopping:
        signal.alarm(STOP_SECONDS)
        uvicorn.send_signal(stopping[0])
    status = uvicorn.wait()
    if stopping:
        end_group(uvicorn.pid, GRACE_SECONDS)
        return 0
    print(f"serve_api: uvicorn exited unasked ({describe(status)}); stopping what it left",
          file=sys.stderr, flush=True)
    end_group(uvicorn.pid, grace=0)
    return 1


def describe(status: int) -> str:
    return f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
