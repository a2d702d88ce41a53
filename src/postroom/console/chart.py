"""A small bar chart drawn on the server: the geometry of inline SVG bars, no script needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT, GAP = 240, 48, 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    total: int


def hourly_bars(counts: list[int], now: datetime) -> Chart:
    """One bar per hour, oldest first; the last is the current hour (labels in UTC)."""
    peak = max(counts, default=0)
    slot = WIDTH / max(1, len(counts))
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=len(counts) - 1)
    bars = []
    for n, count in enumerate(counts):
        height = 0.0 if count == 0 else max(1.0, (HEIGHT - 1) * count / peak)
        start = first + timedelta(hours=n)
        bars.append(
            Bar(
                x=round(n * slot, 2),
                y=round(HEIGHT - height, 2),
                width=round(slot - GAP, 2),
                height=round(height, 2),
                label=f"{start:%H}:00-{start + timedelta(hours=1):%H}:00 UTC: {count}",
            )
        )
    return Chart(WIDTH, HEIGHT, bars, peak, sum(counts))
