"""Everything the CLI shows a person: chatter on stderr (`say`), tables, the estimate and the status.

The `render_*` functions are pure (a value in, text out) so tests can read them without a terminal;
the commands echo what they return. Machine output (`--json`, the report CSV) is not here: it is the
value's own `to_json()` or the report's columns.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import click

from campaign.domain import ALL_STATES, AttemptOutcome, Campaign, PartsClass, StateCounts
from campaign.errors import count
from campaign.pricing import CURRENCY, Estimate, Price, show_character
from campaign.reports.data import format_duration

if TYPE_CHECKING:
    from campaign.audience.gate import DroppedZones, Holdback
    from campaign.audience.schedule import Calendar
    from campaign.cli.settings import Settings
    from campaign.ledger.events import UnknownOutcomes
    from campaign.reports.status import CampaignStatus
    from campaign.sending.admission import Waiting

WIDTH = 100  # the estimate fits a 100-column terminal


def say(message: str, settings: Settings | None = None) -> None:
    """A message for the person at the terminal (stderr; silenced by -q)."""
    if settings is not None and settings.quiet:
        return
    click.echo(message, err=True)


# -- campaign list ---------------------------------------------------------------------------------


def render_campaign_list(rows: Sequence[tuple[Campaign, StateCounts]]) -> str:
    """One line per campaign; each column as wide as its longest cell, so long names and budgets
    keep the table in line."""
    header = ("name", "recipients", "pending", "sent", "failed", "budget", "created")
    cells = [
        (
            c.name,
            f"{s.total:,}",
            f"{s.counts['pending']:,}",
            f"{s.counts['sent']:,}",
            f"{s.counts['failed']:,}",
            f"${c.budget}" if c.budget is not None else "-",
            f"{c.created_at:%Y-%m-%d %H:%M}",
        )
        for c, s in rows
    ]
    least = (24, 10, 10, 10, 8, 10, 0)  # the widths it always had, for the usual cells
    widths = [max(least[i], *(len(row[i]) for row in (header, *cells))) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        name, *numbers, created = row
        return " ".join(
            [
                name.ljust(widths[0]),
                *(v.rjust(w) for v, w in zip(numbers, widths[1:-1], strict=True)),
                created,
            ]
        )

    return "\n".join(line(row) for row in (header, *cells))


def render_budget(budget: Decimal, spent: Decimal | float | None = None) -> str:
    """The campaign's budget line (`status`, `send`'s summary)."""
    text = f"Budget: ${budget} for every send of the campaign together"
    if spent is not None:
        text += f"; ${spent:,.2f} of it estimated spent"
    return text


def campaign_list_json(rows: Sequence[tuple[Campaign, StateCounts]]) -> list[dict[str, Any]]:
    """`list --json`: one object per campaign."""
    return [
        {
            "campaign": c.name,
            "origination_identity": c.origination_identity,
            "message_type": c.message_type,
            "recipients": s.total,
            "counts": s.counts,
            "budget": str(c.budget) if c.budget is not None else None,
            "created_at": c.created_at,
        }
        for c, s in rows
    ]


# -- status ----------------------------------------------------------------------------------------


def render_status(status: CampaignStatus) -> str:
    counts = status.counts
    lines = [
        f"Campaign {status.campaign}  (from {status.origination_identity}, "
        f"{status.message_type.lower()})"
    ]
    total = status.recipients
    for state in ALL_STATES:
        n = counts[state]
        if n or state in ("pending", "sent"):
            share = f"{100 * n / total:5.1f}%" if total else "     -"
            lines.append(f"  {state:<10} {n:>10,}  {share}")
    lines.append(f"  {'total':<10} {total:>10,}")
    lines.append(f"Parts sent: {status.parts_sent:,}; parts to send: {status.parts_pending:,}")
    if status.window is not None and counts["pending"]:
        lines.append(render_holdback(status.window))
    if status.spend is not None:
        spend = status.spend
        lines.append(
            f"Estimated spend (from {spend.prices}): ${spend.sent:,.2f} sent"
            + f", ${spend.to_send:,.2f} to send"
            + (f"; {count(spend.unpriced, 'recipient')} unpriced" if spend.unpriced else "")
        )
    if status.deadline is not None:
        lines.append(render_deadline(status.deadline))
    if status.budget is not None:
        spent = status.spend.counted if status.spend else None
        lines.append(
            render_budget(status.budget, spent)
            + (" (sent or unknown so far)" if spent is not None else "")
        )
    lines += render_delivery(status)
    live = status.sender
    if live is not None:
        rate, eta = live.parts_per_second, live.eta_seconds
        lines.append(
            f"Sending now: pid {live.pid} on {live.host}"
            + (f", {rate:.1f} parts/s" if rate else "")
            + (f", about {format_duration(eta)} left" if eta else "")
        )
    elif counts["unknown"]:
        lines.append(
            f"{count(counts['unknown'], 'recipient')} "
            f"{'has' if counts['unknown'] == 1 else 'have'} an unknown outcome (the sender stopped "
            "mid-call); they are not re-sent unless you run `send --retry-unknown`."
        )
    lines += render_senders(status)
    last = status.last_run
    if last and live is None:
        lines.append(
            f"Last run: {last.started_at:%Y-%m-%d %H:%M} UTC"
            + (" (dry run)" if last.dry_run else "")
            + (f", exit {last.exit_code}" if last.exit_code is not None else "")
            + (f": {last.note}" if last.note else "")
            + (_crashed(counts["sending"]) if status.last_run_crashed else "")
        )
    return "\n".join(lines)


def render_senders(status: CampaignStatus) -> list[str]:
    """The sender registry's rows: each live sender (host, pid, its rate, last heartbeat), and
    the lost ones. Nothing when one sender runs alone and beats (the `Sending now` line says it)."""
    senders = status.senders
    live = [s for s in senders if s.state.value == "live"]
    lost = [s for s in senders if s.state.value == "lost"]
    if len(live) <= 1 and not lost and all(s.silent_for < 60 for s in live):
        return []
    lines = [f"Senders: {count(len(live), 'live sender')}, {len(lost)} lost"]
    for s in live:
        rate = f"{s.rate:.1f} parts/s" if s.rate is not None else "no rate yet"
        silent = f", silent for {s.silent_for:.0f}s" if s.silent_for >= 15 else ""
        lines.append(
            f"  {s.id:>4}  live  pid {s.pid} on {s.host}: {rate}"
            + (f" ({s.rate_note})" if s.rate_note else "")
            + f", last heartbeat {s.heartbeat_at:%H:%M:%S} UTC{silent}"
        )
    for s in lost:
        at = f" at {s.lost_at:%H:%M:%S} UTC" if s.lost_at else ""
        lines.append(
            f"  {s.id:>4}  lost  pid {s.pid} on {s.host}: declared lost{at}, "
            f"silent since {s.heartbeat_at:%H:%M:%S} UTC (its calls in flight became unknown)"
        )
    return lines


def _crashed(in_flight: int) -> str:
    """How a run that recorded no end, and whose sender is gone, ended."""
    text = ", crashed / killed while sending"
    if in_flight:
        text += (
            f": {count(in_flight, 'recipient')} it had in flight stay `sending` until the next "
            "send marks them `unknown`"
        )
    return text


# -- delivery events (status, send --retry-unknown) -------------------------------------------------


def render_delivery(status: CampaignStatus) -> list[str]:
    """The delivery funnel, the charged spend beside the estimate, the top undelivered reasons and
    what the events say about `unknown` recipients: status lines, none when there is nothing to say."""
    d = status.delivery
    if d is None:
        return []
    c = d.counts
    lines: list[str] = []
    no_event_yet = c.awaiting == c.sent and not c.charged_recipients
    if c.sent and d.configuration_set is None and no_event_yet:
        lines.append(
            "Delivery: unknown. The campaign has no configuration set, so AWS sends no delivery "
            "events for it (`campaign events setup --configuration-set NAME`)."
        )
    elif c.sent:
        share = f" ({100 * c.delivered / c.sent:.1f}%)" if c.delivered else ""
        lines.append(
            f"Delivery (from events): {c.sent:,} sent -> {c.delivered:,} delivered{share}, "
            f"{c.undelivered:,} undelivered, {c.awaiting:,} awaiting"
        )
        if no_event_yet:
            lines.append(
                f"  no event recorded yet: `campaign events ingest --queue-url URL` reads the "
                f"queue of configuration set {d.configuration_set}"
            )
        if c.charged_recipients:
            estimated = status.spend.sent if status.spend is not None else None
            lines.append(
                f"Charged (from events): ${c.charged:,.4f} for {c.charged_recipients:,} "
                "recipients"
                + (f"; estimated ${estimated:,.4f} for all {c.sent:,} sent" if estimated else "")
            )
        for reason, n in d.reasons:
            lines.append(f"  undelivered {n:>8,}  {reason}")
    lines += render_unknown_outcomes(d.unknown, status.counts["unknown"])
    return lines


def render_unknown_outcomes(u: UnknownOutcomes, unknown: int) -> list[str]:
    """Which `unknown` recipients are now safe to retry (no event within TimeToLive + margin of
    their call) and which are not."""
    if not unknown:
        return []
    hours = f"{u.window.total_seconds() / 3600:g} h"
    if u.why_none_safe:
        return [
            f"Unknown outcome: {unknown:,}; none can be shown safe to retry: {u.why_none_safe}."
        ]
    if not u.safe:
        return [
            f"Unknown outcome: {unknown:,}, called less than {hours} ago (TimeToLive + margin): "
            "they may still have been accepted; their events may still come."
        ]
    return [
        f"Unknown outcome: {len(u.safe):,} of {unknown:,} very probably never accepted (no event "
        f"within {hours} of their call): safe to retry with `send --retry-unknown`"
        + (f"; {len(u.unsafe):,} may still have been accepted." if u.unsafe else ".")
    ]


def render_retry_unknown(u: UnknownOutcomes, shown: int = 5) -> list[str]:
    """For `send --retry-unknown`: which unknown recipients are now safe to retry, which are not."""
    if not u.total:
        return []
    if u.why_none_safe:
        return [f"  None of them can be shown safe to retry: {u.why_none_safe}."]
    hours = f"{u.window.total_seconds() / 3600:g} h"

    def numbers(ids: list[int]) -> str:
        some = ", ".join(u.split.phones.get(i) or f"recipient {i}" for i in ids[:shown])
        return some + (f" and {len(ids) - shown:,} more" if len(ids) > shown else "")

    lines = []
    if u.safe:
        lines.append(
            f"  safe to retry: {len(u.safe):,} (no event within {hours} of their call: very "
            f"probably never accepted): {numbers(u.safe)}"
        )
    if u.unsafe:
        lines.append(
            f"  NOT safe: {len(u.unsafe):,} (called less than {hours} ago, or accepted; their "
            f"events may still come, run `campaign events ingest` first): {numbers(u.unsafe)}"
        )
    return lines


# -- the dry-run sample ----------------------------------------------------------------------------


def render_sample(results: Iterable[Mapping[str, Any]], classes: Sequence[PartsClass]) -> str:
    """The API's answer for each sampled (country, encoding, parts) class, extrapolated to every
    pending recipient of the class."""
    in_class = {(c.country, c.encoding, c.parts): c.recipients for c in classes}
    grouped: dict[tuple[Any, Any, Any], list[str]] = {}
    for r in results:
        if r["outcome"] in (AttemptOutcome.THROTTLED, AttemptOutcome.ERROR):
            continue  # not an answer about the message: the call was retried
        key = (r["country"], r["encoding"], r["parts"])
        grouped.setdefault(key, []).append(
            "ok" if r["outcome"] == AttemptOutcome.DRY_RUN else (r["reason"] or r["outcome"])
        )
    lines = [
        f"{'country':<8} {'encoding':<8} {'parts':>5} {'recipients':>11} {'sampled':>8}  API answer"
    ]
    at_risk = 0
    for key in sorted(grouped, key=lambda k: (str(k[0]), str(k[1]), k[2])):
        answers = grouped[key]
        n = in_class.get(key, 0)
        bad = [a for a in answers if a != "ok"]
        verdict = "ok" if not bad else ", ".join(sorted(set(bad)))
        if bad:
            at_risk += round(n * len(bad) / len(answers))
        lines.append(
            f"{key[0] or '?':<8} {key[1] or '?':<8} {key[2]:>5} {n:>11,} "
            f"{len(answers):>8}  {verdict}"
        )
    total = sum(in_class.values())
    lines.append(
        f"Extrapolated: about {at_risk:,} of {count(total, 'pending recipient')} would be "
        "rejected by the API."
        if at_risk
        else f"Extrapolated: every class passed; the API would accept the requests of all "
        f"{count(total, 'pending recipient')}."
    )
    return "\n".join(lines)


# -- the estimate ----------------------------------------------------------------------------------


def render_estimate(est: Estimate) -> str:
    """The human view of an estimate, for the terminal (fits in 100 columns)."""
    source = est.prices_source
    title = f"Estimate for campaign {est.campaign!r}"
    title += f", prices from {source} ({CURRENCY})" if source else ", no price table"
    if est.max_price is not None:
        title += f", MaxPrice ${est.max_price} per message"
    lines = [title, ""]
    if not est.total.recipients:
        lines += ["Nothing to send: no pending recipients.", ""]
    lines += _estimate_table(est)
    lines.append("")
    lines += _estimate_notes(est)
    lines += _ucs2_table(est)
    lines.append("")
    lines.append(
        (f"Costs are estimates from the price table {source}" if source else "These are estimates")
        + ", not AWS quotes; actual charges arrive in delivery events (totalMessagePrice)."
    )
    # Warnings and hints can be long (many countries); wrap them, never the table rows.
    return "\n".join(
        textwrap.fill(line, WIDTH, subsequent_indent="  ", break_on_hyphens=False)
        if len(line) > WIDTH
        else line
        for line in lines
    )


def _estimate_table(est: Estimate) -> list[str]:
    """One row per country and the total."""
    t = est.total
    row = "{:<7} {:>11} {:>10} {:>10} {:>12} {:>9} {:>16} {:>14}"
    lines = [
        row.format(
            "country",
            "recipients",
            "GSM-7",
            "UCS-2",
            "parts",
            "$/part",
            f"cost ({CURRENCY})",
            "over MaxPrice",
        )
    ]
    for c in est.countries:
        lines.append(
            row.format(
                c.label,
                f"{c.recipients:,}",
                f"{c.gsm7:,}",
                f"{c.ucs2:,}",
                f"{c.parts:,}",
                _per_part(c.price) if c.price else "-",
                _usd(c.cost) if c.cost is not None else "no price",
                f"{c.over_max_price:,}" if est.max_price is not None and c.priced else "-",
            )
        )
    lines.append(
        row.format(
            "total",
            f"{t.recipients:,}",
            f"{t.gsm7:,}",
            f"{t.ucs2:,}",
            f"{t.parts:,}",
            "",
            (_usd(t.cost) + ("+" if t.unpriced else "")) if t.cost is not None else "unknown",
            f"{t.over_max_price:,}" if est.max_price is not None else "-",
        )
    )
    return lines


def render_over_max_price(est: Estimate) -> str | None:
    """The warning about messages dearer than MaxPrice (`estimate`, `send --prices`), or None."""
    t = est.total
    if not t.over_max_price:
        return None
    where = ", ".join(
        f"{c.label} {c.over_max_price:,} ({c.over_max_price_from_parts}+ parts at "
        f"${_per_part(c.price)})"
        for c in est.countries
        if c.over_max_price and c.price is not None
    )
    return (
        f"WARNING: {count(t.over_max_price, 'message')} "
        f"{'costs' if t.over_max_price == 1 else 'cost'} more than MaxPrice ${est.max_price} "
        f"and AWS will reject them: {where}"
    )


def _estimate_notes(est: Estimate) -> list[str]:
    """The duration, and warnings: messages over MaxPrice, recipients without a price."""
    t = est.total
    source = est.prices_source
    lines = []
    if est.duration_seconds is not None and est.mps is not None:
        where = f" (from {est.mps_source})" if est.mps_source else ""
        lines.append(
            f"Duration: about {format_duration(est.duration_seconds)} at {est.mps:g} MPS"
            f"{where}, {count(t.parts, 'part')}"
        )
    else:
        lines.append("Duration: unknown, the MPS in force is not known (pass --mps)")
    if over := render_over_max_price(est):
        lines.append(over)
    if t.unpriced:
        if source:
            codes = ", ".join(c.label for c in est.countries if not c.priced)
            lines.append(
                f"WARNING: {count(t.unpriced, 'recipient')} in {codes} "
                f"{'has' if t.unpriced == 1 else 'have'} no price in "
                f"{source}: not counted in the cost"
            )
        else:
            lines.append("No price table: costs are not estimated (pass --prices FILE)")
    return lines


def _ucs2_table(est: Estimate) -> list[str]:
    """The characters that force UCS-2, and what --gsm-safe would do about them."""
    if not est.ucs2_characters:
        return []
    lines = ["", "Characters that force UCS-2 (70 characters a part instead of 160):"]
    ucs2_row = "  {}{:<8} {:<28} {:<20} {:>9} {:>9}  {}"
    lines.append(
        ucs2_row.format("   ", "code", "name", "from", "rows", "+parts", "--gsm-safe").rstrip()
    )
    for u in est.ucs2_characters:
        # Invisible characters (no-break space, zero-width joiner) are shown by code only.
        shown = u.character if not show_character(u.character).startswith("U+") else ""
        lines.append(
            ucs2_row.format(
                shown + " " * max(3 - _width(shown), 1),
                u.codepoint,
                _clip(u.name, 28),
                _clip(u.source, 20),
                f"{u.rows:,}",
                f"+{u.extra_parts:,}",
                show_character(u.gsm_safe) if u.gsm_safe is not None else "",
            ).rstrip()
        )
    if est.gsm_safe_hint:
        lines.append(f"Hint: {est.gsm_safe_hint}.")
    return lines


def _usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001'), ROUND_HALF_UP):,.4f}"


def _per_part(price: Price) -> str:
    text = format(price.per_part.normalize(), "f")
    return text if "." in text else f"{text}.00"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- sending windows, deadline, frequency cap ------------------------------------------------------


def render_when(campaign: Campaign) -> str:
    """A campaign's rules of time: its window policy, deadline and frequency cap, one line each."""
    from campaign.audience.gate import campaign_policy, frequency_cap

    lines = [f"Sending window: {campaign_policy(campaign).describe()}."]
    if campaign.deadline is not None:
        lines.append(render_deadline(campaign.deadline))
    cap = frequency_cap(campaign)
    if cap is not None:
        lines.append(f"Frequency cap: {cap.describe()}.")
    return "\n".join(lines)


def render_deadline(deadline: datetime) -> str:
    """The campaign's deadline line (`create`, `edit`, `status`)."""
    passed = deadline <= datetime.now(UTC)
    return f"Deadline: {_utc(deadline)} " + (
        "(already passed: a send expires what is pending and sends nothing)."
        if passed
        else "(nothing leaves after it)."
    )


def render_holdback(held: Holdback) -> str:
    """The confirmation's line before a real send: the window policy in force and how many
    recipients it holds back now."""
    if not held.policy.has_windows:
        return "Sending window: none, every recipient may be messaged at any hour."
    line = f"Sending window: {held.policy.describe()}. "
    if not held.held_now:
        return line + f"It holds back nobody now: all {held.open_now:,} pending are inside it."
    parts = []
    if held.waiting:
        parts.append(
            f"{held.waiting:,} {_verb(held.waiting, 'waits', 'wait')} for their window"
            + (
                f" (the next opens {_utc(held.next_opening)} for {held.opening_then:,})"
                if held.next_opening is not None
                else ""
            )
        )
    if held.unknown_zone:
        parts.append(f"{held.unknown_zone:,} {_verb(held.unknown_zone)} an unknown time zone")
    if held.empty_window:
        parts.append(f"{held.empty_window:,} {_verb(held.empty_window)} zones never open at once")
    return (
        line
        + f"It holds back {held.held_now:,} of {held.open_now + held.held_now:,} pending now: "
        + "; ".join(parts)
        + "."
    )


def _verb(n: int, one: str = "has", many: str = "have") -> str:
    return one if n == 1 else many


def _waiting_parts(held: Waiting) -> list[str]:
    parts = []
    if held.window:
        wait = "waits" if held.window == 1 else "wait"
        part = f"{count(held.window, 'recipient')} {wait} for their sending window"
        if held.next_opening is not None:
            part += f" (the next opens {_utc(held.next_opening)} for {held.opening_then:,})"
        parts.append(part)
    if held.capped:
        are = "is" if held.capped == 1 else "are"
        parts.append(
            f"{count(held.capped, 'recipient')} inside their window {are} held by the frequency cap"
        )
    if held.never:
        are = "is" if held.never == 1 else "are"
        parts.append(
            f"{count(held.never, 'recipient')} {are} held until you decide (unknown time zone, or "
            "zones never open at once: import --timezone-column, edit --window or --no-window)"
        )
    return parts


def render_waiting(held: Waiting) -> str:
    """The progress bar's note when the send starts waiting (and whenever that changes)."""
    line = "Waiting: " + "; ".join(_waiting_parts(held)) + "."
    if held.deadline is not None:
        line += f" The deadline {_utc(held.deadline)} comes first: they expire then."
    elif _until_is_the_cap_recheck(held):
        line += (
            " Sending resumes by itself as the cap lets numbers through (it looks again every "
            "minute; Ctrl-C stops; run the same command later)."
        )
    elif held.until is not None:
        line += f" Sending resumes by itself at {_utc(held.until)}"
        line += " (Ctrl-C stops; run the same command later)." if held.window else "."
    return line


def _until_is_the_cap_recheck(held: Waiting) -> bool:
    """`until` is only when the sender looks again for numbers the frequency cap let through
    (campaign.sending.admission.CAP_RECHECK), not a moment anyone is known to be sendable."""
    return bool(held.capped) and held.until is not None and held.until != held.next_opening


def render_stopped_waiting(held: Waiting, name: str, command: str | None = None) -> str:
    """How a send stopped with `--no-wait` (or with only undecided recipients left) ends: exit 5.
    `command`: the whole command that resumes it (default `campaign send NAME`)."""
    command = command or f"campaign send {name}"
    line = "Stopped: " + "; ".join(_waiting_parts(held)) + "."
    if held.deadline is not None:
        line += f" The deadline {_utc(held.deadline)} comes before any window opens."
    elif _until_is_the_cap_recheck(held):
        line += (
            f" Run `{command}` again later: the frequency cap lets a number through "
            "once its earlier messages are older than the cap's period."
        )
    elif held.until is not None:
        line += f" Run `{command}` again at {_utc(held.until)} or later."
    return line


def render_dropped_zones(dropped: Sequence[DroppedZones]) -> list[str]:
    """`import` and `estimate`: the far-off zones left out of numbers' country-wide lists."""
    return [
        f"  time zones: for {count(d.recipients, 'recipient')} in {d.country or '?'}, {d.note}"
        for d in dropped[:6]
    ]


def render_calendar(calendar: Calendar, held: Holdback) -> str:
    """`estimate`'s calendar: who can go now, when the others' windows open, when it finishes."""
    lines = ["", f"Calendar at {calendar.mps:g} MPS; sending window: {held.policy.describe()}"]
    total = sum(g.load.recipients for g in calendar.groups)
    lines.append(
        f"  sendable now: {calendar.sendable_now:,} of {count(total, 'pending recipient')}"
    )
    if calendar.next_opening is not None:
        lines.append(
            f"  the next window opens {_utc(calendar.next_opening)} "
            f"({count(held.opening_then, 'recipient')} then)"
        )
    rows = sorted(
        (g for g in calendar.groups if g.opens_at is not None and g.load.recipients),
        key=lambda g: (g.opens_at, str(g.load.country), str(g.load.zone_key)),
    )
    row = "    {:<7} {:<36} {:>10}  {:<12} {}"
    if rows:
        lines.append(row.format("country", "time zones", "recipients", "opens (UTC)", "done (UTC)"))
    for plan in rows[:12]:
        lines.append(
            row.format(
                plan.load.country or "?",
                _clip(plan.load.zone_key or "-", 36),
                f"{plan.load.recipients:,}",
                "now" if plan.opens_at == calendar.now else _short(plan.opens_at),
                _short(plan.finishes_at)
                if plan.finishes_at
                else "not in time"
                if calendar.deadline is not None
                else "not in a year",
            )
        )
    if len(rows) > 12:
        lines.append(f"    ... and {len(rows) - 12:,} more time-zone groups (see --json)")
    lines += _calendar_end(calendar)
    if held.never:
        lines.append(
            f"  held, never sent as things stand: {held.unknown_zone:,} with an unknown time "
            f"zone, {held.empty_window:,} whose zones never share an open hour; decide with "
            "import --timezone-column, edit --window, or edit --no-window"
        )
    return "\n".join(
        textwrap.fill(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False)
        if len(line) > WIDTH
        else line
        for line in lines
    )


def _calendar_end(calendar: Calendar) -> list[str]:
    """When the calendar finishes (or that it does not within its year), and the deadline's
    verdict."""
    end: list[str] = []
    if calendar.finishes_at is not None:
        took = (calendar.finishes_at - calendar.now).total_seconds()
        end.append(f"  finishes {_utc(calendar.finishes_at)}, in about {format_duration(took)}")
    elif calendar.deadline is None and calendar.left_over > calendar.never:
        # The calendar looks a year ahead (CALENDAR_HORIZON): say so rather than leave it silent.
        end.append(
            f"  does not finish within a year: {count(calendar.left_over - calendar.never, 'recipient')} "
            "would still be pending; raise --mps or widen the window"
        )
    if calendar.deadline is not None:
        verdict = (
            "met: everyone is sent before it"
            if calendar.meets_deadline
            else f"already passed: the next send expires the {calendar.left_over:,} pending"
            if calendar.deadline <= calendar.now
            else f"MISSED: {count(calendar.left_over, 'recipient')} would be left to expire"
        )
        end.append(f"  deadline {_utc(calendar.deadline)}: {verdict}")
    return end


def _short(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(UTC):%m-%d %H:%M}"


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
