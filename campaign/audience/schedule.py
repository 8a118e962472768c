"""The calendar of a send for `estimate`: who can go now, when the others' windows open, when the
campaign finishes at the MPS in force, and whether the deadline is met.

It works on groups of pending recipients with the same (zone key, country), never per
recipient: the cost is O(groups x window changes). The model is the sender's: every group whose
window is open shares the MPS (in message parts per second), and since the sender claims open
recipients in ledger order, which mixes the groups, each open group gets a share in proportion to
the parts it still has. A group that never opens within the horizon (an unknown zone, windows
that never overlap) is counted apart: the user has to decide for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from campaign.audience.windows import Interval, WindowPolicy, next_opening, open_intervals

__all__ = ["CALENDAR_HORIZON", "Calendar", "GroupLoad", "GroupPlan", "plan_calendar"]

# How far a calendar without a deadline looks: past it, a group still sending is `unfinished`.
CALENDAR_HORIZON: Final = timedelta(days=366)
_CHUNK: Final = timedelta(days=7)  # windows are computed a week at a time, as the plan needs them


@dataclass(frozen=True, slots=True)
class GroupLoad:
    """Pending recipients of one (zone key, country) group and their message parts."""

    zone_key: str | None
    country: str | None
    recipients: int
    parts: int


@dataclass(frozen=True, slots=True)
class GroupPlan:
    load: GroupLoad
    opens_at: datetime | None  # `now` when open now; None: never (unknown zone, empty window)
    finishes_at: datetime | None  # its last part; None: not before the deadline (or horizon)
    sent: int  # recipients sent by the deadline (or the horizon): all of them when finished


@dataclass(frozen=True, slots=True)
class Calendar:
    now: datetime
    mps: float
    deadline: datetime | None
    groups: tuple[GroupPlan, ...]  # in the order given
    sendable_now: int  # recipients whose window is open now
    next_opening: datetime | None  # the first opening among groups closed now
    finishes_at: (
        datetime | None
    )  # the last part of every group that opens; None: not all do in time
    never: int  # recipients whose window never opens (unknown zone, empty window): a decision
    left_over: int  # recipients not sent by the deadline or the horizon (never ones included)

    @property
    def meets_deadline(self) -> bool | None:
        """None without a deadline; True when everyone is sent before it."""
        return None if self.deadline is None else self.left_over == 0

    def to_json(self) -> dict[str, Any]:
        """`estimate --json`'s calendar: times in ISO 8601 UTC, groups in the order given."""
        return {
            "now": _iso(self.now),
            "mps": self.mps,
            "deadline": _iso(self.deadline),
            "meets_deadline": self.meets_deadline,
            "sendable_now": self.sendable_now,
            "next_opening": _iso(self.next_opening),
            "finishes_at": _iso(self.finishes_at),
            "duration_seconds": (self.finishes_at - self.now).total_seconds()
            if self.finishes_at is not None
            else None,
            "never": self.never,
            "left_over": self.left_over,
            "groups": [
                {
                    "zone_key": g.load.zone_key,
                    "country": g.load.country,
                    "recipients": g.load.recipients,
                    "parts": g.load.parts,
                    "opens_at": _iso(g.opens_at),
                    "finishes_at": _iso(g.finishes_at),
                    "sent": g.sent,
                }
                for g in self.groups
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def plan_calendar(
    loads: Sequence[GroupLoad],
    policy: WindowPolicy,
    mps: float,
    now: datetime,
    deadline: datetime | None = None,
    horizon: timedelta = CALENDAR_HORIZON,
) -> Calendar:
    """Simulate the send of `loads` from `now` at `mps` parts per second under `policy`, up to
    the deadline (nothing is sent after it) or the horizon."""
    if mps <= 0:
        raise ValueError(f"mps must be positive, not {mps}")
    now = now.astimezone(UTC)
    end = now + horizon if deadline is None else min(deadline.astimezone(UTC), now + horizon)
    remaining = [float(max(load.parts, 0)) for load in loads]
    opens_at: list[datetime | None] = [None] * len(loads)
    finishes_at: list[datetime | None] = [now if load.parts <= 0 else None for load in loads]
    chunk_start = now
    while chunk_start < end and any(remaining):
        chunk_end = min(chunk_start + _CHUNK, end)
        windows = _windows(loads, remaining, policy, chunk_start, chunk_end)
        for i, intervals in windows.items():
            if opens_at[i] is None and intervals:
                opens_at[i] = intervals[0][0]
        _drain(windows, remaining, finishes_at, mps, chunk_start, chunk_end)
        chunk_start = chunk_end
    for i, load in enumerate(loads):
        if opens_at[i] is None:  # nothing to send, or it opens after the deadline, or never
            opens_at[i] = next_opening(load.zone_key, policy, load.country, now)
    return _calendar(loads, mps, now, deadline, remaining, opens_at, finishes_at)


def _windows(
    loads: Sequence[GroupLoad],
    remaining: list[float],
    policy: WindowPolicy,
    since: datetime,
    until: datetime,
) -> dict[int, list[Interval]]:
    """Each group still sending -> its open intervals, clipped to [since, until)."""
    out: dict[int, list[Interval]] = {}
    for i, load in enumerate(loads):
        if remaining[i] <= 0:
            continue
        out[i] = [
            (max(opens, since), min(closes, until))
            for opens, closes in open_intervals(load.zone_key, policy, load.country, since, until)
            if max(opens, since) < min(closes, until)
        ]
    return out


def _drain(
    windows: dict[int, list[Interval]],
    remaining: list[float],
    finishes_at: list[datetime | None],
    mps: float,
    since: datetime,
    until: datetime,
) -> None:
    """Send from `since` to `until`: between two window changes, the open groups share the MPS
    in proportion to their remaining parts, so they drain together."""
    edges = sorted({since, until, *(edge for ivs in windows.values() for iv in ivs for edge in iv)})
    position = dict.fromkeys(windows, 0)  # each group's next interval
    for start, stop in itertools.pairwise(edges):
        open_now = []
        for i, intervals in windows.items():
            k = position[i]
            while k < len(intervals) and intervals[k][1] <= start:
                k += 1
            position[i] = k
            if remaining[i] > 0 and k < len(intervals) and intervals[k][0] <= start:
                open_now.append(i)
        total = sum(remaining[i] for i in open_now)
        if not total:
            continue
        capacity = mps * (stop - start).total_seconds()
        if capacity >= total:
            done = start + timedelta(seconds=total / mps)
            for i in open_now:
                remaining[i] = 0.0
                finishes_at[i] = done
        else:
            kept = 1 - capacity / total
            for i in open_now:
                remaining[i] *= kept


def _calendar(
    loads: Sequence[GroupLoad],
    mps: float,
    now: datetime,
    deadline: datetime | None,
    remaining: list[float],
    opens_at: list[datetime | None],
    finishes_at: list[datetime | None],
) -> Calendar:
    plans = []
    for i, load in enumerate(loads):
        left = remaining[i] / load.parts if load.parts > 0 else 0.0
        if opens_at[i] is None:
            left = 1.0  # never opens: nobody in it is sent, whatever its parts
        # Whole recipients: one partly sent counts as not sent.
        sent = load.recipients - min(load.recipients, _ceil(left * load.recipients))
        plans.append(GroupPlan(load, opens_at[i], finishes_at[i], sent))
    later = [at for at in opens_at if at is not None and at > now]
    # The finish of everything that can be sent: the groups that never open wait for a decision.
    finished = all(p.finishes_at is not None for p in plans if p.opens_at is not None)
    # Past the deadline nobody may be sent, open window or not: the next send expires them.
    past_deadline = deadline is not None and deadline <= now
    return Calendar(
        now=now,
        mps=mps,
        deadline=deadline,
        groups=tuple(plans),
        sendable_now=0
        if past_deadline
        else sum(p.load.recipients for p in plans if p.opens_at == now),
        next_opening=None if past_deadline else min(later, default=None),
        finishes_at=max((p.finishes_at for p in plans if p.finishes_at), default=None)
        if finished
        else None,
        never=sum(p.load.recipients for p in plans if p.opens_at is None),
        left_over=sum(p.load.recipients - p.sent for p in plans),
    )


def _ceil(value: float) -> int:
    # Parts shared in proportion leave float dust (1e-12 of a recipient): that is not a recipient.
    rounded = round(value)
    return rounded if abs(value - rounded) < 1e-6 else int(value) + 1
