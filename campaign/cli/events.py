"""`campaign events`: the AWS side of delivery events (setup), and the events into the ledger (ingest)."""

from __future__ import annotations

import json
import re
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
    from campaign.aws.sqs import EventSetup
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


CONFIGURATION_SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what CreateConfigurationSet takes
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")  # an SQS queue name (also a valid SNS topic name)


def _checked(pattern: re.Pattern[str], what: str) -> Any:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not pattern.fullmatch(value):
            raise click.BadParameter(f"{value!r}: {what}")
        return value

    return check


@events.command("setup")
@click.option(
    "--configuration-set",
    required=True,
    callback=_checked(CONFIGURATION_SET_NAME, "1-64 letters, digits, _ and -"),
    help="The configuration set your campaigns send with (made if missing).",
)
@click.option(
    "--name",
    default=None,
    callback=_checked(QUEUE_NAME, "1-80 letters, digits, _ and -"),
    help="Name of the SNS topic and the SQS queue [default: sms-events-CONFIGURATION_SET].",
)
@click.option(
    "--destination-name",
    default="campaign-events",
    show_default=True,
    callback=_checked(CONFIGURATION_SET_NAME, "1-64 letters, digits, _ and -"),
    help="Name of the configuration set's event destination.",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Raw message delivery: the queue gets the bare event instead of the SNS envelope "
    "(ingest reads both).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was set up as one JSON object.")
@pass_settings
def setup(
    settings: Settings,
    configuration_set: str,
    name: str | None,
    destination_name: str,
    raw: bool,
    as_json: bool,
) -> None:
    """Set up the AWS side of delivery events for a configuration set; prints the queue URL.

    Makes what is missing, and leaves what is there: an SNS topic that only AWS End User Messaging
    SMS may publish to (for this configuration set, in this account), an SQS queue that only the
    topic may send to, the queue's subscription to the topic, the configuration set itself, and its
    event destination sending every SMS event (TEXT_ALL) to the topic. Safe to run again: it says
    what already existed.

    Only messages sent WITH the configuration set produce events: give it to your campaign
    (`campaign create ... --configuration-set NAME`, or `campaign edit NAME --configuration-set
    NAME`), then read the events with `campaign events ingest --queue-url URL`.

    \b
    IAM: sns:CreateTopic, sns:GetTopicAttributes, sns:SetTopicAttributes, sns:ListTopics,
    sns:Subscribe, sns:ListSubscriptionsByTopic, sqs:CreateQueue, sqs:GetQueueUrl,
    sqs:GetQueueAttributes, sqs:SetQueueAttributes, sms-voice:DescribeConfigurationSets,
    sms-voice:CreateConfigurationSet, sms-voice:CreateEventDestination,
    sms-voice:UpdateEventDestination.
    \b
    Examples:
      campaign events setup --configuration-set marketing
      QUEUE=$(campaign events setup --configuration-set marketing)
    SNS and SQS follow AWS_ENDPOINT_URL_SNS / AWS_ENDPOINT_URL_SQS, the SMS calls --endpoint-url.
    """
    from campaign.aws.sms import ClientSettings
    from campaign.aws.sms import make_client as make_sms_client
    from campaign.aws.sqs import make_client, setup_events

    with user_errors():
        sms = make_sms_client(
            ClientSettings(
                profile=settings.profile, region=settings.region, endpoint_url=settings.endpoint_url
            )
        )
        # The topic and the queue go in the SMS client's region: AWS publishes events there.
        region = settings.region or sms.meta.region_name
        sns = make_client("sns", profile=settings.profile, region=region)
        sqs = make_client("sqs", profile=settings.profile, region=region)
        done = setup_events(
            sms,
            sns,
            sqs,
            configuration_set=configuration_set,
            name=name or f"sms-events-{configuration_set}",
            destination_name=destination_name,
            raw=raw,
        )
    if as_json:
        click.echo(json.dumps(_setup_json(done)))
        return
    for what in done.created:
        say(f"Created: {what}", settings)
    for what in done.existing:
        say(f"Already there: {what}", settings)
    if not done.created:
        say("Nothing to do: everything was already set up.", settings)
    say(
        f"Campaigns produce events only when sent with --configuration-set {configuration_set}. "
        "Read them with:",
        settings,
    )
    say(f"  campaign events ingest --queue-url {done.queue.queue_url}", settings)
    click.echo(done.queue.queue_url)


def _setup_json(done: EventSetup) -> dict[str, Any]:
    queue, destination = done.queue, done.destination
    return {
        "configuration_set": destination.configuration_set,
        "event_destination": destination.name,
        "topic_arn": queue.topic_arn,
        "queue_url": queue.queue_url,
        "queue_arn": queue.queue_arn,
        "subscription_arn": queue.subscription_arn,
        "created": list(done.created),
        "existing": list(done.existing),
    }


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
        for line in _summary_lines(summary, funnels, from_queue=bool(queue_url)):
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


def _summary_lines(
    s: IngestSummary, funnels: list[tuple[str, DeliveryCounts]], *, from_queue: bool
) -> list[str]:
    o = s.outcome
    what = count(s.messages, "SQS message") if from_queue else count(s.files, "file")
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
