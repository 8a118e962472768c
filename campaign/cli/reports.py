"""`campaign status` and `campaign report`: where a campaign stands, and one CSV row per input row."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from campaign.cli.errors import user_errors
from campaign.cli.options import json_option, prices_option
from campaign.cli.render import count, render_status, say
from campaign.cli.settings import Settings, pass_settings

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
        type=click.Path(),  # a str: Path("out/") would drop the slash that says "a folder"
        default=None,
        metavar="FILE",
        help="Write the HTML report (self-contained, with charts) to FILE ('-' for stdout) "
        "instead of the CSV.",
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
@click.option(
    "--include",
    default=None,
    metavar="COLUMNS",
    help="Original columns of the imported files to add, e.g. email,crm_id, or 'all'.",
)
@click.option(
    "--excel",
    is_flag=True,
    help="For Excel: UTF-8 with a byte order mark, CRLF, phones and ids kept as text.",
)
@html_report_options
@pass_settings
def report(
    settings: Settings,
    name: str,
    output: str,
    include: str | None,
    excel: bool,
    html: str | None,
    png: Path | None,
    prices: Path | None,
) -> None:
    """One CSV row per input row: its number, state, reason, parts, MessageId, when it was
    sent and whether it was delivered; with --include, the file's own columns, to take it back
    to the CRM.

    Columns: row (data row, header not counted), raw_phone, phone, country, state, reason,
    parts, encoding, message_id, attempts, file, sheet_row (the spreadsheet's row number:
    header = 1), sent_at (UTC), delivery, delivery_reason, charged, note, then the included
    columns. Cells a spreadsheet would run as formulas start with an apostrophe.

    With --html, a self-contained page instead (charts included, opens offline): the
    funnel, the send over time, countries, failure reasons and the message.

    \b
    Example:
      campaign report spring-sale --output spring-report.csv
      campaign report spring-sale --include email,crm_id --excel -o for-hubspot.csv
      campaign report spring-sale --html spring.html --prices prices.csv --png charts/
    """
    if html is not None or png is not None or prices is not None:
        if output != "-" or include is not None or excel:
            raise click.UsageError("--output, --include and --excel are for the CSV, not --html")
        return write_html_report(settings, name, html, png, prices)
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        n = _write_csv_report(settings, campaign.id, output, include, excel)
    if output != "-":
        say(f"Wrote {count(n, 'row')} to {output}", settings)


def _write_csv_report(
    settings: Settings, campaign_id: int, output: str, include: str | None, excel: bool
) -> int:
    """Stream the report CSV to `output` (`-`: stdout); returns the number of rows."""
    from campaign.reports.csv_report import choose_included, write_report
    from campaign.reports.output import ReportWriteError, open_report_file

    if not output.strip():
        raise click.UsageError("--output needs a file name, or - for stdout")
    _a_file_name(output, "--output")
    if output.lower().endswith((".xlsx", ".xls")):
        raise ReportWriteError(
            f"{output}: the report is a CSV; name it .csv (--excel makes one Excel opens right)"
        )
    _refuse_the_ledger(settings, output)
    ledger = settings.ledger
    included = choose_included(include, ledger.import_columns(campaign_id)) if include else None
    rows = ledger.report_rows(campaign_id, with_cells=included is not None)
    if output == "-":  # UTF-8 whatever the terminal's encoding, as in a file
        sys.stdout.flush()
        n = write_report(_Utf8(sys.stdout.buffer), rows, included, excel)
        sys.stdout.buffer.flush()
        return n
    with open_report_file(Path(output)) as binary:
        return write_report(_Utf8(binary), rows, included, excel)


def _a_file_name(value: str, option: str) -> None:
    """`-o reports/`: a path ending in a slash names a folder; the report was written to a file
    called `reports`."""
    if value.endswith(("/", os.sep)):
        example = f"{value}report.{'html' if option == '--html' else 'csv'}"
        raise click.UsageError(f"{option} {value}: give a file name, e.g. {example}")


def _refuse_the_ledger(settings: Settings, output: str) -> None:
    """`report -o campaign.db`: a report written over the SQLite ledger (or its -wal, -shm or
    -journal file) would replace every campaign in it."""
    if output == "-":
        return
    from campaign.ledger.engine import normalize_url, sqlite_path

    url = normalize_url(settings.db_url)
    if url.get_backend_name() != "sqlite":
        return
    ledger = os.path.expanduser(sqlite_path(url))
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            same = os.path.samefile(ledger + suffix, output)
        except OSError:  # one of them does not exist: not the same file
            continue
        if same:
            raise click.ClickException(
                f"{output} is the ledger's own file ({ledger + suffix}): the report would replace "
                "it; write the report to another file"
            )


class _Utf8:
    """Text to a binary file as UTF-8 (the file's own buffer batches the writes)."""

    def __init__(self, binary: BinaryIO) -> None:
        self.binary = binary

    def write(self, text: str) -> int:
        return self.binary.write(text.encode("utf-8"))


def write_html_report(
    settings: Settings, name: str, html: str | None, png: Path | None, prices: Path | None
) -> None:
    """`report --html FILE [--png DIR] [--prices FILE]`: the page, and the charts as PNGs."""
    if html is None:
        raise click.UsageError("--png and --prices go with --html FILE")
    _a_file_name(html, "--html")
    from campaign.pricing import PriceTable
    from campaign.reports.build import campaign_report
    from campaign.reports.html import write_html
    from campaign.reports.output import chart_directory

    with user_errors():
        if png is not None:  # a folder the charts cannot go to is refused before the page
            chart_directory(png)
        if html != "-":
            _refuse_the_ledger(settings, html)
        table = PriceTable.load(prices) if prices else None
        data = campaign_report(settings.ledger, name, table)
        if html == "-":  # standard output, as for the CSV
            from campaign.reports.html import render_html

            sys.stdout.flush()
            sys.stdout.buffer.write(render_html(data).encode("utf-8"))
        else:
            size = write_html(data, Path(html))
            say(f"Wrote the HTML report to {html} ({size / 1024:,.0f} KB)", settings)
        if png is not None:
            from campaign.reports.charts import write_pngs

            written = write_pngs(data, png)
            names = ", ".join(p.name for p in written) or "none: no chart has data yet"
            say(f"Wrote {len(written)} charts to {png}: {names}", settings)
