"""Charts drawn on the server as SVG: no JavaScript to build or to allow in the
Content-Security-Policy, and the same picture in every browser. Hovering a column shows
its figures (an SVG <title>), which screen readers read too."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from stats.reports import Point

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 26, 28
OPENS_COLOUR = "#4338ca"
CLICKS_COLOUR = "#157347"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50… at least ``value``."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def timeline_svg(
    points: Sequence[Point],
    *,
    title: str,
    label: Callable[[datetime], str],
    label_every: int,
    describe: Callable[[datetime], str],
) -> SafeString:
    """Opens and clicks per period as two lines. ``label`` names the periods shown under
    the axis (one in ``label_every``); ``describe`` names each period in its tooltip."""
    n = len(points)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(max([p.opens for p in points] + [p.clicks for p in points] + [1]))
    step = plot_w / max(n, 1)

    def x(i: int) -> float:
        return LEFT + (i + 0.5) * step

    def y(value: float) -> float:
        return TOP + plot_h - value / top_value * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" data-testid="timeline-chart">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        value = top_value * fraction
        gy = _number(y(value))
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy}" y2="{gy}" stroke="#e3e7ee"/>'
            f'<text x="{LEFT - 6}" y="{gy}" dy="4" text-anchor="end" font-size="11" '
            f'fill="#7b8698">{_number(value)}</text>'
        )
    for i, point in enumerate(points):
        if i % label_every == 0:
            parts.append(
                f'<text x="{_number(x(i))}" y="{HEIGHT - 8}" text-anchor="middle" '
                f'font-size="11" fill="#7b8698">{escape(label(point.start))}</text>'
            )
    for colour, values in (
        (OPENS_COLOUR, [p.opens for p in points]),
        (CLICKS_COLOUR, [p.clicks for p in points]),
    ):
        coordinates = " ".join(f"{_number(x(i))},{_number(y(v))}" for i, v in enumerate(values))
        if colour == OPENS_COLOUR and n > 1:
            # Opens as a shaded area, so that clicks drawn over them stay readable.
            base = _number(y(0))
            parts.append(
                f'<polygon points="{_number(x(0))},{base} {coordinates} '
                f'{_number(x(n - 1))},{base}" fill="{colour}" fill-opacity="0.12"/>'
            )
        parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2" '
            'stroke-linejoin="round"/>'
        )
        if n <= 60:
            parts.extend(
                f'<circle cx="{_number(x(i))}" cy="{_number(y(v))}" r="2.5" fill="{colour}"/>'
                for i, v in enumerate(values)
            )
    for i, point in enumerate(points):
        tip = f"{describe(point.start)}: {point.opens:,} opens, {point.clicks:,} clicks"
        parts.append(
            f'<rect x="{_number(LEFT + i * step)}" y="{TOP}" width="{_number(step)}" '
            f'height="{plot_h}" fill="transparent"><title>{escape(tip)}</title></rect>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="6" width="10" height="10" rx="2" fill="{OPENS_COLOUR}"/>'
        f'<text x="{LEFT + 14}" y="15" font-size="12" fill="#16202e">Opens</text>'
        f'<rect x="{LEFT + 70}" y="6" width="10" height="10" rx="2" fill="{CLICKS_COLOUR}"/>'
        f'<text x="{LEFT + 84}" y="15" font-size="12" fill="#16202e">Clicks</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped above
