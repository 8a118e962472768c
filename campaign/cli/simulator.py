"""`campaign simulator`: the local SendTextMessage endpoint (campaign.simulator), as a command.

Its options are the simulator's own settings (SimulatorConfig): they go through unchanged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click


@click.command()
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
@click.option(
    "--configuration-set",
    "configuration_sets",
    multiple=True,
    metavar="NAME",
    help="A configuration set the account has at start (repeatable; default: `default`). "
    "More come from CreateConfigurationSet, e.g. `campaign events setup`.",
)
@click.option(
    "--events-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the delivery events of EVERY accepted message here (JSON Lines, what "
    "`events ingest --file` reads), configuration set or not.",
)
@click.option(
    "--events-topic-arn",
    default=None,
    metavar="ARN",
    help="Publish the delivery events of EVERY accepted message to this SNS topic, "
    "configuration set or not (AWS_ENDPOINT_URL_SNS reaches a local moto server).",
)
@click.option(
    "--undelivered-share",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Share of accepted messages whose final event is undelivered (carrier unreachable, "
    "blocked, spam, TTL expired...).",
)
@click.option(
    "--event-delay-ms",
    type=click.FloatRange(min=0),
    default=1200.0,
    show_default=True,
    help="Mean time from acceptance to the final event (TEXT_SUCCESSFUL comes at a fifth of it).",
)
@click.option(
    "--duplicate-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of events delivered twice, as SNS and SQS may.",
)
@click.option(
    "--reorder-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of messages whose final event arrives before TEXT_SUCCESSFUL.",
)
@click.option(
    "--price-per-part",
    "prices",
    multiple=True,
    metavar="[CC=]USD",
    help="What a part costs, for the events' totalMessagePrice and MaxPrice checks: "
    "US=0.00581, or a bare figure for every country (repeatable). Default: example figures.",
)
@click.option(
    "--carrier-fee-per-part",
    type=click.FloatRange(min=0),
    default=None,
    help="The events' totalCarrierFee per part (USD; default: an example figure).",
)
@click.option("--seed", type=int, default=None, help="Seed for the random faults and events.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def simulator(
    opt_outs: tuple[str, ...],
    configuration_sets: tuple[str, ...],
    prices: tuple[str, ...],
    **options: Any,
) -> None:
    """A local SendTextMessage endpoint for rehearsals: the real wire protocol, no AWS, no cost.

    It paces like AWS (ThrottlingException over --mps parts per second per origination identity;
    dry runs at 5), keeps an opt-out list, answers AWS's simulator destination numbers, can
    inject latency and faults, and logs every accepted message. Binds to 127.0.0.1 only.

    Delivery events, as at AWS: a message sent with a configuration set produces TEXT_SUCCESSFUL then
    a final event (delivered, or undelivered for --undelivered-share of them), published to the
    SNS topics of that set's event destinations (CreateEventDestination; `campaign events setup`
    makes one). A message sent without a configuration set produces none, unless --events-file or
    --events-topic-arn is given: those get the events of every accepted message.

    \b
    Its origination identities: +12065550100 (10DLC), +18335550123 (toll-free),
    +447700900123 (GB long code), 55500 (short code), sender ID CAMPAIGN.
    \b
    Example (two terminals):
      campaign simulator --mps 20 --latency-ms 100 --log sent.jsonl
      campaign --endpoint-url http://127.0.0.1:4599 send spring-sale
    \b
    With delivery events through SNS and SQS (moto's server on port 5000):
      AWS_ENDPOINT_URL_SNS=http://127.0.0.1:5000 campaign simulator --undelivered-share 0.1
      campaign --endpoint-url http://127.0.0.1:4599 events setup --configuration-set rehearsal
    """
    from campaign.simulator.events import EventSettings
    from campaign.simulator.server import SimulatorConfig, run_simulator

    delay_s = options.pop("event_delay_ms") / 1000
    fee = options.pop("carrier_fee_per_part")
    try:
        events = EventSettings(
            undelivered_share=options.pop("undelivered_share"),
            duplicate_share=options.pop("duplicate_share"),
            reorder_share=options.pop("reorder_share"),
            carrier_delay_s=delay_s / 5,
            handset_delay_s=delay_s * 4 / 5,
        )
        if fee is not None:
            events = replace(events, carrier_fee_per_part=fee)
        config = SimulatorConfig(
            opted_out=frozenset(opt_outs),
            configuration_sets=frozenset(configuration_sets or ("default",)),
            price_per_part=_price_table(prices) or None,
            events=events,
            **options,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    def ready(url: str) -> None:
        click.echo(
            f"Simulator listening on {url} ({config.mps:g} MPS per identity"
            + (f", {config.latency_ms:g} ms latency" if config.latency_ms else "")
            + "). Ctrl-C stops it.",
            err=True,
        )
        click.echo(f"  use: campaign --endpoint-url {url} send NAME", err=True)
        every = [str(w) for w in (config.events_file, config.events_topic_arn) if w is not None]
        click.echo(
            "  delivery events: to the SNS destinations of each message's configuration set"
            + (f"; every message's to {' and '.join(every)}" if every else ""),
            err=True,
        )

    try:
        run_simulator(config, on_ready=ready)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{config.port}: {exc.strerror}"
        ) from None


def _price_table(values: tuple[str, ...]) -> dict[str, float]:
    """`--price-per-part` values: `CC=USD` for one country, a bare `USD` for all others (`*`)."""
    table: dict[str, float] = {}
    for value in values:
        country, _, price = value.rpartition("=")
        try:
            usd = float(price)
        except ValueError:
            usd = -1.0
        if usd < 0 or (country and not (len(country) == 2 and country.isalpha())):
            raise click.BadParameter(
                f"{value!r}: give USD per part, or CC=USD (e.g. US=0.00581)",
                param_hint="--price-per-part",
            )
        table[country.upper() or "*"] = usd
    return table
