"""`campaign estimate`: cost and duration of the pending recipients, offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from campaign.cli.errors import user_errors
from campaign.cli.options import json_option, mps_option, prices_option
from campaign.cli.render import render_calendar, render_dropped_zones, render_estimate
from campaign.cli.settings import Settings, pass_settings


@click.command()
@click.argument("name")
@prices_option("Price table CSV: country, price_per_part[, carrier_fee_per_part].")
@mps_option("Parts per second for the duration (default: from the origination identity).")
@json_option()
@pass_settings
def estimate(
    settings: Settings, name: str, prices: Path | None, mps: float | None, as_json: bool
) -> None:
    """What sending the pending recipients will cost and take, before anything goes out.

    Offline: no API call. Per destination country: recipients, messages by encoding (GSM-7,
    UCS-2), parts, estimated cost and messages over MaxPrice; the total; the time at the MPS in
    force; and which characters force UCS-2 (and so double the parts).

    The calendar: how many can be sent now, when the other recipients' windows open (in their
    local time), when the campaign finishes at the MPS in force given the windows, whether the
    deadline is met, and who no window will let through (unknown time zone, zones never open
    at once) until you decide.

    \b
    Example:
      campaign estimate spring-sale --prices samples/prices.csv
      campaign estimate spring-sale --prices prices.csv --mps 100 --json
    """
    from dataclasses import asdict

    from campaign.audience.gate import campaign_policy, dropped_zones, holdback
    from campaign.audience.schedule import plan_calendar
    from campaign.aws.sms import guess_origination
    from campaign.domain import now
    from campaign.pricing import PriceTable
    from campaign.pricing import estimate as make_estimate
    from campaign.sending.plan import choose_rate

    with user_errors():
        ledger = settings.ledger
        campaign = ledger.get_campaign(name)
        table = PriceTable.load(prices) if prices else None
        # The same rate `send` would choose, from the identity's form instead of the API.
        rate = choose_rate(mps, campaign.origination_identity, guess_origination)
        result = make_estimate(
            campaign=campaign.name,
            classes=ledger.parts_classes(campaign.id),
            table=table,
            max_price=campaign.max_price,
            mps=rate.mps,
            mps_source=rate.why,
            ucs2=ledger.ucs2_report(campaign.id),
        )
        loads = ledger.pending_groups(campaign.id)
        policy, at = campaign_policy(campaign), now()
        calendar = plan_calendar(loads, policy, rate.mps, at, campaign.deadline)
        held = holdback(loads, policy, at)
        dropped = dropped_zones(ledger.zone_samples(campaign.id))
    if as_json:
        data = result.to_json()
        data["calendar"] = {
            **calendar.to_json(),
            "window": held.to_json(),
            "dropped_zones": [asdict(d) for d in dropped],
        }
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render_estimate(result) + "\n" + render_calendar(calendar, held))
        for line in render_dropped_zones(dropped):
            click.echo(line)
