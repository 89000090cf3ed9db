"""Small charts drawn on the server as SVG: no chart library, nothing to load, readable without script.

Each chart carries a ``<title>`` and a ``<desc>`` for screen readers, and the
pages put the same numbers in a table beside it. Every text that comes from
data (file names) is escaped here, since the page includes the SVG as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
PAD = 36
COLOURS = ("#3a3fd4", "#c2410c", "#047857", "#9333ea", "#b91c1c", "#0e7490")


def _frame(title: str, description: str, body: str, y_max: float, x_label: str, y_label: str) -> Markup:
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 8}" y2="{HEIGHT - PAD}" stroke="#8a90a0"/>'
        f'<line x1="{PAD}" y1="8" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#8a90a0"/>'
        f'<text x="{PAD - 4}" y="14" text-anchor="end" font-size="10">{y_max:g}</text>'
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end" font-size="10">0</text>'
        f'<text x="{WIDTH // 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">{escape(x_label)}</text>'
        f'<text x="10" y="{HEIGHT // 2}" font-size="11" transform="rotate(-90 10 {HEIGHT // 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return Markup(
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>{axis}{body}</svg>"
    )


def line_chart(
    title: str, series: Sequence[tuple[str, Sequence[float]]], *, x_label: str, y_label: str, y_max: float | None = None
) -> Markup:
    """One line per series, x the position in the series (from 1)."""
    longest = max((len(values) for _, values in series), default=0)
    top = y_max or max((max(values) for _, values in series if values), default=1.0) or 1.0
    body = []
    for index, (name, values) in enumerate(series):
        if not values:
            continue
        points = " ".join(
            f"{PAD + (WIDTH - PAD - 8) * (i / max(longest - 1, 1)):.1f},"
            f"{HEIGHT - PAD - (HEIGHT - PAD - 8) * min(value, top) / top:.1f}"
            for i, value in enumerate(values)
        )
        colour = COLOURS[index % len(COLOURS)]
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    description = f"{len(series)} series over {longest} positions; the table below holds the numbers."
    return _frame(title, description, "".join(body), top, x_label, y_label)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, x_label: str, y_label: str) -> Markup:
    """One bar per item, in order."""
    top = max((value for _, value in bars), default=1.0) or 1.0
    slot = (WIDTH - PAD - 8) / max(len(bars), 1)
    body = []
    for index, (name, value) in enumerate(bars):
        height = (HEIGHT - PAD - 8) * value / top
        body.append(
            f'<rect x="{PAD + index * slot + slot * 0.15:.1f}" y="{HEIGHT - PAD - height:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{height:.1f}" fill="{COLOURS[0]}">'
            f"<title>{escape(name)}: {value:g}</title></rect>"
        )
    return _frame(title, f"{len(bars)} bars; the table below holds the numbers.", "".join(body), top, x_label, y_label)
