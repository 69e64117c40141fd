"""shared/literal_rows.py escapes strings as pymysql does, on short text and long alike."""

import random

from pymysql.converters import escape_string  # type: ignore[import-untyped]

from shared.literal_rows import SHORT_TEXT, escape

SPECIAL = "\\\0\n\r\032\"'"


def test_every_character_is_escaped_as_pymysql_escapes_it_alone_and_in_long_text():
    for code in range(0x3100):
        char = chr(code) if not 0xD800 <= code < 0xE000 else "x"
        assert escape(char) == escape_string(char), hex(code)
        long_text = f"{char}{'a' * SHORT_TEXT}{char}"
        assert escape(long_text) == escape_string(long_text), hex(code)


def test_random_text_of_escaped_characters_around_the_short_length():
    alphabet = SPECIAL + "ab é✓𝄞%?:"
    chosen = random.Random(22)
    for _ in range(20_000):
        text = "".join(chosen.choice(alphabet) for _ in range(chosen.randrange(SHORT_TEXT * 2)))
        assert escape(text) == escape_string(text), repr(text)
