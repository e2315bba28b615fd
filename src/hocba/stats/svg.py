"""Tiny inline-SVG charts: the HTML report must open offline, so no chart library or CDN.

Two shapes cover the report: horizontal bars (one per province or reason, labels readable
at any count) and columns over time. Text is escaped; sizes are computed, never guessed by
a browser, so a headless screenshot shows exactly what a reader sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family='system-ui, sans-serif' font-size='12'"
_ROW = 18  # px per bar
_LABEL_W = 190
_NOTE_W = 120
_PAD = 8
_MAX_COLUMN = 40  # px: a few buckets should not become one wide block


@dataclass(frozen=True, slots=True)
class Chart:
    """The SVG markup and its pixel size (the PNG screenshot is cut to exactly this)."""

    svg: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    note: str  # shown right of the bar, e.g. "59.74 % (4,241,906 / 7,100,388)"
    color: str = "#3b6fb6"


def _chart(width: int, height: int, title: str, body: list[str]) -> Chart:
    svg = (
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'"
        f" aria-label='{escape(title)}'><title>{escape(title)}</title>"
        f"<rect width='{width}' height='{height}' fill='#ffffff'/>" + "".join(body) + "</svg>"
    )
    return Chart(svg, width, height)


def hbar_chart(title: str, bars: Sequence[Bar], *, max_value: float = 0, width: int = 900) -> Chart:
    """One labelled horizontal bar per item; `max_value` fixes the scale (e.g. 100 %)."""
    scale_max = max([max_value, *(b.value for b in bars)]) or 1.0
    plot_w = width - _LABEL_W - _NOTE_W - 2 * _PAD
    height = _PAD * 2 + 24 + _ROW * max(len(bars), 1)
    body = [f"<text x='{_PAD}' y='18' {FONT} font-weight='bold'>{escape(title)}</text>"]
    for i, bar in enumerate(bars):
        y = 24 + _PAD + i * _ROW
        length = max(bar.value, 0) / scale_max * plot_w
        body.append(
            f"<text x='{_LABEL_W}' y='{y + 13}' {FONT} text-anchor='end'>"
            f"{escape(bar.label)}</text>"
            f"<rect x='{_LABEL_W + _PAD}' y='{y + 2}' width='{length:.1f}' height='{_ROW - 4}'"
            f" fill='{bar.color}'/>"
            f"<text x='{_LABEL_W + 2 * _PAD + length:.1f}' y='{y + 13}' {FONT}>"
            f"{escape(bar.note)}</text>"
        )
    if not bars:
        body.append(f"<text x='{_LABEL_W}' y='{24 + _PAD + 13}' {FONT}>no data</text>")
    return _chart(width, height, title, body)


def column_chart(
    title: str, points: Sequence[tuple[str, int]], *, width: int = 900, height: int = 260
) -> Chart:
    """Columns over an ordered axis (time buckets); about ten axis labels whatever the count."""
    left, top, bottom = 70, 30, 40
    plot_w, plot_h = width - left - _PAD, height - top - bottom
    peak = max((v for _, v in points), default=0) or 1
    step = min(plot_w / max(len(points), 1), _MAX_COLUMN)
    every = max(1, len(points) // 10)
    body = [
        f"<text x='{_PAD}' y='18' {FONT} font-weight='bold'>{escape(title)}</text>",
        f"<text x='{left - 6}' y='{top + 10}' {FONT} text-anchor='end'>{peak:,}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' {FONT} text-anchor='end'>0</text>",
        f"<line x1='{left}' y1='{top + plot_h}' x2='{width - _PAD}' y2='{top + plot_h}'"
        " stroke='#888'/>",
    ]
    for i, (label, value) in enumerate(points):
        h = value / peak * plot_h
        x = left + i * step
        body.append(
            f"<rect x='{x + 1:.1f}' y='{top + plot_h - h:.1f}' width='{max(step - 2, 1):.1f}'"
            f" height='{h:.1f}' fill='#3b6fb6'><title>{escape(label)}: {value:,}</title></rect>"
        )
        if i % every == 0:
            body.append(
                f"<text x='{x + step / 2:.1f}' y='{top + plot_h + 16}' {FONT}"
                f" text-anchor='middle'>{escape(label)}</text>"
            )
    if not points:
        body.append(f"<text x='{left + 10}' y='{top + plot_h / 2:.0f}' {FONT}>no data</text>")
    return _chart(width, height, title, body)
