"""`campaign report NAME --html FILE`: one self-contained page, to show someone else.

Inline CSS, the charts as inline SVG (charts.py), no JavaScript, nothing fetched: the file opens
offline in any browser and prints cleanly. The page is a Jinja2 template with autoescaping on:
every value that comes from the ledger (campaign name, reasons, the message) is escaped; the only
markup marked safe is the stylesheet shipped with the package and matplotlib's SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign.reports.data import (
    CampaignReport,
    CountryRow,
    RunTimeline,
    Unavailable,
    combine_countries,
    format_count,
    format_percent,
    format_usd,
)
from campaign.reports.output import write_report_file

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
COUNTRY_ROWS = 25  # the table lists the largest countries, then one row for all the others
RUN_ROWS = 40  # a campaign resumed more often than this shows its first and last runs


def render_html(report: CampaignReport) -> str:
    """The report as one HTML document."""
    from markupsafe import Markup

    from campaign.reports.charts import render_charts

    charts = {
        name: _InlineChart(chart.alt, Markup(chart.svg))  # matplotlib escapes the text it writes
        for name, chart in render_charts(report).items()
    }
    css = resources.files("campaign.reports").joinpath("templates", STYLESHEET).read_text("utf-8")
    template = _environment().get_template(TEMPLATE)
    return template.render(
        r=report,
        charts=charts,
        css=Markup(css),  # the stylesheet shipped with the package
        **_countries_view(report.countries),
        **_timeline_view(report),
    )


def write_html(report: CampaignReport, path: Path) -> int:
    """Render the report and write it to `path` (see output.write_report_file); returns its size
    in bytes."""
    page = render_html(report).encode("utf-8")
    write_report_file(path, page)
    return len(page)


@dataclass(frozen=True)
class _InlineChart:
    alt: str
    svg: Any  # markupsafe.Markup


def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from campaign.pricing import char_name

    env = Environment(
        loader=PackageLoader("campaign.reports", "templates"),
        autoescape=True,  # for every template, whatever its file name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=format_count,
        percent=format_percent,
        usd=format_usd,
        duration=_duration,
        number=_number,
        when=_when,
        state=_state,
        char_name=char_name,
    )
    env.tests["unavailable"] = lambda value: isinstance(value, Unavailable)
    return env


def _countries_view(countries: tuple[CountryRow, ...] | Unavailable) -> dict[str, Any]:
    if isinstance(countries, Unavailable):
        return {"country_rows": [], "other_country": None, "total_country": None}
    ranked = sorted(countries, key=lambda c: c.recipients, reverse=True)
    rest = ranked[COUNTRY_ROWS:]
    return {
        "country_rows": ranked[:COUNTRY_ROWS],
        "other_country": combine_countries(rest, f"{len(rest)} other countries") if rest else None,
        "total_country": combine_countries(ranked, "Total"),
    }


def _timeline_view(report: CampaignReport) -> dict[str, Any]:
    timeline = report.timeline
    if isinstance(timeline, Unavailable):
        return {"runs": [], "hidden_runs": 0, "pauses": ()}
    runs: list[RunTimeline] = list(timeline.runs)
    hidden = 0
    if len(runs) > RUN_ROWS:
        hidden = len(runs) - RUN_ROWS
        runs = runs[: RUN_ROWS // 2] + runs[-RUN_ROWS // 2 :]
    return {"runs": runs, "hidden_runs": hidden, "pauses": timeline.pauses}


def _duration(seconds: float | None) -> str:
    from campaign.reports.data import format_duration

    return "—" if seconds is None else format_duration(seconds)


def _number(value: float | Decimal) -> str:
    """20 -> 20, 2.5 -> 2.5: an MPS as people write it."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H:%M")


def _state(state: str) -> str:
    return state.replace("_", " ")
