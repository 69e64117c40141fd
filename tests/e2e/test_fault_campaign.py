"""The short fault campaign (python -m bench.faults --short, docs/faults.md): each fault once under a
few seconds of mixed load, on a MariaDB and a Redis of its own, with Redis as the broker and with a
RabbitMQ node of its own as the broker (whose restart and kill -9 replace Redis's faults). Nothing
accepted is lost, applied twice or left unfinished past the recovery bound, the service recovers
from every fault, and the books balance in the database after each."""

import json
import shutil
import subprocess
import sys

import pytest

from bench.faults.catalogue import BROKERS
from bench.stack import ROOT

COLUMNS_THAT_MUST_BE_ZERO = ("lost", "duplicated", "stuck")
# Enough for a recovery bound's wait on every fault that strands jobs (today: the Redis faults).
TIMEOUT_SECONDS = 1200


@pytest.mark.parametrize("broker", BROKERS)
def test_the_short_fault_campaign_loses_nothing_applies_nothing_twice_and_recovers(tmp_path, broker):
    servers = ("mariadb-install-db", "redis-server", *(("rabbitmq-server",) if broker == "rabbitmq" else ()))
    for program in servers:
        if shutil.which(program) is None:
            pytest.fail(f"{program} is not installed (.ci/run installs it): the campaign starts servers "
                        "of its own")
    campaign = subprocess.Popen([sys.executable, "-m", "bench.faults", "--short", "--broker", broker,
                                 "--out", str(tmp_path)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = campaign.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        campaign.terminate()  # TERM, not KILL: it stops the servers and processes it started
        stdout, stderr = campaign.communicate(timeout=120)
    output = stdout[-6000:] + stderr[-3000:]
    if not (tmp_path / "latest.json").exists():
        pytest.fail(f"the campaign wrote no table\n{output}")
    rows = json.loads((tmp_path / "latest.json").read_text())["faults"]

    assert rows, output
    # Every fault's failures at once: one failing row must not hide another.
    failures = [f"{row['fault']}: {problem}" for row in rows for problem in _problems(row)]
    assert not failures, "\n".join(failures) + "\n\n" + output
    assert campaign.returncode == 0, output


def _problems(row: dict) -> list[str]:
    problems = [f"{column} {row[column]}" for column in COLUMNS_THAT_MUST_BE_ZERO if row[column]]
    if not row["accepted"]:
        problems.append("no load was accepted")
    if row["recovery_seconds"] is None:
        problems.append("did not recover within the bound")
    problems += [f"invariant broken: {name}" for name in row["broken"]]
    return problems
