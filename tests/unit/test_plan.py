"""campaign.sending.plan: the rate choice `send` and `estimate` share, and the SendPlan."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest

from campaign.aws.sms import ClientSettings, OriginationInfo
from campaign.domain import Campaign, Claim, PartsClass
from campaign.pricing import PriceTable
from campaign.sending.pacing import DRY_RUN_MAX_MPS, concurrency_for, default_mps
from campaign.sending.plan import (
    EXPECTED_LATENCY_S,
    Rate,
    SendPlan,
    SendRequest,
    choose_rate,
    plan_send,
)

SHORT_CODE = OriginationInfo("SHORT_CODE", "US")


def identify_as(info: OriginationInfo) -> Any:
    asked: list[str] = []

    def identify(identity: str) -> OriginationInfo:
        asked.append(identity)
        return info

    identify.asked = asked  # type: ignore[attr-defined]
    return identify


def test_mps_given_wins_and_nothing_is_looked_up() -> None:
    identify = identify_as(SHORT_CODE)
    assert choose_rate(7.5, "55500", identify) == Rate(7.5, "--mps")
    assert identify.asked == []  # for `send`, no DescribePhoneNumbers call


def test_the_numbers_own_rate_limit_comes_next() -> None:
    info = OriginationInfo("TEN_DLC", "US", rate_limit=12.0)
    rate = choose_rate(None, "+12065550100", identify_as(info))
    assert rate == Rate(12.0, "the number's rate limit from DescribePhoneNumbers; --mps overrides")


def test_else_the_default_for_its_type_with_the_lookups_note() -> None:
    mps, why = default_mps("SHORT_CODE", "US")
    assert choose_rate(None, "55500", identify_as(SHORT_CODE)) == Rate(mps, why)
    noted = OriginationInfo("SHORT_CODE", "US", note="guessed from its form")
    assert choose_rate(None, "55500", identify_as(noted)) == Rate(
        mps, f"{why}; guessed from its form"
    )


@pytest.mark.parametrize("mps", [None, 50.0])
def test_a_dry_run_is_capped_whoever_chose_the_rate(mps: float | None) -> None:
    rate = choose_rate(mps, "55500", identify_as(SHORT_CODE), dry_run=True)
    assert rate == Rate(DRY_RUN_MAX_MPS, "AWS caps dry runs at 5 MPS")
    assert choose_rate(2.0, "55500", identify_as(SHORT_CODE), dry_run=True).mps == 2.0


class FakeLedger:
    """The two reads a plan makes."""

    def __init__(self, classes: list[PartsClass]) -> None:
        self.classes = classes
        self.sampled_per_class: int | None = None

    def parts_classes(self, campaign_id: int) -> list[PartsClass]:
        return self.classes

    def sample_recipients(self, campaign_id: int, per_class: int) -> list[Claim]:
        self.sampled_per_class = per_class
        return [Claim(i, f"+1206555{i:04d}", "US", {}, 2) for i in range(per_class)]


CLASSES = [PartsClass("US", "GSM-7", 1, 600), PartsClass("GB", "UCS-2", 2, 200)]  # 1,000 parts
CAMPAIGN = Campaign(name="c1", template="Hi", origination_identity="55500", id=1)


def plan(classes: list[PartsClass] = CLASSES, **request: Any) -> SendPlan:
    ledger: Any = FakeLedger(classes)
    return plan_send(
        ledger, CAMPAIGN, SendRequest(ClientSettings(), **request), identify_as(SHORT_CODE)
    )


def test_the_plan_sizes_calls_in_flight_and_processes_from_the_rate() -> None:
    slow = plan(mps=10.0)
    # 1,000 parts over 800 recipients: 1.25 parts a message, so 8 calls/s.
    assert slow.concurrency == concurrency_for(10.0, EXPECTED_LATENCY_S, 1.25)
    assert slow.processes == 0
    assert slow.client.max_connections == slow.concurrency + 2
    fast = plan(mps=1000.0)  # 800 calls/s: more than one process makes
    assert fast.processes == (2 if (os.cpu_count() or 1) >= 2 else 0)
    given = plan(mps=1000.0, concurrency=3, processes=4)
    assert (given.concurrency, given.processes, given.client.max_connections) == (3, 4, 5)
    assert given.sender_options().concurrency == 3


def test_the_sample_takes_every_class_at_least_once() -> None:
    ledger: Any = FakeLedger(CLASSES)
    request = SendRequest(ClientSettings(), mps=5.0, dry_run=True, sample=5)
    made = plan_send(ledger, CAMPAIGN, request, identify_as(SHORT_CODE))
    assert ledger.sampled_per_class == 3  # 5 over 2 classes, rounded up
    assert made.sample is not None and len(made.sample) == 3
    work = made.workload()
    assert (work.recipients, work.parts, work.cost) == (3, 6, None)  # a sample is not priced


def test_the_workload_honours_limit_and_prices() -> None:
    prices = PriceTable.parse("country,price_per_part\nUS,0.01\nGB,0.02\n", source="p.csv")
    work = plan(mps=10.0, prices=prices).workload()
    assert (work.recipients, work.parts, work.cost) == (800, 1000, Decimal("14.00"))
    limited = plan(mps=10.0, limit=200).workload()
    assert (limited.recipients, limited.parts) == (200, 250)  # parts in proportion
    unpriced = PriceTable.parse("country,price_per_part\nUS,0.01\n", source="p.csv")
    assert plan(mps=10.0, prices=unpriced).workload().cost is None  # never a partial total
    # After --retry-unknown, the caller passes the classes read again.
    assert plan(mps=10.0).workload([PartsClass("US", "GSM-7", 1, 5)]).recipients == 5
