"""Report models built by hand, the way the ledger's GROUP BY queries will fill them.

`sample_report()` is a small campaign with every state, five countries (one without a price), two
runs with throttles, a Ctrl-C between them and a sending-window wait inside the second, delivery
events, failure and non-delivery reasons. `large_report()` is the size of a 1M-recipient campaign.
The figures are constants so that tests can look for them on the page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import phonenumbers

from campaign.domain import Ucs2Character
from campaign.reports.data import (
    CampaignReport,
    CountryRow,
    ExampleRow,
    Headline,
    MessageSummary,
    PartsCount,
    Pause,
    PauseCause,
    ReasonCount,
    RunTimeline,
    SendTimeline,
    TimeBucket,
    Unavailable,
    funnel_from_counts,
    mask_phone,
)

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
GENERATED_AT = datetime(2025, 3, 15, 8, 30, tzinfo=UTC)

STATE_COUNTS = {
    "sent": 9000,
    "pending": 100,
    "sending": 0,
    "failed": 120,
    "opted_out": 40,
    "unknown": 5,
    "invalid": 300,
    "duplicate": 50,
    "suppressed": 60,
    "expired": 25,
}
DELIVERY_COUNTS = {"delivered": 8700, "undelivered": 250, "awaiting": 50}

# country, recipients, parts, gsm7, ucs2, sent, delivered, estimated, charged
COUNTRIES = (
    ("US", 5000, 5100, 4900, 100, 4800, 4650, "28.35", "27.90"),
    ("FR", 2500, 2700, 2300, 200, 2420, 2330, "195.40", "190.12"),
    ("DE", 1000, 1000, 1000, 0, 960, 930, "86.20", "85.00"),
    ("JP", 600, 1200, 0, 600, 580, 560, "88.70", "90.10"),
    ("BR", 250, 250, 250, 0, 240, 230, None, "3.20"),  # no price in the table
)
SPEND_ESTIMATED = Decimal("398.65")
SPEND_CHARGED = Decimal("396.32")

TEMPLATE = "Hi {first_name}, spring sale: 20% off everything until Sunday. Reply STOP to opt out"


def sample_report(*, events: bool = True, campaign: str = "spring-sale") -> CampaignReport:
    """The small campaign; `events=False` is the same campaign before any delivery event."""
    timeline = sample_timeline()
    countries = tuple(
        CountryRow(
            country=code,
            recipients=recipients,
            parts=parts,
            gsm7=gsm7,
            ucs2=ucs2,
            sent=sent,
            delivered=delivered if events else None,
            estimated_cost=None if estimated is None else Decimal(estimated),
            charged_cost=Decimal(charged) if events else None,
        )
        for code, recipients, parts, gsm7, ucs2, sent, delivered, estimated, charged in COUNTRIES
    )
    headline = Headline(
        campaign=campaign,
        origination_identity="+12065550100",
        message_type="PROMOTIONAL",
        recipients=9350,
        sent=9000,
        delivered=8700 if events else None,
        spend_estimated=SPEND_ESTIMATED,
        spend_charged=SPEND_CHARGED if events else None,
        sending_seconds=timeline.active_seconds,
        mps=20.0,
        prices_source="samples/prices.csv",
    )
    return CampaignReport(
        headline=headline,
        funnel=funnel_from_counts(STATE_COUNTS, DELIVERY_COUNTS if events else None),
        timeline=timeline,
        countries=countries,
        failures=sample_failures(),
        non_delivery=sample_non_delivery()
        if events
        else Unavailable("No delivery events ingested yet (campaign events ingest)."),
        message=sample_message(),
        generated_at=GENERATED_AT,
    )


def sample_timeline() -> SendTimeline:
    """Run 1: 300 s at 20 MPS (6,000 parts), 24 throttles between 60 s and 90 s, stopped by
    Ctrl-C. An hour later run 2: 100 s, a 30-minute sending-window wait, 150 s more (3,500 parts)."""
    run1_buckets = tuple(
        TimeBucket(T0 + timedelta(seconds=5 * i), 5.0, 100, 4 if 12 <= i < 18 else 0, 20.0)
        for i in range(60)
    )
    run2_start = T0 + timedelta(seconds=300 + 3600)
    window = Pause(
        run2_start + timedelta(seconds=100),
        run2_start + timedelta(seconds=100 + 1800),
        PauseCause.WINDOW,
    )
    run2_buckets = tuple(
        TimeBucket(run2_start + timedelta(seconds=5 * i), 5.0, 100, 0, 20.0) for i in range(20)
    ) + tuple(
        TimeBucket(window.ended_at + timedelta(seconds=5 * i), 5.0, 50, 0, 20.0) for i in range(30)
    )
    run1 = RunTimeline(1, T0, T0 + timedelta(seconds=300), 20.0, False, 3, None, run1_buckets)
    run2 = RunTimeline(
        2,
        run2_start,
        window.ended_at + timedelta(seconds=150),
        20.0,
        False,
        0,
        "finished",
        run2_buckets,
        (window,),
    )
    return SendTimeline((run1, run2))


def _examples(first_row: int, phones: tuple[str, ...]) -> tuple[ExampleRow, ...]:
    return tuple(
        ExampleRow(first_row + 17 * i, mask_phone(p), "customers.csv") for i, p in enumerate(phones)
    )


def sample_failures() -> tuple[ReasonCount, ...]:
    return (
        ReasonCount("invalid", "unparseable phone number", 200, _examples(12, ("n/a", "0000"))),
        ReasonCount(
            "failed",
            "ValidationException: DESTINATION_PHONE_NUMBER_INVALID",
            120,
            _examples(40, ("+33612345678", "+4915112345678")),
        ),
        ReasonCount("invalid", "not a possible number", 100, _examples(7, ("+1206555",))),
        ReasonCount("suppressed", "on the do-not-send list", 60, _examples(99, ("+12065550142",))),
        ReasonCount(
            "opted_out",
            "ConflictException: DESTINATION_PHONE_NUMBER_OPTED_OUT",
            40,
            _examples(5, ("+12065550199",)),
        ),
        ReasonCount("expired", "the deadline passed before it could be sent", 25),
        ReasonCount("unknown", "timed out after the request went out", 5),
    )


def sample_non_delivery() -> tuple[ReasonCount, ...]:
    return (
        ReasonCount(
            "undelivered",
            "TEXT_CARRIER_UNREACHABLE: carrier temporarily unreachable",
            150,
            _examples(301, ("+33698765432", "+819012345678")),
        ),
        ReasonCount("undelivered", "TEXT_BLOCKED: blocked by the carrier", 70),
        ReasonCount("undelivered", "TEXT_TTL_EXPIRED", 30),
    )


def sample_message() -> MessageSummary:
    return MessageSummary(
        template=TEMPLATE,
        encoding="GSM-7",
        parts=(PartsCount(1, "GSM-7", 8450), PartsCount(2, "UCS-2", 900)),
        ucs2_characters=(
            Ucs2Character("’", "column:first_name", 600, 600),
            Ucs2Character("ł", "column:first_name", 300, 300),
        ),
    )


def large_report(
    *, countries: int = 200, runs: int = 12, seconds_per_run: int = 4_500
) -> CampaignReport:
    """A 1M-recipient campaign: 200 countries, 12 runs of 75 minutes with per-second buckets
    (54,000 of them), 20 failure reasons and 20 non-delivery reasons with examples."""
    codes = sorted(phonenumbers.SUPPORTED_REGIONS)[:countries]
    per_country = 1_000_000 // len(codes)
    rows = tuple(
        CountryRow(
            country=code,
            recipients=per_country,
            parts=per_country * 2 - i,
            gsm7=per_country - i,
            ucs2=i,
            sent=per_country - 10,
            delivered=per_country - 50,
            estimated_cost=Decimal("0.00581") * (per_country * 2 - i),
            charged_cost=Decimal("0.00579") * (per_country * 2 - i),
        )
        for i, code in enumerate(codes)
    )
    timeline_runs = []
    start = T0
    for r in range(runs):
        buckets = tuple(
            TimeBucket(start + timedelta(seconds=s), 1.0, 20 - (s % 3), int(s % 97 == 0), 20.0)
            for s in range(seconds_per_run)
        )
        end = start + timedelta(seconds=seconds_per_run)
        timeline_runs.append(RunTimeline(r + 1, start, end, 20.0, False, 3, None, buckets))
        start = end + timedelta(minutes=10 + 37 * r)
    reasons = tuple(
        ReasonCount(
            "failed",
            f"ValidationException: reason number {i}",
            1000 - i,
            _examples(i, ("+33612345678",) * 3),
        )
        for i in range(20)
    )
    sample = sample_report()
    timeline = SendTimeline(tuple(timeline_runs))
    state_counts = {"sent": 990_000, "failed": 5_000, "invalid": 3_000, "duplicate": 2_000}
    headline = replace(
        sample.headline,
        recipients=995_000,
        sent=990_000,
        delivered=980_000,
        spend_estimated=sum((r.estimated_cost or Decimal(0) for r in rows), Decimal(0)),
        spend_charged=sum((r.charged_cost or Decimal(0) for r in rows), Decimal(0)),
        sending_seconds=timeline.active_seconds,
    )
    return replace(
        sample,
        headline=headline,
        funnel=funnel_from_counts(state_counts, {"delivered": 980_000, "undelivered": 10_000}),
        timeline=timeline,
        countries=rows,
        failures=reasons,
        non_delivery=tuple(replace(r, state="undelivered") for r in reasons),
    )
