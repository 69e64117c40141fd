"""Reading metrics: Prometheus text scrapes into samples, and the metric names a PromQL expression uses."""

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# PromQL words that look like metric names but are not.
KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
    "unless", "inf", "nan", "start", "end",
})


def scrape(url: str) -> list[Sample]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return [sample for family in text_string_to_metric_families(response.text)
            for sample in family.samples]


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions, aggregation
    operators, keywords, label names or durations. Strings and label matchers are dropped first."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name, rest = match.group(), text[match.end():].lstrip()
        preceded_by_digit = match.start() > 0 and text[match.start() - 1].isdigit()
        if rest.startswith("(") or name.lower() in KEYWORDS or preceded_by_digit:
            continue
        names.add(name)
    return names
