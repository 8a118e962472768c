"""What a send says when it waits, and how it ends with --no-wait (exit 5): one table of cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaign.cli.render import render_stopped_waiting, render_waiting
from campaign.sending.admission import Waiting

AT = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
OPENS = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 7, 1, 14, 30, tzinfo=UTC)


def waiting(**changes: object) -> Waiting:
    fields: dict[str, object] = {
        "at": AT, "until": OPENS, "window": 3, "next_opening": OPENS, "opening_then": 2,
        "capped": 0, "never": 0, "deadline": None,
    }  # fmt: skip
    fields.update(changes)
    return Waiting(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("held", "waits", "stops"),
    [
        (
            waiting(),
            "Waiting: 3 recipients wait for their sending window (the next opens 2026-07-01 15:00 "
            "UTC for 2). Sending resumes by itself at 2026-07-01 15:00 UTC (Ctrl-C stops; run "
            "the same command later).",
            "Stopped: 3 recipients wait for their sending window (the next opens 2026-07-01 15:00 "
            "UTC for 2). Run `campaign send c` again at 2026-07-01 15:00 UTC or later.",
        ),
        (  # the deadline comes before the next window: they will expire
            waiting(until=DEADLINE, deadline=DEADLINE),
            "The deadline 2026-07-01 14:30 UTC comes first: they expire then.",
            "The deadline 2026-07-01 14:30 UTC comes before any window opens.",
        ),
        (  # only the frequency cap: the sender looks again in a minute, but nobody knows when
            # a number is let through: no time is promised (it said "again at <in a minute>")
            waiting(window=0, next_opening=None, opening_then=0, capped=1, until=OPENS),
            "Waiting: 1 recipient inside their window is held by the frequency cap. Sending "
            "resumes by itself as the cap lets numbers through (it looks again every minute;",
            "Run `campaign send c` again later: the frequency cap lets a number through once its "
            "earlier messages are older than the cap's period.",
        ),
        (  # the cap and a window that opens before the cap's next look: that opening is sure
            waiting(capped=1, until=OPENS),
            "Sending resumes by itself at 2026-07-01 15:00 UTC (Ctrl-C stops",
            "Run `campaign send c` again at 2026-07-01 15:00 UTC or later.",
        ),
        (  # only undecided recipients: nothing to wait for
            waiting(window=0, next_opening=None, opening_then=0, never=4, until=None),
            "Waiting: 4 recipients are held until you decide (unknown time zone",
            "Stopped: 4 recipients are held until you decide (unknown time zone, or zones never "
            "open at once: import --timezone-column, edit --window or --no-window).",
        ),
    ],
)
def test_waiting_and_stopped_lines(held: Waiting, waits: str, stops: str) -> None:
    assert waits in render_waiting(held)
    assert stops in render_stopped_waiting(held, "c")
    if held.until is None or (held.capped and held.until != held.next_opening):
        assert "again at" not in render_stopped_waiting(held, "c")
