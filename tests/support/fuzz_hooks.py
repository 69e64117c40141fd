"""Schemathesis hooks for fuzzing this API: its own contract checks, and known codes to aim at.

Loaded by the schemathesis CLI (tests/e2e/test_fuzz.py, bin/fuzz) with
`SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks` and the repository root on PYTHONPATH.

- Checks: the built-in ones see that responses match the OpenAPI document; these see what API.md
  says beyond it: every error is RFC 9457 problem+json whose `status` is the HTTP status, and no
  error shows a stack trace or SQL.
- Headers: beside the header parameters the document declares, a request may carry odd ones (a
  request id, an origin, a forwarded address, made-up names; values of any Latin-1 text up to a few
  kilobytes, so some requests are over the server's header limit and must get a problem 431).
- Known codes: random warehouse codes and SKUs almost never exist, so without help every stock
  command fails as unknown-warehouse and no worker ever moves stock. With FUZZ_WAREHOUSES and
  FUZZ_SKUS (comma-separated, made by the caller; FUZZ_JOBS likewise), generated path parameters,
  queries and bodies may have their codes swapped for known ones, so commands really receive,
  issue, adjust, count and transfer, and the books have something to balance.
"""

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

PROBLEM_JSON = "application/problem+json"
PROBLEM_MEMBERS = {"type": str, "title": str, "status": int, "detail": str}
CUSTOM_CHECKS = ("every_error_is_a_problem", "no_internals_leak")


def _codes(variable: str) -> list[str]:
    return [code for code in os.environ.get(variable, "").split(",") if code]


WAREHOUSES = _codes("FUZZ_WAREHOUSES")
SKUS = _codes("FUZZ_SKUS")
# Which members and parameters name a warehouse or a product, wherever they appear.
KNOWN = {name: WAREHOUSES for name in ("code", "warehouse", "from_warehouse", "to_warehouse")}
KNOWN["sku"] = SKUS
KNOWN["job_id"] = _codes("FUZZ_JOBS")


# ---------------------------------------------------------------------------------------------
# Checks.

def _header(response: schemathesis.Response, name: str) -> str | None:
    for key, values in response.headers.items():
        if key.lower() == name and values:
            return values[0]
    return None


@schemathesis.check
def every_error_is_a_problem(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                             case: schemathesis.Case) -> bool | None:
    """Every 4xx and 5xx is problem+json with type, title, status and detail; its status is the
    response's; and it is never the catch-all internal error."""
    if response.status_code < 400:
        return None
    content_type = _header(response, "content-type") or ""
    if content_type.split(";")[0].strip().lower() != PROBLEM_JSON:
        raise AssertionError(f"{response.status_code} with content-type {content_type!r}, "
                             f"not {PROBLEM_JSON}")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise AssertionError(f"the problem is not a JSON object: {body!r:.200}")
    for member, kind in PROBLEM_MEMBERS.items():
        value = body.get(member)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise AssertionError(f"problem member {member!r} is missing or not a {kind.__name__}: "
                                 f"{body!r:.300}")
    if not body["type"].startswith("/problems/"):
        raise AssertionError(f"problem type {body['type']!r} is not a /problems/ slug")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} but HTTP status {response.status_code}")
    if body["type"] == "/problems/internal-error":
        raise AssertionError("an unhandled error in the API (see its log)")
    return True


@schemathesis.check
def no_internals_leak(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                      case: schemathesis.Case) -> bool | None:
    """No error shows a stack trace, SQL or a driver's message."""
    if response.status_code < 400:
        return None
    text = response.content.decode("utf-8", "replace")
    # Markers no generated input is likely to hold, so an echoed path parameter is no false alarm.
    for marker in ("Traceback (most recent call last)", "sqlalchemy.", "pymysql.", 'File "/'):
        if marker in text:
            raise AssertionError(f"the error body shows {marker!r}: {text[:300]}")
    return True


# ---------------------------------------------------------------------------------------------
# Known codes: each generated value is kept, or has its codes swapped for known ones.

def _aimed(values: Any) -> st.SearchStrategy:
    """The generated mapping as it is, or with every code member replaced by a known code and
    whole floats made integers (JSON Schema calls 5.0 an integer; this API does not), so that the
    aimed variant is a command a worker applies."""
    if not isinstance(values, dict):
        return st.just(values)
    names = [name for name, known in KNOWN.items() if known and isinstance(values.get(name), str)]
    if not names:
        return st.just(values)
    whole = {name: int(value) for name, value in values.items()
             if isinstance(value, float) and value.is_integer() and abs(value) < 2**53}
    swapped = st.fixed_dictionaries({name: st.sampled_from(KNOWN[name]) for name in names})
    return st.one_of(st.just(values), swapped.map(lambda codes: {**values, **whole, **codes}))


@schemathesis.hook
def flatmap_path_parameters(context: schemathesis.HookContext,
                            path_parameters: dict[str, Any]) -> st.SearchStrategy:
    return _aimed(path_parameters)


@schemathesis.hook
def flatmap_query(context: schemathesis.HookContext, query: dict[str, Any]) -> st.SearchStrategy:
    return _aimed(query)


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
    commands = body.get("commands") if isinstance(body, dict) else None
    if isinstance(commands, list) and 0 < len(commands) <= 100:  # a batch: aim each line
        return st.tuples(*map(_aimed, commands)).map(lambda lines: {**body, "commands": list(lines)})
    return _aimed(body)


# ---------------------------------------------------------------------------------------------
# Headers: each case as it is, or with odd headers added.

HEADER_NAMES = st.one_of(
    st.sampled_from(["X-Request-ID", "Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding",
                     "Origin", "Referer", "X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "Cookie",
                     "User-Agent", "Cache-Control", "If-None-Match", "Range"]),
    st.from_regex(r"\AX-[A-Za-z0-9-]{1,40}\Z"))
# Latin-1 without controls, and without leading or trailing spaces (HTTP clients refuse those).
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                      exclude_characters="\x7f" + "".join(map(chr, range(0x80, 0xA0)))),
                        max_size=3000).map(str.strip)


@schemathesis.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case) -> st.SearchStrategy:
    def with_headers(extra: dict[str, str]) -> schemathesis.Case:
        for name, value in extra.items():
            if name not in case.headers:  # the document's own parameters keep their generated values
                case.headers[name] = value
        return case

    extra = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=12)
    return st.one_of(st.just(case), extra.map(with_headers))
