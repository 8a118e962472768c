"""`campaign send`: the conversation around a send - the summary, the confirmation, the progress
bar, the ending explained.

What the send does is decided elsewhere: campaign.sending.plan turns the request into a SendPlan
(rate, calls in flight, processes, sample) and campaign.sending.sender runs it.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign.cli.errors import RESUME_COMMAND_KEY, Halted, Interrupted, user_errors
from campaign.cli.options import Dollars, mps_option, prices_option
from campaign.cli.render import (
    count,
    render_budget,
    render_holdback,
    render_over_max_price,
    render_retry_unknown,
    render_sample,
    render_stopped_waiting,
    render_waiting,
    say,
)
from campaign.cli.settings import DEFAULT_DB, Settings, pass_settings
from campaign.cli.signals import StopSignal
from campaign.domain import Campaign, RecipientState, StopReason
from campaign.errors import ExitCode
from campaign.reports.data import format_duration

if TYPE_CHECKING:
    from campaign.aws.sms import Target
    from campaign.sending.pacing import ControlStatus
    from campaign.sending.plan import SendPlan, SendRequest, Workload
    from campaign.sending.sender import Sender, SendStats

# The client that checks the configuration and looks the origination identity up makes a call or two.
BOOTSTRAP_CONNECTIONS = 6
DEFAULT_TIMEOUT = 20.0  # --timeout
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
    default=DEFAULT_TIMEOUT,
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
@click.option(
    "--no-wait",
    is_flag=True,
    help="When everyone left waits for their sending window, stop (exit 5) instead of "
    "waiting for it to open.",
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

    Recipients outside their sending window (in their local time) stay pending: the send waits
    for the next window to open, saying when and for how many. Numbers on the do-not-send list
    become `suppressed`; at the campaign's --deadline the rest become `expired`.

    On SQLite one send runs per campaign. On a shared PostgreSQL ledger (--db
    postgresql+psycopg://...) run the same command on several machines: they split the
    recipients and stay jointly within the origination identity's MPS (README: "Running on
    several machines").

    \b
    Exit codes: 0 done, 1 error, 3 interrupted (run again to resume),
                4 halted by an account-level error, the budget or a wrong endpoint
                  (fix it, run again),
                5 stopped with recipients waiting for their window (--no-wait; run later).
    \b
    Examples:
      campaign send spring-sale --dry-run --sample 20
      campaign send spring-sale --mps 20 --prices prices.csv --budget 150
      campaign send spring-sale --yes --no-wait   # from cron: exit 5 until windows open
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
    if campaign.budget is not None and prices is None and not options["dry_run"]:
        raise click.UsageError(
            f"campaign {campaign.name!r} has a budget (${campaign.budget}): pass --prices FILE "
            "to estimate spend against it (or remove it: "
            f"`campaign edit {campaign.name} --budget none`)"
        )
    _say_no_delivery_events(settings, campaign, options["dry_run"])
    client = ClientSettings(
        profile=settings.profile,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        read_timeout=timeout,
    )
    no_wait = options.pop("no_wait")
    resume = resume_command(settings, name, prices, timeout, yes, options)
    click.get_current_context().meta[RESUME_COMMAND_KEY] = resume  # for a ledger failure's hint
    request = SendRequest(client=client, prices=table, **options)
    run_send(settings, campaign, request, yes, no_wait=no_wait, resume=resume)


def resume_command(
    settings: Settings,
    name: str,
    prices: Path | None,
    timeout: float,
    yes: bool,
    options: dict[str, Any],
) -> str:
    """The whole `send` command that resumes this one, for the hints: every option that decides
    where and how it sends (the endpoint and the ledger with their passwords masked), never
    --retry-unknown (a second message to some) nor --limit (the rest is what a resume sends)."""
    from campaign.errors import mask_url_secrets

    args = ["campaign"]
    if _given_on_the_command_line("db_url") and settings.db_url != DEFAULT_DB:
        args += ["--db", mask_url_secrets(settings.db_url)]  # from CAMPAIGN_DB: still there
    if settings.profile:
        args += ["--profile", settings.profile]
    if settings.region:
        args += ["--region", settings.region]
    if settings.endpoint_url:
        args += ["--endpoint-url", mask_url_secrets(settings.endpoint_url)]
    args += ["send", name]
    for option in ("mps", "concurrency", "processes", "budget", "sample"):
        if options.get(option) is not None:
            args += [
                f"--{option}",
                f"{options[option]:g}" if option == "mps" else str(options[option]),
            ]
    if prices is not None:
        args += ["--prices", str(prices)]
    if options.get("dry_run"):
        args.append("--dry-run")
    if timeout != DEFAULT_TIMEOUT:
        args += ["--timeout", f"{timeout:g}"]
    if yes:
        args.append("--yes")
    return shlex.join(args)


def _given_on_the_command_line(parameter: str) -> bool:
    """Was the root group's `parameter` typed (not from its environment variable or default)?"""
    context = click.get_current_context(silent=True)
    if context is None:
        return True
    source = context.find_root().get_parameter_source(parameter)
    return source is click.core.ParameterSource.COMMANDLINE


def run_send(
    settings: Settings,
    campaign: Campaign,
    request: SendRequest,
    yes: bool,
    *,
    no_wait: bool = False,
    resume: str | None = None,
) -> None:
    """Plan, take the campaign's sender lock, ask, send, explain how it ended. `resume`: the
    command to run again (default: `campaign send NAME`)."""
    from campaign.aws.sms import describe_origination
    from campaign.sending.plan import plan_send
    from campaign.sending.sender import Sender

    ledger = settings.ledger
    with user_errors():
        # Making a client first: a bad profile, region or credentials fail before anything else.
        bootstrap, target = _checked_client(request, campaign)
        plan = plan_send(ledger, campaign, request, partial(describe_origination, bootstrap))
        sender = Sender(ledger, campaign, plan.make_caller, plan.sender_options())
        sender.no_wait = no_wait
        unknown_before = ledger.count_state(campaign.id, RecipientState.UNKNOWN)
        recovered = sender.acquire()
        try:
            if not request.dry_run and _expire_past_deadline(settings, campaign):
                # The plan counted them pending: the summary must not offer to send them.
                plan = replace(plan, classes=tuple(ledger.parts_classes(campaign.id)))
            workload = _before_sending(
                settings, plan, recovered, unknown_before, yes, target=target
            )
            if workload is None:
                return
            stats = _run(settings, sender, workload.recipients, request.dry_run)
        finally:
            sender.release()
    _finish(settings, plan, stats, sender.run_id, resume=resume)


def _checked_client(request: SendRequest, campaign: Campaign) -> tuple[Any, Target]:
    """The bootstrap client, once one call showed that its endpoint speaks the SMS API, and where
    it sends: a wrong endpoint (an HTML page, https:// on an http port, ftp://) halts here,
    before any claim."""
    from campaign.aws.sms import WrongEndpoint, check_endpoint, make_client

    try:
        client = make_client(replace(request.client, max_connections=BOOTSTRAP_CONNECTIONS))
        target = check_endpoint(client, campaign.origination_identity)
    except WrongEndpoint as exc:
        raise Halted(f"{exc}. Nothing was sent; every recipient is still pending") from None
    return client, target


def _before_sending(
    settings: Settings,
    plan: SendPlan,
    recovered: int,
    unknown_before: int,
    yes: bool,
    *,
    target: Target | None = None,
) -> Workload | None:
    """Explain what the last sender left, put unknowns back if asked, show the summary and
    confirm. Returns what to send (None: nothing)."""
    ledger, campaign = settings.ledger, plan.campaign
    if recovered:
        say(
            f"{count(recovered, 'recipient')} {_were(recovered)} mid-call when the last sender "
            "stopped: marked `unknown` (they may have received the message; not re-sent).",
            settings,
        )
    classes = None  # the plan's
    n = unknown_before + recovered
    if plan.request.retry_unknown and n and _past_deadline(campaign):
        # Back to pending they would only expire, and `expired` would hide that they may have
        # the message (and what it may have cost the budget).
        say(
            f"--retry-unknown: the deadline has passed, so nobody may be sent: "
            f"{count(n, 'recipient')} with an unknown outcome stay `unknown`.",
            settings,
        )
    elif plan.request.retry_unknown and n:
        say(
            f"--retry-unknown: {count(n, 'recipient')} with an unknown outcome go back to "
            "pending. Some of them may already have the message and will get it "
            "twice.",
            settings,
        )
        _say_unknown_outcomes(settings, campaign)
        _confirm(yes, f"Re-send to {count(n, 'unknown recipient')}?")
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
    _summary(settings, plan, work, target)
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


def _summary(
    settings: Settings, plan: SendPlan, work: Workload, target: Target | None = None
) -> None:
    request, campaign, rate = plan.request, plan.campaign, plan.rate
    kind = "DRY RUN (validated by AWS, not delivered, not charged)" if request.dry_run else "SEND"
    say(
        f"{kind}: {count(work.recipients, 'recipient')}, {count(work.parts, 'part')} from "
        f"{campaign.origination_identity} ({campaign.message_type.lower()})",
        settings,
    )
    if target is not None:
        say(f"  to {target.describe()}", settings)
    say(
        f"  rate {rate.mps:g} parts/s ({rate.why}), {count(plan.concurrency, 'call')} in flight "
        "at most; "
        f"about {format_duration(work.parts / rate.mps)}",
        settings,
    )
    if work.cost is not None and not request.dry_run and request.prices is not None:
        say(f"  estimated cost ${work.cost:,.2f} (from {request.prices.source})", settings)
    if request.prices is not None and campaign.max_price is not None:
        _warn_over_max_price(settings, plan)
    if request.budget is not None:
        say(f"  budget for this run: ${request.budget}", settings)
    if not request.dry_run:
        _say_holdback(settings, plan)
    if campaign.budget is not None and not request.dry_run:
        _say_campaign_budget(settings, plan)


def _warn_over_max_price(settings: Settings, plan: SendPlan) -> None:
    """As `estimate` does: the messages AWS will refuse for costing more than MaxPrice."""
    from campaign.pricing import estimate

    assert plan.request.prices is not None
    if plan.sample is not None:
        return  # a sample's dry run shows each class's own answer
    priced = estimate(
        campaign=plan.campaign.name,
        classes=plan.classes,
        table=plan.request.prices,
        max_price=plan.campaign.max_price,
        mps=None,
        mps_source=None,
        ucs2=(),
    )
    if warning := render_over_max_price(priced):
        say(f"  {warning}", settings)


def _say_campaign_budget(settings: Settings, plan: SendPlan) -> None:
    """The campaign's budget, and what its earlier sends already spent of it."""
    from campaign.pricing import recorded_spend

    budget = plan.campaign.budget
    assert budget is not None
    spent, _unpriced = recorded_spend(settings.ledger, plan.campaign.id, plan.request.prices)
    say(f"  {render_budget(budget, spent)} (sent or unknown so far)", settings)


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


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
        say=bar.note,
        stopping="no new calls; waiting for the calls in flight",
    )
    sender.on_progress = lambda stats: bar.update(stats, sender.adaptive.status())
    sender.on_wait = lambda held: bar.note(render_waiting(held))
    with stop.installed():
        try:
            return sender.run()
        finally:
            bar.close()


def throttle_note(control: ControlStatus) -> str:
    """The share of calls throttled and what the throttle control made of it, for the progress
    bar: `10% (service-side: rate held at 200 MPS)`, `12% (rate limit: slowed to 120 MPS)`."""
    from campaign.sending.pacing import NOT_RATE_DRIVEN, RATE_DRIVEN, percent

    if not control.throttles:
        return "0"
    head = percent(control.share)
    if control.testing:
        return f"{head} (testing {_mps(control.rate)} MPS: is our rate the cause?)"
    if control.verdict == RATE_DRIVEN:
        return f"{head} (rate limit: slowed to {_mps(control.holding)} MPS)"
    if control.verdict == NOT_RATE_DRIVEN:
        return f"{head} (service-side: rate held at {_mps(control.holding)} MPS)"
    return f"{head} (watching; {_mps(control.rate)} MPS)"


def _mps(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"


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

    def update(self, stats: SendStats, control: ControlStatus | None = None) -> None:
        if self.bar is None:
            return
        done = stats.done
        if done != self._last:
            self.bar.update(done - self._last)
            self._last = done
        postfix = {
            "ok" if self.dry_run else "sent": stats.dry_run_ok if self.dry_run else stats.sent,
            "rejected": stats.failed + stats.opted_out,
            "throttled": throttle_note(control) if control else stats.throttles,
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


def _finish(
    settings: Settings, plan: SendPlan, stats: SendStats, run_id: int, *, resume: str | None = None
) -> None:
    """Say how the run went, then end with the exit code its stop reason calls for."""
    name = plan.campaign.name
    again = resume or f"campaign send {name}"
    dry_run = plan.request.dry_run
    if dry_run:
        _dry_run_result(settings, plan, stats, run_id)
    else:
        _send_result(settings, plan, stats)
        _say_audience_result(settings, plan, stats)
    for reason, n in sorted(stats.failures.items(), key=lambda kv: -kv[1])[:6]:
        say(f"  {n:>7}  {reason}", settings)
    if stats.stop == StopReason.INTERRUPTED:
        raise Interrupted(f"interrupted; run `{again}` again to resume")
    if stats.stop in (StopReason.HALTED, StopReason.BUDGET):
        raise Halted(
            f"halted: {stats.halt_reason}. Nothing more was claimed; run `{again}` again once fixed"
        )
    if stats.stop == StopReason.GAVE_UP:
        raise click.ClickException(
            f"{count(stats.gave_up, 'recipient')} {_were(stats.gave_up)} not sent after repeated "
            f"service errors; still pending: run `{again}` again"
        )
    if stats.stop == StopReason.WAITING and stats.waiting is not None:
        raise StoppedWaiting(render_stopped_waiting(stats.waiting, name, again))
    if stats.stop == StopReason.LIMIT:
        say(
            f"Stopped at --limit; the rest stays pending for the next `{again}`.",
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
        f"Sent {stats.sent:,} ({count(stats.parts_sent, 'part')}), failed {stats.failed:,}, "
        f"opted out {stats.opted_out:,}, unknown {stats.unknown:,}; "
        f"{count(stats.throttles, 'throttle')}, {stats.retries:,} "
        f"{'retry' if stats.retries == 1 else 'retries'}"
        + (f"; estimated spend ${stats.spend:.2f}" if stats.spend else "")
        + ".",
        settings,
    )
    control = stats.control
    if control is not None and control.throttles and control.calls:
        say(
            f"Throttled {control.throttles:,} of {count(control.calls, 'call')}, lately "
            f"{throttle_note(control)}: {control.reason}.",
            settings,
        )
    achieved = stats.parts_per_second()
    elapsed = time.monotonic() - stats.started
    mps = plan.rate.mps
    waited = stats.waiting is not None  # for a window or the cap: that time says nothing of pace
    if (
        elapsed > PACE_NOTE_AFTER_SECONDS
        and not stats.throttles
        and not waited
        and achieved < 0.9 * mps
    ):
        # Honest about who set the pace: not AWS (no throttles), so this machine or the
        # number of calls in flight.
        say(
            f"Note: {achieved:.0f} parts/s of the {mps:g} allowed. The service never "
            "throttled, so the limit was this side: CPU (one process sends roughly 300-400 "
            "calls/s on a 2-core machine) or --concurrency for the API's latency.",
            settings,
        )


# -- sending windows, the do-not-send list, the deadline (issue 11) --------------------------------


class StoppedWaiting(click.ClickException):
    """Exit 5: the recipients left wait for their window (`--no-wait`) or for a decision."""

    exit_code = ExitCode.WAITING

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)  # not an error: a stop the user asked for


def _past_deadline(campaign: Campaign) -> bool:
    """Has the last moment a message may leave before the deadline passed?"""
    from campaign.domain import now
    from campaign.options import TTL_MIN
    from campaign.sending.admission import DEADLINE_MARGIN

    deadline = campaign.deadline
    return deadline is not None and now() >= deadline - timedelta(seconds=TTL_MIN) - DEADLINE_MARGIN


def _expire_past_deadline(settings: Settings, campaign: Campaign) -> int:
    """A send after the deadline sends nothing: the pending recipients expire, and it says so.
    Returns how many expired."""
    from campaign.sending.admission import expired_reason

    deadline = campaign.deadline
    if deadline is None or not _past_deadline(campaign):
        return 0
    expired = settings.ledger.expire_pending(campaign.id, expired_reason(deadline))
    if expired:
        say(
            f"The deadline ({deadline:%Y-%m-%d %H:%M} UTC) has passed: "
            f"{count(expired, 'pending recipient')} expired, nothing is sent.",
            settings,
        )
    return expired


def _say_holdback(settings: Settings, plan: SendPlan) -> None:
    """The confirmation's window policy and how many it holds back now; who the deadline will
    leave unsent at this rate; the frequency cap."""
    from campaign.audience.gate import campaign_policy, frequency_cap, holdback
    from campaign.audience.schedule import plan_calendar
    from campaign.domain import now

    campaign, ledger = plan.campaign, settings.ledger
    loads = ledger.pending_groups(campaign.id)
    policy, at = campaign_policy(campaign), now()
    say("  " + render_holdback(holdback(loads, policy, at)), settings)
    if campaign.deadline is not None:
        calendar = plan_calendar(loads, policy, plan.rate.mps, at, campaign.deadline)
        verdict = (
            "everyone can be sent before it"
            if calendar.meets_deadline
            else f"{count(calendar.left_over, 'recipient')} cannot be sent before it and will "
            "expire"
        )
        say(f"  deadline {campaign.deadline:%Y-%m-%d %H:%M} UTC: {verdict}", settings)
    cap = frequency_cap(campaign)
    if cap is not None:
        say(f"  frequency cap: {cap.describe()}", settings)


def _say_audience_result(settings: Settings, plan: SendPlan, stats: SendStats) -> None:
    """The summary's lines about who was not sent and why: suppressed, expired."""
    if stats.suppressed:
        say(
            f"Suppressed {stats.suppressed:,}: on the do-not-send list (`campaign suppress list`).",
            settings,
        )
    deadline = plan.campaign.deadline
    if stats.expired and deadline is not None:
        say(
            f"Expired {stats.expired:,}: the deadline {deadline:%Y-%m-%d %H:%M} UTC came before "
            "they could be sent.",
            settings,
        )
