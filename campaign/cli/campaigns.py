"""`campaign create`, `edit` and `list`: a campaign's settings."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from campaign.cli.errors import user_errors
from campaign.cli.imports import import_options, run_import
from campaign.cli.options import (
    NO_BUDGET,
    budget_option,
    campaign_flags,
    campaign_options,
    json_option,
    when_options,
)
from campaign.cli.render import campaign_list_json, count, render_campaign_list, render_when, say
from campaign.cli.settings import Settings, pass_settings
from campaign.domain import Campaign
from campaign.options import CampaignOptions, campaign_spec


@click.command()
@click.argument("name")
@campaign_options(editing=False)
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
@campaign_flags(editing=False)
@when_options(editing=False)
@budget_option(editing=False)
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
    recipients: Path | None,
    default_region: str | None,
    budget: Decimal | None,
    **options: Any,
) -> None:
    """Create a campaign: who it is from, what it says, how AWS should send it.

    Every option is checked against the API's own limits before anything is stored. The message may
    use {column} and {column|fallback} from the CSV; {{ and }} are literal braces.

    PROMOTIONAL messages go out only inside a sending window of each recipient's local time
    (the default table, or --window/--days; --no-window for none), never after --deadline, and
    with --max-per-recipient/--per at most N per period to one number across campaigns.

    \b
    Example:
      campaign create spring-sale -o +12065550100 \\
        -m "Hi {first_name|there}, 20% off this weekend. Reply STOP to opt out" \\
        --max-price 0.05 --context team=growth
      campaign create flash -o +12065550100 -m "Sale ends tonight" \\
        --window 10:00-19:00 --days mon-sat --deadline 2026-05-01T23:00-04:00 \\
        --max-per-recipient 3 --per 24
    """
    given = CampaignOptions(**options)
    if (given.message is None) == (given.message_file is None):
        raise click.UsageError("give the message with exactly one of --message or --message-file")
    if default_region is not None and recipients is None:
        raise click.UsageError(
            "--default-region goes with --recipients (or give it to `campaign import`)"
        )
    with user_errors():
        spec, template = campaign_spec(name, given)
        if recipients is not None:  # a bad region must not leave a campaign without its file
            from campaign.importing.importer import checked_region

            checked_region(default_region)
        campaign = settings.ledger.create_campaign(replace(spec, budget=budget))
    say(
        f"Created campaign {campaign.name!r} from {campaign.origination_identity}"
        + (f", message uses columns: {', '.join(template.columns)}" if template.columns else "")
        + _no_events_note(campaign),
        settings,
    )
    say(render_when(campaign), settings)
    if budget is not None:
        say(_budget_note(campaign), settings)
    if recipients is None:
        return
    try:
        run_import(settings, campaign, recipients, import_options(default_region=default_region))
    except click.ClickException as exc:
        # The campaign stays: say so, or the next `create` fails with "already exists".
        raise type(exc)(
            f"{exc.message}; campaign {campaign.name!r} was created without these "
            f"recipients: fix the file, then run `campaign import {campaign.name} FILE`"
        ) from None


def _budget_note(campaign: Campaign) -> str:
    if campaign.budget is None:
        return "No campaign budget: only a send's own --budget limits its spend."
    return (
        f"Budget: ${campaign.budget} for every send of {campaign.name!r} together, estimated "
        "from `send --prices` (required); what earlier sends spent counts."
    )


def _no_events_note(campaign: Campaign) -> str:
    if campaign.configuration_set is not None:
        return ""
    return (
        ". No --configuration-set: AWS will send no delivery events for it "
        "(see `campaign events setup`)"
    )


@click.command()
@click.argument("name")
@campaign_options(editing=True)
@campaign_flags(editing=True)
@when_options(editing=True)
@budget_option(editing=True)
@pass_settings
def edit(settings: Settings, name: str, budget: Decimal | None, **options: Any) -> None:
    """Change a campaign's settings; options not given stay as they are.

    A new message (or --gsm-safe) is rendered and counted again for every pending recipient, so
    `estimate` and the pacing stay true; recipients already sent are not touched. The new message
    may use only the columns the old one used (the import kept those).

    \b
    Example:
      campaign edit spring-sale --gsm-safe
      campaign edit spring-sale --max-price 0.02 --ttl 3600
      campaign edit spring-sale --window 09:00-18:00 --days mon-fri --deadline none
      campaign edit spring-sale --budget 250
    """
    from campaign.importing.recount import edit_campaign

    given = CampaignOptions(**options)
    if given.message is not None and given.message_file is not None:
        raise click.UsageError("give at most one of --message or --message-file")
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        changes = given.changes(campaign)
        if budget is not None:
            changes["budget"] = None if budget == NO_BUDGET else budget
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        recount = edit_campaign(settings.ledger, campaign, changes)
        edited = settings.ledger.get_campaign(name)
        held = _refresh_held(settings, edited, changes, recount is not None)
    say(f"Updated {campaign.name!r}: {', '.join(sorted(changes))}.", settings)
    if "budget" in changes:
        say(_budget_note(edited), settings)
    if held is not None:
        say(render_when(edited), settings)
        if held:
            say(
                f"{count(held, 'pending recipient')} {'is' if held == 1 else 'are'} held: "
                "no window will let them through "
                "(see `campaign report`).",
                settings,
            )
    if recount is not None:
        say(
            f"Recounted {count(recount.recipients, 'pending recipient')}: "
            f"{recount.parts_before:,} -> {count(recount.parts_after, 'part')}"
            + (f"; {recount.now_invalid:,} now invalid (see report)" if recount.now_invalid else "")
            + ".",
            settings,
        )


def _refresh_held(
    settings: Settings, edited: Campaign, changes: dict[str, Any], recounted: bool
) -> int | None:
    """After a change of window (or a recount, which rewrites reasons): the `held:` reasons of
    the pending recipients of the `edited` campaign, again. Returns how many are held, None when
    nothing was redone."""
    if not recounted and not {"window", "days", "message_type"} & set(changes):
        if {"deadline", "max_per_recipient", "per_hours"} & set(changes):
            return 0
        return None
    from campaign.audience.gate import campaign_policy

    return settings.ledger.refresh_held_reasons(edited.id, campaign_policy(edited))


@click.command("list")
@json_option("Print a JSON array.")
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
        click.echo(json.dumps(campaign_list_json(rows), indent=2, default=str))
    elif not rows:
        say("No campaigns yet. Start with: campaign create NAME -o ORIGINATION --message TEXT")
    else:
        click.echo(render_campaign_list(rows))
