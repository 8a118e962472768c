"""What the HTML report shows, already aggregated: frozen value types and small helpers to fill them.

Nothing here holds a row per recipient: every figure is a count or a sum that one GROUP BY query
over the ledger gives (counts by state, by country, by (state, reason), attempts by time bucket).
Any section may be `Unavailable` with a reason (no delivery events ingested, nothing sent yet);
the page then says so instead of drawing an empty chart.

No SQLAlchemy and no matplotlib here: the ledger fills these, the charts and the page read them.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from campaign.domain import Ucs2Character


@dataclass(frozen=True)
class Unavailable:
    """A section (or a figure) whose data does not exist yet; `reason` is shown as is."""

    reason: str


def rate(part: int | None, whole: int | None) -> float | None:
    """part / whole as a fraction, None when either is unknown or the whole is zero."""
    if part is None or not whole:
        return None
    return part / whole


# -- headline --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """The row of figures at the top of the page."""

    campaign: str
    origination_identity: str
    message_type: str
    recipients: int  # valid recipients (imported rows minus invalid and duplicate)
    sent: int
    delivered: int | None  # None until delivery events are ingested
    spend_estimated: Decimal | None  # of what was sent, from the price table; None without prices
    spend_charged: Decimal | None  # from delivery events; None until they exist
    sending_seconds: (
        float | None
    )  # time the runs spent sending (pauses excluded); None before any run
    mps: float | None  # the MPS of the last run
    prices_source: str | None = None  # where the estimate's prices come from

    @property
    def delivered_rate(self) -> float | None:
        return rate(self.delivered, self.sent)


# -- funnel ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FellOut:
    """Recipients that left the funnel between two steps, by the state they ended in."""

    state: str  # a recipient state (`failed`, `suppressed`, ...), `undelivered` or `awaiting`
    count: int


@dataclass(frozen=True)
class FunnelStep:
    label: str
    count: int | Unavailable
    fell_out: tuple[FellOut, ...] = ()  # who went missing since the previous step


@dataclass(frozen=True)
class Funnel:
    steps: tuple[FunnelStep, ...]

    @property
    def imported(self) -> int:
        first = self.steps[0].count
        return 0 if isinstance(first, Unavailable) else first


# Where each state leaves the funnel. `pending` and `sending` are "not sent yet", not failures.
IMPORT_DROPS = ("invalid", "duplicate")
SEND_DROPS = ("suppressed", "opted_out", "failed", "unknown", "expired", "pending", "sending")
DELIVERY_DROPS = ("undelivered", "awaiting")

NO_EVENTS = "No delivery events ingested yet (campaign events ingest)."


def funnel_from_counts(
    state_counts: Mapping[str, int], delivery_counts: Mapping[str, int] | None
) -> Funnel:
    """The funnel from `SELECT state, count(*) ... GROUP BY state` and, once events exist, from
    `SELECT delivery, count(*) ... WHERE state = 'sent' GROUP BY delivery` (delivered, undelivered,
    awaiting). States absent from the mapping count as zero."""

    def drops(states: Iterable[str], counts: Mapping[str, int]) -> tuple[FellOut, ...]:
        return tuple(FellOut(s, counts.get(s, 0)) for s in states if counts.get(s, 0))

    imported = sum(state_counts.values())
    valid = imported - sum(state_counts.get(s, 0) for s in IMPORT_DROPS)
    sent = state_counts.get("sent", 0)
    # A state this code does not know yet (a newer ledger's) still left the funnel before `sent`:
    # it is listed there under its own name rather than lost from the arithmetic.
    known = {*IMPORT_DROPS, *SEND_DROPS, "sent"}
    send_drops = (*SEND_DROPS, *sorted(s for s in state_counts if s not in known))
    delivered: FunnelStep
    if delivery_counts is None:
        delivered = FunnelStep("Delivered", Unavailable(NO_EVENTS))
    else:
        delivered = FunnelStep(
            "Delivered",
            delivery_counts.get("delivered", 0),
            drops(DELIVERY_DROPS, delivery_counts),
        )
    return Funnel(
        (
            FunnelStep("Imported rows", imported),
            FunnelStep("Valid", valid, drops(IMPORT_DROPS, state_counts)),
            FunnelStep("Sent", sent, drops(send_drops, state_counts)),
            delivered,
        )
    )


# -- the send over time ----------------------------------------------------------------------------


class PauseCause(enum.StrEnum):
    """Why the send stopped for a while; the value is the label on the chart."""

    CTRL_C = "Ctrl-C"
    WINDOW = "sending window"
    HALTED = "halted (account error or budget)"
    # The run before ended of itself (done, or --limit reached) and a later one was started: the
    # ledger does not say why then, only that the gap lies between two runs.
    BETWEEN_RUNS = "between runs"
    ERROR = "stopped on errors"
    # A stretch inside a run with no call at all: a wait for a sending window, or a long back-off.
    # The ledger records no reason for it, only that nothing went out.
    IDLE = "waiting, no calls"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def pause_cause(exit_code: int | None) -> PauseCause:
    """How the gap after a run began, from that run's exit code (docs/contract.md's table): 0 it
    ended of itself, 1 error, 3 interrupted (Ctrl-C or SIGTERM), 4 halted (account error,
    --budget), 5 waiting for a sending window; a run with no exit code died."""
    causes = {
        0: PauseCause.BETWEEN_RUNS,
        1: PauseCause.ERROR,
        3: PauseCause.CTRL_C,
        4: PauseCause.HALTED,
        5: PauseCause.WINDOW,
    }
    return causes.get(exit_code if exit_code is not None else -1, PauseCause.UNKNOWN)


@dataclass(frozen=True)
class Pause:
    started_at: datetime
    ended_at: datetime
    cause: PauseCause

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class TimeBucket:
    """What one run did in one slice of time: a row of
    `SELECT floor(seconds since run start / width), sum(parts) FILTER (sent), count(*) FILTER
    (throttled) ... GROUP BY 1`. Buckets without activity may be left out (they read as zero)."""

    started_at: datetime
    seconds: float  # the bucket's width
    parts: int  # parts accepted by the API in the bucket
    throttles: int  # ThrottlingException answers in the bucket
    mps: float  # the MPS in force (the run's, unless the pacing changed it)

    @property
    def parts_per_second(self) -> float:
        return self.parts / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RunTimeline:
    run_id: int
    started_at: datetime
    ended_at: datetime | None  # None: still running, or died without a word
    mps: float
    dry_run: bool
    exit_code: int | None
    note: str | None
    buckets: tuple[TimeBucket, ...]
    pauses: tuple[Pause, ...] = ()  # waits inside the run (a sending window), if recorded

    @property
    def end(self) -> datetime:
        """When the run stopped: its end, else the end of its last activity."""
        if self.ended_at is not None:
            return self.ended_at
        if self.buckets:
            last = self.buckets[-1]
            return last.started_at + timedelta(seconds=last.seconds)
        return self.started_at

    @property
    def parts(self) -> int:
        return sum(b.parts for b in self.buckets)

    @property
    def throttles(self) -> int:
        return sum(b.throttles for b in self.buckets)

    @property
    def active_seconds(self) -> float:
        paused = sum(p.seconds for p in self.pauses)
        return max(0.0, (self.end - self.started_at).total_seconds() - paused)

    @property
    def ending(self) -> str:
        """How the run ended, in words."""
        if self.exit_code is None:
            return "still running or died" if self.ended_at is None else "ended"
        words = {0: "finished", 1: "error", 3: "interrupted", 4: "halted", 5: "waiting for window"}
        return words.get(self.exit_code, f"exit {self.exit_code}")


# A gap shorter than this between two runs (a resume started by a script, a second sender taking
# over) is no pause: it is not listed and not cut out of the time axis.
SHORTEST_PAUSE = timedelta(seconds=1)


@dataclass(frozen=True)
class SendTimeline:
    runs: tuple[RunTimeline, ...]  # in start order; they may overlap (several senders)

    @property
    def active_periods(self) -> tuple[tuple[datetime, datetime], ...]:
        """When at least one run was sending (its span minus its recorded pauses), merged across
        gaps shorter than SHORTEST_PAUSE."""
        spans = sorted(span for run in self.runs for span in _active_spans(run))
        merged: list[tuple[datetime, datetime]] = []
        for start, end in spans:
            if merged and start < merged[-1][1] + SHORTEST_PAUSE:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return tuple(merged)

    @property
    def pauses(self) -> tuple[Pause, ...]:
        """The gaps between active periods, each labelled: by the recorded pause it covers (a
        sending window), else by how the run that stopped there ended (its exit code)."""
        periods = self.active_periods
        return tuple(
            Pause(before_end, after_start, self._cause_of_gap(before_end, after_start))
            for (_, before_end), (after_start, _) in itertools.pairwise(periods)
        )

    @property
    def active_seconds(self) -> float:
        return sum((end - start).total_seconds() for start, end in self.active_periods)

    def _cause_of_gap(self, start: datetime, end: datetime) -> PauseCause:
        for run in self.runs:
            for pause in run.pauses:
                if pause.started_at < end and pause.ended_at > start:
                    return pause.cause
        stopped = [run for run in self.runs if run.end == start]
        return pause_cause(stopped[-1].exit_code) if stopped else PauseCause.UNKNOWN


def _active_spans(run: RunTimeline) -> list[tuple[datetime, datetime]]:
    spans: list[tuple[datetime, datetime]] = []
    cursor, end = run.started_at, run.end
    for pause in sorted(run.pauses, key=lambda p: p.started_at):
        if pause.started_at > cursor:
            spans.append((cursor, min(pause.started_at, end)))
        cursor = max(cursor, pause.ended_at)
    if end > cursor:
        spans.append((cursor, end))
    return spans


def bucket_seconds_for(duration_seconds: float, max_buckets: int = 720) -> float:
    """A bucket width for a run of this length: a whole number of seconds (1, 2, 5, 10, 15, 30,
    60, ... minutes), so that the run needs at most `max_buckets` buckets. The chart downsamples
    again across runs; this only keeps the query's answer small."""
    nice = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    needed = max(duration_seconds, 1.0) / max_buckets
    for width in nice:
        if width >= needed:
            return float(width)
    return float(3600 * math.ceil(needed / 3600))


# -- by country ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountryRow:
    """One row of `... GROUP BY country` over valid recipients."""

    country: str | None  # ISO alpha-2; None when unknown
    recipients: int
    parts: int  # the message parts of all these recipients
    gsm7: int  # recipients whose message is GSM-7
    ucs2: int  # ... and UCS-2
    sent: int
    delivered: int | None  # None until delivery events exist
    estimated_cost: Decimal | None  # of the parts sent; None when the price table has no price
    charged_cost: Decimal | None  # from delivery events; None until they exist

    @property
    def delivered_rate(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def ucs2_share(self) -> float | None:
        return rate(self.ucs2, self.gsm7 + self.ucs2)


def combine_countries(rows: Iterable[CountryRow], label: str | None) -> CountryRow:
    """Several countries as one row (the page's "other countries"). A figure unknown for every
    country stays unknown; otherwise the known ones are summed."""
    rows = list(rows)
    delivered = [r.delivered for r in rows if r.delivered is not None]
    estimated = [r.estimated_cost for r in rows if r.estimated_cost is not None]
    charged = [r.charged_cost for r in rows if r.charged_cost is not None]
    return CountryRow(
        country=label,
        recipients=sum(r.recipients for r in rows),
        parts=sum(r.parts for r in rows),
        gsm7=sum(r.gsm7 for r in rows),
        ucs2=sum(r.ucs2 for r in rows),
        sent=sum(r.sent for r in rows),
        delivered=sum(delivered) if delivered else None,
        estimated_cost=sum(estimated, Decimal(0)) if estimated else None,
        charged_cost=sum(charged, Decimal(0)) if charged else None,
    )


# -- reasons ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleRow:
    """One recipient behind a reason: where to find it in the input, never its full number."""

    row: int  # 1-based data row number in its file (the CSV report's `row`)
    phone: str  # masked: see mask_phone
    file: str | None = None


@dataclass(frozen=True)
class ReasonCount:
    """One row of `SELECT state, reason, count(*) ... GROUP BY state, reason ORDER BY 3 DESC`, with a
    few example rows."""

    state: str  # failed, opted_out, unknown, invalid, suppressed, expired, undelivered, ...
    reason: str
    count: int
    examples: tuple[ExampleRow, ...] = ()


def mask_phone(phone: str) -> str:
    """Enough of a number to recognise it, not enough to dial it: the first four and the last two
    characters, each digit between them replaced by a bullet (`+3361••••••78`)."""
    text = phone.strip()[:32]
    if len(text) <= 6:
        return "•" * len(text)
    middle = "".join("•" if c.isalnum() else c for c in text[4:-2])
    return text[:4] + middle + text[-2:]


# -- the message -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartsCount:
    """How many recipients get a message of this many parts in this encoding."""

    parts: int
    encoding: str  # GSM-7 or UCS-2
    recipients: int


@dataclass(frozen=True)
class MessageSummary:
    template: str
    encoding: str  # of the template's own text: GSM-7 or UCS-2
    parts: tuple[PartsCount, ...]  # `GROUP BY parts, encoding` over valid recipients
    ucs2_characters: tuple[Ucs2Character, ...]  # the ledger's ucs2_characters rows


# -- the whole page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignReport:
    headline: Headline
    funnel: Funnel
    timeline: SendTimeline | Unavailable
    countries: tuple[CountryRow, ...] | Unavailable  # most recipients first
    failures: tuple[ReasonCount, ...] | Unavailable  # most frequent first
    non_delivery: tuple[ReasonCount, ...] | Unavailable  # most frequent first
    message: MessageSummary
    generated_at: datetime
    notes: tuple[str, ...] = field(default=())  # anything else the reader should know


# -- how figures read (the page and the charts write them the same way) ---------------------------


def format_duration(seconds: float) -> str:
    """2h47m, 12m30s, 40s, 3d04h: precise enough for "about"."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    m = round(seconds / 60)
    if m < 24 * 60:
        return f"{m // 60}h{m % 60:02d}m"
    h = round(seconds / 3600)
    return f"{h // 24}d{h % 24:02d}h"


def format_count(value: int) -> str:
    return f"{value:,}"


def format_percent(value: float | None) -> str:
    """0.9734 -> 97.3%; a share that is not 0 or 100% never rounds to 0.0% or 100.0%."""
    if value is None:
        return "—"
    pct = value * 100
    if 0 < pct < 0.1:
        return "<0.1%"
    if 99.9 < pct < 100:
        return ">99.9%"
    return f"{pct:.1f}%"


def format_usd(value: Decimal | None) -> str:
    """$1,234.56; under a dollar, to the hundredth of a cent ($0.0581), as SMS prices are."""
    if value is None:
        return "—"
    places = Decimal("0.01") if abs(value) >= 1 else Decimal("0.0001")
    return f"${value.quantize(places):,}"
