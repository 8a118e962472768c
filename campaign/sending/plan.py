"""What a `send` will do, decided before it starts: the user's request becomes a frozen `SendPlan`.

The rate choice is shared with `estimate`: both take the user's --mps, else what is known about the
origination identity. Only where that knowledge comes from differs, and it is an input here
(`identify`): `send` asks the API (DescribePhoneNumbers), `estimate` stays offline and guesses from
the identity's form.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from campaign.aws.sms import ClientSettings, OriginationInfo, make_client
from campaign.domain import Campaign, Claim, PartsClass
from campaign.errors import UserError
from campaign.ledger import Ledger
from campaign.ledger.claims import SENDER_TIMEOUT
from campaign.pricing import PriceTable, classes_cost
from campaign.sending.callers import Caller, ProcessCaller, ThreadCaller
from campaign.sending.pacing import DRY_RUN_MAX_MPS, concurrency_for, default_mps
from campaign.sending.sender import HEARTBEAT_SECONDS, SendOptions

EXPECTED_LATENCY_S = 0.3  # one call's round trip, for the default concurrency (Little's law)
# One process makes roughly 300-400 calls/s; past this many calls/s, spread the calls.
CALLS_PER_PROCESS = 250
DEFAULT_PROCESSES = 2


@dataclass(frozen=True)
class Rate:
    """The MPS in force, and why (shown to the user beside it)."""

    mps: float
    why: str


def choose_rate(
    mps: float | None,
    identity: str,
    identify: Callable[[str], OriginationInfo],
    *,
    dry_run: bool = False,
) -> Rate:
    """The user's --mps, else the identity's rate limit or the default for its type; capped for a
    dry run. `identify` is called only when it is needed (it may be an API call)."""
    if mps is not None:
        rate = Rate(mps, "--mps")
    else:
        info = identify(identity)
        if info.rate_limit is not None:
            rate = Rate(
                info.rate_limit,
                "the number's rate limit from DescribePhoneNumbers; --mps overrides",
            )
        else:
            default, why = default_mps(info.number_type, info.iso_country)
            rate = Rate(default, f"{why}; {info.note}" if info.note else why)
    if dry_run and rate.mps > DRY_RUN_MAX_MPS:
        rate = Rate(DRY_RUN_MAX_MPS, f"AWS caps dry runs at {DRY_RUN_MAX_MPS:g} MPS")
    return rate


@dataclass(frozen=True)
class SendRequest:
    """What the user asked `send` for, options parsed and checked (campaign.cli.send)."""

    client: ClientSettings  # where and how to call: profile, region, endpoint, read timeout
    mps: float | None = None
    concurrency: int | None = None
    processes: int | None = None
    dry_run: bool = False
    sample: int | None = None  # with dry_run: about this many recipients, every class once
    limit: int | None = None
    budget: Decimal | None = None
    prices: PriceTable | None = None
    retry_unknown: bool = False


@dataclass(frozen=True)
class Workload:
    """What this run is about to send: the summary before the confirmation."""

    recipients: int
    parts: int
    cost: Decimal | None  # None: no price table, a sample, or some recipients unpriced


@dataclass(frozen=True)
class SendPlan:
    campaign: Campaign
    request: SendRequest
    rate: Rate
    concurrency: int
    processes: int  # 0: the calls are made from this process's threads
    classes: tuple[PartsClass, ...]  # the pending recipients when the plan was made
    sample: tuple[Claim, ...] | None
    # Liveness in the sender registry (CAMPAIGN_HEARTBEAT_SECONDS, CAMPAIGN_SENDER_TIMEOUT_SECONDS).
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    sender_timeout: float = SENDER_TIMEOUT

    @property
    def client(self) -> ClientSettings:
        """The client settings for the calls: a connection for each call in flight."""
        return replace(self.request.client, max_connections=self.concurrency + 2)

    def make_caller(self) -> Caller:
        """The calls' maker (the Sender makes it when its run starts)."""
        if self.processes:
            return ProcessCaller(self.client, self.processes, self.concurrency)
        return ThreadCaller(make_client(self.client), self.concurrency)

    def sender_options(self) -> SendOptions:
        r = self.request
        return SendOptions(
            mps=self.rate.mps,
            concurrency=self.concurrency,
            dry_run=r.dry_run,
            limit=r.limit,
            budget=r.budget,
            prices=r.prices,
            sample=self.sample,
            heartbeat_seconds=self.heartbeat_seconds,
            sender_timeout=self.sender_timeout,
        )

    def workload(self, classes: Sequence[PartsClass] | None = None) -> Workload:
        """What the run will send, from the pending `classes` (default: those of the plan)."""
        classes = self.classes if classes is None else classes
        if self.sample is not None:
            return Workload(len(self.sample), sum(c.parts for c in self.sample), None)
        recipients, parts = pending_totals(classes)
        limit = self.request.limit
        if limit is not None and recipients > limit:
            parts = round(parts * limit / recipients)
            recipients = limit
        cost = None
        if self.request.prices is not None:
            total, unpriced = classes_cost(classes, self.request.prices)
            cost = None if unpriced else total
        return Workload(recipients, parts, cost)


def plan_send(
    ledger: Ledger,
    campaign: Campaign,
    request: SendRequest,
    identify: Callable[[str], OriginationInfo],
) -> SendPlan:
    """Decide the rate, the calls in flight, the worker processes and the sample for a send."""
    rate = choose_rate(
        request.mps, campaign.origination_identity, identify, dry_run=request.dry_run
    )
    classes = tuple(ledger.parts_classes(campaign.id))
    pending, pending_parts = pending_totals(classes)
    mean_parts = pending_parts / pending if pending else 1.0
    concurrency = request.concurrency or concurrency_for(rate.mps, EXPECTED_LATENCY_S, mean_parts)
    processes = request.processes
    if processes is None:
        calls_per_second = rate.mps / mean_parts
        many_calls = calls_per_second > CALLS_PER_PROCESS and (os.cpu_count() or 1) >= 2
        processes = DEFAULT_PROCESSES if many_calls else 0
    sample = None
    if request.sample is not None:
        per_class = max(1, math.ceil(request.sample / max(len(classes), 1)))
        sample = tuple(ledger.sample_recipients(campaign.id, per_class))
    heartbeat, timeout = liveness_from_env()
    return SendPlan(
        campaign, request, rate, concurrency, processes, classes, sample, heartbeat, timeout
    )


def liveness_from_env(env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(heartbeat, timeout) in seconds: how often a sender stamps itself live in the registry,
    and after how long without it a live peer declares it lost (its claims become `unknown`).
    The defaults (5 s, 30 s) suit production; tests and benchmarks shorten them."""
    env = os.environ if env is None else env
    heartbeat = _seconds(env, "CAMPAIGN_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)
    timeout = _seconds(env, "CAMPAIGN_SENDER_TIMEOUT_SECONDS", SENDER_TIMEOUT)
    if timeout < 3 * heartbeat:
        raise UserError(
            f"CAMPAIGN_SENDER_TIMEOUT_SECONDS ({timeout:g}) must be at least 3 heartbeats "
            f"(CAMPAIGN_HEARTBEAT_SECONDS is {heartbeat:g}): a live sender would be declared lost"
        )
    return heartbeat, timeout


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number of seconds, not {text!r}")
    return value


def pending_totals(classes: Sequence[PartsClass]) -> tuple[int, int]:
    """(recipients, parts) over (country, encoding, parts) classes."""
    return sum(c.recipients for c in classes), sum(c.recipients * c.parts for c in classes)
