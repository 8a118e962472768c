"""The report's charts: matplotlib figures, rendered to inline SVG for the page and to PNG files.

matplotlib is imported inside the functions, never at module level: only writing a report pays for
it (about a second), not `status` or `send`. Figures are plain `matplotlib.figure.Figure` objects
drawn by the Agg canvas, so no GUI backend and no pyplot global state is ever touched.
"""

from __future__ import annotations

import bisect
import io
import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from campaign.reports.data import (
    CampaignReport,
    CountryRow,
    Funnel,
    SendTimeline,
    Unavailable,
    combine_countries,
    format_count,
    format_percent,
    format_usd,
)
from campaign.reports.output import chart_directory, write_report_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The send-over-time chart never draws more bins than this, whatever the campaign's length:
# the page of a 1M-recipient campaign stays small.
MAX_TIMELINE_POINTS = 600
COUNTRY_BARS = 10  # the largest countries; the rest are one "Other" bar
PNG_DPI = 150
WIDTH = (
    10.0  # inches: every chart is as wide as the others, so their text is the same size on the page
)

INK = "#1f2933"
MUTED = "#66788a"
GRID = "#e3e8ee"
BLUE = "#2f5d8a"
BLUE_LIGHT = "#9db6cf"
AMBER = "#c98a1b"
RED = "#b5473a"
PAUSE = "#f3ead9"

STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small, selectable, drawn in the reader's sans-serif
    "svg.hashsalt": "campaign-report",  # the same report gives the same SVG, byte for byte
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: the same layout on every machine
    "font.size": 9,
    "text.parse_math": False,  # "$12.50" is money, not mathtext
    "text.color": INK,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.7,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "figure.facecolor": "white",
}


@dataclass(frozen=True)
class Chart:
    name: str  # also the PNG's file name
    alt: str  # what the chart shows, for screen readers and a PNG's reader
    svg: str


def render_charts(report: CampaignReport) -> dict[str, Chart]:
    """Every chart the report has data for, as inline SVG, by name."""
    charts: dict[str, Chart] = {}
    for name, alt, figure in _figures(report):
        charts[name] = Chart(name, alt, _svg(figure, name))
    return charts


def write_pngs(report: CampaignReport, directory: Path) -> list[Path]:
    """Write each chart as `directory/<name>.png` (for a slide or an e-mail), creating the
    directory if needed; returns the paths."""
    chart_directory(directory)
    written = []
    for name, _alt, figure in _figures(report):
        buffer = io.BytesIO()
        with _style():
            figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        path = directory / f"{name}.png"
        write_report_file(path, buffer.getvalue())
        written.append(path)
    return written


# Figures are built inside the style context; saving needs it again (font lookups happen then).
@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(cast(Any, STYLE)):  # its stubs list every key as a Literal
        yield


def _figures(report: CampaignReport) -> Iterator[tuple[str, str, Figure]]:
    builders: list[tuple[str, str, Callable[[], Figure | None]]] = [
        ("funnel", "Funnel: imported rows, valid, sent, delivered", lambda: _funnel(report.funnel)),
        (
            "send-over-time",
            "Parts sent per second against the MPS in force, throttles and pauses",
            lambda: _timeline(report.timeline),
        ),
        (
            "countries",
            "Spend (or recipients) by country, largest first",
            lambda: _countries(report.countries),
        ),
    ]
    for name, alt, build in builders:
        with _style():
            figure = build()
        if figure is not None:
            yield name, alt, figure


_ID = re.compile(r'(?<=\bid=")([^"]+)"|(?<=xlink:href="#)([^"]+)"|(?<=url\(#)([^)]+)\)')


def _svg(figure: Figure, name: str) -> str:
    buffer = io.StringIO()
    with _style():
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # no XML prolog or DOCTYPE inside an HTML page
    # Several SVGs share one HTML document: prefix their ids (figure_1, clip paths, markers) so
    # that each chart's references stay its own.
    return _ID.sub(lambda m: f"{name}-{m.group(0)}", text)


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


# -- funnel ----------------------------------------------------------------------------------------


def _funnel(funnel: Funnel) -> Figure:
    figure = _new_figure(WIDTH, 0.4 * len(funnel.steps) + 0.4)
    ax = figure.add_subplot()
    top = max((s.count for s in funnel.steps if not isinstance(s.count, Unavailable)), default=0)
    shades = [BLUE_LIGHT, "#6f93b8", "#4a77a3", BLUE]
    for i, step in enumerate(funnel.steps):
        if isinstance(step.count, Unavailable):
            ax.text(0, i, "  not available yet", va="center", color=MUTED, style="italic")
            continue
        ax.barh(i, step.count, color=shades[min(i, len(shades) - 1)], height=0.7)
        share = step.count / funnel.imported if funnel.imported else None
        label = f"  {format_count(step.count)}" + (f"  ({format_percent(share)})" if i else "")
        ax.text(step.count, i, label, va="center", color=INK)
    ax.set_yticks(range(len(funnel.steps)), [s.label for s in funnel.steps])
    ax.invert_yaxis()
    ax.set_xlim(0, max(top, 1) * 1.25)  # room for the labels at the end of the longest bar
    ax.xaxis.set_visible(False)
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0, labelsize=10, labelcolor=INK)
    return figure


# -- the send over time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bins:
    """One active period, cut into bins of equal width on the chart's compressed time axis."""

    edges: list[float]  # x of each bin's edges (seconds of sending time, pauses drawn narrow)
    rate: list[float]  # parts per second
    mps: list[float]  # the highest MPS in force in the bin
    throttles: list[float]  # throttled calls per minute


@dataclass(frozen=True)
class _Axis:
    """Sending time with the pauses cut out: each active period keeps its length, each pause is a
    narrow band of the same width whatever it lasted (an overnight window would flatten the rest)."""

    periods: tuple[tuple[datetime, datetime], ...]
    starts_x: list[float]  # x where each period begins
    starts_active: list[float]  # sending time elapsed when each period begins
    gap: float  # the width of a pause band

    @classmethod
    def of(cls, timeline: SendTimeline) -> _Axis:
        periods = timeline.active_periods
        active = timeline.active_seconds
        gap = max(active, 1.0) * min(0.03, 0.3 / max(1, len(periods) - 1))
        starts_x, starts_active, x, elapsed = [], [], 0.0, 0.0
        for start, end in periods:
            starts_x.append(x)
            starts_active.append(elapsed)
            length = (end - start).total_seconds()
            x += length + gap
            elapsed += length
        return cls(periods, starts_x, starts_active, gap)

    def x_of_active(self, elapsed: float) -> float:
        """Where a moment of sending time (seconds since the first part) sits on the axis."""
        i = max(0, bisect.bisect_right(self.starts_active, elapsed) - 1)
        return self.starts_x[i] + (elapsed - self.starts_active[i])


def _timeline(timeline: SendTimeline | Unavailable) -> Figure | None:
    if isinstance(timeline, Unavailable) or timeline.active_seconds <= 0:
        return None
    axis = _Axis.of(timeline)
    bins = _bin_timeline(timeline, axis)
    figure = _new_figure(WIDTH, 3.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    peak = 0.0
    for b in bins:
        top.stairs(b.rate, b.edges, fill=True, color=BLUE, alpha=0.85, linewidth=0)
        top.stairs(b.mps, b.edges, baseline=None, color=AMBER, linestyle=(0, (4, 2)), linewidth=1.4)
        bottom.stairs(b.throttles, b.edges, fill=True, color=RED, linewidth=0)
        peak = max(peak, *b.rate, *b.mps)
    top.set_ylim(0, max(peak, 1.0) * 1.18)
    top.set_ylabel("parts / s")
    bottom.set_ylabel("throttles\n/ min", rotation=0, ha="right", va="center")
    if not any(t for b in bins for t in b.throttles):
        bottom.text(
            0.5,
            0.5,
            "no throttling",
            transform=bottom.transAxes,
            ha="center",
            va="center",
            color=MUTED,
        )
        bottom.set_yticks([])
    _draw_pauses(timeline, axis, (top, bottom))
    _time_ticks(bottom, axis, timeline.active_seconds)
    bottom.set_xlabel("sending time (each pause is cut out and drawn as a narrow band)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color=BLUE, alpha=0.85, label="parts sent per second"),
        Line2D([], [], color=AMBER, linestyle=(0, (4, 2)), label="MPS in force"),
        Patch(color=PAUSE, label="pause"),
    ]
    top.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, fontsize=8.5)
    return figure


def _bin_timeline(timeline: SendTimeline, axis: _Axis) -> list[_Bins]:
    """Every run's buckets, summed into at most about MAX_TIMELINE_POINTS bins on the axis; a bin
    never spans a pause, and is a whole number of the buckets it sums, on their grid: 28 s bins
    over 10 s buckets would hold two or three buckets by turns and draw a false comb."""
    width = timeline.active_seconds / MAX_TIMELINE_POINTS
    period_starts = [start for start, _ in axis.periods]
    buckets_in: list[list[Any]] = [[] for _ in axis.periods]
    for run in timeline.runs:
        for bucket in run.buckets:
            i = max(0, bisect.bisect_right(period_starts, bucket.started_at) - 1)
            buckets_in[i].append(bucket)
    result = []
    for i, (start, end) in enumerate(axis.periods):
        length = (end - start).total_seconds()
        coarsest = max((b.seconds for b in buckets_in[i]), default=0.0)
        if coarsest > 0:
            step = coarsest * max(1, math.ceil(width / coarsest - 1e-9))
        else:
            step = max(width, length, 1e-9)
        count = max(1, math.ceil(length / step - 1e-9))
        # The last bin ends with the period: it may be narrower than the others.
        edges = [min(step * k, length) for k in range(count)] + [length]
        spans = [max(b - a, 1e-9) for a, b in itertools.pairwise(edges)]
        parts, throttles = [0] * count, [0] * count
        # A bin with buckets shows the highest MPS they recorded; an idle one, that of the runs.
        recorded: list[float | None] = [None] * count
        for b in buckets_in[i]:
            k = min(count - 1, max(0, int((b.started_at - start).total_seconds() // step)))
            parts[k] += b.parts
            throttles[k] += b.throttles
            recorded[k] = max(recorded[k] or 0.0, b.mps)
        mps = [
            _mps_at(timeline, start, (edges[k] + edges[k + 1]) / 2) if r is None else r
            for k, r in enumerate(recorded)
        ]
        x0 = axis.starts_x[i]
        result.append(
            _Bins(
                edges=[x0 + e for e in edges],
                rate=[p / w for p, w in zip(parts, spans, strict=True)],
                mps=mps,
                throttles=[t * 60 / w for t, w in zip(throttles, spans, strict=True)],
            )
        )
    return result


def _mps_at(timeline: SendTimeline, period_start: datetime, offset: float) -> float:
    """The highest MPS among the runs sending at that moment (several senders share one MPS)."""
    moment = period_start.timestamp() + offset
    rates = [
        run.mps
        for run in timeline.runs
        if run.started_at.timestamp() <= moment <= run.end.timestamp()
    ]
    return max(rates, default=0.0)


def _draw_pauses(timeline: SendTimeline, axis: _Axis, axes: Sequence[Axes]) -> None:
    pauses = timeline.pauses
    labelled = set(sorted(range(len(pauses)), key=lambda i: -pauses[i].seconds)[:12])
    for i, pause in enumerate(pauses):
        x1 = axis.starts_x[i + 1]  # the pause ends where the next period begins
        for ax in axes:
            ax.axvspan(x1 - axis.gap, x1, color=PAUSE, linewidth=0, zorder=0)
        if i in labelled:
            from campaign.reports.data import format_duration

            axes[0].text(
                x1 - axis.gap / 2,
                0.5,
                f"{pause.cause} · {format_duration(pause.seconds)}",
                transform=axes[0].get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="center",
                fontsize=7.5,
                color="#8a6a2e",
            )


def _time_ticks(ax: Axes, axis: _Axis, active: float) -> None:
    nice = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    step = next((s for s in nice if active / s <= 8), 86400 * math.ceil(active / 86400 / 8))
    ticks = [k * step for k in range(int(active // step) + 1)]
    ax.set_xticks([axis.x_of_active(t) for t in ticks], [_tick_label(t) for t in ticks])
    ax.set_xlim(0, axis.x_of_active(active))


def _tick_label(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    h, m = divmod(s // 60, 60)
    return f"{h} h" if m == 0 else f"{h} h {m:02d}"


# -- by country ------------------------------------------------------------------------------------


def _countries(countries: tuple[CountryRow, ...] | Unavailable) -> Figure | None:
    if isinstance(countries, Unavailable) or not countries:
        return None
    by_spend = any(c.estimated_cost is not None for c in countries)

    def size(c: CountryRow) -> float:
        return float(c.estimated_cost or 0) if by_spend else float(c.recipients)

    ranked = sorted(countries, key=size, reverse=True)
    shown = ranked[:COUNTRY_BARS]
    if len(ranked) > COUNTRY_BARS:
        shown.append(
            combine_countries(ranked[COUNTRY_BARS:], f"{len(ranked) - COUNTRY_BARS} others")
        )
    charged = by_spend and any(c.charged_cost is not None for c in countries)
    figure = _new_figure(WIDTH, 0.3 * len(shown) + 0.8)
    ax = figure.add_subplot()
    y = list(range(len(shown)))
    height = 0.38 if charged else 0.62

    def label(c: CountryRow) -> str:
        if not by_spend:
            return f"  {format_count(c.recipients)}"
        return f"  {format_usd(c.estimated_cost)}" if c.estimated_cost is not None else "  no price"

    offset = -height / 2 if charged else 0.0
    ax.barh([v + offset for v in y], [size(c) for c in shown], height=height, color=BLUE)
    for v, c in zip(y, shown, strict=True):
        ax.text(size(c), v + offset, label(c), va="center", fontsize=8)
    if charged:
        values = [float(c.charged_cost or 0) for c in shown]
        ax.barh([v + height / 2 for v in y], values, height=height, color=AMBER)
        for v, c, value in zip(y, shown, values, strict=True):
            ax.text(
                value, v + height / 2, f"  {format_usd(c.charged_cost)}", va="center", fontsize=8
            )
    ax.set_yticks(y, [c.country or "unknown" for c in shown])
    ax.invert_yaxis()
    ax.set_xlim(0, max([size(c) for c in shown] + [1e-9]) * 1.22)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0, labelcolor=INK)
    if by_spend:
        ax.xaxis.set_major_formatter(_usd_tick)
        ax.set_xlabel(
            "spend, USD"
            + (" — estimated (blue) and charged (amber)" if charged else " (estimated)")
        )
    else:
        ax.set_xlabel("recipients (no price table: spend not estimated)")
    return figure


def _usd_tick(value: float, _position: float) -> str:
    return f"${value:,.0f}" if value >= 10 or value == 0 else f"${value:,.2f}"
