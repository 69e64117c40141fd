"""The pure stock arithmetic in shared.stock.planning, against a hand-built catalog and balances."""

from typing import Any

from shared.problems import Problem
from shared.schemas.commands import command_adapter
from shared.stock.moves import plan_command
from shared.stock.planning import Catalog, plan_batch, plan_single
from shared.stock.state import Balance, JobContext, Movement, RunningBalances

SEL, BUS, OLD = 1, 2, 3
BOOK, PEN = 10, 20
JOB = JobContext()
CATALOG = Catalog(
    warehouses={"SEL-1": (SEL, True), "BUS-2": (BUS, True), "OLD-9": (OLD, False)},
    products={"BOOK-001": BOOK, "PEN-002": PEN},
)


def cmd(type_: str, **fields: Any) -> Any:
    data: dict[str, Any] = {"type": type_}
    if type_ != "transfer":
        data["warehouse"] = "SEL-1"
    data["sku"] = "BOOK-001"
    data.update(fields)
    if type_ == "adjust":
        data.setdefault("reason", "damaged")
    return command_adapter.validate_python(data)


def receive(quantity: int, **fields: Any) -> Any:
    return cmd("receive", quantity=quantity, **fields)


def issue(quantity: int, **fields: Any) -> Any:
    return cmd("issue", quantity=quantity, **fields)


def adjust(delta: int, **fields: Any) -> Any:
    return cmd("adjust", delta=delta, **fields)


def count(on_hand: int, **fields: Any) -> Any:
    return cmd("count", on_hand=on_hand, **fields)


def transfer(quantity: int, src: str = "SEL-1", dst: str = "BUS-2", **fields: Any) -> Any:
    return cmd("transfer", from_warehouse=src, to_warehouse=dst, quantity=quantity, **fields)


def balances(**levels: tuple[int, int]) -> RunningBalances:
    """balances(sel_book=(on_hand, version), bus_book=(...), ...)"""
    names = {"sel_book": (SEL, BOOK), "bus_book": (BUS, BOOK), "sel_pen": (SEL, PEN),
             "old_book": (OLD, BOOK)}
    return RunningBalances({names[k]: Balance(*v) for k, v in levels.items()})


# --- plan_command: the movements of each type --------------------------------------------------

def test_receive_on_a_level_that_never_moved() -> None:
    running = RunningBalances({})
    assert running.get((SEL, BOOK)) == Balance(0, 0)
    movements = plan_command(receive(5, reference="PO-1"), [(SEL, BOOK)], running, JOB, None)
    assert movements == [Movement((SEL, BOOK), "receive", 5, 5, 1, None, "PO-1", None)]


def test_receive_adds_to_an_existing_level() -> None:
    movements = plan_command(receive(7), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, 4)
    assert movements == [Movement((SEL, BOOK), "receive", 7, 17, 4, 4, None, None)]


def test_issue_takes_from_the_level() -> None:
    movements = plan_command(issue(4, reason="sold"), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert movements == [Movement((SEL, BOOK), "issue", -4, 6, 4, None, None, "sold")]


def test_issue_of_everything_on_hand_leaves_zero() -> None:
    movements = plan_command(issue(10), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert isinstance(movements, list)
    assert (movements[0].delta, movements[0].on_hand_after, movements[0].version) == (-10, 0, 4)


def test_issue_more_than_on_hand_is_insufficient_stock() -> None:
    problem = plan_command(issue(11), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.slug == "insufficient-stock"
    assert problem.status == 409
    assert problem.extra == {"on_hand": 10, "reserved": 0, "available": 10, "requested": 11}
    body = problem.to_dict()
    assert body["type"] == "/problems/insufficient-stock"
    assert body["title"] == "Insufficient stock"
    assert body["on_hand"] == 10
    assert body["requested"] == 11
    assert "SEL-1/BOOK-001" in body["detail"]


def test_issue_from_a_level_that_never_moved_is_insufficient_stock() -> None:
    problem = plan_command(issue(1), [(SEL, BOOK)], RunningBalances({}), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.slug == "insufficient-stock"
    assert problem.extra == {"on_hand": 0, "reserved": 0, "available": 0, "requested": 1}


def test_adjust_up_and_down() -> None:
    running = balances(sel_book=(10, 3))
    assert plan_command(adjust(-3), [(SEL, BOOK)], running, JOB, None) == [
        Movement((SEL, BOOK), "adjust", -3, 7, 4, None, None, "damaged")]
    assert plan_command(adjust(5, reason="found"), [(SEL, BOOK)], running, JOB, 2) == [
        Movement((SEL, BOOK), "adjust", 5, 15, 4, 2, None, "found")]


def test_adjust_down_to_exactly_zero_is_allowed() -> None:
    movements = plan_command(adjust(-10), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert isinstance(movements, list)
    assert (movements[0].delta, movements[0].on_hand_after) == (-10, 0)


def test_adjust_below_zero_is_insufficient_stock() -> None:
    problem = plan_command(adjust(-11), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.slug == "insufficient-stock"
    assert problem.extra == {"on_hand": 10, "reserved": 0, "available": 10, "requested": 11}


def test_count_sets_the_level() -> None:
    running = balances(sel_book=(10, 3))
    assert plan_command(count(40), [(SEL, BOOK)], running, JOB, None) == [
        Movement((SEL, BOOK), "count", 30, 40, 4, None, None, None)]
    assert plan_command(count(4), [(SEL, BOOK)], running, JOB, None) == [
        Movement((SEL, BOOK), "count", -6, 4, 4, None, None, None)]
    assert plan_command(count(0), [(SEL, BOOK)], running, JOB, None) == [
        Movement((SEL, BOOK), "count", -10, 0, 4, None, None, None)]


def test_count_to_the_same_value_is_a_delta_zero_movement() -> None:
    movements = plan_command(count(10), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert movements == [Movement((SEL, BOOK), "count", 0, 10, 4, None, None, None)]


def test_count_on_a_level_that_never_moved() -> None:
    movements = plan_command(count(0), [(SEL, BOOK)], RunningBalances({}), JOB, None)
    assert movements == [Movement((SEL, BOOK), "count", 0, 0, 1, None, None, None)]


def test_transfer_is_transfer_out_then_transfer_in() -> None:
    running = balances(sel_book=(10, 3), bus_book=(2, 7))
    movements = plan_command(transfer(4, reference="T-1"), [(SEL, BOOK), (BUS, BOOK)], running, JOB, 5)
    assert movements == [
        Movement((SEL, BOOK), "transfer_out", -4, 6, 4, 5, "T-1", None),
        Movement((BUS, BOOK), "transfer_in", 4, 6, 8, 5, "T-1", None),
    ]


def test_transfer_into_a_level_that_never_moved() -> None:
    movements = plan_command(transfer(10), [(SEL, BOOK), (BUS, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert movements == [
        Movement((SEL, BOOK), "transfer_out", -10, 0, 4, None, None, None),
        Movement((BUS, BOOK), "transfer_in", 10, 10, 1, None, None, None),
    ]


def test_transfer_more_than_on_hand_is_insufficient_stock() -> None:
    problem = plan_command(transfer(11), [(SEL, BOOK), (BUS, BOOK)],
                           balances(sel_book=(10, 3), bus_book=(100, 1)), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.slug == "insufficient-stock"
    assert problem.extra == {"on_hand": 10, "reserved": 0, "available": 10, "requested": 11}
    assert "SEL-1/BOOK-001" in problem.detail


def test_plan_command_does_not_touch_the_balances() -> None:
    running = balances(sel_book=(10, 3))
    plan_command(issue(4), [(SEL, BOOK)], running, JOB, None)
    assert running.get((SEL, BOOK)) == Balance(10, 3)
    assert running.final() == {(SEL, BOOK): Balance(10, 3)}


# --- expectations ------------------------------------------------------------------------------

def test_matching_expectations_apply() -> None:
    movements = plan_command(issue(1, expected_on_hand=10, expected_version=3), [(SEL, BOOK)],
                             balances(sel_book=(10, 3)), JOB, None)
    assert movements == [Movement((SEL, BOOK), "issue", -1, 9, 4, None, None, None)]


def test_expected_on_hand_mismatch_is_stale() -> None:
    problem = plan_command(receive(1, expected_on_hand=9), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB,
                           None)
    assert isinstance(problem, Problem)
    assert (problem.slug, problem.status) == ("stale-expectation", 409)
    assert problem.extra == {"expected_on_hand": 9, "on_hand": 10}


def test_expected_version_mismatch_is_stale() -> None:
    problem = plan_command(count(5, expected_version=2), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.slug == "stale-expectation"
    assert problem.extra == {"expected_version": 2, "version": 3}


def test_expected_version_zero_on_a_level_that_never_moved() -> None:
    movements = plan_command(receive(5, expected_version=0, expected_on_hand=0), [(SEL, BOOK)],
                             RunningBalances({}), JOB, None)
    assert movements == [Movement((SEL, BOOK), "receive", 5, 5, 1, None, None, None)]
    problem = plan_command(receive(5, expected_version=1), [(SEL, BOOK)], RunningBalances({}), JOB, None)
    assert isinstance(problem, Problem)
    assert problem.extra == {"expected_version": 1, "version": 0}


def test_stale_expectation_wins_over_insufficient_stock() -> None:
    problem = plan_command(issue(50, expected_on_hand=50), [(SEL, BOOK)], balances(sel_book=(10, 3)), JOB,
                           None)
    assert isinstance(problem, Problem)
    assert problem.slug == "stale-expectation"


def test_transfer_expectations_are_of_the_source() -> None:
    running = balances(sel_book=(10, 3), bus_book=(2, 7))
    keys = [(SEL, BOOK), (BUS, BOOK)]
    ok = plan_command(transfer(1, expected_on_hand=10, expected_version=3), keys, running, JOB, None)
    assert isinstance(ok, list) and len(ok) == 2
    stale = plan_command(transfer(1, expected_version=7), keys, running, JOB, None)
    assert isinstance(stale, Problem)
    assert stale.slug == "stale-expectation"
    assert stale.extra == {"expected_version": 7, "version": 3}


def test_plan_single_stale_changes_nothing() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_single(issue(1, expected_version=2), CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.result is None
    assert plan.error is not None and plan.error["type"] == "/problems/stale-expectation"
    assert running.final() == {(SEL, BOOK): Balance(10, 3)}


# --- catalog -----------------------------------------------------------------------------------

def test_catalog_resolves_keys() -> None:
    assert CATALOG.resolve(issue(1)) == [(SEL, BOOK)]
    assert CATALOG.resolve(cmd("receive", sku="PEN-002", quantity=1)) == [(SEL, PEN)]
    assert CATALOG.resolve(transfer(1)) == [(SEL, BOOK), (BUS, BOOK)]


def test_unknown_warehouse() -> None:
    problem = CATALOG.resolve(cmd("receive", warehouse="NOPE", quantity=1))
    assert isinstance(problem, Problem)
    assert (problem.slug, problem.status, problem.extra) == ("unknown-warehouse", 422, {"warehouse": "NOPE"})


def test_unknown_sku() -> None:
    problem = CATALOG.resolve(cmd("receive", sku="NOPE", quantity=1))
    assert isinstance(problem, Problem)
    assert (problem.slug, problem.status, problem.extra) == ("unknown-sku", 422, {"sku": "NOPE"})


def test_inactive_warehouse() -> None:
    problem = CATALOG.resolve(cmd("receive", warehouse="OLD-9", quantity=1))
    assert isinstance(problem, Problem)
    assert (problem.slug, problem.status, problem.extra) == ("inactive-warehouse", 409,
                                                            {"warehouse": "OLD-9"})


def test_transfer_checks_both_warehouses() -> None:
    for src, dst, slug, code in [("NOPE", "BUS-2", "unknown-warehouse", "NOPE"),
                                 ("SEL-1", "NOPE", "unknown-warehouse", "NOPE"),
                                 ("OLD-9", "BUS-2", "inactive-warehouse", "OLD-9"),
                                 ("SEL-1", "OLD-9", "inactive-warehouse", "OLD-9")]:
        problem = CATALOG.resolve(transfer(1, src=src, dst=dst))
        assert isinstance(problem, Problem)
        assert (problem.slug, problem.extra) == (slug, {"warehouse": code})


def test_plan_single_reports_catalog_problems_and_changes_nothing() -> None:
    for command, slug in [(cmd("receive", warehouse="NOPE", quantity=1), "unknown-warehouse"),
                          (cmd("receive", sku="NOPE", quantity=1), "unknown-sku"),
                          (cmd("receive", warehouse="OLD-9", quantity=1), "inactive-warehouse"),
                          (transfer(1, dst="OLD-9"), "inactive-warehouse")]:
        running = balances(sel_book=(10, 3), old_book=(1, 1))
        plan = plan_single(command, CATALOG, running)
        assert plan.status == "failed"
        assert plan.movements == []
        assert plan.error is not None and plan.error["type"] == f"/problems/{slug}"
        assert "line" not in plan.error
        assert running.final() == {(SEL, BOOK): Balance(10, 3), (OLD, BOOK): Balance(1, 1)}


# --- plan_single -------------------------------------------------------------------------------

def test_plan_single_success_keeps_the_new_balance() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_single(issue(4), CATALOG, running)
    assert plan.status == "succeeded"
    assert plan.result == {"on_hand_after": 6, "version_after": 4}
    assert plan.error is None
    assert plan.movements == [Movement((SEL, BOOK), "issue", -4, 6, 4, None, None, None)]
    assert running.final() == {(SEL, BOOK): Balance(6, 4)}


def test_plan_single_transfer_result_names_both_levels() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_single(transfer(4), CATALOG, running)
    assert plan.status == "succeeded"
    assert plan.result == {"from": {"on_hand_after": 6, "version_after": 4},
                           "to": {"on_hand_after": 4, "version_after": 1}}
    assert [m.type for m in plan.movements] == ["transfer_out", "transfer_in"]
    assert running.final() == {(SEL, BOOK): Balance(6, 4), (BUS, BOOK): Balance(4, 1)}


def test_plan_single_insufficient_stock_changes_nothing() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_single(issue(11), CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.result is None
    assert plan.error == {"type": "/problems/insufficient-stock", "title": "Insufficient stock",
                          "status": 409, "detail": "SEL-1/BOOK-001 has 10 available; 11 requested.",
                          "on_hand": 10, "reserved": 0, "available": 10, "requested": 11}
    assert running.final() == {(SEL, BOOK): Balance(10, 3)}
    assert running.get((SEL, BOOK)) == Balance(10, 3)


def test_plan_single_failed_transfer_changes_neither_level() -> None:
    running = balances(sel_book=(3, 3), bus_book=(2, 7))
    plan = plan_single(transfer(4), CATALOG, running)
    assert plan.status == "failed"
    assert plan.error is not None and plan.error["type"] == "/problems/insufficient-stock"
    assert running.final() == {(SEL, BOOK): Balance(3, 3), (BUS, BOOK): Balance(2, 7)}


def test_sequential_single_commands_see_each_other() -> None:
    running = RunningBalances({})
    results = [plan_single(c, CATALOG, running) for c in
               [receive(5), issue(3), transfer(2), issue(1), count(7), adjust(-7), issue(1)]]
    assert [p.status for p in results] == ["succeeded", "succeeded", "succeeded", "failed",
                                           "succeeded", "succeeded", "failed"]
    assert results[0].result == {"on_hand_after": 5, "version_after": 1}
    assert results[1].result == {"on_hand_after": 2, "version_after": 2}
    assert results[2].result == {"from": {"on_hand_after": 0, "version_after": 3},
                                 "to": {"on_hand_after": 2, "version_after": 1}}
    assert results[3].error is not None
    assert (results[3].error["on_hand"], results[3].error["requested"]) == (0, 1)
    assert results[4].result == {"on_hand_after": 7, "version_after": 4}
    assert results[5].result == {"on_hand_after": 0, "version_after": 5}
    assert running.final() == {(SEL, BOOK): Balance(0, 5), (BUS, BOOK): Balance(2, 1)}


def test_sequential_expectations_see_earlier_commands() -> None:
    running = RunningBalances({})
    assert plan_single(receive(5, expected_version=0), CATALOG, running).status == "succeeded"
    stale = plan_single(receive(5, expected_version=0), CATALOG, running)
    assert stale.status == "failed"
    assert stale.error is not None and stale.error["type"] == "/problems/stale-expectation"
    ok = plan_single(issue(2, expected_version=1, expected_on_hand=5), CATALOG, running)
    assert ok.result == {"on_hand_after": 3, "version_after": 2}


# --- plan_batch: atomic ------------------------------------------------------------------------

def test_atomic_batch_success() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_batch([issue(4), receive(1), transfer(7)], True, CATALOG, running)
    assert plan.status == "succeeded"
    assert plan.error is None
    assert plan.failed_lines == []
    assert plan.result == {"total": 3, "succeeded": 3, "failed": 0}
    assert plan.movements == [
        Movement((SEL, BOOK), "issue", -4, 6, 4, 0, None, None),
        Movement((SEL, BOOK), "receive", 1, 7, 5, 1, None, None),
        Movement((SEL, BOOK), "transfer_out", -7, 0, 6, 2, None, None),
        Movement((BUS, BOOK), "transfer_in", 7, 7, 1, 2, None, None),
    ]
    assert running.final() == {(SEL, BOOK): Balance(0, 6), (BUS, BOOK): Balance(7, 1)}


def test_atomic_batch_with_a_bad_line_in_the_middle_changes_nothing() -> None:
    running = balances(sel_book=(10, 3))
    plan = plan_batch([receive(5), issue(100), issue(2)], True, CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.result == {"total": 3, "succeeded": 0, "failed": 1}
    assert plan.error == {"type": "/problems/insufficient-stock", "title": "Insufficient stock",
                          "status": 409, "detail": "SEL-1/BOOK-001 has 15 available; 100 requested.",
                          "on_hand": 15, "reserved": 0, "available": 15, "requested": 100, "line": 1}
    assert [line for line, _ in plan.failed_lines] == [1]
    assert running.final() == {(SEL, BOOK): Balance(10, 3)}
    assert running.get((SEL, BOOK)) == Balance(10, 3)


def test_atomic_batch_reports_all_bad_lines() -> None:
    running = balances(sel_book=(10, 3), bus_book=(1, 1))
    commands = [
        receive(5),                                   # 0 ok: 15
        cmd("receive", sku="NOPE", quantity=1),       # 1 unknown sku
        issue(15),                                    # 2 ok: 0
        issue(1),                                     # 3 insufficient (sees line 2)
        transfer(1, dst="OLD-9"),                     # 4 inactive
        receive(1, expected_version=3),               # 5 stale (version is 5 by now)
        cmd("issue", warehouse="NOPE", quantity=1),   # 6 unknown warehouse
        receive(2),                                   # 7 ok
    ]
    plan = plan_batch(commands, True, CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.error is not None
    assert plan.error["line"] == 1
    assert plan.error["type"] == "/problems/unknown-sku"
    assert [(line, p.slug) for line, p in plan.failed_lines] == [
        (1, "unknown-sku"), (3, "insufficient-stock"), (4, "inactive-warehouse"),
        (5, "stale-expectation"), (6, "unknown-warehouse")]
    assert plan.failed_lines[1][1].extra == {"on_hand": 0, "reserved": 0, "available": 0, "requested": 1}
    assert plan.failed_lines[3][1].extra == {"expected_version": 3, "version": 5}
    assert plan.result == {"total": 8, "succeeded": 0, "failed": 5}
    assert running.final() == {(SEL, BOOK): Balance(10, 3), (BUS, BOOK): Balance(1, 1)}


def test_atomic_batch_lines_see_earlier_lines() -> None:
    running = RunningBalances({})
    plan = plan_batch([receive(5), issue(5)], True, CATALOG, running)
    assert plan.status == "succeeded"
    assert [(m.type, m.on_hand_after, m.version, m.line) for m in plan.movements] == [
        ("receive", 5, 1, 0), ("issue", 0, 2, 1)]
    assert running.final() == {(SEL, BOOK): Balance(0, 2)}


def test_failed_atomic_batch_leaves_later_jobs_on_the_old_balances() -> None:
    running = balances(sel_book=(10, 3))
    assert plan_batch([receive(90), issue(1000)], True, CATALOG, running).status == "failed"
    plan = plan_single(issue(10), CATALOG, running)
    assert plan.result == {"on_hand_after": 0, "version_after": 4}
    assert plan_single(issue(1), CATALOG, running).status == "failed"
    assert running.final() == {(SEL, BOOK): Balance(0, 4)}


def test_atomic_batch_with_every_line_bad() -> None:
    running = balances(sel_book=(1, 1))
    plan = plan_batch([issue(2), issue(3)], True, CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.error is not None and plan.error["line"] == 0
    assert [line for line, _ in plan.failed_lines] == [0, 1]
    assert running.final() == {(SEL, BOOK): Balance(1, 1)}


# --- plan_batch: independent -------------------------------------------------------------------

def test_independent_batch_success() -> None:
    running = RunningBalances({})
    plan = plan_batch([receive(5), issue(5)], False, CATALOG, running)
    assert plan.status == "succeeded"
    assert plan.error is None
    assert plan.failed_lines == []
    assert plan.result == {"total": 2, "succeeded": 2, "failed": 0}
    assert [(m.type, m.delta, m.on_hand_after, m.version, m.line) for m in plan.movements] == [
        ("receive", 5, 5, 1, 0), ("issue", -5, 0, 2, 1)]
    assert running.final() == {(SEL, BOOK): Balance(0, 2)}


def test_independent_batch_partially_fails_and_good_lines_apply() -> None:
    running = RunningBalances({})
    commands = [receive(5), issue(5), issue(1), cmd("receive", sku="NOPE", quantity=1), receive(2),
                issue(2)]
    plan = plan_batch(commands, False, CATALOG, running)
    assert plan.status == "partially_failed"
    assert plan.result == {"total": 6, "succeeded": 4, "failed": 2}
    assert [(line, p.slug) for line, p in plan.failed_lines] == [(2, "insufficient-stock"),
                                                                  (3, "unknown-sku")]
    assert plan.failed_lines[0][1].extra == {"on_hand": 0, "reserved": 0, "available": 0, "requested": 1}
    assert [(m.type, m.delta, m.on_hand_after, m.version, m.line) for m in plan.movements] == [
        ("receive", 5, 5, 1, 0), ("issue", -5, 0, 2, 1), ("receive", 2, 2, 3, 4),
        ("issue", -2, 0, 4, 5)]
    assert running.final() == {(SEL, BOOK): Balance(0, 4)}


def test_independent_batch_failed_transfer_does_not_move_either_level() -> None:
    running = balances(sel_book=(3, 1))
    plan = plan_batch([transfer(2), transfer(2), transfer(1)], False, CATALOG, running)
    assert plan.status == "partially_failed"
    assert [line for line, _ in plan.failed_lines] == [1]
    assert [(m.type, m.on_hand_after, m.version, m.line) for m in plan.movements] == [
        ("transfer_out", 1, 2, 0), ("transfer_in", 2, 1, 0),
        ("transfer_out", 0, 3, 2), ("transfer_in", 3, 2, 2)]
    assert running.final() == {(SEL, BOOK): Balance(0, 3), (BUS, BOOK): Balance(3, 2)}


def test_independent_batch_with_every_line_bad_fails() -> None:
    running = balances(sel_book=(1, 1))
    plan = plan_batch([issue(2), cmd("receive", warehouse="OLD-9", quantity=1)], False, CATALOG, running)
    assert plan.status == "failed"
    assert plan.movements == []
    assert plan.result == {"total": 2, "succeeded": 0, "failed": 2}
    assert [(line, p.slug) for line, p in plan.failed_lines] == [(0, "insufficient-stock"),
                                                                  (1, "inactive-warehouse")]
    assert running.final() == {(SEL, BOOK): Balance(1, 1)}


def test_jobs_planned_in_a_row_share_the_running_balances() -> None:
    running = balances(sel_book=(10, 3))
    first = plan_batch([issue(4), issue(100)], False, CATALOG, running)
    assert first.status == "partially_failed"
    second = plan_single(issue(6, expected_on_hand=6, expected_version=4), CATALOG, running)
    assert second.result == {"on_hand_after": 0, "version_after": 5}
    third = plan_batch([receive(1), issue(1)], True, CATALOG, running)
    assert [(m.on_hand_after, m.version) for m in third.movements] == [(1, 6), (0, 7)]
    assert running.final() == {(SEL, BOOK): Balance(0, 7)}


def test_balances_of_other_products_are_separate() -> None:
    running = balances(sel_book=(10, 3), sel_pen=(1, 9))
    plan = plan_batch([cmd("issue", sku="PEN-002", quantity=1), issue(1),
                       cmd("issue", sku="PEN-002", quantity=1)], False, CATALOG, running)
    assert plan.status == "partially_failed"
    assert [line for line, _ in plan.failed_lines] == [2]
    assert running.final() == {(SEL, BOOK): Balance(9, 4), (SEL, PEN): Balance(0, 10)}
