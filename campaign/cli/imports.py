"""`campaign import`: load recipients from a CSV (also run by `create --recipients`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign.cli.errors import Interrupted, user_errors
from campaign.cli.options import file_format_options
from campaign.cli.render import count, say
from campaign.cli.settings import Settings, pass_settings
from campaign.domain import Campaign

if TYPE_CHECKING:
    from campaign.importing.importer import ImportOptions, ImportSummary


def import_options(**options: Any) -> ImportOptions:
    # The importer (pandas) loads only when a command imports a file.
    from campaign.importing.importer import ImportOptions

    return ImportOptions(**options)


@click.command("import")
@click.argument("name")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option(
    "--phone-column",
    multiple=True,
    help="The phone column (default: found by name, SMS and mobile columns first: SMS Phone "
    "Number, Mobile, Handynummer, Téléphone portable, Phone...). Repeat it to fall back, per "
    "row, to the next column when a cell is empty or not a mobile number.",
)
@click.option(
    "--phone-fallback",
    is_flag=True,
    help="A row whose phone cell is empty or not a mobile number takes its number from the "
    "next phone-like column (best first); the report's `note` says which.",
)
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="The column behind a field of the message, e.g. --map first_name=Prénom (repeatable).",
)
@click.option(
    "--country-column",
    default=None,
    help="A column with each row's country (ISO alpha-2 such as DE, or a name such as "
    "Germany or Deutschland) for numbers without +CC.",
)
@click.option(
    "--timezone-column",
    default=None,
    help="A column with each recipient's IANA time zone (e.g. America/Chicago): it wins over "
    "the zone found from the number, for sending windows.",
)
@click.option(
    "--default-region",
    default=None,
    metavar="CC",
    help="Country (ISO alpha-2) for numbers written without a country code, e.g. US.",
)
@file_format_options()
@click.option(
    "--allow-non-mobile",
    is_flag=True,
    help="Accept fixed-line, toll-free and other numbers that may not receive SMS.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes for normalization (default: one per core for large files).",
)
@pass_settings
def import_(settings: Settings, name: str, file: Path, **options: Any) -> None:
    """Load recipients from a CSV: every number normalized to E.164, every row recorded.

    Rows that cannot be sent to are kept as `invalid` with their reason; repeats of a number are
    `duplicate`. All or nothing: a failed import changes nothing, and importing the same file twice
    adds nobody.

    FILE `-` reads standard input.

    \b
    Example:
      campaign import spring-sale customers.csv --default-region US
      campaign import spring-sale hubspot.csv --map first_name=Vorname --phone-fallback
      crm-export | campaign import spring-sale - --default-region GB
    """
    region = options["default_region"]
    if region is not None and (len(region) != 2 or not region.isalpha()):
        raise click.BadParameter(
            "must be an ISO alpha-2 country code such as US or GB", param_hint="--default-region"
        )
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        run_import(settings, campaign, file, import_options(**options))


def run_import(settings: Settings, campaign: Campaign, file: Path, options: ImportOptions) -> None:
    """Import `file` with a progress bar for big files, then say what came of it."""
    from campaign.importing.importer import import_file

    bar = _ImportProgress(settings)
    with user_errors():
        held_before = _held(settings, campaign)  # the line after says what this file added
        try:
            summary = import_file(
                settings.ledger, campaign, file, options, progress=bar.update, on_total=bar.start
            )
        except KeyboardInterrupt:
            raise Interrupted("import interrupted; nothing was imported") from None
        finally:
            bar.close()
    source = "standard input" if str(file) == "-" else str(file)
    if summary.already_imported is not None:
        prev = summary.already_imported
        say(
            f"{source} was already imported into {campaign.name!r} "
            f"({prev.created_at:%Y-%m-%d %H:%M} UTC, {count(prev.rows, 'row')}); nothing added.",
            settings,
        )
        return
    record = summary.record
    assert record is not None
    for warning in summary.warnings:
        click.echo(f"Warning: {warning}", err=True)
    _say_phone_column(summary, settings)
    say(
        f"Imported {count(record.rows, 'row')} from {source} into {campaign.name!r} "
        f"({summary.encoding}, delimiter {summary.delimiter!r}): "
        f"{record.accepted} ready, {record.duplicates} duplicate, {record.invalid} invalid.",
        settings,
    )
    for reason, n in summary.invalid_reasons.most_common(8):
        say(f"  invalid: {n:>8}  {reason}", settings)
    if summary.suppressed:
        say(
            f"  {count(summary.suppressed, 'number')} on the do-not-send list: suppressed", settings
        )
    if record.invalid:
        say(f"Each rejected row and its reason: campaign report {campaign.name}", settings)
    _say_held(settings, campaign, held_before)


def _held(settings: Settings, campaign: Campaign) -> tuple[int, int]:
    """(unknown zone, zones never open at once): the campaign's pending held until a decision."""
    from campaign.audience.gate import campaign_policy, holdback
    from campaign.domain import now

    held = holdback(settings.ledger.pending_groups(campaign.id), campaign_policy(campaign), now())
    return held.unknown_zone, held.empty_window


def _say_held(settings: Settings, campaign: Campaign, before: tuple[int, int] = (0, 0)) -> None:
    """Recipients of this file no window will let through (the campaign's held minus `before`):
    the user decides for them, the tool never guesses. And the far-off zones left out of
    numbers' country-wide lists, so the user knows."""
    from campaign.audience.gate import dropped_zones
    from campaign.cli.render import render_dropped_zones

    for line in render_dropped_zones(dropped_zones(settings.ledger.zone_samples(campaign.id))):
        say(line, settings)

    after = _held(settings, campaign)
    unknown_zone, empty_window = (max(a - b, 0) for a, b in zip(after, before, strict=True))
    if unknown_zone + empty_window:
        say(
            f"  {count(unknown_zone + empty_window, 'recipient')} held by the sending window: "
            f"{unknown_zone:,} with an unknown time zone, {empty_window:,} whose zones "
            "never share an open hour. See `campaign report`; give a --timezone-column, a "
            "--window or --no-window (campaign edit).",
            settings,
        )


def _say_phone_column(summary: ImportSummary, settings: Settings) -> None:
    """`phone column: X`, always: which column was read is the first thing to check."""
    line = f"phone column: {summary.phone_column}"
    if summary.phone_why:
        line += f" ({summary.phone_why})"
    if summary.phone_fallbacks:
        names = ", ".join(repr(n) for n in summary.phone_fallbacks)
        line += f"; per row, when empty or not a mobile number: {names}"
        line += f" ({count(summary.fell_back, 'row')} took a fallback)"
    say(line, settings)
    if summary.split_cells:
        say(
            f"{count(summary.split_cells, 'row')} had several numbers in one cell: the first "
            "that can receive SMS was taken (see the report's note)",
            settings,
        )


class _ImportProgress:
    """A progress bar, shown only for a person watching a file of 10,000 rows or more."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bar: Any = None

    def start(self, total: int) -> None:
        if self.settings.show_progress() and total >= 10_000:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit=" rows",
                unit_scale=True,
                file=sys.stderr,
                desc="importing",
                dynamic_ncols=True,
            )

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
