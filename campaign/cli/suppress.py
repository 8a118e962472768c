"""`campaign suppress add|remove|list` and `campaign optouts sync`: the account-wide do-not-send list.

Every campaign of the ledger skips the numbers on it: at import (`suppressed`) and again when the
sender claims a recipient, so a number listed while a campaign runs is skipped too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from campaign.cli.errors import user_errors
from campaign.cli.options import file_format_options, json_option
from campaign.cli.render import count, say
from campaign.cli.settings import Settings, pass_settings

DEFAULT_REASON = "listed with campaign suppress add"
SHOWN_REJECTED = 20  # rejected cells listed one by one; the rest are counted
SHOWN_CELL_CHARS = 40  # of a rejected cell (a whole paragraph pasted in a phone column)


def _default_region_option(f: Any) -> Any:
    return click.option(
        "--default-region",
        default=None,
        metavar="CC",
        help="Country (ISO alpha-2) for numbers written without a country code, e.g. US.",
    )(f)


@click.group()
def suppress() -> None:
    """The do-not-send list: numbers no campaign of this ledger ever messages.

    \b
    Example:
      campaign suppress add complaints.csv --reason "complained" --default-region US
      campaign suppress add +14155552671 +442079460000 --reason "legal hold"
      campaign suppress list --json
    """


@suppress.command("add")
@click.argument("numbers", nargs=-1, required=True, metavar="(FILE | NUMBER...)")
@click.option("--reason", default=None, help="Why these numbers are listed (kept with each).")
@_default_region_option
@click.option(
    "--phone-column",
    default=None,
    help="With a FILE: its phone column (default: found by name, as an import does).",
)
@file_format_options()
@pass_settings
def add(
    settings: Settings,
    numbers: tuple[str, ...],
    reason: str | None,
    default_region: str | None,
    phone_column: str | None,
    delimiter: str | None,
    encoding: str | None,
) -> None:
    """Put numbers on the do-not-send list, from the command line or a CSV file.

    A file is read like an import (encoding, delimiter, phone column by name; a file of bare
    numbers, one per line, works too) and every number is normalized to E.164 the same way.
    Cells that are not numbers are reported with their row; the others are added.

    \b
    Example:
      campaign suppress add unsubscribed.csv --reason "unsubscribed by email"
      campaign suppress add "(415) 555-2671" --default-region US --reason complaint
    """
    from campaign.audience.suppression import normalize_list

    source = _file_or_none(numbers)
    with user_errors():
        if source is not None:
            from campaign.importing.importer import read_phone_cells

            rows, cells = read_phone_cells(source, phone_column, encoding, delimiter)
            found = normalize_list(cells, default_region, rows)
        else:
            given = [
                n
                for n, v in (
                    ("--phone-column", phone_column),
                    ("--delimiter", delimiter),
                    ("--encoding", encoding),
                )
                if v is not None
            ]
            if given:
                raise click.UsageError(f"{given[0]} goes with a FILE, not with numbers")
            found = normalize_list(numbers, default_region)
        _say_rejected(settings, found.rejected, source)
        if not found.numbers:
            where = f"{source}" if source is not None else "the arguments"
            raise click.ClickException(f"no phone number found in {where}; nothing was added")
        change = settings.ledger.add_suppressions(found.numbers, reason or DEFAULT_REASON)
    say(
        f"Added {count(change.added, 'number')} to the do-not-send list"
        + (
            f"; {change.already:,} already on it (their first reason kept)"
            if change.already
            else ""
        )
        + (f"; {found.repeats:,} repeated" if found.repeats else "")
        + (f"; {count(len(found.rejected), 'cell')} rejected" if found.rejected else "")
        + ".",
        settings,
    )


def _file_or_none(items: tuple[str, ...]) -> Path | None:
    """The FILE form: one argument naming an existing file."""
    if len(items) == 1 and Path(items[0]).is_file():
        return Path(items[0])
    for item in items:
        if Path(item).is_dir():
            raise click.BadParameter(f"{item}: a folder; give a file of numbers", param_hint="FILE")
    for item in items:
        if item.lower().endswith((".csv", ".txt", ".tsv")) and not Path(item).exists():
            raise click.BadParameter(f"{item}: no such file", param_hint="FILE")
    return None


def _say_rejected(
    settings: Settings, rejected: tuple[tuple[int, str, str], ...], source: Path | None
) -> None:
    where = "row" if source is not None else "argument"
    for row, cell, why in rejected[:SHOWN_REJECTED]:
        shown = cell if len(cell) <= SHOWN_CELL_CHARS else cell[:SHOWN_CELL_CHARS] + "..."
        why = why if len(why) <= SHOWN_CELL_CHARS * 2 else why[: SHOWN_CELL_CHARS * 2] + "..."
        say(f"  rejected {where} {row}: {shown!r}: {why}", settings)
    if len(rejected) > SHOWN_REJECTED:
        say(f"  ... and {len(rejected) - SHOWN_REJECTED:,} more rejected", settings)


@suppress.command("remove")
@click.argument("numbers", nargs=-1, required=True, metavar="NUMBER...")
@_default_region_option
@pass_settings
def remove(settings: Settings, numbers: tuple[str, ...], default_region: str | None) -> None:
    """Take numbers off the do-not-send list (recipients already `suppressed` stay so).

    \b
    Example:
      campaign suppress remove +14155552671
    """
    from campaign.audience.suppression import normalize_list

    with user_errors():
        found = normalize_list(numbers, default_region)
        _say_rejected(settings, found.rejected, None)
        if not found.numbers:
            raise click.ClickException("no phone number given; nothing was removed")
        change = settings.ledger.remove_suppressions(found.numbers)
    say(
        f"Removed {count(change.removed, 'number')} from the do-not-send list"
        + (
            f"; {change.missing:,} {'was' if change.missing == 1 else 'were'} not on it"
            if change.missing
            else ""
        )
        + ".",
        settings,
    )


@suppress.command("list")
@json_option("Print a JSON array: phone, reason, source, added_at.")
@pass_settings
def list_(settings: Settings, as_json: bool) -> None:
    """Every number on the do-not-send list, with its reason, source and date.

    \b
    Example:
      campaign suppress list
      campaign suppress list --json
    """
    with user_errors():
        entries = list(settings.ledger.list_suppressions())
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "phone": e.phone,
                        "reason": e.reason,
                        "source": e.source,
                        "added_at": e.added_at.isoformat() if e.added_at else None,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    if not entries:
        say("The do-not-send list is empty. Add to it: campaign suppress add FILE | NUMBER...")
        return
    click.echo(f"{'phone':<16} {'added (UTC)':<16} {'source':<24} reason")
    for e in entries:
        added = f"{e.added_at:%Y-%m-%d %H:%M}" if e.added_at else ""
        reason = " ".join(e.reason.split())  # one line per number, whatever the reason holds
        click.echo(f"{e.phone:<16} {added:<16} {e.source:<24} {reason}")
    say(f"{count(len(entries), 'number')} on the do-not-send list.", settings)


def _non_empty(value: str, hint: str) -> str:
    if not value.strip():
        raise click.BadParameter(f"empty: {hint}")
    return value.strip()


@click.group()
def optouts() -> None:
    """The AWS account's opt-out lists, copied into the do-not-send list.

    \b
    Example:
      campaign optouts sync
      campaign optouts sync --opt-out-list marketing
    """


@optouts.command("sync")
@click.option(
    "--opt-out-list",
    "list_name",
    default="Default",
    show_default=True,
    help="The AWS opt-out list to copy (name or ARN).",
    callback=lambda _ctx, _param, value: _non_empty(value, "name the list, e.g. Default"),
)
@pass_settings
def sync(settings: Settings, list_name: str) -> None:
    """Copy an AWS opt-out list into the do-not-send list, with its own reason.

    Reads every page of DescribeOptedOutNumbers (waiting out throttling), then makes the
    entries from this list exactly the numbers AWS lists: new ones added, numbers that opted
    back in removed. Entries are kept by the list's ARN, so a list of the same name in another
    region or account never removes this one's. Numbers you listed yourself are never touched.

    \b
    Example:
      campaign --region us-east-1 optouts sync --opt-out-list Default
    """
    from campaign.audience.suppression import normalize_list
    from campaign.aws.sms import ClientSettings, make_client, opted_out_numbers
    from campaign.ledger.suppressions import AWS_OPT_OUT_SOURCE

    def waiting(seconds: float) -> None:
        say(f"  throttled by DescribeOptedOutNumbers; waiting {seconds:g} s", settings)

    with user_errors():
        client = make_client(
            ClientSettings(
                profile=settings.profile, region=settings.region, endpoint_url=settings.endpoint_url
            )
        )
        read: list[str] = []
        pages = 0
        arns: list[str] = []
        for page in opted_out_numbers(client, list_name, on_throttle=waiting, on_arn=arns.append):
            read.extend(page)
            pages += 1
        found = normalize_list(read)
        # Keyed by the list's ARN: the same name in another region or account is another list,
        # and syncing it must not remove what this one added (an empty list there would have
        # emptied this one's entries).
        where = arns[0] if arns else list_name
        change = settings.ledger.sync_suppressions(
            AWS_OPT_OUT_SOURCE + where,
            found.numbers,
            f"opted out (AWS opt-out list {list_name})",
        )
    say(
        f"Opt-out list {where}: {count(len(found.numbers), 'number')} in "
        f"{count(pages, 'page')}; {change.added:,} added to the do-not-send list, "
        f"{change.removed:,} removed (no longer opted out), {change.already:,} already on it"
        + (f"; {len(found.rejected):,} unreadable" if found.rejected else "")
        + ".",
        settings,
    )
