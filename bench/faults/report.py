"""The campaign's table (one row per fault) and its JSON copy under var/faults/."""

import json
import time
from pathlib import Path
from typing import Any

COLUMNS = [  # (header, key, width)
    ("fault", "fault", 20), ("fault s", "fault_seconds", 8), ("requests", "requests", 9),
    ("accepted", "accepted", 9), ("applied", "applied", 8), ("biz-failed", "business_failed", 11),
    ("lost", "lost", 5), ("dup", "duplicated", 4), ("stuck", "stuck", 6), ("5xx", "http_5xx", 5),
    ("503", "http_503", 5), ("429", "http_429", 5), ("conn err", "connection_errors", 9),
    ("recovery s", "recovery_seconds", 11),
    ("books", "invariants_ok", 6),
]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key == "recovery_seconds":
        return "-" if value is None else f"{value:.1f}"
    if key == "invariants_ok":
        return "ok" if value else "BROKEN"
    return str(value)


def failed(row: dict[str, Any]) -> bool:
    """Anything lost, duplicated or stuck, no recovery within the bound, or books that disagree."""
    return bool(row["lost"] or row["duplicated"] or row["stuck"] or row["recovery_seconds"] is None
                or not row["invariants_ok"])


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["".join(f"{h:<{w}}" if n == 0 else f"{h:>{w}}" for n, (h, _, w) in enumerate(COLUMNS))]
    for row in rows:
        lines.append("".join(f"{_cell(row, k):<{w}}" if n == 0 else f"{_cell(row, k):>{w}}"
                             for n, (_, k, w) in enumerate(COLUMNS)))
    return "\n".join(lines)


def notes(rows: list[dict[str, Any]], bound: float) -> str:
    """What went wrong, row by row, in words."""
    out = []
    for row in rows:
        if row["recovery_seconds"] is None:
            out.append(f"{row['fault']}: not recovered within the {bound:.0f} s bound")
        if row["healed"]:
            out.append(f"{row['fault']}: workers restarted by the campaign; {row['healed']['late']} stuck "
                       f"job(s) finished after that, {len(row['healed']['never'])} never")
        for name, lines in row["broken"].items():
            out.append(f"{row['fault']}: invariant broken: {name}: {'; '.join(lines)}")
        if row["lost"]:
            out.append(f"{row['fault']}: lost jobs (202, no row): {', '.join(row['lost_jobs'])}")
        for line in row["duplicate_answers"]:
            out.append(f"{row['fault']}: duplicate: {line}")
    return "\n".join(out)


def write(rows: list[dict[str, Any]], settings: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    document = json.dumps({"settings": settings, "faults": rows}, indent=2, default=str)
    path = out / f"faults-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(document)
    (out / "latest.json").write_text(document)
    return path
