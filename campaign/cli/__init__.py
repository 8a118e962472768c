"""The command line: parse options, call one library function, render the result.

This is the only module that prints or exits. Library errors arrive as typed exceptions and leave
as one `Error: ...` line with the exit code the SPEC gives them.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from campaign.cli.settings import DEFAULT_DB, Settings, pass_settings
from campaign.domain import ALL_STATES, Campaign, CampaignSpec, StateCounts
from campaign.errors import UserError
from campaign.ledger.engine import current_revision, head_revision, migrate
from campaign.options import (
    OptionError,
    check_configuration_set,
    check_context,
    check_country_parameters,
    check_keyword,
    check_max_price,
    check_message_type,
    check_name,
    check_origination_identity,
    check_protect_configuration_id,
    check_template,
    check_ttl,
    parse_pairs,
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_HALTED = 0, 1, 2, 3, 4
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


class Halted(click.ClickException):
    exit_code = EXIT_HALTED


class Interrupted(click.ClickException):
    exit_code = EXIT_INTERRUPTED


def say(message: str, settings: Settings | None = None) -> None:
    """A message for the person at the terminal (stderr; silenced by -q)."""
    if settings is not None and settings.quiet:
        return
    click.echo(message, err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's typed errors into one clear line and exit 1."""
    try:
        yield
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        raise  # `campaign report x | head`: Click exits quietly on a closed pipe
    except OSError as exc:
        raise click.ClickException(
            f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        ) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    "db_url",
    envvar="CAMPAIGN_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="SQLAlchemy URL of the ledger (env CAMPAIGN_DB).",
)
@click.option(
    "--profile", default=None, help="AWS profile for the boto3 session (env AWS_PROFILE)."
)
@click.option("--region", default=None, help="AWS region (env AWS_REGION / AWS_DEFAULT_REGION).")
@click.option(
    "--endpoint-url",
    default=None,
    help="Another SMS endpoint, e.g. the local simulator "
    "(env AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2 or AWS_ENDPOINT_URL).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bars or chatter; errors still go to stderr."
)
@click.version_option(package_name="campaign")
@click.pass_context
def cli(
    ctx: click.Context,
    db_url: str,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Send bulk SMS campaigns through AWS End User Messaging SMS.

    \b
    A campaign in four steps:
      campaign create spring --origination-identity +12065550100 --message-file msg.txt
      campaign import spring recipients.csv --default-region US
      campaign estimate spring --prices prices.csv
      campaign send spring
    Then `campaign status spring` and `campaign report spring`.
    Interrupted? Run the same `send` again: nobody gets a second message.
    """
    ctx.obj = Settings(
        db_url=db_url, profile=profile, region=region, endpoint_url=endpoint_url, quiet=quiet
    )


# -- create --------------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--origination-identity",
    "-o",
    required=True,
    help="Phone number (E.164), sender ID, pool ID or ARN to send from.",
)
@click.option("--message", "-m", "message", default=None, help="The message template.")
@click.option(
    "--message-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the message template from a UTF-8 file.",
)
@click.option(
    "--message-type",
    default="PROMOTIONAL",
    show_default=True,
    type=click.Choice(["PROMOTIONAL", "TRANSACTIONAL"], case_sensitive=False),
)
@click.option(
    "--configuration-set", default=None, help="ConfigurationSetName (event destinations)."
)
@click.option(
    "--max-price",
    default=None,
    metavar="DOLLARS",
    help="MaxPrice: the most to pay per message, e.g. 0.05. AWS rejects dearer messages.",
)
@click.option(
    "--ttl",
    type=int,
    default=None,
    metavar="SECONDS",
    help="TimeToLive: 5-259200 seconds (default at AWS: 72 hours).",
)
@click.option("--keyword", default=None, help="Keyword (US short-code programs).")
@click.option("--protect-configuration-id", default=None, help="ProtectConfigurationId.")
@click.option(
    "--context",
    "contexts",
    multiple=True,
    metavar="KEY=VALUE",
    help="Context entry logged with delivery events (at most 3; the tool adds 2).",
)
@click.option(
    "--country-parameter",
    "country_parameters",
    multiple=True,
    metavar="KEY=VALUE",
    help="DestinationCountryParameters: IN_ENTITY_ID=... or IN_TEMPLATE_ID=... (India).",
)
@click.option("--message-feedback", is_flag=True, help="Set MessageFeedbackEnabled.")
@click.option(
    "--gsm-safe",
    is_flag=True,
    help="Replace look-alike characters (curly quotes, dashes, non-breaking spaces...) by "
    "their GSM-7 equivalents so they do not force UCS-2 and double the parts.",
)
@click.option(
    "--recipients",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Import this CSV right away (same as `campaign import`).",
)
@click.option(
    "--default-region",
    default=None,
    metavar="CC",
    help="With --recipients: country (ISO alpha-2) for numbers without a country code.",
)
@pass_settings
def create(
    settings: Settings,
    name: str,
    origination_identity: str,
    message: str | None,
    message_file: Path | None,
    message_type: str,
    configuration_set: str | None,
    max_price: str | None,
    ttl: int | None,
    keyword: str | None,
    protect_configuration_id: str | None,
    contexts: tuple[str, ...],
    country_parameters: tuple[str, ...],
    message_feedback: bool,
    gsm_safe: bool,
    recipients: Path | None,
    default_region: str | None,
) -> None:
    """Create a campaign: who it is from, what it says, how AWS should send it.

    Every option is checked against the API's own limits before anything is stored. The message may
    use {column} and {column|fallback} from the CSV; {{ and }} are literal braces.

    \b
    Example:
      campaign create spring-sale -o +12065550100 \\
        -m "Hi {first_name|there}, 20% off this weekend. Reply STOP to opt out" \\
        --max-price 0.05 --context team=growth
    """
    if (message is None) == (message_file is None):
        raise click.UsageError("give the message with exactly one of --message or --message-file")
    with user_errors():
        if message_file is not None:
            message = _read_message_file(message_file)
        assert message is not None
        template = check_template(message)
        spec = CampaignSpec(
            name=check_name(name),
            template=template.source,
            origination_identity=check_origination_identity(origination_identity),
            message_type=check_message_type(message_type),
            configuration_set=check_configuration_set(configuration_set),
            max_price=check_max_price(max_price),
            ttl=check_ttl(ttl),
            keyword=check_keyword(keyword),
            protect_configuration_id=check_protect_configuration_id(protect_configuration_id),
            context=check_context(parse_pairs(contexts, "--context")),
            country_parameters=check_country_parameters(
                parse_pairs(country_parameters, "--country-parameter")
            ),
            message_feedback=message_feedback,
            gsm_safe=gsm_safe,
        )
        campaign = settings.ledger.create_campaign(spec)
    say(
        f"Created campaign {campaign.name!r} from {campaign.origination_identity}"
        + (f", message uses columns: {', '.join(template.columns)}" if template.columns else ""),
        settings,
    )
    if recipients is not None:
        try:
            _run_import(
                settings, campaign, recipients, _import_options(default_region=default_region)
            )
        except click.ClickException as exc:
            # The campaign stays: say so, or the next `create` fails with "already exists".
            raise type(exc)(
                f"{exc.message}; campaign {campaign.name!r} was created without these "
                f"recipients: fix the file, then run `campaign import {campaign.name} FILE`"
            ) from None


# -- edit ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option("--origination-identity", "-o", default=None, help="A new origination identity.")
@click.option("--message", "-m", "message", default=None, help="A new message template.")
@click.option(
    "--message-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the new message template from a UTF-8 file.",
)
@click.option(
    "--message-type",
    default=None,
    type=click.Choice(["PROMOTIONAL", "TRANSACTIONAL"], case_sensitive=False),
)
@click.option("--configuration-set", default=None, help="ConfigurationSetName.")
@click.option("--max-price", default=None, metavar="DOLLARS", help="MaxPrice per message.")
@click.option("--ttl", type=int, default=None, metavar="SECONDS", help="TimeToLive, 5-259200.")
@click.option("--keyword", default=None, help="Keyword (US short-code programs).")
@click.option("--protect-configuration-id", default=None, help="ProtectConfigurationId.")
@click.option(
    "--gsm-safe/--no-gsm-safe",
    default=None,
    help="Replace look-alike characters by their GSM-7 equivalents (or stop doing so).",
)
@click.option("--message-feedback/--no-message-feedback", default=None)
@pass_settings
def edit(
    settings: Settings,
    name: str,
    origination_identity: str | None,
    message: str | None,
    message_file: Path | None,
    message_type: str | None,
    configuration_set: str | None,
    max_price: str | None,
    ttl: int | None,
    keyword: str | None,
    protect_configuration_id: str | None,
    gsm_safe: bool | None,
    message_feedback: bool | None,
) -> None:
    """Change a campaign's settings; options not given stay as they are.

    A new message (or --gsm-safe) is rendered and counted again for every pending recipient, so
    `estimate` and the pacing stay true; recipients already sent are not touched. The new message
    may use only the columns the old one used (the import kept those).

    \b
    Example:
      campaign edit spring-sale --gsm-safe
      campaign edit spring-sale --max-price 0.02 --ttl 3600
    """
    from campaign.importing.recount import edit_campaign

    if message is not None and message_file is not None:
        raise click.UsageError("give at most one of --message or --message-file")
    changes: dict[str, Any] = {}
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        if message_file is not None:
            message = _read_message_file(message_file)
        if message is not None:
            changes["template"] = check_template(message).source
        if origination_identity is not None:
            changes["origination_identity"] = check_origination_identity(origination_identity)
        if message_type is not None:
            changes["message_type"] = check_message_type(message_type)
        if configuration_set is not None:
            changes["configuration_set"] = check_configuration_set(configuration_set)
        if max_price is not None:
            changes["max_price"] = check_max_price(max_price)
        if ttl is not None:
            changes["ttl"] = check_ttl(ttl)
        if keyword is not None:
            changes["keyword"] = check_keyword(keyword)
        if protect_configuration_id is not None:
            changes["protect_configuration_id"] = check_protect_configuration_id(
                protect_configuration_id
            )
        if gsm_safe is not None:
            changes["gsm_safe"] = gsm_safe
        if message_feedback is not None:
            changes["message_feedback"] = message_feedback
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        recount = edit_campaign(settings.ledger, campaign, changes)
    say(f"Updated {campaign.name!r}: {', '.join(sorted(changes))}.", settings)
    if recount is not None:
        say(
            f"Recounted {recount.recipients:,} pending recipients: {recount.parts_before:,} -> "
            f"{recount.parts_after:,} parts"
            + (f"; {recount.now_invalid:,} now invalid (see report)" if recount.now_invalid else "")
            + ".",
            settings,
        )


def _read_message_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise OptionError(f"{path} is not UTF-8 text") from None


# -- import --------------------------------------------------------------------------------------


def _import_options(**kwargs: Any) -> Any:
    from campaign.importing.importer import ImportOptions

    return ImportOptions(**kwargs)


@cli.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--phone-column",
    default=None,
    help="The phone column (default: found by name: "
    "phone, mobile, cell, msisdn, phone_number, number...).",
)
@click.option(
    "--country-column",
    default=None,
    help="A column with each row's country (ISO alpha-2) for numbers without +CC.",
)
@click.option(
    "--default-region",
    default=None,
    metavar="CC",
    help="Country (ISO alpha-2) for numbers written without a country code, e.g. US.",
)
@click.option("--delimiter", default=None, help="Field delimiter (default: detect , ; tab |).")
@click.option(
    "--encoding",
    default=None,
    help="File encoding (default: detect UTF-8, UTF-8 with BOM, UTF-16, Windows-1252).",
)
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
def import_(
    settings: Settings,
    name: str,
    file: Path,
    phone_column: str | None,
    country_column: str | None,
    default_region: str | None,
    delimiter: str | None,
    encoding: str | None,
    allow_non_mobile: bool,
    workers: int | None,
) -> None:
    """Load recipients from a CSV: every number normalized to E.164, every row recorded.

    Rows that cannot be sent to are kept as `invalid` with their reason; repeats of a number are
    `duplicate`. All or nothing: a failed import changes nothing, and importing the same file twice
    adds nobody.

    \b
    Example:
      campaign import spring-sale customers.csv --default-region US
    """
    if default_region is not None and (len(default_region) != 2 or not default_region.isalpha()):
        raise click.BadParameter(
            "must be an ISO alpha-2 country code such as US or GB", param_hint="--default-region"
        )
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        options = _import_options(
            phone_column=phone_column,
            country_column=country_column,
            default_region=default_region,
            delimiter=delimiter,
            encoding=encoding,
            allow_non_mobile=allow_non_mobile,
            workers=workers,
        )
        _run_import(settings, campaign, file, options)


def _run_import(settings: Settings, campaign: Campaign, file: Path, options: Any) -> None:
    from tqdm import tqdm

    from campaign.importing.importer import import_file

    bar: Any = None

    def on_total(total: int) -> None:
        nonlocal bar
        if settings.show_progress() and total >= 10_000:
            bar = tqdm(
                total=total,
                unit=" rows",
                unit_scale=True,
                file=sys.stderr,
                desc="importing",
                dynamic_ncols=True,
            )

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    with user_errors():
        try:
            summary = import_file(
                settings.ledger, campaign, file, options, progress=progress, on_total=on_total
            )
        except KeyboardInterrupt:
            raise Interrupted("import interrupted; nothing was imported") from None
        finally:
            if bar is not None:
                bar.close()
    if summary.already_imported is not None:
        prev = summary.already_imported
        say(
            f"{file} was already imported into {campaign.name!r} "
            f"({prev.created_at:%Y-%m-%d %H:%M} UTC, {_count(prev.rows, 'row')}); nothing added.",
            settings,
        )
        return
    record = summary.record
    assert record is not None
    say(
        f"Imported {_count(record.rows, 'row')} from {file} into {campaign.name!r} "
        f"({summary.encoding}, delimiter {summary.delimiter!r}): "
        f"{record.accepted} ready, {record.duplicates} duplicate, {record.invalid} invalid.",
        settings,
    )
    for reason, n in summary.invalid_reasons.most_common(8):
        say(f"  invalid: {n:>8}  {reason}", settings)
    if record.invalid:
        say(f"Each rejected row and its reason: campaign report {campaign.name}", settings)


# -- status, list, report ------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Price table CSV: adds the estimated spend so far and still to come.",
)
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
    from campaign.pricing import PriceTable, format_duration
    from campaign.reports.status import campaign_status

    with user_errors():
        table = PriceTable.load(prices) if prices else None
        info = campaign_status(settings.ledger, name, table)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    counts = info["counts"]
    click.echo(
        f"Campaign {info['campaign']}  (from {info['origination_identity']}, "
        f"{info['message_type'].lower()})"
    )
    total = info["recipients"]
    for state in ALL_STATES:
        n = counts[state]
        if n or state in ("pending", "sent"):
            share = f"{100 * n / total:5.1f}%" if total else "     -"
            click.echo(f"  {state:<10} {n:>10,}  {share}")
    click.echo(f"  {'total':<10} {total:>10,}")
    click.echo(f"Parts sent: {info['parts_sent']:,}; parts to send: {info['parts_pending']:,}")
    if "spend" in info:
        spend = info["spend"]
        click.echo(
            f"Estimated spend (from {spend['prices']}): ${spend['sent']:,.2f} sent"
            + (f", ${spend['to_send']:,.2f} to send" if spend["to_send"] is not None else "")
            + (f"; {spend['unpriced']:,} recipients unpriced" if spend["unpriced"] else "")
        )
    sender = info.get("sender")
    if sender:
        rate = info.get("rate_parts_per_second")
        eta = info.get("eta_seconds")
        click.echo(
            f"Sending now: pid {sender['pid']} on {sender['host']}"
            + (f", {rate:.1f} parts/s" if rate else "")
            + (f", about {format_duration(eta)} left" if eta else "")
        )
    elif counts["unknown"]:
        click.echo(
            f"{counts['unknown']} recipients have an unknown outcome (the sender stopped "
            "mid-call); they are not re-sent unless you run `send --retry-unknown`."
        )
    last = info.get("last_run")
    if last and not sender:
        click.echo(
            f"Last run: {last['started_at']:%Y-%m-%d %H:%M} UTC"
            + (" (dry run)" if last["dry_run"] else "")
            + (f", exit {last['exit_code']}" if last["exit_code"] is not None else "")
            + (f": {last['note']}" if last.get("note") else "")
        )


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_settings
def list_(settings: Settings, as_json: bool) -> None:
    """List campaigns with their recipient counts.

    \b
    Example:
      campaign list --json
    """
    with user_errors():
        rows = settings.ledger.list_campaigns()
    if as_json:
        click.echo(json.dumps([_list_item(c, s) for c, s in rows], indent=2, default=str))
        return
    if not rows:
        say("No campaigns yet. Start with: campaign create NAME -o ORIGINATION --message TEXT")
        return
    click.echo(
        f"{'name':<24} {'recipients':>10} {'pending':>10} {'sent':>10} {'failed':>8} created"
    )
    for c, s in rows:
        click.echo(
            f"{c.name:<24} {s.total:>10,} {s.counts['pending']:>10,} "
            f"{s.counts['sent']:>10,} {s.counts['failed']:>8,} "
            f"{c.created_at:%Y-%m-%d %H:%M}"
        )


def _list_item(c: Campaign, s: StateCounts) -> dict[str, Any]:
    return {
        "campaign": c.name,
        "origination_identity": c.origination_identity,
        "message_type": c.message_type,
        "recipients": s.total,
        "counts": s.counts,
        "created_at": c.created_at,
    }


@cli.command()
@click.argument("name")
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    help="Write the CSV to this file ('-' for stdout).",
)
@pass_settings
def report(settings: Settings, name: str, output: str) -> None:
    """One CSV row per input row: its number, state, reason, parts and MessageId.

    Columns: row, raw_phone, phone, country, state, reason, parts, encoding, message_id,
    attempts, file.

    \b
    Example:
      campaign report spring-sale --output spring-report.csv
    """
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        rows = settings.ledger.report_rows(campaign.id)
        if output == "-":
            n = _write_report(sys.stdout, rows)
        else:
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


def _write_report(fh: Any, rows: Any) -> int:
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


# -- estimate ------------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Price table CSV: country, price_per_part[, carrier_fee_per_part].",
)
@click.option(
    "--mps",
    type=click.FloatRange(min=0.01, max=10_000),
    default=None,
    help="Parts per second for the duration (default: from the origination identity).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_settings
def estimate(
    settings: Settings, name: str, prices: Path | None, mps: float | None, as_json: bool
) -> None:
    """What sending the pending recipients will cost and take, before anything goes out.

    Offline: no API call. Per destination country: recipients, messages by encoding (GSM-7,
    UCS-2), parts, estimated cost and messages over MaxPrice; the total; the time at the MPS in
    force; and which characters force UCS-2 (and so double the parts).

    \b
    Example:
      campaign estimate spring-sale --prices samples/prices.csv
      campaign estimate spring-sale --prices prices.csv --mps 100 --json
    """
    from campaign.aws.sms import guess_origination
    from campaign.pricing import PriceTable, render_estimate
    from campaign.pricing import estimate as make_estimate
    from campaign.sending.pacing import default_mps

    with user_errors():
        ledger = settings.ledger
        campaign = ledger.get_campaign(name)
        table = PriceTable.load(prices) if prices else None
        if mps is not None:
            rate, why = mps, "--mps"
        else:
            guess = guess_origination(campaign.origination_identity)
            rate, why = default_mps(guess.number_type, guess.iso_country)
            if guess.note:
                why = f"{why}; {guess.note}"
        result = make_estimate(
            campaign=campaign.name,
            classes=ledger.parts_classes(campaign.id),
            table=table,
            max_price=campaign.max_price,
            mps=rate,
            mps_source=why,
            ucs2=ledger.ucs2_report(campaign.id),
        )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        click.echo(render_estimate(result))


# -- send ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--mps",
    type=click.FloatRange(min=0.01, max=10_000),
    default=None,
    help="Message parts per second (default: from the origination identity's type).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=None,
    help="Calls in flight at most (default: enough to reach the MPS at 300 ms a call).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Send with DryRun=True: validated by AWS, not delivered, not charged (<= 5 MPS).",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="With --dry-run: only a stratified sample of about N recipients, at least one "
    "per (country, encoding, parts) class.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Send to at most N more recipients in this run.",
)
@click.option(
    "--budget",
    default=None,
    metavar="DOLLARS",
    help="Stop before this run's estimated spend passes DOLLARS (needs --prices).",
)
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Price table CSV, for the cost shown and --budget.",
)
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Put recipients whose outcome is unknown back to pending. They MAY get a second message.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=300),
    default=20.0,
    show_default=True,
    help="Seconds to wait for one API answer before its outcome counts as unknown.",
)
@click.option(
    "--processes",
    type=click.IntRange(0, 16),
    default=None,
    help="Make the calls from N worker processes (0: from this process). Default: 2 when "
    "more than 250 calls/s are needed and the machine has 2 cores or more.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def send(
    settings: Settings,
    name: str,
    mps: float | None,
    concurrency: int | None,
    dry_run: bool,
    sample: int | None,
    limit: int | None,
    budget: str | None,
    prices: Path | None,
    retry_unknown: bool,
    timeout: float,
    processes: int | None,
    yes: bool,
) -> None:
    """Send the campaign, paced within the account's MPS. Run it again to resume.

    Each recipient is claimed in the ledger before its call and settled when the call returns,
    so an interrupted or killed run resumes without sending anyone a second message. Recipients
    whose call was in flight when a run died are `unknown` and are not re-sent unless you pass
    --retry-unknown.

    \b
    Exit codes: 0 done, 1 error, 3 interrupted (run again to resume),
                4 halted by an account-level error or the budget (fix it, run again).
    \b
    Examples:
      campaign send spring-sale --dry-run --sample 20
      campaign send spring-sale --mps 20 --prices prices.csv --budget 150
    """
    from campaign.cli.send import run_send

    if sample is not None and not dry_run:
        raise click.UsageError("--sample goes with --dry-run")
    if budget is not None and prices is None:
        raise click.UsageError("--budget needs --prices (a price table to estimate spend)")
    run_send(
        settings,
        name=name,
        mps=mps,
        concurrency=concurrency,
        dry_run=dry_run,
        sample=sample,
        limit=limit,
        budget=budget,
        prices=prices,
        retry_unknown=retry_unknown,
        timeout=timeout,
        yes=yes,
        processes=processes,
    )


# -- simulator -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4599,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port, printed at start).",
)
@click.option(
    "--mps",
    type=click.FloatRange(min=0.01),
    default=20.0,
    show_default=True,
    help="Parts per second each origination identity may send before ThrottlingException.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Delay before each answer.",
)
@click.option(
    "--jitter-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Random extra delay, 0 to this many ms.",
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of calls answered ThrottlingException at random.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of calls answered HTTP 500 InternalServerException (not sent).",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of calls accepted, then the connection dropped without an answer.",
)
@click.option(
    "--timeout-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of calls accepted, then answered too late (client timeout).",
)
@click.option(
    "--fail-after",
    type=click.IntRange(min=0),
    default=None,
    help="After N accepted messages, answer ServiceQuotaExceededException.",
)
@click.option("--fail-reason", default="MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT", show_default=True)
@click.option(
    "--opt-out",
    "opt_outs",
    multiple=True,
    metavar="E164",
    help="A number on the opt-out list (repeatable).",
)
@click.option(
    "--opt-out-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="More opted-out numbers, one per line.",
)
@click.option(
    "--accept-any-identity",
    is_flag=True,
    help="Accept any origination identity (default: only the simulator's own numbers).",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append every accepted message to this JSON Lines file.",
)
@click.option("--seed", type=int, default=None, help="Seed for the random faults.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def simulator(
    port: int,
    mps: float,
    latency_ms: float,
    jitter_ms: float,
    throttle_rate: float,
    error_rate: float,
    drop_rate: float,
    timeout_rate: float,
    fail_after: int | None,
    fail_reason: str,
    opt_outs: tuple[str, ...],
    opt_out_file: Path | None,
    accept_any_identity: bool,
    log_path: Path | None,
    seed: int | None,
    verbose: bool,
) -> None:
    """A local SendTextMessage endpoint for rehearsals: the real wire protocol, no AWS, no cost.

    It paces like AWS (ThrottlingException over --mps parts per second per origination identity;
    dry runs at 5), keeps an opt-out list, answers AWS's simulator destination numbers, can
    inject latency and faults, and logs every accepted message. Binds to 127.0.0.1 only.

    \b
    Its origination identities: +12065550100 (10DLC), +18335550123 (toll-free),
    +447700900123 (GB long code), 55500 (short code), sender ID CAMPAIGN.
    \b
    Example (two terminals):
      campaign simulator --mps 20 --latency-ms 100 --log sent.jsonl
      campaign --endpoint-url http://127.0.0.1:4599 send spring-sale
    """
    from campaign.simulator.server import SimulatorConfig, run_simulator

    try:
        config = SimulatorConfig(
            port=port,
            mps=mps,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            throttle_rate=throttle_rate,
            error_rate=error_rate,
            drop_rate=drop_rate,
            timeout_rate=timeout_rate,
            fail_after=fail_after,
            fail_reason=fail_reason,
            opted_out=frozenset(opt_outs),
            opt_out_file=opt_out_file,
            accept_any_identity=accept_any_identity,
            log_path=log_path,
            seed=seed,
            verbose=verbose,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    def ready(url: str) -> None:
        click.echo(
            f"Simulator listening on {url} ({mps:g} MPS per identity"
            + (f", {latency_ms:g} ms latency" if latency_ms else "")
            + "). Ctrl-C stops it.",
            err=True,
        )
        click.echo(f"  use: campaign --endpoint-url {url} send NAME", err=True)

    try:
        run_simulator(config, on_ready=ready)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None


# -- db ------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The ledger database itself."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_settings
def db_upgrade(settings: Settings, revision: str) -> None:
    """Upgrade the ledger schema (the tool also does this by itself on first use).

    \b
    Example:
      campaign --db sqlite:///ledger.db db upgrade
    """
    from campaign.ledger.engine import make_engine

    with user_errors():
        engine = make_engine(settings.db_url)
        before = current_revision(engine)
        migrate(engine, revision)
        after = current_revision(engine)
    say(
        f"Ledger at revision {after} (was {before or 'empty'}; newest {head_revision()}).", settings
    )


def main() -> NoReturn:
    """Console entry point: no traceback for anything a user can cause."""
    try:
        cli.main(prog_name="campaign", standalone_mode=True)
    except Exception as exc:  # a bug, not a user error: one line, the traceback on request
        if os.environ.get("CAMPAIGN_DEBUG"):
            raise
        click.echo(
            f"Error: internal error: {type(exc).__name__}: {exc} "
            "(set CAMPAIGN_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_OK)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


import campaign.cli.events  # noqa: E402, F401  (registers the `events` command group)
