"""A stock level's history chart (api/console/chart.py): inline SVG the page's policy allows."""

from datetime import datetime, timedelta

from api.console.chart import Point, history_svg

START = datetime(2026, 12, 1, 9, 0, 0)


def test_no_history_says_so():
    svg = str(history_svg([], title="A / B"))
    assert svg.startswith("<svg") and "no movements yet" in svg


def test_two_lines_step_through_the_movements():
    points = [Point(START, 5, 5), Point(START + timedelta(minutes=1), 12, 9),
              Point(START + timedelta(minutes=3), 2, 0)]
    svg = str(history_svg(points, title="SEL-1 / BOOK-1"))
    assert svg.count("<path") == 2 and 'class="line on-hand"' in svg and 'class="line available"' in svg
    assert ">12<" in svg  # the top of the scale is the highest level on hand
    assert "2026-12-01 09:00:00" in svg and "2026-12-01 09:03:00" in svg
    assert "style=" not in svg and "<script" not in svg


def test_one_movement_and_escaped_titles():
    svg = str(history_svg([Point(START, 3, 3)], title="<b>&"))
    assert "&lt;b&gt;&amp;" in svg and "<b>" not in svg
