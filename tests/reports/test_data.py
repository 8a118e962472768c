"""The report's data model: the helpers that turn GROUP BY answers into sections."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from campaign.reports.data import (
    CountryRow,
    FellOut,
    Pause,
    PauseCause,
    RunTimeline,
    SendTimeline,
    TimeBucket,
    Unavailable,
    bucket_seconds_for,
    combine_countries,
    format_percent,
    format_usd,
    funnel_from_counts,
    mask_phone,
    pause_cause,
)
from tests.reports.builders import DELIVERY_COUNTS, STATE_COUNTS, T0, sample_timeline


def test_funnel_from_state_counts_puts_each_state_where_it_fell_out() -> None:
    funnel = funnel_from_counts(STATE_COUNTS, DELIVERY_COUNTS)
    steps = {s.label: s for s in funnel.steps}
    assert [s.label for s in funnel.steps] == ["Imported rows", "Valid", "Sent", "Delivered"]
    assert steps["Imported rows"].count == 9700
    assert steps["Valid"].count == 9350
    assert steps["Valid"].fell_out == (FellOut("invalid", 300), FellOut("duplicate", 50))
    assert steps["Sent"].count == 9000
    # zero counts (sending) are left out; "pending" is who is still to send
    assert {f.state: f.count for f in steps["Sent"].fell_out} == {
        "suppressed": 60,
        "opted_out": 40,
        "failed": 120,
        "unknown": 5,
        "expired": 25,
        "pending": 100,
    }
    assert steps["Delivered"].count == 8700
    assert steps["Delivered"].fell_out == (FellOut("undelivered", 250), FellOut("awaiting", 50))
    # every recipient is accounted for once: each step = the previous one minus who fell out
    counts = [s.count for s in funnel.steps]
    for before, step, count in zip(counts, funnel.steps[1:], counts[1:], strict=False):
        assert isinstance(before, int) and isinstance(count, int)
        assert before - sum(f.count for f in step.fell_out) == count


def test_funnel_without_delivery_events_says_why() -> None:
    funnel = funnel_from_counts({"sent": 3, "invalid": 1}, None)
    delivered = funnel.steps[-1]
    assert isinstance(delivered.count, Unavailable)
    assert "delivery events" in delivered.count.reason
    assert funnel.imported == 4


@pytest.mark.parametrize(
    ("exit_code", "cause"),
    [
        (3, PauseCause.CTRL_C),  # interrupted: Ctrl-C or SIGTERM
        (4, PauseCause.HALTED),  # an account-level error, or --budget reached
        (5, PauseCause.WINDOW),  # --no-wait outside the sending window
        (None, PauseCause.UNKNOWN),  # the run died without a word
        (0, PauseCause.BETWEEN_RUNS),  # it ended (done, --limit); why a later one began: not known
        (1, PauseCause.ERROR),  # it gave up on errors, recipients left pending
        (2, PauseCause.UNKNOWN),  # a code no run ends with
    ],
)
def test_pause_cause_from_the_exit_code_of_the_run_before(
    exit_code: int | None, cause: PauseCause
) -> None:
    assert pause_cause(exit_code) is cause


def test_pauses_between_runs_and_inside_a_run() -> None:
    timeline = sample_timeline()
    pauses = timeline.pauses
    assert [(p.cause, p.seconds) for p in pauses] == [
        (PauseCause.CTRL_C, 3600.0),
        (PauseCause.WINDOW, 1800.0),
    ]
    assert timeline.active_seconds == 300 + 100 + 150
    run1, run2 = timeline.runs
    assert (run1.parts, run1.throttles, run2.parts) == (6000, 24, 3500)
    assert run2.active_seconds == 250


def _run(run_id: int, start: float, end: float | None, exit_code: int | None = 0) -> RunTimeline:
    bucket = TimeBucket(T0 + timedelta(seconds=start), 10.0, 50, 0, 5.0)
    return RunTimeline(
        run_id,
        T0 + timedelta(seconds=start),
        None if end is None else T0 + timedelta(seconds=end),
        5.0,
        False,
        exit_code,
        None,
        (bucket,),
    )


def test_overlapping_runs_of_several_senders_make_no_pause() -> None:
    timeline = SendTimeline((_run(1, 0, 100), _run(2, 50, 200), _run(3, 500, 600, None)))
    assert timeline.active_periods == (
        (T0, T0 + timedelta(seconds=200)),
        (T0 + timedelta(seconds=500), T0 + timedelta(seconds=600)),
    )
    (pause,) = timeline.pauses
    assert pause.seconds == 300
    assert pause.cause is PauseCause.BETWEEN_RUNS  # run 2, the last one to stop there, exited 0
    assert timeline.active_seconds == 300


def test_a_gap_under_a_second_between_runs_is_no_pause() -> None:
    # A resume started by a script, or a second sender taking over: not a pause worth drawing.
    timeline = SendTimeline((_run(1, 0, 100), _run(2, 100.5, 200), _run(3, 201, 300)))
    assert [p.seconds for p in timeline.pauses] == [1.0]
    assert timeline.active_periods[0] == (T0, T0 + timedelta(seconds=200))


def test_a_run_that_died_ends_with_its_last_bucket() -> None:
    died = _run(1, 0, None, None)
    assert died.end == T0 + timedelta(seconds=10)
    assert died.ending == "still running or died"
    window_wait = replace(
        _run(2, 100, 200, 5),
        pauses=(
            Pause(T0 + timedelta(seconds=120), T0 + timedelta(seconds=150), PauseCause.WINDOW),
        ),
    )
    assert window_wait.active_seconds == 70
    assert window_wait.ending == "waiting for window"


@pytest.mark.parametrize(
    ("seconds", "width"),
    [
        (0, 1.0),
        (600, 1.0),  # ten minutes: per second
        (3600, 5.0),
        (50_000, 120.0),  # a million one-part messages at 20 MPS
        (30 * 86400, 3600.0),
        (400 * 86400, 3600.0 * 14),
    ],
)
def test_bucket_width_keeps_a_run_under_the_bucket_cap(seconds: float, width: float) -> None:
    assert bucket_seconds_for(seconds) == width
    assert seconds / width <= 720


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+33612345678", "+336••••••78"),
        ("+1 206-555-0142", "+1 2••-•••-••42"),  # separators kept: it still reads as a number
        ("0000", "••••"),
        ("n/a", "•••"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_mask_phone_never_shows_the_middle_digits() -> None:
    assert "123456" not in mask_phone("+33612345678")
    assert len(mask_phone("9" * 500)) == 32  # a pasted essay stays short


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0, "0.0%"),
        (0.9734, "97.3%"),
        (0.0004, "<0.1%"),
        (0.9996, ">99.9%"),
        (1.0, "100.0%"),
    ],
)
def test_format_percent(value: float | None, text: str) -> None:
    assert format_percent(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.00581"), "$0.0058"),
        (Decimal(0), "$0.0000"),
    ],
)
def test_format_usd(value: Decimal | None, text: str) -> None:
    assert format_usd(value) == text


def test_combined_countries_keep_unknown_figures_unknown() -> None:
    a = CountryRow("AA", 10, 12, 8, 2, 9, None, Decimal("1.50"), None)
    b = CountryRow("BB", 5, 5, 5, 0, 5, None, None, None)
    other = combine_countries([a, b], "2 others")
    assert (other.country, other.recipients, other.parts, other.sent) == ("2 others", 15, 17, 14)
    assert (other.gsm7, other.ucs2) == (13, 2)
    assert other.estimated_cost == Decimal("1.50")
    assert other.delivered is None and other.charged_cost is None and other.delivered_rate is None
