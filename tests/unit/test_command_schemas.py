"""The strict command shapes: what POST /v1/commands and /v1/batches accept, and what they refuse.

Each input is tried both as Python data (how the worker re-reads a stored payload) and as JSON text
(how a client sends it), since strictness differs between the two modes in pydantic.
"""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.schemas.commands import (
    MAX_QUANTITY,
    Adjust,
    BatchRequest,
    Count,
    Issue,
    Receive,
    Transfer,
    command_adapter,
)

VALID: dict[str, dict[str, Any]] = {
    "receive": {"type": "receive", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 5},
    "issue": {"type": "issue", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 5},
    "adjust": {"type": "adjust", "warehouse": "SEL-1", "sku": "BOOK-001", "delta": -2, "reason": "damaged"},
    "count": {"type": "count", "warehouse": "SEL-1", "sku": "BOOK-001", "on_hand": 40},
    "transfer": {"type": "transfer", "from_warehouse": "SEL-1", "to_warehouse": "BUS-2",
                 "sku": "BOOK-001", "quantity": 5},
}
CLASSES = {"receive": Receive, "issue": Issue, "adjust": Adjust, "count": Count, "transfer": Transfer}
QUANTITY_TYPES = ["receive", "issue", "transfer"]
MODES = ["python", "json"]


def validate(data: dict[str, Any], mode: str) -> Any:
    if mode == "json":
        return command_adapter.validate_json(json.dumps(data))
    return command_adapter.validate_python(data)


def validate_batch(data: dict[str, Any], mode: str) -> BatchRequest:
    if mode == "json":
        return BatchRequest.model_validate_json(json.dumps(data))
    return BatchRequest.model_validate(data)


def errors_of(data: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        validate(data, mode)
    return info.value.errors()


def with_(kind: str, **changes: Any) -> dict[str, Any]:
    return {**VALID[kind], **changes}


def without(kind: str, name: str) -> dict[str, Any]:
    data = dict(VALID[kind])
    del data[name]
    return data


# --- the five types validate -------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(VALID))
def test_each_type_validates(kind: str, mode: str) -> None:
    command = validate(VALID[kind], mode)
    assert type(command) is CLASSES[kind]
    assert command.type == kind
    assert command.model_dump(exclude_none=True) == VALID[kind]


@pytest.mark.parametrize("mode", MODES)
def test_optional_fields_are_accepted(mode: str) -> None:
    data = with_("receive", reference="PO-77", reason="restock", expected_on_hand=0, expected_version=0)
    command = validate(data, mode)
    assert command.reference == "PO-77"
    assert command.reason == "restock"
    assert command.expected_on_hand == 0
    assert command.expected_version == 0


def test_stock_keys_name_source_first() -> None:
    assert validate(VALID["issue"], "python").stock_keys() == [("SEL-1", "BOOK-001")]
    transfer = validate(VALID["transfer"], "python")
    assert transfer.stock_keys() == [("SEL-1", "BOOK-001"), ("BUS-2", "BOOK-001")]
    assert transfer.first_warehouse == "SEL-1"


@pytest.mark.parametrize("quantity", [1, MAX_QUANTITY])
@pytest.mark.parametrize("kind", QUANTITY_TYPES)
def test_quantity_bounds_are_inclusive(kind: str, quantity: int) -> None:
    assert validate(with_(kind, quantity=quantity), "python").quantity == quantity


def test_limits_on_codes_and_notes_are_inclusive() -> None:
    command = validate(with_("receive", warehouse="W" * 32, sku="S" * 64, reference="r" * 200), "json")
    assert command.warehouse == "W" * 32
    assert command.sku == "S" * 64
    assert len(command.reference) == 200
    assert validate(with_("receive", warehouse="a.B_c-9"), "json").warehouse == "a.B_c-9"


def test_adjust_accepts_positive_delta_and_count_accepts_zero() -> None:
    assert validate(with_("adjust", delta=3), "python").delta == 3
    assert validate(with_("count", on_hand=0), "python").on_hand == 0


# --- quantities --------------------------------------------------------------------------------

BAD_QUANTITIES = [
    pytest.param(0, "greater_than", id="zero"),
    pytest.param(-1, "greater_than", id="negative"),
    pytest.param(5.0, "int_type", id="float"),
    pytest.param("5", "int_type", id="string"),
    pytest.param(True, "int_type", id="bool"),
    pytest.param(1_000_000_001, "less_than_equal", id="over-limit"),
    pytest.param(10**30, None, id="huge"),
    pytest.param(None, "int_type", id="null"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("quantity", "error_type"), BAD_QUANTITIES)
@pytest.mark.parametrize("kind", QUANTITY_TYPES)
def test_bad_quantity_is_rejected(kind: str, quantity: Any, error_type: str | None, mode: str) -> None:
    errors = errors_of(with_(kind, quantity=quantity), mode)
    assert len(errors) == 1
    assert errors[0]["loc"] == (kind, "quantity")
    if error_type is not None:
        assert errors[0]["type"] == error_type


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("delta", [5.0, "5", True, 1_000_000_001, -1_000_000_001, 10**30])
def test_bad_adjust_delta_is_rejected(delta: Any, mode: str) -> None:
    errors = errors_of(with_("adjust", delta=delta), mode)
    assert [e["loc"] for e in errors] == [("adjust", "delta")]


@pytest.mark.parametrize("mode", MODES)
def test_adjust_delta_zero_is_rejected(mode: str) -> None:
    errors = errors_of(with_("adjust", delta=0), mode)
    assert len(errors) == 1
    assert errors[0]["type"] == "value_error"
    assert "delta must not be 0" in errors[0]["msg"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("on_hand", [-1, 5.0, "5", True, 10**16])
def test_bad_count_on_hand_is_rejected(on_hand: Any, mode: str) -> None:
    errors = errors_of(with_("count", on_hand=on_hand), mode)
    assert [e["loc"] for e in errors] == [("count", "on_hand")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["expected_on_hand", "expected_version"])
@pytest.mark.parametrize("value", [-1, 1.0, "1", True])
def test_bad_expectation_is_rejected(field: str, value: Any, mode: str) -> None:
    errors = errors_of(with_("issue", **{field: value}), mode)
    assert [e["loc"] for e in errors] == [("issue", field)]


# --- type, missing and extra fields ------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("type_", ["sell", "Receive", "transfer_in", "", 1, None])
def test_unknown_type_is_rejected(type_: Any, mode: str) -> None:
    errors = errors_of(with_("receive", type=type_), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [((), "union_tag_invalid")]


@pytest.mark.parametrize("mode", MODES)
def test_missing_type_is_rejected(mode: str) -> None:
    errors = errors_of(without("receive", "type"), mode)
    assert [e["type"] for e in errors] == ["union_tag_not_found"]


REQUIRED = [(kind, name) for kind, data in VALID.items() for name in data if name != "type"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kind", "name"), REQUIRED)
def test_missing_field_is_rejected(kind: str, name: str, mode: str) -> None:
    errors = errors_of(without(kind, name), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [((kind, name), "missing")]


@pytest.mark.parametrize("mode", MODES)
def test_adjust_without_reason_is_rejected(mode: str) -> None:
    errors = errors_of(without("adjust", "reason"), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("adjust", "reason"), "missing")]
    errors = errors_of(with_("adjust", reason=None), mode)
    assert [e["loc"] for e in errors] == [("adjust", "reason")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(VALID))
def test_unknown_extra_field_is_rejected(kind: str, mode: str) -> None:
    errors = errors_of(with_(kind, colour="red"), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [((kind, "colour"), "extra_forbidden")]


@pytest.mark.parametrize("mode", MODES)
def test_field_of_another_type_is_rejected(mode: str) -> None:
    errors = errors_of(with_("receive", on_hand=3), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("receive", "on_hand"), "extra_forbidden")]


# --- codes, skus and notes ---------------------------------------------------------------------

BAD_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("SEL 1", id="space"),
    pytest.param("SEL/1", id="slash"),
    pytest.param("SÉL-1", id="unicode-letter"),
    pytest.param("SEL-１", id="fullwidth-digit"),
    pytest.param("SEL-1\n", id="trailing-newline"),
    pytest.param(" SEL-1", id="leading-space"),
    pytest.param("SEL:1", id="colon"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", BAD_NAMES)
@pytest.mark.parametrize(("kind", "field"), [("receive", "warehouse"), ("receive", "sku"),
                                             ("transfer", "from_warehouse"), ("transfer", "to_warehouse"),
                                             ("transfer", "sku")])
def test_bad_characters_in_codes_are_rejected(kind: str, field: str, value: str, mode: str) -> None:
    errors = errors_of(with_(kind, **{field: value}), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [((kind, field), "string_pattern_mismatch")]


@pytest.mark.parametrize("mode", MODES)
def test_warehouse_code_over_32_chars_is_rejected(mode: str) -> None:
    errors = errors_of(with_("issue", warehouse="W" * 33), mode)
    assert [e["loc"] for e in errors] == [("issue", "warehouse")]
    errors = errors_of(with_("transfer", to_warehouse="W" * 33), mode)
    assert [e["loc"] for e in errors] == [("transfer", "to_warehouse")]


@pytest.mark.parametrize("mode", MODES)
def test_sku_over_64_chars_is_rejected(mode: str) -> None:
    errors = errors_of(with_("issue", sku="S" * 65), mode)
    assert [e["loc"] for e in errors] == [("issue", "sku")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["warehouse", "sku"])
def test_codes_must_be_strings(field: str, mode: str) -> None:
    errors = errors_of(with_("receive", **{field: 123}), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("receive", field), "string_type")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["reference", "reason"])
def test_note_over_200_chars_is_rejected(field: str, mode: str) -> None:
    errors = errors_of(with_("receive", **{field: "r" * 201}), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("receive", field), "string_too_long")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["reference", "reason"])
def test_empty_note_is_rejected(field: str, mode: str) -> None:
    errors = errors_of(with_("receive", **{field: ""}), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("receive", field), "string_too_short")]
    errors = errors_of(with_("adjust", reason=""), mode)
    assert [(e["loc"], e["type"]) for e in errors] == [(("adjust", "reason"), "string_too_short")]


@pytest.mark.parametrize("mode", MODES)
def test_transfer_to_the_same_warehouse_is_rejected(mode: str) -> None:
    errors = errors_of(with_("transfer", to_warehouse="SEL-1"), mode)
    assert len(errors) == 1
    assert errors[0]["loc"] == ("transfer",)
    assert "must differ" in errors[0]["msg"]


def test_commands_are_frozen() -> None:
    command = validate(VALID["receive"], "python")
    with pytest.raises(ValidationError):
        command.quantity = 6


# --- batches -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_mode", ["atomic", "independent"])
def test_batch_validates(batch_mode: str, mode: str) -> None:
    batch = validate_batch({"mode": batch_mode, "commands": list(VALID.values())}, mode)
    assert batch.mode == batch_mode
    assert [type(c) for c in batch.commands] == [Receive, Issue, Adjust, Count, Transfer]
    assert batch.commands[4].to_warehouse == "BUS-2"


@pytest.mark.parametrize("mode", MODES)
def test_batch_with_no_commands_is_rejected(mode: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": "atomic", "commands": []}, mode)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("commands",), "too_short")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_mode", ["all-or-nothing", "Atomic", "", None, 1])
def test_batch_with_unknown_mode_is_rejected(batch_mode: Any, mode: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": batch_mode, "commands": [VALID["receive"]]}, mode)
    assert [e["loc"] for e in info.value.errors()] == [("mode",)]


@pytest.mark.parametrize("mode", MODES)
def test_batch_missing_mode_or_extra_field_is_rejected(mode: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch({"commands": [VALID["receive"]]}, mode)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("mode",), "missing")]
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": "atomic", "commands": [VALID["receive"]], "dry_run": True}, mode)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("dry_run",), "extra_forbidden")]


@pytest.mark.parametrize("mode", MODES)
def test_batch_commands_must_be_a_list(mode: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": "atomic", "commands": VALID["receive"]}, mode)
    assert [e["loc"] for e in info.value.errors()] == [("commands",)]


@pytest.mark.parametrize("mode", MODES)
def test_batch_reports_every_bad_line(mode: str) -> None:
    commands = [
        VALID["receive"],                               # 0 good
        with_("receive", quantity=0),                   # 1 bad quantity
        VALID["issue"],                                 # 2 good
        {"type": "sell", "warehouse": "SEL-1"},         # 3 unknown type
        with_("adjust", delta=0),                       # 4 delta 0
        VALID["count"],                                 # 5 good
        with_("transfer", to_warehouse="SEL-1"),        # 6 same warehouses
        with_("issue", quantity="5"),                   # 7 string quantity
        without("count", "on_hand"),                    # 8 missing field
        with_("receive", sku="BAD SKU", extra=1),       # 9 two errors on one line
        VALID["transfer"],                              # 10 good
    ]
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": "atomic", "commands": commands}, mode)
    locs = [e["loc"] for e in info.value.errors()]
    assert all(loc[0] == "commands" for loc in locs)
    bad_lines = sorted({loc[1] for loc in locs})
    assert bad_lines == [1, 3, 4, 6, 7, 8, 9]
    assert ("commands", 1, "receive", "quantity") in locs
    assert ("commands", 3) in locs
    assert ("commands", 4, "adjust") in locs
    assert ("commands", 6, "transfer") in locs
    assert ("commands", 7, "issue", "quantity") in locs
    assert ("commands", 8, "count", "on_hand") in locs
    assert ("commands", 9, "receive", "sku") in locs
    assert ("commands", 9, "receive", "extra") in locs
    assert len(locs) == 8


@pytest.mark.parametrize("mode", MODES)
def test_batch_reports_bad_mode_and_bad_lines_together(mode: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch({"mode": "maybe", "commands": [VALID["issue"], with_("issue", quantity=-3)]}, mode)
    locs = [e["loc"] for e in info.value.errors()]
    assert ("mode",) in locs
    assert ("commands", 1, "issue", "quantity") in locs
    assert len(locs) == 2
