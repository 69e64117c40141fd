"""Free text: no Cc or Cf characters, not blank, no formula start (shared/schemas/text.py)."""

import re
import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.schemas.commands import Note
from shared.schemas.text import NO_CONTROLS

TEXT = TypeAdapter(Note)  # free text of up to 200 characters


def test_the_documented_pattern_refuses_every_control_and_format_character_there_is():
    pattern = re.compile(NO_CONTROLS)
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        if unicodedata.category(char) in ("Cc", "Cf"):
            assert not pattern.fullmatch(char), f"U+{cp:04X}"
        elif unicodedata.category(char) != "Cs":  # lone surrogates cannot come from JSON text
            assert pattern.fullmatch(char), f"U+{cp:04X}"


@pytest.mark.parametrize("text", [
    "a\u202eb",  # right-to-left override: shows "b" before "a"
    "x\u200by",  # zero-width space
    "c1\x85",  # a C1 control (NEL)
    "\ufeffbom",
    "tab\there",
    "   ", "\u3000", "\u00a0 ",  # blank, also with Unicode spaces
    '=HYPERLINK("http://example.invalid","click")', "+1", "-2 damaged", "@SUM(A1)",
])
def test_refused(text):
    with pytest.raises(ValidationError):
        TEXT.validate_python(text)


@pytest.mark.parametrize("text", ["Songpa logistics centre", "송파 물류센터", "Straße 5, 2nd floor",
                                  "50% off = sale", "a-b", "\u3000indented", "emoji \U0001f4e6"])
def test_accepted(text):
    assert TEXT.validate_python(text) == text
