#!/usr/bin/env bash
# The service alone under S1 or S2 (bench/load.py's service scenario: 32 wrk clients, 12 s), or
# S3 (bench/bulk_receive.py: 100,000 lines in batches of 5,000, against its ceiling) at each given
# commit, each from a worktree of its own with a virtualenv made from its own locks.
# For telling whether a change moved the rate: the machine drifts between sessions, so compare
# commits measured in one run, in turns.
#
#   bench/at_commit.sh s1 3cb49f2 HEAD 3cb49f2 HEAD
#
# Worktrees and virtualenvs go under var/commits/ (reused; one virtualenv per distinct lock set),
# with each commit's output in var/commits/<commit>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shape=$1
shift
case $shape in s1 | s2 | s3) ;; *) echo "usage: $0 s1|s2|s3 COMMIT..." >&2; exit 2 ;; esac
mkdir -p var/commits
for commit in "$@"; do
  short=$(git rev-parse --short "$commit")
  tree=$root/var/commits/tree-$short
  [ -d "$tree" ] || git worktree add --force --detach --quiet "$tree" "$short"
  locks=$(cat "$tree"/requirements/*.txt | sha1sum | cut -c1-12)
  venv=$root/var/commits/venv-$locks
  log=$root/var/commits/$short.log
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$tree/requirements/dev.txt" >>"$log" 2>&1
  fi
  if [ "$shape" = s3 ]; then
    if ! (cd "$tree" && "$venv/bin/python" -m bench.bulk_receive >>"$log" 2>&1); then
      echo "$short s3: failed, see $log" >&2
      exit 1
    fi
    "$venv/bin/python" - "$tree/var/bench-bulk_receive.json" "$short" <<'PY'
import json
import sys

r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]} s3: end to end {r['end_to_end_lines_per_s']:,} lines/s, ceiling {r['ceiling_lines_per_s']:,},"
      f" ratio {r['ratio_to_ceiling']:.2f}, reconcile {'clean' if not r['reconcile_mismatches'] else 'NOT clean'}")
PY
    continue
  fi
  if ! (cd "$tree" && "$venv/bin/python" - "$shape" "$short" 2>>"$log" <<'PY') | tail -1; then
import argparse
import sys

sys.path.insert(0, ".")
from bench import load

shape, commit = sys.argv[1], sys.argv[2]
args = argparse.Namespace(driver="wrk", clients=32, seconds=12)
result = load.service_scenario(shape, (1, 1) if shape == "s1" else (20, 500), args)
print(f"{commit} {shape}: applied {result['applied_per_s']:.0f}/s, accept p50 {result['accept_p50_ms']:.1f} ms"
      f" p99 {result['accept_p99_ms']:.1f} ms, reconcile {'clean' if not result['reconcile_mismatches'] else 'NOT clean'}")
PY
    echo "$short $shape: failed, see $log" >&2
    exit 1
  fi
done
