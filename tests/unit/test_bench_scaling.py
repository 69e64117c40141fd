"""bench.scaling's arithmetic: medians per cell, ratios against the reference cell of each round."""

import pytest

from bench.scaling import parse, summarise


def _result(accepted: float, applied: float) -> dict:
    return {"accepted_per_s": accepted, "applied_per_s": applied, "complete_p50_ms": 100.0,
            "complete_p99_ms": 300.0, "wakeups_left": 0, "reconcile_mismatches": 0}


def test_ratios_are_taken_round_by_round_against_the_two_worker_two_shard_cell():
    runs = {(2, 2): [_result(1000, 900), _result(2000, 1800)],
            (4, 8): [_result(1100, 990), _result(1800, 1800)]}
    rows = {(r["workers"], r["shards"]): r for r in summarise(runs)}
    assert rows[(2, 2)]["applied_per_s_ratio"] == 1.0
    assert rows[(4, 8)]["accepted_per_s_ratio"] == pytest.approx((1.1 + 0.9) / 2)
    assert rows[(4, 8)]["applied_per_s_ratio"] == pytest.approx((1.1 + 1.0) / 2)
    assert rows[(4, 8)]["applied_per_s"] == pytest.approx((990 + 1800) / 2)
    assert rows[(4, 8)]["books_ok"]


def test_the_cells_must_include_the_reference():
    assert parse(["--workers", "1,2,4", "--shards", "2,8,32"]).workers == [1, 2, 4]
    with pytest.raises(SystemExit):
        parse(["--workers", "1,4"])
