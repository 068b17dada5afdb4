"""Server-rendered SVG charts for the dashboard: stacked columns over days, and horizontal bars over categories,
with axes, labels, a title and a legend, in the Okabe-Ito palette (told apart with every common colour-vision
deficiency). Pure functions of plain data; no database, no script."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe & Ito (2008): blue, orange, bluish green, vermillion, sky blue, reddish purple, yellow, grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#999999")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str


def palette(names: Sequence[str]) -> list[tuple[str, str]]:
    """Each name with its colour, in order (the last colour, grey, repeats past the palette)."""
    return [(name, PALETTE[min(i, len(PALETTE) - 1)]) for i, name in enumerate(names)]


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`: the top of an axis."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value * (1 - 1e-9))


def axis_top(value: float, *, whole: bool = False) -> float:
    """The top of an axis with four equal steps above 0, each a round number (a whole one for counts)."""
    step = nice_max(value / 4) if value > 0 else 0.25
    if whole:
        step = math.ceil(step)
    return 4 * step


def count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.2g}"


def dollars(value: float) -> str:
    """Cents from a dollar up; below that two significant digits, however small (emails cost $0.00004)."""
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    places = 1 - math.floor(math.log10(value))
    return f"${value:.{places}f}".rstrip("0").rstrip(".")


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(title)}</title>'
    )
    caption = f'<text x="0" y="16" font-size="14" font-weight="600" class="ink" fill="{INK}">{escape(title)}</text>'
    return mark_safe(head + caption + "".join(body) + "</svg>")


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts, left = [], x
    for item in series:
        parts.append(
            f'<g class="legend"><rect x="{left:.1f}" y="{y - 9}" width="10" height="10" rx="2" fill="{item.colour}"/>'
            f'<text x="{left + 14:.1f}" y="{y}" font-size="11" class="muted" fill="{MUTED}">{escape(item.name)}</text></g>'
        )
        left += 24 + 6.5 * len(item.name)
    return parts


def stacked_columns(
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    fmt: Callable[[float], str] = count,
    width: int = 1100,
) -> SafeString:
    """One column per day, each series stacked in it; the y axis from 0 to a round number above the tallest."""
    height, left, right, top, bottom = 280, 60, 8, 52, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    top_value = axis_top(max(totals, default=0), whole=fmt is count)
    body = _legend(series, left, 38)
    for k in range(5):  # gridlines and y labels
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid" stroke="{GRID}"/>')
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" class="muted" fill="{MUTED}">{fmt(value)}</text>'
        )
    slot = plot_w / max(len(days), 1)
    bar = min(48.0, max(2.0, slot * 0.72))  # a few days: columns, not walls
    every = max(1, math.ceil(len(days) / 10))  # at most about ten dates under the axis
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        base = top + plot_h
        for item in series:
            value = item.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top_value
            base -= h
            tip = f"{day_label(day)}: {fmt(value)} {item.name}"
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{item.colour}" data-series="{escape(item.name)}" data-value="{value:.10g}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" '
                f'class="muted" fill="{MUTED}">{day_label(day)}</text>'
            )
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    return _svg(width, height, title, body)


def bars(
    title: str,
    rows: Sequence[tuple[str, float]],
    *,
    fmt: Callable[[float], str] = count,
    colour: str = PALETTE[0],
    width: int = 540,
) -> SafeString:
    """One horizontal bar per row (label, value), in the order given; the value at the bar's end."""
    label_w, right, top, row_h = 200, 70, 34, 28
    plot_w = width - label_w - right
    height = top + row_h * len(rows) + 22
    top_value = axis_top(max((value for _, value in rows), default=0), whole=fmt is count)
    body = []
    for k in range(5):
        x = label_w + plot_w * k / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 20}" class="grid" stroke="{GRID}"/>')
        body.append(
            f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" class="muted" fill="{MUTED}">'
            f"{fmt(top_value * k / 4)}</text>"
        )
    for i, (label, value) in enumerate(rows):
        y = top + row_h * i
        short = label if len(label) <= 30 else label[:29] + "…"
        w = plot_w * value / top_value
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" class="ink" fill="{INK}">'
            f"<title>{escape(label)}</title>{escape(short)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 1.5):.1f}" height="{row_h - 8}" rx="3" '
            f'fill="{colour}" data-label="{escape(label)}" data-value="{value:.10g}">'
            f"<title>{escape(label)}: {fmt(value)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12" class="ink" fill="{INK}">{fmt(value)}</text>'
        )
    return _svg(width, height, title, body)
