"""Who the sender may claim now: the sending window, the do-not-send list, the frequency cap and
the deadline, on the wall clock (injected, so tests choose the hour).

The sender (campaign.sending.sender) asks `check` before each candidate, which costs a clock
reading and a comparison: it says whether the candidates fetched so far still hold (the open
groups of the window gate did not change), must be fetched again (a window opened or closed, a
wait is over), or whether the deadline has come (the pending recipients are then `expired`).
`fetch` gets the next candidates with the window's groups and the frequency cap in the SQL
(Ledger.claimable_pending) and marks those on the do-not-send list `suppressed` at once, so they
take no room in the rate; the claim checks the list again in its own transaction, for numbers
listed in between. When nothing can be claimed, `hold` says what the run waits for: a window to
open, the frequency cap to let recipients through, or a decision of the user (an unknown zone).

Dry runs go through none of this: nothing is delivered, so nothing is held, and nothing changes
state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from campaign.audience.deadline import time_to_live
from campaign.audience.gate import (
    FrequencyCap,
    WindowGate,
    campaign_policy,
    frequency_cap,
    holdback,
)
from campaign.audience.windows import Group
from campaign.domain import Campaign, Claim, now
from campaign.ledger.audience import ClaimFilter
from campaign.options import TTL_MIN

if TYPE_CHECKING:
    from campaign.ledger import Ledger

__all__ = ["DEADLINE_MARGIN", "Admission", "Check", "Waiting", "capped_reason", "expired_reason"]

# A message goes only with at least the API's minimum TimeToLive left before the deadline, plus
# this much for the time between the check and the call.
DEADLINE_MARGIN: Final = timedelta(seconds=1)
# How often a run waiting for the frequency cap looks again (the cap frees numbers one by one).
CAP_RECHECK: Final = timedelta(minutes=1)
# A waiting run looks at the wall clock at least this often (it may jump: NTP, a laptop lid).
WAIT_RECHECK_SECONDS: Final = 30.0


class Check:
    """What `Admission.check` says about the candidates fetched so far."""

    GO = "go"  # still good
    REFETCH = "refetch"  # fetch again from the start: a window opened or closed, a wait is over
    DEADLINE = "deadline"  # the deadline has come: nothing more may be claimed


def expired_reason(deadline: datetime) -> str:
    return f"the deadline {deadline:%Y-%m-%d %H:%M} UTC passed before it could be sent"


def capped_reason(deadline: datetime, cap: FrequencyCap) -> str:
    return (
        f"the deadline {deadline:%Y-%m-%d %H:%M} UTC passed while the frequency cap "
        f"({cap.describe()}) held it back"
    )


@dataclass(frozen=True, slots=True)
class Waiting:
    """Nothing may be claimed now: what the run waits for."""

    at: datetime  # when this was found
    until: datetime | None  # when to look again; None: nothing changes by itself (a decision)
    window: int  # recipients whose window is closed now and opens later
    next_opening: datetime | None  # the first of those openings
    opening_then: int  # recipients whose window opens then
    capped: int  # recipients inside their window held by the frequency cap
    never: int  # no window ever lets them through (unknown zone, zones never open at once)
    deadline: datetime | None  # the campaign's deadline, when it comes before `next_opening`

    @property
    def recipients(self) -> int:
        return self.window + self.capped + self.never


class Admission:
    """The sender's gatekeeper for one run of one campaign (not thread-safe: the loop's own)."""

    def __init__(
        self,
        ledger: Ledger,
        campaign: Campaign,
        *,
        wall_clock: Callable[[], datetime] | None = None,
        recheck_seconds: float | None = None,
    ) -> None:
        self.ledger = ledger
        self.campaign = campaign
        # Looked up when called, not bound here: a test may put another clock in this module.
        self.wall_clock = wall_clock or (lambda: now())
        self.recheck_seconds = WAIT_RECHECK_SECONDS if recheck_seconds is None else recheck_seconds
        self.policy = campaign_policy(campaign)
        self.cap = frequency_cap(campaign)
        self.deadline = campaign.deadline
        # The last moment a message may be claimed: the API's minimum TimeToLive must still fit.
        self._last_claim = (
            None
            if self.deadline is None
            else self.deadline - timedelta(seconds=TTL_MIN) - DEADLINE_MARGIN
        )
        self.gate = WindowGate(self.policy)
        self._groups_known = False
        self._fetched_under: frozenset[Group] | None = None
        self._fetched = False
        self._deadline_reached = False
        self.waiting: Waiting | None = None
        self.expired = 0  # recipients this run made `expired`
        self.suppressed = 0  # recipients this run found on the do-not-send list before claiming

    # -- before each candidate -------------------------------------------------------------------

    def check(self) -> str:
        """GO, REFETCH or DEADLINE (see Check): cheap enough to ask before every candidate."""
        at = self.wall_clock()
        if self._past_deadline(at):
            return Check.DEADLINE
        waiting = self.waiting
        if waiting is not None:
            if waiting.until is None or at < waiting.until:
                return Check.GO  # still waiting: nothing to fetch
            self.waiting = None
            return Check.REFETCH
        if self._fetched and self.policy.has_windows:
            fetched_under, now_open = self._fetched_under, self.gate.claimable(at)
            if now_open is not fetched_under and now_open != fetched_under:
                return Check.REFETCH
        return Check.GO

    def fetch(self, after_id: int, limit: int) -> list[Claim]:
        """The next pending recipients after `after_id` that may be claimed now, in id order;
        those of them on the do-not-send list become `suppressed` here and are left out."""
        at = self.wall_clock()
        if not self._groups_known:
            self._refresh_groups()
        open_now = self.gate.claimable(at)
        self._fetched_under, self._fetched = open_now, True
        if open_now is not None and not open_now:
            return []
        candidates = self.ledger.claimable_pending(
            self.campaign.id, ClaimFilter(open_now, self.cap), after_id=after_id, limit=limit, at=at
        )
        if not candidates:
            return []
        listed = self.ledger.suppress_among(self.campaign.id, [c.recipient_id for c in candidates])
        if listed:
            self.suppressed += len(listed)
            # Keep the cursor's place: the last id of the batch, even when it was suppressed.
            last = candidates[-1]
            candidates = [c for c in candidates if c.recipient_id not in listed]
            if not candidates:
                return self.fetch(last.recipient_id, limit)
        return candidates

    def cap_time_to_live(self, request: dict[str, Any]) -> None:
        """Cap the request's TimeToLive at the time left before the deadline (SPEC: no message
        lives past it). `check` made sure at least the API's minimum is left."""
        if self.deadline is None:
            return
        ttl = time_to_live(self.wall_clock(), self.deadline, request.get("TimeToLive"))
        if ttl.seconds is not None:
            request["TimeToLive"] = max(ttl.seconds, TTL_MIN)
        elif not ttl.send:
            request["TimeToLive"] = TTL_MIN

    # -- when nothing can be claimed -------------------------------------------------------------

    def hold(self) -> Waiting | None:
        """Nothing is claimable, nothing in flight: who is still pending, and until when does the
        run wait for them? None: nobody is pending (the run is over)."""
        at = self.wall_clock()
        if self._past_deadline(at):
            self._expire()  # those back to pending since (a call throttled at the deadline)
            return None
        waiting = self.waiting
        if waiting is not None and (waiting.until is None or at < waiting.until):
            return waiting
        loads = self.ledger.pending_groups(self.campaign.id)
        if not loads:
            self.waiting = None
            return None
        self.gate.set_groups((g.zone_key, g.country) for g in loads)
        self._groups_known = True
        held = holdback(loads, self.policy, at)
        until: datetime | None = None
        if held.open_now:
            # Inside their window yet not claimable: the frequency cap holds them (or they became
            # pending since the last fetch: looking again soon finds them either way).
            until = at + (CAP_RECHECK if self.cap is not None else timedelta(0))
        if held.next_opening is not None and (until is None or held.next_opening < until):
            until = held.next_opening
        deadline_first = None
        if until is not None and self._last_claim is not None and self._last_claim <= until:
            until, deadline_first = self._last_claim, self.deadline
        self.waiting = Waiting(
            at=at,
            until=until,
            window=held.waiting,
            next_opening=held.next_opening,
            opening_then=held.opening_then,
            capped=held.open_now,
            never=held.never,
            deadline=deadline_first,
        )
        self._fetched = False
        return self.waiting

    def seconds_to_wait(self) -> float:
        """How long the loop may sleep before looking again (the wall clock is re-read then)."""
        waiting = self.waiting
        if waiting is None or waiting.until is None:
            return self.recheck_seconds
        left = (waiting.until - self.wall_clock()).total_seconds()
        return min(max(left, 0.0), self.recheck_seconds)

    # -- inside ----------------------------------------------------------------------------------

    def _past_deadline(self, at: datetime) -> bool:
        """True once the last moment to claim has come; the pending recipients expire then."""
        if self._last_claim is None or at < self._last_claim:
            return False
        if not self._deadline_reached:
            self._deadline_reached = True
            self._expire()
        return True

    def _refresh_groups(self) -> None:
        loads = self.ledger.pending_groups(self.campaign.id)
        self.gate.set_groups((g.zone_key, g.country) for g in loads)
        self._groups_known = True

    def _expire(self) -> None:
        assert self.deadline is not None
        self.expired += self.ledger.expire_pending(
            self.campaign.id,
            expired_reason(self.deadline),
            cap=self.cap,
            cap_reason=None if self.cap is None else capped_reason(self.deadline, self.cap),
        )
        self.waiting = None
        self._fetched = False
