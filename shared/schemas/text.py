"""Free text (names, addresses, units, references, reasons): what it may hold.

Text goes from one partner's request into everyone's screens, logs and spreadsheet exports, so:
- no character of the Unicode categories Cc (controls: NUL, escapes, C1 controls) or Cf (format:
  the bidirectional overrides such as U+202E that show text reversed, zero-width spaces and joiners,
  the byte order mark), which hide or disguise what a text says;
- not blank (only spaces), which names nothing;
- not starting with `=`, `+`, `-` or `@`, which a spreadsheet opening an export reads as a formula
  (`=HYPERLINK(...)`).
The OpenAPI document states the first as a pattern (so fuzzers aim at it too).
"""

import unicodedata

from pydantic import AfterValidator, Field

CONTROL_CATEGORIES = ("Cc", "Cf")
FORMULA_STARTS = ("=", "+", "-", "@")


def _ranges(code_points: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _control_class() -> str:
    """A regex character class of every Cc and Cf code point this Python's Unicode data knows.
    They lie in planes 0, 1 and 14 (the tag characters); tests/unit/test_text.py checks the rest
    of the range holds none, so a Unicode update that adds one elsewhere fails a test."""
    planes = (range(0x20000), range(0xE0000, 0xE1000))
    points = [cp for plane in planes for cp in plane
              if unicodedata.category(chr(cp)) in CONTROL_CATEGORIES]
    return "".join(_escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}"
                   for lo, hi in _ranges(points))


NO_CONTROLS = f"^[^{_control_class()}]*$"


def _readable(text: str) -> str:
    # isprintable() is false for every Cc and Cf character (and for some that are allowed, such as
    # U+3000): the character scan runs only for those texts.
    if not text.isprintable():
        for char in text:
            if unicodedata.category(char) in CONTROL_CATEGORIES:
                raise ValueError(f"must not hold control or format characters (U+{ord(char):04X})")
    if text.isspace():
        raise ValueError("must not be blank")
    if text.startswith(FORMULA_STARTS):
        raise ValueError("must not start with = + - or @ (a spreadsheet would read it as a formula)")
    return text


# The rules as Annotated metadata, after the length: each free-text type is spelled out where it is
# named, `Annotated[str, StringConstraints(min_length=1, max_length=N), READABLE, NO_CONTROLS_IN_SCHEMA]`,
# so that mypy reads it as a type (a function that returns an Annotated is not one to a type checker).
# The order matters to pydantic: the length is checked first.
READABLE = AfterValidator(_readable)
NO_CONTROLS_IN_SCHEMA = Field(json_schema_extra={"pattern": NO_CONTROLS})
