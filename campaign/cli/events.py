"""`campaign events`: delivery events into the ledger (ingest); the setup of the AWS side comes next."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign.cli.errors import Interrupted, user_errors
from campaign.cli.render import count, say
from campaign.cli.settings import Settings, pass_settings
from campaign.cli.signals import StopSignal

if TYPE_CHECKING:  # the command loads boto3 and the ingester only when it runs
    from campaign.events.ingest import IngestSummary, Progress
    from campaign.ledger.events import DeliveryCounts

ASIDE_LABELS = {
    "malformed": "malformed",
    "missing_fields": "not an event (fields missing)",
    "other_channel": "another channel (voice, RCS...)",
    "other_campaign": "another campaign",
    "unknown_message": "unknown MessageId or recipient",
}


@click.group()
def events() -> None:
    """SMS delivery events: delivered, undelivered, and what AWS charged."""


@events.command("ingest")
@click.option("--queue-url", default=None, help="The SQS queue the events arrive in (via SNS).")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A file of events (JSON Lines, Firehose output, .gz) or a folder of them. Repeatable.",
)
@click.option(
    "--until-empty", is_flag=True, help="Stop once the queue is drained (default: until Ctrl-C)."
)
@click.option(
    "--receivers",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Threads receiving from the queue at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_settings
def ingest(
    settings: Settings,
    queue_url: str | None,
    files: tuple[Path, ...],
    until_empty: bool,
    receivers: int,
    as_json: bool,
) -> None:
    """Record delivery events in the ledger: each event once, whatever its order or repeats.

    From an SQS queue fed by SNS (the body may be the SNS envelope or the raw event), reading until
    Ctrl-C or, with --until-empty, until the queue is drained; a message is deleted only after
    what it said is committed. Or from files: JSON Lines, Firehose output (events one after the
    other), gzip, or a folder of them. Events of unknown messages, other campaigns or other channels
    and undecodable messages are kept aside and counted, never in the way. An event for a recipient
    left `unknown` by a crash shows the call was accepted: the recipient becomes `sent`.

    \b
    Examples:
      campaign events ingest --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/sms-events
      campaign events ingest --queue-url URL --until-empty --receivers 8
      campaign events ingest --file firehose/2026/11/28/ --file extra.jsonl.gz
    The standard AWS_ENDPOINT_URL_SQS works (e.g. a local moto server).
    """
    from campaign.events.ingest import ingest_files, ingest_queue
    from campaign.ledger.events import delivery_by_campaign

    if bool(queue_url) == bool(files):
        raise click.UsageError("give either --queue-url or --file (one or more)")
    progress = _ProgressLine(settings)
    stop = StopSignal(threading.Event(), say=progress.note, stopping="committing what was received")
    with user_errors():
        engine = settings.ledger.engine
        with stop.installed():
            try:
                if queue_url:
                    from campaign.aws.sqs import make_client

                    client = make_client(
                        "sqs",
                        profile=settings.profile,
                        region=settings.region,
                        queue_url=queue_url,
                        max_connections=2 * receivers + 2,
                    )
                    summary = ingest_queue(
                        engine,
                        client,
                        queue_url,
                        receivers=receivers,
                        until_empty=until_empty,
                        stop=stop.requested,
                        on_progress=progress.update,
                    )
                else:
                    summary = ingest_files(
                        engine, files, stop=stop.requested, on_progress=progress.update
                    )
            finally:
                progress.close()
        with engine.connect() as conn:
            funnels = delivery_by_campaign(conn, summary.outcome.campaign_ids)
    if as_json:
        click.echo(json.dumps(_summary_json(summary, funnels), default=str))
    else:
        for line in _summary_lines(summary, funnels):
            say(line, settings)
    if summary.interrupted:
        raise Interrupted("interrupted; run the same command to go on (nothing is counted twice)")


class _ProgressLine:
    """One line on stderr, rewritten in place: events read, matched, per second."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.show_progress()
        self.shown = False

    def update(self, p: Progress) -> None:
        if not self.enabled:
            return
        click.echo(
            f"\r{count(p.inputs, 'event')} read, {p.matched:,} matched, {p.per_second:,.0f}/s ",
            err=True,
            nl=False,
        )
        self.shown = True

    def note(self, text: str) -> None:
        self.close()
        click.echo(text, err=True)

    def close(self) -> None:
        if self.shown:
            click.echo("", err=True)
            self.shown = False


def _summary_lines(s: IngestSummary, funnels: list[tuple[str, DeliveryCounts]]) -> list[str]:
    o = s.outcome
    what = f"{count(s.files, 'file')}" if s.files else f"{count(s.messages, 'SQS message')}"
    lines = [
        f"Read {count(s.inputs, 'event')} ({what}) in {s.elapsed_s:.1f} s"
        + (f", {s.rate:,.0f}/s" if s.inputs else "")
        + ".",
        f"  new events for this ledger's recipients: {o.stored:,}; already recorded: "
        f"{o.duplicates:,}",
    ]
    if o.reconciled:
        lines.append(
            f"  {count(o.reconciled, 'recipient')} left unknown were accepted by AWS: now sent"
        )
    if o.not_applied:
        lines.append(
            f"  {count(o.not_applied, 'event')} of another message to an already-sent recipient "
            "(kept, not applied)"
        )
    aside = sum(o.aside.values())
    if aside:
        parts = ", ".join(f"{ASIDE_LABELS.get(k, k)} {n:,}" for k, n in o.aside.most_common())
        lines.append(f"  set aside: {aside:,} ({parts})")
    if s.messages:
        lines.append(
            f"  SQS: {s.deleted:,} of {count(s.messages, 'message')} deleted after their commit"
            + (f"; {s.delete_failures:,} left to come back" if s.delete_failures else "")
        )
    if s.receive_errors:
        lines.append(f"  {count(s.receive_errors, 'receive')} failed and were retried after a wait")
    if s.in_flight_elsewhere:
        lines.append(
            f"  {count(s.in_flight_elsewhere, 'message')} still held by another reader of the "
            "queue; run again later to get them"
        )
    for name, f in funnels:
        lines.append(
            f"Campaign {name!r}: {f.sent:,} sent -> {f.delivered:,} delivered, "
            f"{f.undelivered:,} undelivered, {f.awaiting:,} awaiting; charged ${f.charged:,.4f}"
        )
    return lines


def _summary_json(s: IngestSummary, funnels: list[tuple[str, DeliveryCounts]]) -> dict[str, Any]:
    o = s.outcome
    return {
        "source": s.source,
        "read": s.inputs,
        "files": s.files,
        "messages": s.messages,
        "deleted": s.deleted,
        "delete_failures": s.delete_failures,
        "receive_errors": s.receive_errors,
        "stored": o.stored,
        "matched": o.matched,
        "duplicates": o.duplicates,
        "aside": dict(o.aside),
        "reconciled": o.reconciled,
        "not_applied": o.not_applied,
        "delivery_updates": o.delivery_updates,
        "in_flight_elsewhere": s.in_flight_elsewhere,
        "elapsed_seconds": round(s.elapsed_s, 3),
        "active_seconds": round(s.active_s, 3),
        "events_per_second": round(s.rate, 1),
        "interrupted": s.interrupted,
        "campaigns": {name: {**asdict(f)} for name, f in funnels},
    }
