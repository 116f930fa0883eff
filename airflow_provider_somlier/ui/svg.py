"""Charts as inline SVG, drawn on the server: the pages need no script and no CDN, and work offline.

Three shapes cover the pages: bars over days (rows written), bands over days (a prediction's
mean and quantiles) and paired bars per bucket (a column's histogram against its baseline's).
Every text is escaped; sizes are in the SVG's own units and scale with the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 36
OK, BAD, BASE, DAY = "#4a7fb5", "#d9534f", "#b0b7c3", "#4a7fb5"


def number(value: float | None) -> str:
    """A short, readable figure (3 significant digits, thousands as k/M)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–" if value is None else str(value)
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    top: float
    bottom: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.bottom - (value - self.low) / span * (self.bottom - self.top)


def _frame(title: str, body: list[str], scale: _Scale, labels: Sequence[str], xs: Sequence[float]) -> str:
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in range(5):
        value = scale.low + (scale.high - scale.low) * tick / 4
        y = scale(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
                     f'{escape(number(value))}</text>')
    parts.extend(body)
    step = max(1, math.ceil(len(labels) / 8))
    for index in range(0, len(labels), step):
        parts.append(f'<text x="{xs[index]:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#555">{escape(labels[index])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bounds(values: Sequence[float], *, zero: bool) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if zero:
        low = min(low, 0.0)
    if high == low:
        high, low = high + (abs(high) or 1.0) * 0.5, low - (abs(low) or 1.0) * 0.5 * (not zero)
    pad = (high - low) * 0.05
    return (low if zero and low == 0 else low - pad), high + pad


def bar_chart(title: str, bars: Sequence[tuple[str, float, bool]]) -> str:
    """Bars ``(label, value, flagged)``; flagged bars (a day that failed a check) are drawn red."""
    low, high = _bounds([b[1] for b in bars], zero=True)
    scale = _Scale(low, high, TOP, HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT - RIGHT) / max(len(bars), 1)
    width = max(slot * 0.7, 1.0)
    body, xs = [], []
    for index, (label, value, flagged) in enumerate(bars):
        x = LEFT + slot * index + (slot - width) / 2
        y = scale(value)
        xs.append(x + width / 2)
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{max(scale(low) - y, 0):.1f}" '
                    f'fill="{BAD if flagged else OK}"><title>{escape(label)}: {escape(number(value))}</title></rect>')
    return _frame(title, body, scale, [b[0] for b in bars], xs)


def band_chart(title: str, points: Sequence[tuple[str, dict[str, float | None]]]) -> str:
    """Per label: ``p10``–``p90`` and ``p25``–``p75`` bands, the median and the mean as lines."""
    keys = ("p10", "p25", "p50", "p75", "p90", "mean")
    low, high = _bounds([p.get(k) for _, p in points for k in keys], zero=False)
    scale = _Scale(low, high, TOP, HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT - RIGHT) / max(len(points), 1)
    xs = [LEFT + slot * (i + 0.5) for i in range(len(points))]

    def line(key: str) -> list[tuple[float, float]]:
        return [(x, scale(p[key])) for x, (_, p) in zip(xs, points)
                if p.get(key) is not None and math.isfinite(p[key])]

    def band(lower: str, upper: str, fill: str) -> str:
        top, bottom = line(upper), line(lower)
        if not top or len(top) != len(bottom):
            return ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in top + bottom[::-1])
        return f'<polygon points="{path}" fill="{fill}" stroke="none"/>'

    def polyline(key: str, colour: str, dash: str = "") -> str:
        pts = line(key)
        if not pts:
            return ""
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>' for x, y in pts) if len(pts) < 60 else ""
        return (f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" fill="none" stroke="{colour}" '
                f'stroke-width="1.5"{dash}/>{dots}')

    body = [band("p10", "p90", "#dbe7f3"), band("p25", "p75", "#a9c4e0"), polyline("p50", "#1f4e79"),
            polyline("mean", "#e07b39", ' stroke-dasharray="4 3"')]
    legend = ('<text x="{x}" y="12" font-size="11" fill="#555">band: p10–p90, p25–p75 · line: median · '
              'dashed: mean</text>').format(x=LEFT)
    return _frame(title, [*body, legend], scale, [label for label, _ in points], xs)


def histogram_chart(title: str, buckets: Sequence[tuple[str, float, float | None]]) -> str:
    """Per bucket ``(label, day fraction, baseline fraction)``: the day's bar beside the baseline's."""
    low, high = _bounds([v for _, day, base in buckets for v in (day, base) if v is not None], zero=True)
    scale = _Scale(low, high, TOP, HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1)
    width = max(slot * 0.38, 1.0)
    body, xs = [], []
    for index, (label, day, base) in enumerate(buckets):
        x = LEFT + slot * index + slot * 0.1
        xs.append(LEFT + slot * (index + 0.5))
        if base is not None:
            body.append(f'<rect x="{x:.1f}" y="{scale(base):.1f}" width="{width:.1f}" '
                        f'height="{max(scale(low) - scale(base), 0):.1f}" fill="{BASE}"><title>baseline '
                        f'{escape(label)}: {base:.1%}</title></rect>')
        body.append(f'<rect x="{x + width:.1f}" y="{scale(day):.1f}" width="{width:.1f}" '
                    f'height="{max(scale(low) - scale(day), 0):.1f}" fill="{DAY}"><title>day {escape(label)}: '
                    f'{day:.1%}</title></rect>')
    return _frame(title, body, scale, [b[0] for b in buckets], xs)
