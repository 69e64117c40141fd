"""The receiving page's CSV check (api/console/receipts.py): every line with the API's own command
model, the file's problems, and what the catalog and the key's warehouse limit add."""

from api.console.receipts import check_catalog, parse_receipts, to_csv


def _verdicts(data: bytes, max_lines: int = 100) -> list[tuple[int, bool]]:
    return [(line.number, line.ok) for line in parse_receipts(data, max_lines).lines]


def test_a_file_with_a_header_in_any_order_and_an_optional_reference():
    receipts = parse_receipts(b"sku,warehouse,quantity\r\nBOOK-1,SEL-1,5\r\nBOOK-2,SEL-1,7\r\n", 100)
    assert receipts.sendable and receipts.problems == []
    assert [(c.warehouse, c.sku, c.quantity, c.reference) for c in receipts.commands] == [
        ("SEL-1", "BOOK-1", 5, None), ("SEL-1", "BOOK-2", 7, None)]
    assert [line.number for line in receipts.lines] == [2, 3]


def test_a_file_without_a_header_reads_warehouse_sku_quantity_reference():
    receipts = parse_receipts(b"SEL-1,BOOK-1,5,po-77\nSEL-1,BOOK-2,1\n", 100)
    assert receipts.sendable
    assert [c.reference for c in receipts.commands] == ["po-77", None]
    assert [line.number for line in receipts.lines] == [1, 2]


def test_each_bad_line_says_why_and_the_file_cannot_be_sent():
    data = (b"warehouse,sku,quantity,reference\n"
            b"SEL-1,BOOK-1,5,\n"
            b"SEL-1,BOOK-1,ten,\n"
            b"SEL-1,BOOK-1,1.5,\n"
            b"SEL-1,BOOK-1,-5,\n"
            b"SEL-1,BOOK-1,0,\n"
            b"SEL 1,BOOK-1,5,\n"
            b"SEL-1,BOOK-1,5,=HYPERLINK(1)\n"
            b"SEL-1,BOOK-1\n"
            b"SEL-1,BOOK-1,5,a,b\n")
    receipts = parse_receipts(data, 100)
    assert not receipts.sendable
    lines = {line.number: line for line in receipts.lines}
    assert lines[2].ok
    assert "quantity: Input should be a valid integer" in lines[3].errors
    assert "quantity: Input should be a valid integer" in lines[4].errors
    assert any(e.startswith("quantity: Input should be greater than 0") for e in lines[5].errors)
    assert any(e.startswith("quantity: Input should be greater than 0") for e in lines[6].errors)
    assert any(e.startswith("warehouse:") for e in lines[7].errors)
    assert any("formula" in e for e in lines[8].errors)
    assert lines[9].errors == ("expected 3 to 4 fields, found 2",)
    assert lines[10].errors == ("expected 3 to 4 fields, found 5",)


def test_blank_lines_are_skipped_and_numbers_stay_the_files():
    assert _verdicts(b"warehouse,sku,quantity\n\nSEL-1,BOOK-1,5\n , , \nSEL-1,BOOK-1,x\n") == [
        (3, True), (5, False)]


def test_a_quoted_field_over_two_lines_is_numbered_where_it_starts():
    receipts = parse_receipts(b'SEL-1,BOOK-1,5,"two\nlines"\nSEL-1,BOOK-1,6\n', 100)
    assert [line.number for line in receipts.lines] == [1, 3]
    assert not receipts.lines[0].ok  # a line break is a control character in free text


def test_the_file_as_a_whole():
    assert parse_receipts(b"", 100).problems == ["The file has no receipts."]
    assert parse_receipts(b"warehouse,sku,quantity\n", 100).problems == ["The file has no receipts."]
    assert parse_receipts(b"\xff\xfe,x", 100).problems == ["The file is not UTF-8 text."]
    assert "not price" in parse_receipts(b"warehouse,sku,quantity,price\nA,B,1,2\n", 100).problems[0]
    assert parse_receipts(b"warehouse,quantity\nA,1\n", 100).problems[0].startswith("Line 1: the header")
    too_many = parse_receipts(b"SEL-1,BOOK-1,1\n" * 4, 3)
    assert too_many.problems == ["More than 3 lines: a batch takes at most 3."] and not too_many.sendable


def test_a_byte_order_mark_is_not_part_of_the_header():
    receipts = parse_receipts("\ufeffwarehouse,sku,quantity\nSEL-1,BOOK-1,5\n".encode(), 100)
    assert receipts.sendable and len(receipts.lines) == 1


def test_the_catalog_warns_of_unknown_codes_and_the_key_limit_refuses_other_warehouses():
    receipts = parse_receipts(b"SEL-1,BOOK-1,5\nSEL-1,NEW-9,5\nBUS-2,BOOK-1,5\nSEL-1,BOOK-1,x\n", 100)
    checked = check_catalog(receipts, may_use=lambda code: code == "SEL-1",
                            known_warehouses={"SEL-1"}, known_skus={"BOOK-1"})
    first, unknown, foreign, bad = checked.lines
    assert first.ok and first.warnings == ()
    assert unknown.ok and unknown.warnings == ("unknown SKU 'NEW-9': this line will fail",)
    assert not foreign.ok and "not limited to the warehouse 'BUS-2'" in foreign.errors[0]
    assert foreign.warnings == ()  # nothing said about another warehouse's catalog
    assert bad.errors == receipts.lines[3].errors
    assert not checked.sendable
    allowed = check_catalog(parse_receipts(b"SEL-1,NEW-9,5\n", 100), may_use=lambda code: True,
                            known_warehouses=set(), known_skus=set())
    assert allowed.sendable and len(allowed.lines[0].warnings) == 2  # warnings do not stop it


def test_the_checked_lines_travel_as_csv_and_read_back_the_same():
    receipts = parse_receipts(b'SEL-1,BOOK-1,5,"po, 7"\nSEL-1,BOOK-2,9\n', 100)
    again = parse_receipts(to_csv(receipts).encode(), 100)
    assert again.sendable
    assert [c.model_dump() for c in again.commands] == [c.model_dump() for c in receipts.commands]
