"""The charts: bounded, faithful to the data, deterministic, lazily imported, also as PNG."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from campaign.reports.charts import (
    MAX_TIMELINE_POINTS,
    PNG_DPI,
    WIDTH,
    _Axis,
    _bin_timeline,
    render_charts,
    write_pngs,
)
from campaign.reports.data import SendTimeline, TimeBucket, Unavailable
from tests.reports.builders import T0, large_report, sample_report, sample_timeline


def _bins(timeline: SendTimeline) -> tuple[_Axis, list[Any]]:
    axis = _Axis.of(timeline)
    return axis, _bin_timeline(timeline, axis)


def _parts_drawn(bins: list[Any]) -> float:
    return sum(rate * (b.edges[k + 1] - b.edges[k]) for b in bins for k, rate in enumerate(b.rate))


def test_a_long_timeline_is_downsampled_and_keeps_every_part() -> None:
    timeline = large_report().timeline
    assert isinstance(timeline, SendTimeline)
    axis, bins = _bins(timeline)
    drawn = sum(len(b.rate) for b in bins)
    assert drawn <= MAX_TIMELINE_POINTS + len(axis.periods)
    assert _parts_drawn(bins) == pytest.approx(sum(r.parts for r in timeline.runs))
    throttles = sum(t * (b.edges[1] - b.edges[0]) / 60 for b in bins for t in b.throttles)
    assert throttles == pytest.approx(sum(r.throttles for r in timeline.runs))


def test_bins_stay_inside_their_period_so_a_pause_is_never_smeared() -> None:
    timeline = sample_timeline()
    axis, bins = _bins(timeline)
    assert len(bins) == len(axis.periods) == 3
    for (start, end), x0, b in zip(axis.periods, axis.starts_x, bins, strict=True):
        assert b.edges[0] == x0
        assert b.edges[-1] == pytest.approx(x0 + (end - start).total_seconds())
    # the 20 parts/s of run 1 stay 20 parts/s, the 10 parts/s after the window stay 10
    assert set(bins[0].rate) == {20.0}
    assert set(bins[2].rate) == {10.0}
    assert _parts_drawn(bins) == pytest.approx(9500)


def test_coarse_buckets_are_not_cut_into_a_sawtooth() -> None:
    run = sample_timeline().runs[0]
    # 5-minute buckets over a 300 s run: one bin, not 600 of which most are empty
    coarse = replace(run, buckets=(TimeBucket(T0, 300.0, 6000, 24, 20.0),))
    _axis, bins = _bins(SendTimeline((coarse,)))
    assert bins[0].rate == [20.0]


def test_the_mps_in_force_follows_the_buckets_and_idle_bins_show_the_run() -> None:
    run = sample_timeline().runs[0]
    slowed = tuple(
        replace(b, mps=10.0) if i >= 30 else b for i, b in enumerate(run.buckets[:40])
    )  # the pacing halved the rate at 150 s; nothing was sent after 200 s
    _axis, bins = _bins(SendTimeline((replace(run, buckets=slowed),)))
    mps = bins[0].mps
    assert mps[0] == 20.0 and mps[len(mps) // 2 + 1] == 10.0 and mps[-1] == 20.0


def test_svg_is_inline_ready_and_deterministic() -> None:
    charts = render_charts(sample_report())
    assert list(charts) == ["funnel", "send-over-time", "countries"]
    for name, chart in charts.items():
        assert chart.svg.startswith("<svg"), chart.svg[:80]  # no XML prolog, no DOCTYPE
        assert 'id="figure_1"' not in chart.svg and f'id="{name}-figure_1"' in chart.svg
        assert "<text" in chart.svg  # svg.fonttype none: text, not this machine's glyph outlines
        assert "font-family: 'DejaVu Sans', sans-serif" in chart.svg
    assert render_charts(sample_report())["send-over-time"].svg == charts["send-over-time"].svg


def test_a_chart_without_data_is_not_drawn() -> None:
    report = replace(sample_report(), timeline=Unavailable("nothing sent"), countries=())
    assert list(render_charts(report)) == ["funnel"]


def test_pngs_for_a_slide(tmp_path: Path) -> None:
    from PIL import Image

    written = write_pngs(sample_report(), tmp_path / "charts")
    assert [p.name for p in written] == ["funnel.png", "send-over-time.png", "countries.png"]
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width == WIDTH * PNG_DPI
            assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(
        p.name for p in written
    )


def test_other_commands_do_not_import_matplotlib_or_jinja2() -> None:
    code = (
        "import sys, campaign.cli, campaign.reports.html, campaign.reports.charts;"
        "loaded = [m for m in ('matplotlib', 'jinja2', 'markupsafe', 'PIL') if m in sys.modules];"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pause_bands_are_narrow_whatever_the_pause_lasted() -> None:
    timeline = sample_timeline()
    run1, run2 = timeline.runs
    later = timedelta(days=3)
    run2_later = replace(
        run2,
        started_at=run2.started_at + later,
        ended_at=run2.end + later,
        buckets=tuple(replace(b, started_at=b.started_at + later) for b in run2.buckets),
        pauses=tuple(
            replace(p, started_at=p.started_at + later, ended_at=p.ended_at + later)
            for p in run2.pauses
        ),
    )
    three_days = SendTimeline((run1, run2_later))
    assert three_days.pauses[0].seconds == 3600 + later.total_seconds()
    assert _Axis.of(three_days) == replace(_Axis.of(timeline), periods=three_days.active_periods)


def test_text_inside_a_chart_is_escaped_by_matplotlib() -> None:
    # The page marks the charts' SVG safe: that holds because matplotlib escapes what it writes.
    report = sample_report()
    assert not isinstance(report.countries, Unavailable)
    hostile = replace(report.countries[0], country="<b>&")
    svg = render_charts(replace(report, countries=(hostile, *report.countries[1:])))[
        "countries"
    ].svg
    assert "&lt;b&gt;&amp;" in svg and "<b>" not in svg
