"""The short fault campaign (python -m bench.faults --short, docs/faults.md): each fault once under a
few seconds of mixed load, on a MariaDB and a Redis of its own. Nothing accepted is lost, applied
twice or left unfinished past the recovery bound, the service recovers from every fault, and the
books balance in the database after each."""

import json
import shutil
import subprocess
import sys

import pytest

from bench.stack import ROOT

COLUMNS_THAT_MUST_BE_ZERO = ("lost", "duplicated", "stuck")


def test_the_short_fault_campaign_loses_nothing_applies_nothing_twice_and_recovers(tmp_path):
    for program in ("mariadb-install-db", "redis-server"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} is not installed (.ci/run installs it): the campaign starts servers "
                        "of its own")
    run = subprocess.run([sys.executable, "-m", "bench.faults", "--short", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    output = run.stdout[-6000:] + run.stderr[-3000:]
    rows = json.loads((tmp_path / "latest.json").read_text())["faults"]

    assert [row["fault"] for row in rows], output
    for row in rows:
        assert {column: row[column] for column in COLUMNS_THAT_MUST_BE_ZERO} == dict.fromkeys(
            COLUMNS_THAT_MUST_BE_ZERO, 0), f"{row['fault']}\n{output}"
        assert row["accepted"] > 0, f"{row['fault']}: no load was accepted\n{output}"
        assert row["recovery_seconds"] is not None, f"{row['fault']}: did not recover\n{output}"
        assert row["broken"] == {}, f"{row['fault']}\n{output}"
    assert run.returncode == 0, output
