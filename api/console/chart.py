"""A stock level's history as an inline SVG step chart, drawn on the server: no chart library, no
script, and nothing the page's Content-Security-Policy would refuse (attributes, not styles).

Two lines: on hand, and available (on hand less what reservations hold), each kept level until the
next movement, over the movements' times.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28  # room for the axis labels


@dataclass(frozen=True)
class Point:
    at: datetime
    on_hand: int
    available: int


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) * (end - start) / (high - low)


def _steps(points: Sequence[Point], values: Sequence[int], x_of, y_of) -> str:  # type: ignore[no-untyped-def]
    """An SVG path: level from each movement to the next, then up or down."""
    parts: list[str] = []
    for n, (point, value) in enumerate(zip(points, values, strict=True)):
        x, y = x_of(point.at), y_of(value)
        if n:
            parts.append(f"H{x:.1f}")
            parts.append(f"V{y:.1f}")
        else:
            parts.append(f"M{x:.1f},{y:.1f}")
    parts.append(f"H{WIDTH - RIGHT:.1f}")
    return " ".join(parts)


def history_svg(points: Sequence[Point], *, title: str) -> Markup:
    """The chart of these movements, oldest first; an empty chart says there is no history."""
    label = escape(title)
    if not points:
        return Markup(f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}">'
                      f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no movements yet</text>'
                      "</svg>")
    first, last = points[0].at.timestamp(), points[-1].at.timestamp()
    top = max(max(p.on_hand for p in points), 1)
    low = min(0, min(p.available for p in points))

    def x_of(at: datetime) -> float:
        return _scale(at.timestamp(), first, last, LEFT, WIDTH - RIGHT) if last > first \
            else _scale(0, 0, 1, LEFT, WIDTH - RIGHT)

    def y_of(value: int) -> float:
        return _scale(value, low, top, HEIGHT - BOTTOM, TOP)

    on_hand = _steps(points, [p.on_hand for p in points], x_of, y_of)
    available = _steps(points, [p.available for p in points], x_of, y_of)
    axis_y = HEIGHT - BOTTOM
    return Markup(
        f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f"<title>{label}</title>"
        f'<line class="axis" x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}"/>'
        f'<text class="tick" x="{LEFT - 6}" y="{y_of(top) + 4:.1f}" text-anchor="end">{top}</text>'
        f'<text class="tick" x="{LEFT - 6}" y="{y_of(low) + 4:.1f}" text-anchor="end">{low}</text>'
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{escape(_when(points[0].at))}</text>'
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{escape(_when(points[-1].at))}</text>"
        f'<path class="line available" fill="none" d="{available}"/>'
        f'<path class="line on-hand" fill="none" d="{on_hand}"/>'
        "</svg>")


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")
