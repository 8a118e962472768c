"""`campaign status` and `campaign report`: where a campaign stands, and one CSV row per input row."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from campaign.cli.errors import user_errors
from campaign.cli.options import json_option, prices_option
from campaign.cli.render import render_status, say
from campaign.cli.settings import Settings, pass_settings

REPORT_COLUMNS = (
    "row",
    "raw_phone",
    "phone",
    "country",
    "state",
    "reason",
    "parts",
    "encoding",
    "message_id",
    "attempts",
    "file",
)


F = TypeVar("F", bound=Callable[..., Any])


def html_report_options(f: F) -> F:
    """The options of `report --html`, kept apart from the CSV's."""
    f = prices_option("With --html: a price table CSV, for the estimated spend.")(f)
    f = click.option(
        "--png",
        type=click.Path(path_type=Path),
        default=None,
        metavar="DIR",
        help="With --html: also write each chart as DIR/<chart>.png.",
    )(f)
    f = click.option(
        "--html",
        type=click.Path(path_type=Path),
        default=None,
        metavar="FILE",
        help="Write the HTML report (self-contained, with charts) to FILE instead of the CSV.",
    )(f)
    return f


@click.command()
@click.argument("name")
@json_option()
@prices_option("Price table CSV: adds the estimated spend so far and still to come.")
@pass_settings
def status(settings: Settings, name: str, as_json: bool, prices: Path | None) -> None:
    """Where a campaign stands: recipients by state, parts sent, the sender if one runs.

    Works while a send runs in another terminal: rate, ETA, and with --prices the estimated
    spend so far.

    \b
    Example:
      campaign status spring-sale --json
      campaign status spring-sale --prices prices.csv
    """
    from campaign.pricing import PriceTable
    from campaign.reports.status import campaign_status

    with user_errors():
        table = PriceTable.load(prices) if prices else None
        info = campaign_status(settings.ledger, name, table)
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
    else:
        click.echo(render_status(info))


@click.command()
@click.argument("name")
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="Write the CSV to this file ('-' for stdout).",
)
@html_report_options
@pass_settings
def report(
    settings: Settings,
    name: str,
    output: str,
    html: Path | None,
    png: Path | None,
    prices: Path | None,
) -> None:
    """One CSV row per input row: its number, state, reason, parts and MessageId.

    Columns: row, raw_phone, phone, country, state, reason, parts, encoding, message_id,
    attempts, file.

    With --html, a self-contained page instead (charts included, opens offline): the
    funnel, the send over time, countries, failure reasons and the message.

    \b
    Example:
      campaign report spring-sale --output spring-report.csv
      campaign report spring-sale --html spring.html --prices prices.csv --png charts/
    """
    if html is not None or png is not None or prices is not None:
        return write_html_report(settings, name, html, png, prices)
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        rows = settings.ledger.report_rows(campaign.id)
        if output == "-":
            _write_report(sys.stdout, rows)
            return
        path = Path(output)
        tmp = path.with_name(path.name + ".part")
        try:
            fh = tmp.open("w", newline="", encoding="utf-8")
        except OSError as exc:  # name the file asked for, not the temporary one
            raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
        with fh:
            n = _write_report(fh, rows)
        tmp.replace(path)  # never leave a half-written report under the real name
    say(f"Wrote {n} rows to {path}", settings)


def _write_report(fh: TextIO, rows: Iterable[Mapping[str, Any]]) -> int:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    n = 0
    for r in rows:
        writer.writerow(
            [
                r["row"],
                r["raw_phone"],
                r["phone"] or "",
                r["country"] or "",
                r["state"],
                r["reason"] or "",
                r["parts"] if r["parts"] is not None else "",
                r["encoding"] or "",
                r["message_id"] or "",
                r["attempts"],
                r["filename"],
            ]
        )
        n += 1
    return n


def write_html_report(
    settings: Settings, name: str, html: Path | None, png: Path | None, prices: Path | None
) -> None:
    """`report --html FILE [--png DIR] [--prices FILE]`: the page, and the charts as PNGs."""
    if html is None:
        raise click.UsageError("--png and --prices go with --html FILE")
    from campaign.pricing import PriceTable
    from campaign.reports.build import campaign_report
    from campaign.reports.html import write_html

    with user_errors():
        table = PriceTable.load(prices) if prices else None
        data = campaign_report(settings.ledger, name, table)
        size = write_html(data, html)
        say(f"Wrote the HTML report to {html} ({size / 1024:,.0f} KB)", settings)
        if png is not None:
            from campaign.reports.charts import write_pngs

            written = write_pngs(data, png)
            names = ", ".join(p.name for p in written) or "none: no chart has data yet"
            say(f"Wrote {len(written)} charts to {png}: {names}", settings)
