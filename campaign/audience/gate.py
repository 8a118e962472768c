"""What the window and the frequency cap let through, for the sender and for the people watching.

The sender asks `WindowGate.at(now)` before it claims: which (zone key, country) groups of
pending recipients are inside their window now, and when that changes. The answer is
`open_groups` computed once and kept until the minute turns or the answer's own next change
comes, whichever is first (windows are written in minutes), so asking before every claim costs a
comparison. The claim itself restricts its candidates to those groups in SQL
(campaign.ledger.audience.claim_filter_sql).

`holdback` counts the same groups for `status`, `estimate` and the confirmation before a send: how
many recipients may be messaged now, how many wait for their window (and when the next one opens,
for how many), and how many no window will ever let through because their zone is unknown or
their zones never share an open hour: those are the user's decision, never a guess. `held_reason`
is what the report says about each of those.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from campaign.audience.schedule import GroupLoad
from campaign.audience.windows import (
    Group,
    OpenGroups,
    WindowPolicy,
    next_opening,
    open_groups,
    stored_policy,
)
from campaign.domain import CampaignSpec

__all__ = [
    "HELD_PREFIX",
    "DroppedZones",
    "FrequencyCap",
    "Holdback",
    "WindowGate",
    "campaign_policy",
    "dropped_zones",
    "frequency_cap",
    "held_reason",
    "holdback",
]

# Every reason a held recipient gets starts with this: `edit` rewrites exactly these.
HELD_PREFIX: Final = "held: "
HELD_UNKNOWN_PREFIX: Final = HELD_PREFIX + "time zone unknown"
_SHOWN_ZONES: Final = 4


def campaign_policy(campaign: CampaignSpec) -> WindowPolicy:
    """The window policy in force for a stored campaign."""
    return stored_policy(campaign.message_type, campaign.window, campaign.days)


# -- the sender's gate ------------------------------------------------------------------------------


class WindowGate:
    """`open_groups` for the sender, cached by the minute and never kept past its next change.

    Give it the distinct (zone key, country) groups of the campaign's pending recipients
    (Ledger.pending_groups) and again whenever they may have changed (an import while sending).
    Not thread-safe: the sender's loop is its only user."""

    def __init__(self, policy: WindowPolicy, groups: Iterable[Group] = ()) -> None:
        self.policy = policy
        self._groups: frozenset[Group] = frozenset(groups)
        self._cached: OpenGroups | None = None
        self._minute: datetime | None = None

    @property
    def groups(self) -> frozenset[Group]:
        return self._groups

    def set_groups(self, groups: Iterable[Group]) -> None:
        new = frozenset(groups)
        if new != self._groups:
            self._groups = new
            self._cached = None

    def at(self, now: datetime) -> OpenGroups:
        """The groups open at `now`, the ones waiting, the ones never open; when that changes."""
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        cached = self._cached
        if (
            cached is None
            or minute != self._minute
            or (cached.next_change is not None and now >= cached.next_change)
        ):
            cached = self._cached = open_groups(self._groups, self.policy, now)
            self._minute = minute
        return cached

    def claimable(self, now: datetime) -> frozenset[Group] | None:
        """The groups a claim may take now; None: the policy has no window, claim anyone."""
        if not self.policy.has_windows:
            return None
        return self.at(now).open


# -- the frequency cap ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `max_messages` messages to one number in any `per`, counted across campaigns."""

    max_messages: int
    per: timedelta

    def since(self, now: datetime) -> datetime:
        """Messages sent from this moment on count against the cap at `now`."""
        return now - self.per

    def describe(self) -> str:
        hours = self.per.total_seconds() / 3600
        return (
            f"at most {self.max_messages} message{'s' if self.max_messages != 1 else ''} "
            f"per {hours:g} h to one number, across every campaign of the ledger"
        )


def frequency_cap(campaign: CampaignSpec) -> FrequencyCap | None:
    """The campaign's cap (`--max-per-recipient N --per HOURS`); None: off (the default)."""
    if not campaign.max_per_recipient or not campaign.per_hours:
        return None
    return FrequencyCap(campaign.max_per_recipient, timedelta(hours=campaign.per_hours))


# -- who is held back, and why ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holdback:
    """Pending recipients sorted by what their window says at `now`."""

    policy: WindowPolicy
    now: datetime
    open_now: int  # may be messaged now
    waiting: int  # their window opens later
    next_opening: datetime | None  # the first opening among the waiting
    opening_then: int  # recipients whose window opens at next_opening
    unknown_zone: int  # no window can be checked: the zone is unknown
    empty_window: int  # their zones are never open at once (or this machine lacks one)

    @property
    def never(self) -> int:
        """Held until the user decides (a time zone column, a window, --no-window)."""
        return self.unknown_zone + self.empty_window

    @property
    def held_now(self) -> int:
        return self.waiting + self.never

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.spec,
            "describe": self.policy.describe(),
            "open_now": self.open_now,
            "waiting": self.waiting,
            "next_opening": _iso(self.next_opening),
            "opening_then": self.opening_then,
            "held": {"unknown_zone": self.unknown_zone, "empty_window": self.empty_window},
        }


def holdback(loads: Sequence[GroupLoad], policy: WindowPolicy, now: datetime) -> Holdback:
    """Count `loads` (pending recipients by group) by what their window says at `now`."""
    by_group: dict[Group, int] = {}
    for load in loads:
        group = (load.zone_key, load.country)
        by_group[group] = by_group.get(group, 0) + load.recipients
    sorted_groups = open_groups(by_group, policy, now)
    openings: dict[datetime, int] = {}
    for group in sorted_groups.waiting:
        opens = next_opening(group[0], policy, group[1], now)
        if opens is not None:
            openings[opens] = openings.get(opens, 0) + by_group[group]
    first = min(openings, default=None)
    return Holdback(
        policy=policy,
        now=now,
        open_now=sum(by_group[g] for g in sorted_groups.open),
        waiting=sum(by_group[g] for g in sorted_groups.waiting),
        next_opening=first,
        opening_then=openings[first] if first is not None else 0,
        unknown_zone=sum(by_group[g] for g in sorted_groups.never if not g[0]),
        empty_window=sum(by_group[g] for g in sorted_groups.never if g[0]),
    )


def held_reason(
    zone_key: str | None,
    policy: WindowPolicy,
    country: str | None,
    now: datetime,
    note: str | None = None,
) -> str | None:
    """Why no window will ever let this recipient through, for the report; None when one will
    (or when its country has no window). `note` says why the zone is unknown."""
    window = policy.window_for(country)
    if window is None:
        return None
    if not zone_key:
        why = f" ({note})" if note else ""
        return (
            f"{HELD_UNKNOWN_PREFIX}{why}: no window can be checked; give a --timezone-column "
            "at import, or turn windows off (edit --no-window)"
        )
    if next_opening(zone_key, policy, country, now) is not None:
        return None
    zones = zone_key.split()
    shown = ", ".join(zones[:_SHOWN_ZONES])
    if len(zones) > _SHOWN_ZONES:
        shown += f" and {len(zones) - _SHOWN_ZONES} more"
    where = f"all of {shown} at once" if len(zones) > 1 else shown
    return (
        f"{HELD_PREFIX}the window {window.describe()} is never open in {where}; give a "
        "--timezone-column at import, a wider --window, or --no-window"
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


# -- the zones left out of country-wide lists ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DroppedZones:
    """Recipients of one country whose number's zone list lost far-off territories, and why."""

    country: str | None
    recipients: int
    note: str  # "dropped Indian/Christmas: Christmas Island (CX), another region on +61; ..."


def dropped_zones(samples: Iterable[tuple[str, str | None, int, str]]) -> list[DroppedZones]:
    """From (zone key, country, recipients, one number) groups (Ledger.zone_samples): the zones
    the import left out for them (campaign.phones.timezones.DROPPED_ZONES), by country and reason,
    so that `import` and `estimate` can say which. Every number of a group has the same zone
    key, and the key is decided by the number's prefix: one number per group tells."""
    from campaign.phones.normalize import normalize
    from campaign.phones.timezones import TimeZoneResolver

    resolver = TimeZoneResolver()
    found: dict[tuple[str | None, str], int] = {}
    for key, country, n, phone in samples:
        parsed = normalize(phone, allow_non_mobile=True)
        zones = resolver.for_phone(parsed) if parsed.ok else None
        if zones is None or not zones.dropped or zones.key != key or not zones.note:
            continue
        found[(country, zones.note)] = found.get((country, zones.note), 0) + n
    return [
        DroppedZones(country, n, note)
        for (country, note), n in sorted(found.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]
