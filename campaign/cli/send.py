"""`campaign send`: the conversation around a send - the summary, the confirmation, the progress
bar, the ending explained.

What the send does is decided elsewhere: campaign.sending.plan turns the request into a SendPlan
(rate, calls in flight, processes, sample) and campaign.sending.sender runs it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign.cli.errors import Halted, Interrupted, user_errors
from campaign.cli.options import Dollars, mps_option, prices_option
from campaign.cli.render import count, render_retry_unknown, render_sample, say
from campaign.cli.settings import Settings, pass_settings
from campaign.cli.signals import StopSignal
from campaign.domain import Campaign, RecipientState, StopReason
from campaign.reports.data import format_duration

if TYPE_CHECKING:
    from campaign.sending.plan import SendPlan, SendRequest, Workload
    from campaign.sending.sender import Sender, SendStats

# The client that checks the configuration and looks the origination identity up makes a call or two.
BOOTSTRAP_CONNECTIONS = 6
# A run shorter than this says nothing about who set the pace.
PACE_NOTE_AFTER_SECONDS = 10


@click.command()
@click.argument("name")
@mps_option("Message parts per second (default: from the origination identity's type).")
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
    type=Dollars(),
    default=None,
    metavar="DOLLARS",
    help="Stop before this run's estimated spend passes DOLLARS (needs --prices).",
)
@prices_option("Price table CSV, for the cost shown and --budget.")
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
    settings: Settings, name: str, prices: Path | None, timeout: float, yes: bool, **options: Any
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
    from campaign.aws.sms import ClientSettings
    from campaign.pricing import PriceTable
    from campaign.sending.plan import SendRequest

    if options["sample"] is not None and not options["dry_run"]:
        raise click.UsageError("--sample goes with --dry-run")
    if options["budget"] is not None and prices is None:
        raise click.UsageError("--budget needs --prices (a price table to estimate spend)")
    with user_errors():
        campaign = settings.ledger.get_campaign(name)
        table = PriceTable.load(prices) if prices else None
    _say_no_delivery_events(settings, campaign, options["dry_run"])
    client = ClientSettings(
        profile=settings.profile,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        read_timeout=timeout,
    )
    run_send(settings, campaign, SendRequest(client=client, prices=table, **options), yes)


def run_send(settings: Settings, campaign: Campaign, request: SendRequest, yes: bool) -> None:
    """Plan, take the campaign's sender lock, ask, send, explain how it ended."""
    from campaign.aws.sms import describe_origination, make_client
    from campaign.sending.plan import plan_send
    from campaign.sending.sender import Sender

    ledger = settings.ledger
    with user_errors():
        # Making a client first: a bad profile, region or credentials fail before anything else.
        bootstrap = make_client(replace(request.client, max_connections=BOOTSTRAP_CONNECTIONS))
        plan = plan_send(ledger, campaign, request, partial(describe_origination, bootstrap))
        sender = Sender(ledger, campaign, plan.make_caller, plan.sender_options())
        unknown_before = ledger.count_state(campaign.id, RecipientState.UNKNOWN)
        recovered = sender.acquire()
        try:
            workload = _before_sending(settings, plan, recovered, unknown_before, yes)
            if workload is None:
                return
            stats = _run(settings, sender, workload.recipients, request.dry_run)
        finally:
            sender.release()
    _finish(settings, plan, stats, sender.run_id)


def _before_sending(
    settings: Settings, plan: SendPlan, recovered: int, unknown_before: int, yes: bool
) -> Workload | None:
    """Explain what the last sender left, put unknowns back if asked, show the summary and
    confirm. Returns what to send (None: nothing)."""
    ledger, campaign = settings.ledger, plan.campaign
    if recovered:
        say(
            f"{recovered} recipients were mid-call when the last sender stopped: marked "
            "`unknown` (they may have received the message; not re-sent).",
            settings,
        )
    classes = None  # the plan's
    n = unknown_before + recovered
    if plan.request.retry_unknown and n:
        say(
            f"--retry-unknown: {n} recipients with an unknown outcome go back to "
            "pending. Some of them may already have the message and will get it "
            "twice.",
            settings,
        )
        _say_unknown_outcomes(settings, campaign)
        _confirm(yes, f"Re-send to {n} unknown recipients?")
        ledger.retry_unknown(campaign.id)
        classes = ledger.parts_classes(campaign.id)
    work = plan.workload(classes)
    if work.recipients == 0:
        counts = ledger.state_counts(campaign.id).counts
        say(
            f"Nothing to send in {campaign.name!r}: 0 pending "
            f"({counts['sent']} sent, {counts['failed']} failed, "
            f"{counts['unknown']} unknown).",
            settings,
        )
        return None
    _summary(settings, plan, work)
    if not plan.request.dry_run:
        _confirm(yes, "Send now?")
    return work


def _say_unknown_outcomes(settings: Settings, campaign: Campaign) -> None:
    """Before `--retry-unknown` puts them back: which are safe to retry now, which are not."""
    for line in render_retry_unknown(settings.ledger.unknown_outcomes(campaign)):
        say(line, settings)


def _say_no_delivery_events(settings: Settings, campaign: Campaign, dry_run: bool) -> None:
    if campaign.configuration_set is None and not dry_run:
        say(
            "Note: no configuration set, so AWS sends no delivery events for this campaign "
            f"(`campaign events setup`, then `campaign edit {campaign.name} --configuration-set`).",
            settings,
        )


def _summary(settings: Settings, plan: SendPlan, work: Workload) -> None:
    request, campaign, rate = plan.request, plan.campaign, plan.rate
    kind = "DRY RUN (validated by AWS, not delivered, not charged)" if request.dry_run else "SEND"
    say(
        f"{kind}: {count(work.recipients, 'recipient')}, {count(work.parts, 'part')} from "
        f"{campaign.origination_identity} ({campaign.message_type.lower()})",
        settings,
    )
    say(
        f"  rate {rate.mps:g} parts/s ({rate.why}), {plan.concurrency} calls in flight at most; "
        f"about {format_duration(work.parts / rate.mps)}",
        settings,
    )
    if work.cost is not None and not request.dry_run and request.prices is not None:
        say(f"  estimated cost ${work.cost:,.2f} (from {request.prices.source})", settings)
    if request.budget is not None:
        say(f"  budget for this run: ${request.budget}", settings)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(
            "refusing to send without confirmation: no terminal to ask on; pass --yes"
        )
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("not sent: cancelled at the confirmation prompt")


def _run(settings: Settings, sender: Sender, total: int, dry_run: bool) -> SendStats:
    """The sender's run under a progress bar, with Ctrl-C/SIGTERM asking it to stop."""
    bar = _ProgressBar(settings, total, dry_run)
    stop = StopSignal(
        sender.stop_requested,
        on_first=lambda: bar.note(
            "Stopping: no new calls; waiting for the calls in flight (Ctrl-C again to quit at once)"
        ),
    )
    sender.on_progress = bar.update
    with stop.installed():
        try:
            return sender.run()
        finally:
            bar.close()


class _ProgressBar:
    def __init__(self, settings: Settings, total: int, dry_run: bool) -> None:
        self.bar: Any = None
        self.dry_run = dry_run
        if settings.show_progress():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit=" msg",
                file=sys.stderr,
                dynamic_ncols=True,
                desc="dry run" if dry_run else "sending",
                smoothing=0.1,
            )
        self._last = 0

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def update(self, stats: SendStats) -> None:
        if self.bar is None:
            return
        done = stats.done
        if done != self._last:
            self.bar.update(done - self._last)
            self._last = done
        postfix = {
            "ok" if self.dry_run else "sent": stats.dry_run_ok if self.dry_run else stats.sent,
            "rejected": stats.failed + stats.opted_out,
            "throttled": stats.throttles,
            "parts/s": f"{stats.parts_per_second():.1f}",
        }
        if stats.joint_parts_per_second is not None:
            # Several senders on one shared ledger: every live sender on the identity together.
            postfix["joint parts/s"] = f"{stats.joint_parts_per_second:.1f}"
        if stats.spend:
            postfix["spend"] = f"${stats.spend:.2f}"
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the ending ------------------------------------------------------------------------------------


def _finish(settings: Settings, plan: SendPlan, stats: SendStats, run_id: int) -> None:
    """Say how the run went, then end with the exit code its stop reason calls for."""
    name = plan.campaign.name
    dry_run = plan.request.dry_run
    if dry_run:
        _dry_run_result(settings, plan, stats, run_id)
    else:
        _send_result(settings, plan, stats)
    for reason, n in sorted(stats.failures.items(), key=lambda kv: -kv[1])[:6]:
        say(f"  {n:>7}  {reason}", settings)
    if stats.stop == StopReason.INTERRUPTED:
        raise Interrupted(f"interrupted; run `campaign send {name}` again to resume")
    if stats.stop in (StopReason.HALTED, StopReason.BUDGET):
        raise Halted(
            f"halted: {stats.halt_reason}. Nothing more was claimed; run "
            f"`campaign send {name}` again once fixed"
        )
    if stats.stop == StopReason.GAVE_UP:
        raise click.ClickException(
            f"{stats.gave_up} recipients were not sent after repeated service errors; they are "
            f"still pending: run `campaign send {name}` again"
        )
    if stats.stop == StopReason.LIMIT:
        say(
            f"Stopped at --limit; the rest stays pending for the next `campaign send {name}`.",
            settings,
        )
    if not dry_run:
        say(
            f"Status: campaign status {name}   Report: campaign report {name} -o report.csv",
            settings,
        )


def _dry_run_result(settings: Settings, plan: SendPlan, stats: SendStats, run_id: int) -> None:
    say(
        f"Dry run: {stats.dry_run_ok} accepted by the API, {stats.failed} rejected, "
        f"{stats.throttles} throttled. Nobody was sent anything.",
        settings,
    )
    if plan.sample is not None:
        ledger = settings.ledger
        click.echo(
            render_sample(ledger.dry_run_results(run_id), ledger.parts_classes(plan.campaign.id))
        )


def _send_result(settings: Settings, plan: SendPlan, stats: SendStats) -> None:
    say(
        f"Sent {stats.sent:,} ({stats.parts_sent:,} parts), failed {stats.failed:,}, "
        f"opted out {stats.opted_out:,}, unknown {stats.unknown:,}; "
        f"{stats.throttles} throttles, {stats.retries} retries"
        + (f"; estimated spend ${stats.spend:.2f}" if stats.spend else "")
        + ".",
        settings,
    )
    achieved = stats.parts_per_second()
    elapsed = time.monotonic() - stats.started
    mps = plan.rate.mps
    if elapsed > PACE_NOTE_AFTER_SECONDS and not stats.throttles and achieved < 0.9 * mps:
        # Honest about who set the pace: not AWS (no throttles), so this machine or the
        # number of calls in flight.
        say(
            f"Note: {achieved:.0f} parts/s of the {mps:g} allowed. The service never "
            "throttled, so the limit was this side: CPU (one process sends roughly 300-400 "
            "calls/s on a 2-core machine) or --concurrency for the API's latency.",
            settings,
        )
