"""A campaign's report model (campaign.reports.data) from the ledger's aggregates.

The ledger answers a few GROUP BY queries (campaign.ledger.report); this turns their rows into the
sections of the page and prices what was sent. Nothing here reads a row per recipient, so the
report of a million recipients costs what its few hundred groups cost.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import PurePath

from campaign.domain import PartsClass, RecipientState, Ucs2Character, now, sender_alive
from campaign.ledger import Ledger
from campaign.ledger.report import (
    UNDELIVERED,
    ActivityRow,
    ReasonGroup,
    RecipientGroup,
    RunRecord,
)
from campaign.pricing import PriceTable, classes_cost, cost_of
from campaign.reports.data import (
    IMPORT_DROPS,
    NO_EVENTS,
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
    bucket_seconds_for,
    funnel_from_counts,
    mask_phone,
)

S = RecipientState
UCS2 = "UCS-2"
GSM7 = "GSM-7"
REASON_ROWS = 12  # the most frequent reasons of each table; the rest are counted in a note
EXAMPLES = 3  # example rows per reason
NO_RUNS = "Nothing sent yet: no send run is recorded (campaign send)."
# A stretch of a run with no call at all, this long or longer, is drawn as a pause (a wait for a
# sending window, a long back-off): shorter ones are the ordinary gaps of a slow rate.
IDLE_MIN_SECONDS = 60.0
IDLE_MIN_BUCKETS = 3
IDLE_MIN_CALL_INTERVALS = 10


def campaign_report(
    ledger: Ledger, name: str, prices: PriceTable | None = None, *, at: datetime | None = None
) -> CampaignReport:
    """The report of campaign `name`; `prices` adds the estimated spend."""
    campaign = ledger.get_campaign(name)
    generated_at = at or now()
    groups = ledger.report_groups(campaign.id)
    events = any(g.with_events for g in groups)
    sent_groups = [g for g in groups if g.state == S.SENT.value]
    state_counts: Counter[str] = Counter()
    for g in groups:
        state_counts[g.state] += g.recipients
    runs = ledger.report_runs(campaign.id)
    timeline = _timeline(ledger, [r for r in runs if not r.dry_run])
    spend, notes = _spend(sent_groups, prices)
    headline = Headline(
        campaign=campaign.name,
        origination_identity=campaign.origination_identity,
        message_type=campaign.message_type,
        recipients=sum(n for s, n in state_counts.items() if s not in IMPORT_DROPS),
        sent=state_counts[S.SENT.value],
        delivered=_delivered(sent_groups) if events else None,
        spend_estimated=spend,
        spend_charged=_usd(sum(g.charged for g in groups)) if events else None,
        sending_seconds=None if isinstance(timeline, Unavailable) else timeline.active_seconds,
        mps=next((r.mps for r in reversed(runs) if not r.dry_run), None),
        prices_source=(prices.source or None) if prices is not None else None,
    )
    failures, failure_note = _reasons(
        ledger.report_failure_reasons(campaign.id, sorted(state_counts), EXAMPLES), "failure"
    )
    non_delivery: tuple[ReasonCount, ...] | Unavailable = Unavailable(NO_EVENTS)
    if events:
        undelivered = any(g.delivery == UNDELIVERED for g in sent_groups)
        found = ledger.report_non_delivery_reasons(campaign.id, EXAMPLES) if undelivered else []
        non_delivery, more = _reasons(found, "non-delivery")
        notes += more
    notes += _run_notes(runs, sender_alive(campaign))
    return CampaignReport(
        headline=headline,
        funnel=funnel_from_counts(state_counts, _delivery_counts(sent_groups) if events else None),
        timeline=timeline,
        countries=_countries(groups, prices),
        failures=failures,
        non_delivery=non_delivery,
        message=_message(campaign.template, groups, ledger.ucs2_report(campaign.id)),
        generated_at=generated_at,
        notes=tuple(failure_note + notes),
    )


def _run_notes(runs: Sequence[RunRecord], sending: bool) -> list[str]:
    notes = []
    dry_runs = sum(1 for r in runs if r.dry_run)
    if dry_runs:
        notes.append(
            f"{dry_runs} dry run{'s' if dry_runs != 1 else ''} (validated by AWS, nothing "
            "delivered) not shown in the send over time."
        )
    if sending:
        notes.append("A send was running when this report was written: its figures will grow.")
    return notes


# -- figures ---------------------------------------------------------------------------------------


def _usd(value: float) -> Decimal:
    # Charges come from the events as floats; to the millionth of a dollar, as AWS prices them.
    return Decimal(str(round(value, 6)))


def _delivered(sent_groups: Iterable[RecipientGroup]) -> int:
    return sum(g.recipients for g in sent_groups if g.delivery == "delivered")


def _delivery_counts(sent_groups: Iterable[RecipientGroup]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for g in sent_groups:
        counts[g.delivery or "awaiting"] += g.recipients
    return dict(counts)


def _classes(groups: Iterable[RecipientGroup]) -> list[PartsClass]:
    return [PartsClass(g.country, g.encoding, g.parts, g.recipients) for g in groups]


def _spend(
    sent_groups: Sequence[RecipientGroup], prices: PriceTable | None
) -> tuple[Decimal | None, list[str]]:
    """The estimated spend of what was sent, and a note about recipients the table leaves out."""
    if prices is None:
        return None, []
    total, unpriced = classes_cost(_classes(sent_groups), prices)
    if not unpriced:
        return total, []
    countries = sorted({g.country or "unknown" for g in sent_groups if not _priced(g, prices)})
    note = (
        f"{unpriced:,} sent recipient{'s' if unpriced != 1 else ''} ({', '.join(countries)}) "
        f"{'have' if unpriced != 1 else 'has'} no price in {prices.source or 'the price table'}: "
        "the estimated spend leaves them out."
    )
    # Unpriced is never free: if nothing sent is priced, the spend is unknown, not $0.
    priced_any = any(_priced(g, prices) for g in sent_groups)
    return (total if priced_any else None), [note]


def _priced(group: RecipientGroup, prices: PriceTable) -> bool:
    return prices.price_for(group.country) is not None


# -- by country ------------------------------------------------------------------------------------


def _countries(
    groups: Iterable[RecipientGroup], prices: PriceTable | None
) -> tuple[CountryRow, ...]:
    by_country: dict[str | None, list[RecipientGroup]] = defaultdict(list)
    for g in groups:
        if g.state not in IMPORT_DROPS:
            by_country[g.country].append(g)
    rows = [_country_row(country, found, prices) for country, found in by_country.items()]
    rows.sort(key=lambda c: (-c.recipients, c.country is None, c.country or ""))
    return tuple(rows)


def _country_row(
    country: str | None, groups: Sequence[RecipientGroup], prices: PriceTable | None
) -> CountryRow:
    sent = [g for g in groups if g.state == S.SENT.value]
    charged_known = sum(g.charged_recipients for g in groups)
    return CountryRow(
        country=country,
        recipients=sum(g.recipients for g in groups),
        parts=sum(g.parts * g.recipients for g in groups),
        gsm7=sum(g.recipients for g in groups if g.encoding != UCS2),
        ucs2=sum(g.recipients for g in groups if g.encoding == UCS2),
        sent=sum(g.recipients for g in sent),
        # No event reached this country yet: its rate is unknown, not 0%.
        delivered=_delivered(sent) if any(g.with_events for g in sent) else None,
        estimated_cost=cost_of(sum(g.parts * g.recipients for g in sent), country, prices),
        charged_cost=_usd(sum(g.charged for g in groups)) if charged_known else None,
    )


# -- the message -----------------------------------------------------------------------------------


def _message(
    template: str, groups: Iterable[RecipientGroup], ucs2: Sequence[Ucs2Character]
) -> MessageSummary:
    from campaign.message import Template, TemplateError, count_body

    try:
        encoding = count_body(Template.parse(template).literal_text).encoding
    except TemplateError:  # stored templates were checked at create; never fail the report
        encoding = count_body(template).encoding
    sizes: Counter[tuple[int, str]] = Counter()
    for g in groups:
        if g.state not in IMPORT_DROPS and g.parts > 0:
            sizes[(g.parts, UCS2 if g.encoding == UCS2 else GSM7)] += g.recipients
    parts = tuple(PartsCount(p, e, n) for (p, e), n in sorted(sizes.items()))
    return MessageSummary(template, encoding, parts, tuple(ucs2))


# -- reasons ---------------------------------------------------------------------------------------


def _reasons(groups: Sequence[ReasonGroup], kind: str) -> tuple[tuple[ReasonCount, ...], list[str]]:
    """The most frequent reasons, and a note counting the others. Reasons that differ only by
    the phone number they quote (an API message naming its destination) are one reason, shown
    without the number."""
    folded: dict[tuple[str, str], tuple[int, list[ExampleRow]]] = {}
    for g in groups:
        key = (g.state, _without_numbers(g.reason or "(no reason recorded)"))
        count, examples = folded.setdefault(key, (0, []))
        examples += (ExampleRow(e.row, mask_phone(e.phone), _file_name(e.file)) for e in g.examples)
        folded[key] = (count + g.recipients, examples)
    ranked = sorted(folded.items(), key=lambda item: (-item[1][0], item[0]))
    shown = tuple(
        ReasonCount(state, reason, count, tuple(sorted(examples, key=_in_file_order)[:EXAMPLES]))
        for (state, reason), (count, examples) in ranked[:REASON_ROWS]
    )
    rest = ranked[REASON_ROWS:]
    if not rest:
        return shown, []
    recipients = sum(count for _, (count, _) in rest)
    return shown, [
        f"{len(rest):,} less frequent {kind} reasons ({recipients:,} recipients) are not listed; "
        "the CSV report (campaign report NAME -o FILE) has every row with its reason."
    ]


# A phone number quoted in a reason: E.164, or a bare run of 7 to 15 digits (not a date or a port).
_NUMBER = re.compile(r"(?<![\d+])\+?\d{7,15}(?!\d)")


def _in_file_order(example: ExampleRow) -> tuple[str, int]:
    return (example.file or "", example.row)


def _without_numbers(reason: str) -> str:
    return _NUMBER.sub("[number]", reason)


def _file_name(path: str) -> str:
    # The import keeps the path as typed; the page names the file, not the folders it sat in.
    return PurePath(path).name or path


# -- the send over time ----------------------------------------------------------------------------


def _timeline(ledger: Ledger, runs: Sequence[RunRecord]) -> SendTimeline | Unavailable:
    if not runs:
        return Unavailable(NO_RUNS)
    return SendTimeline(tuple(_run_timeline(ledger, run) for run in runs))


def _run_timeline(ledger: Ledger, run: RunRecord) -> RunTimeline:
    end = run.ended_at or run.last_call_at or run.started_at
    width = bucket_seconds_for(max(0.0, (end - run.started_at).total_seconds()))
    activity = ledger.report_run_activity(run.id, run.started_at, width)
    buckets = tuple(
        TimeBucket(
            run.started_at + timedelta(seconds=a.bucket * width),
            width,
            a.parts,
            a.throttles,
            run.mps,
        )
        for a in activity
    )
    return RunTimeline(
        run_id=run.id,
        started_at=run.started_at,
        ended_at=run.ended_at,
        mps=run.mps,
        dry_run=run.dry_run,
        exit_code=run.exit_code,
        note=run.note,
        buckets=buckets,
        pauses=_idle_stretches(run, activity, width, end),
    )


def _idle_stretches(
    run: RunRecord, activity: Sequence[ActivityRow], width: float, end: datetime
) -> tuple[Pause, ...]:
    """Stretches of the run with no call at all (no accepted part, no throttle), long enough to
    be more than the gaps of a slow rate: they are pauses inside the run."""
    interval = 1.0 / run.mps if run.mps > 0 else 0.0
    shortest = max(IDLE_MIN_SECONDS, IDLE_MIN_BUCKETS * width, IDLE_MIN_CALL_INTERVALS * interval)
    busy = [
        (run.started_at + timedelta(seconds=a.bucket * width), timedelta(seconds=width))
        for a in activity
    ]
    pauses = []
    cursor = run.started_at
    for start, length in busy:
        if (start - cursor).total_seconds() >= shortest:
            pauses.append(Pause(cursor, start, PauseCause.IDLE))
        cursor = max(cursor, start + length)
    if (end - cursor).total_seconds() >= shortest:
        pauses.append(Pause(cursor, end, PauseCause.IDLE))
    return tuple(pauses)
