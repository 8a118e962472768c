"""The `send` command's conversation with the user (part of the CLI layer, split out of cli.py
for length): pick the MPS, show the summary, confirm, draw the progress bar, explain the ending."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from campaign.aws.sms import ClientSettings, SmsConfigError, describe_origination, make_client
from campaign.cli import Halted, Interrupted, _count, say, user_errors
from campaign.cli.settings import Settings
from campaign.domain import PartsClass, RecipientState
from campaign.ledger import SenderBusy
from campaign.pricing import PriceTable, classes_cost, format_duration
from campaign.sending.callers import Caller, ProcessCaller, ThreadCaller
from campaign.sending.pacing import DRY_RUN_MAX_MPS, concurrency_for, default_mps
from campaign.sending.sender import Sender, SendOptions, SendStats, StopReason, StopSignal


def run_send(
    settings: Settings,
    *,
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
    yes: bool,
    processes: int | None = None,
) -> None:
    with user_errors():
        ledger = settings.ledger
        campaign = ledger.get_campaign(name)
        table = PriceTable.load(prices) if prices else None
        budget_value = _parse_budget(budget)

        # MPS: the user's, or the identity's default from its number type.
        bootstrap = _client(_client_settings(settings, 4, timeout))  # also checks the config
        if mps is not None:
            rate, why = mps, "--mps"
        else:
            info = describe_origination(bootstrap, campaign.origination_identity)
            if info.rate_limit is not None:
                rate = info.rate_limit
                why = "the number's rate limit from DescribePhoneNumbers; --mps overrides"
            else:
                rate, why = default_mps(info.number_type, info.iso_country)
                if info.note:
                    why = f"{why}; {info.note}"
        if dry_run and rate > DRY_RUN_MAX_MPS:
            rate, why = DRY_RUN_MAX_MPS, f"AWS caps dry runs at {DRY_RUN_MAX_MPS:g} MPS"

        classes = ledger.parts_classes(campaign.id)
        pending, pending_parts = _totals(classes)
        mean_parts = pending_parts / pending if pending else 1.0
        workers = concurrency or concurrency_for(rate, 0.3, mean_parts)
        # (A bad profile, region or credentials already failed above, making `bootstrap`.)
        client_settings = _client_settings(settings, workers, timeout)
        if processes is None:
            # One process makes roughly 300-400 calls/s; past that, spread the calls.
            calls_per_second = rate / mean_parts
            processes = 2 if calls_per_second > 250 and (os.cpu_count() or 1) >= 2 else 0

        def caller() -> Caller:
            if processes:
                return ProcessCaller(client_settings, processes, workers)
            return ThreadCaller(_client(client_settings), workers)

        sample_claims = None
        if sample is not None:
            per_class = max(1, math.ceil(sample / max(len(classes), 1)))
            sample_claims = ledger.sample_recipients(campaign.id, per_class)

        sender = Sender(
            ledger,
            campaign,
            caller,
            SendOptions(
                mps=rate,
                concurrency=workers,
                dry_run=dry_run,
                limit=limit,
                budget=budget_value,
                prices=table,
                sample=sample_claims,
            ),
        )
        try:
            unknown_before = ledger.count_state(campaign.id, RecipientState.UNKNOWN)
            recovered = sender.acquire()
        except SenderBusy as exc:
            raise click.ClickException(str(exc)) from None
        try:
            if recovered:
                say(
                    f"{recovered} recipients were mid-call when the last sender stopped: marked "
                    "`unknown` (they may have received the message; not re-sent).",
                    settings,
                )
            if retry_unknown:
                n = unknown_before + recovered
                if n:
                    say(
                        f"--retry-unknown: {n} recipients with an unknown outcome go back to "
                        "pending. Some of them may already have the message and will get it "
                        "twice.",
                        settings,
                    )
                    _confirm(yes, f"Re-send to {n} unknown recipients?")
                    ledger.retry_unknown(campaign.id)
                    classes = ledger.parts_classes(campaign.id)
                    pending, pending_parts = _totals(classes)

            to_send = len(sample_claims) if sample_claims is not None else pending
            to_parts = (
                sum(c.parts for c in sample_claims) if sample_claims is not None else pending_parts
            )
            if limit is not None and sample_claims is None and to_send > limit:
                to_parts = round(to_parts * limit / to_send)
                to_send = limit
            if to_send == 0:
                counts = ledger.state_counts(campaign.id).counts
                say(
                    f"Nothing to send in {campaign.name!r}: 0 pending "
                    f"({counts['sent']} sent, {counts['failed']} failed, "
                    f"{counts['unknown']} unknown).",
                    settings,
                )
                return
            cost = None
            if table is not None and sample_claims is None:
                total, unpriced = classes_cost(classes, table)
                cost = None if unpriced else total
            kind = "DRY RUN (validated by AWS, not delivered, not charged)" if dry_run else "SEND"
            say(
                f"{kind}: {_count(to_send, 'recipient')}, {_count(to_parts, 'part')} from "
                f"{campaign.origination_identity} ({campaign.message_type.lower()})",
                settings,
            )
            say(
                f"  rate {rate:g} parts/s ({why}), {workers} calls in flight at most; "
                f"about {format_duration(to_parts / rate)}",
                settings,
            )
            if cost is not None and not dry_run:
                say(
                    f"  estimated cost ${cost:,.2f} (from {table.source if table else ''})",
                    settings,
                )
            if budget_value is not None:
                say(f"  budget for this run: ${budget_value}", settings)
            if not dry_run:
                _confirm(yes, "Send now?")

            bar = _ProgressBar(settings, to_send, dry_run)
            stop = StopSignal(
                on_first=lambda: bar.note(
                    "Stopping: no new calls; waiting for the calls in flight (Ctrl-C again to quit "
                    "at once)"
                )
            )
            sender.stop = stop
            sender.on_progress = bar.update
            with stop.installed():
                try:
                    stats = sender.run()
                finally:
                    bar.close()
        finally:
            sender.release()
    _finish(
        settings,
        campaign.name,
        stats,
        dry_run,
        sample_claims is not None,
        ledger,
        campaign.id,
        sender.run_id,
        rate,
    )


def _client_settings(settings: Settings, connections: int, timeout: float) -> ClientSettings:
    return ClientSettings(
        profile=settings.profile,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        max_connections=connections + 2,
        read_timeout=timeout,
    )


def _client(client_settings: ClientSettings) -> Any:
    try:
        return make_client(client_settings)
    except SmsConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _parse_budget(budget: str | None) -> Decimal | None:
    if budget is None:
        return None
    try:
        value = Decimal(budget)
    except InvalidOperation:
        raise click.BadParameter(
            f"{budget!r} is not an amount in dollars", param_hint="--budget"
        ) from None
    if not value.is_finite() or value <= 0:
        raise click.BadParameter("must be a positive amount in dollars", param_hint="--budget")
    return value


def _totals(classes: Sequence[PartsClass]) -> tuple[int, int]:
    """(recipients, parts) over (country, encoding, parts) classes."""
    return sum(c.recipients for c in classes), sum(c.recipients * c.parts for c in classes)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(
            "refusing to send without confirmation: no terminal to ask on; pass --yes"
        )
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("not sent: cancelled at the confirmation prompt")


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
        if stats.spend:
            postfix["spend"] = f"${stats.spend:.2f}"
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _finish(
    settings: Settings,
    name: str,
    stats: SendStats,
    dry_run: bool,
    sampled: bool,
    ledger: Any,
    campaign_id: int,
    run_id: int,
    mps: float,
) -> None:
    if dry_run:
        say(
            f"Dry run: {stats.dry_run_ok} accepted by the API, {stats.failed} rejected, "
            f"{stats.throttles} throttled. Nobody was sent anything.",
            settings,
        )
        if sampled:
            _sample_report(settings, ledger, campaign_id, run_id)
    else:
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
        if elapsed > 10 and not stats.throttles and achieved < 0.9 * mps:
            # Honest about who set the pace: not AWS (no throttles), so this machine or the
            # number of calls in flight.
            say(
                f"Note: {achieved:.0f} parts/s of the {mps:g} allowed. The service never "
                "throttled, so the limit was this side: CPU (one process sends roughly 300-400 "
                "calls/s on a 2-core machine) or --concurrency for the API's latency.",
                settings,
            )
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


def _sample_report(settings: Settings, ledger: Any, campaign_id: int, run_id: int) -> None:
    results = ledger.dry_run_results(run_id)
    classes = {
        (c.country, c.encoding, c.parts): c.recipients for c in ledger.parts_classes(campaign_id)
    }
    grouped: dict[tuple[Any, Any, Any], list[str]] = {}
    for r in results:
        if r["outcome"] in ("throttled", "error"):
            continue
        key = (r["country"], r["encoding"], r["parts"])
        grouped.setdefault(key, []).append(
            "ok" if r["outcome"] == "dry_run" else (r["reason"] or r["outcome"])
        )
    click.echo(
        f"{'country':<8} {'encoding':<8} {'parts':>5} {'recipients':>11} {'sampled':>8}  API answer"
    )
    at_risk = 0
    for key in sorted(grouped, key=lambda k: (str(k[0]), str(k[1]), k[2])):
        answers = grouped[key]
        n = classes.get(key, 0)
        bad = [a for a in answers if a != "ok"]
        verdict = "ok" if not bad else ", ".join(sorted(set(bad)))
        if bad:
            at_risk += round(n * len(bad) / len(answers))
        click.echo(
            f"{key[0] or '?':<8} {key[1] or '?':<8} {key[2]:>5} {n:>11,} "
            f"{len(answers):>8}  {verdict}"
        )
    total = sum(classes.values())
    click.echo(
        f"Extrapolated: about {at_risk:,} of {total:,} pending recipients would be "
        "rejected by the API."
        if at_risk
        else f"Extrapolated: every class passed; the API would accept all {total:,} "
        "pending recipients' requests."
    )


__all__ = ["run_send"]
