"""`campaign simulator`: the local SendTextMessage endpoint (campaign.simulator), as a command.

Its options are the simulator's own settings (SimulatorConfig): they go through unchanged."""

from __future__ import annotations

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
@click.option("--seed", type=int, default=None, help="Seed for the random faults.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def simulator(opt_outs: tuple[str, ...], **options: Any) -> None:
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
        config = SimulatorConfig(opted_out=frozenset(opt_outs), **options)
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

    try:
        run_simulator(config, on_ready=ready)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{config.port}: {exc.strerror}"
        ) from None
