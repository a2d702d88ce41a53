"""The overview's hourly bar chart geometry and the login redirect guard (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from postroom.console.actions import _safe_next
from postroom.console.chart import HEIGHT, hourly_bars


def test_bars_scale_to_the_busiest_hour_and_label_it() -> None:
    counts = [0] * 22 + [5, 10]
    chart = hourly_bars(counts, datetime(2026, 12, 5, 7, 30, tzinfo=UTC))
    assert len(chart.bars) == 24 and chart.peak == 10 and chart.total == 15
    assert chart.bars[0].height == 0
    assert chart.bars[-1].height == HEIGHT - 1 and chart.bars[-1].y == 1
    assert chart.bars[-2].height == (HEIGHT - 1) / 2
    assert chart.bars[-1].label == "07:00-08:00 UTC: 10"
    assert chart.bars[0].label.startswith("08:00-09:00 UTC")
    assert all(b.x < c.x for b, c in zip(chart.bars, chart.bars[1:], strict=False))


def test_an_idle_day_draws_no_bars() -> None:
    chart = hourly_bars([0] * 24, datetime(2026, 12, 5, tzinfo=UTC))
    assert chart.peak == 0 and all(b.height == 0 for b in chart.bars)


def test_after_login_only_paths_of_this_site_are_followed() -> None:
    assert _safe_next("/failed?queue=1") == "/failed?queue=1"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None):
        assert _safe_next(hostile) == "/"
