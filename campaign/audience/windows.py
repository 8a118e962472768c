"""Sending windows in the recipient's local time: the policy, and when it is open.

A `Window` is a span of local wall-clock time (`--window 08:00-20:00`) on some weekdays (`--days
mon-fri`); a `WindowPolicy` says which window each recipient gets: one for everyone, one per
country (the default table of docs/contract.md for PROMOTIONAL), or none (TRANSACTIONAL,
`--no-window`). A recipient with several zones (see campaign.phones.timezones) may be messaged
only while the window is open in all of them; an unknown zone never opens a window.

What "open" means, exactly (DST included, by zoneinfo):
* A window opens the first moment the local clock reads its start (or later) on one of its days,
  and closes the first moment the local clock reads its end. So when the clock springs forward
  over the start (02:30 in the 02:00-03:00 gap), the window opens at the jump, 03:00; and when it
  falls back, the repeated hour neither reopens a window that closed in it nor closes one that
  opened in it: nobody gets a message at a local time outside the window, and nothing crashes.
* A window whose end is not after its start crosses midnight: 22:00-06:00 opens at 22:00 on each
  of its days and closes at 06:00 the next morning (`--days fri` includes Saturday 00:00-06:00).
  24:00 ends a window at midnight: 00:00-24:00 is the whole day.

Every function takes `now` (an aware datetime) instead of reading a clock, so tests can inject it.
The sender works on groups, not recipients: `open_groups` says which (zone key, country) groups
are open now and when that changes, so the check costs nothing per recipient.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Final

from campaign.errors import UserError

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_POLICY",
    "EVERY_DAY",
    "NO_WINDOW",
    "Group",
    "Interval",
    "OpenGroups",
    "Window",
    "WindowError",
    "WindowPolicy",
    "default_policy",
    "is_open",
    "next_opening",
    "open_groups",
    "open_intervals",
    "parse_days",
    "parse_window",
    "policy_from_options",
    "stored_policy",
]

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES: Final = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
EVERY_DAY: Final = frozenset(range(7))
MINUTES_PER_DAY: Final = 24 * 60
# How far ahead next_opening and open_groups look: a week repeats every weekly pattern; one more
# day covers a window that opened yesterday and the day a DST change moves an opening across.
DEFAULT_HORIZON: Final = timedelta(days=8)

Interval = tuple[datetime, datetime]  # [opens, closes), aware UTC
Group = tuple[str | None, str | None]  # (zone key, country) of pending recipients


class WindowError(UserError, ValueError):
    """A --window, --days or --no-window value that can't be used; the message names the option."""


# -- the window and how it is written ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Local wall-clock minutes [start, end) on `days` (0 = Monday); end <= start: ends next day."""

    start: int  # minutes after local midnight, 0-1439
    end: int  # minutes after local midnight, 1-1440 (1440 = 24:00)
    days: frozenset[int] = EVERY_DAY  # the weekdays on which the window opens

    def __post_init__(self) -> None:
        whole_day = (self.start, self.end) == (0, MINUTES_PER_DAY)
        if (
            not 0 <= self.start < MINUTES_PER_DAY
            or not 0 <= self.end <= MINUTES_PER_DAY
            or (self.start == self.end % MINUTES_PER_DAY and not whole_day)
            or not self.days
            or not self.days <= EVERY_DAY
        ):
            raise ValueError(f"not a window: {self.start}-{self.end} on {sorted(self.days)}")

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def spec(self) -> str:
        """ "08:00-20:00 mon-sun": what parse_window and parse_days read back."""
        return f"{_clock(self.start)}-{_clock(self.end)} {days_spec(self.days)}"

    def describe(self) -> str:
        """ "08:00-20:00 every day", "22:00-06:00 (to the next morning) on fri-sat"."""
        hours = f"{_clock(self.start)}-{_clock(self.end)}"
        if self.crosses_midnight:
            hours += " (to the next morning)"
        days = "every day" if self.days == EVERY_DAY else f"on {days_spec(self.days)}"
        return f"{hours} {days}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_WINDOW_RE: Final = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_WINDOW_HELP: Final = "use HH:MM-HH:MM in the recipient's local time, e.g. 08:00-20:00"


def parse_window(text: str) -> tuple[int, int]:
    """--window "HH:MM-HH:MM" -> (start, end) in minutes after midnight; 24:00 may end it."""
    match = _WINDOW_RE.fullmatch(text)
    if match is None:
        raise WindowError(f"--window {text!r}: {_WINDOW_HELP}")
    start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
    for hours, minutes, may_be_24 in ((start_h, start_m, False), (end_h, end_m, True)):
        if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not may_be_24)):
            raise WindowError(
                f"--window {text!r}: {hours:02d}:{minutes:02d} is not a time of day "
                "(00:00-23:59; 24:00 may end a window)"
            )
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start == end % MINUTES_PER_DAY and end != MINUTES_PER_DAY:
        raise WindowError(
            f"--window {text!r} is empty (it ends when it starts); for no window use --no-window"
        )
    return start, end


def _day_number(name: str, text: str) -> int:
    word = name.strip().lower()
    if word in DAY_NAMES:
        return DAY_NAMES.index(word)
    if word in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(word)
    raise WindowError(
        f"--days {text!r}: {name.strip()!r} is not a day "
        f"({' '.join(DAY_NAMES)}; e.g. mon-fri or mon,tue,sat)"
    )


def parse_days(text: str) -> frozenset[int]:
    """--days "mon-fri", "mon,tue,sat", "mon-wed,sat", "fri-mon" (wraps) -> weekday numbers."""
    days: set[int] = set()
    for item in text.split(","):
        if not item.strip():
            raise WindowError(f"--days {text!r}: an empty day (e.g. mon-fri or mon,tue,sat)")
        first, dash, last = item.partition("-")
        start = _day_number(first, text)
        stop = _day_number(last, text) if dash else start
        days.update((start + offset) % 7 for offset in range((stop - start) % 7 + 1))
    return frozenset(days)


def days_spec(days: frozenset[int]) -> str:
    """The shortest text parse_days reads back: "mon-sun", "mon-fri", "mon,wed-fri"."""
    runs: list[str] = []
    day = 0
    while day < 7:
        if day not in days:
            day += 1
            continue
        last = day
        while last + 1 < 7 and last + 1 in days:
            last += 1
        runs.append(DAY_NAMES[day] if last == day else f"{DAY_NAMES[day]}-{DAY_NAMES[last]}")
        day = last + 1
    return ",".join(runs)


# -- the policy ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """The window each recipient gets, by country. Neither field set: no window (any time)."""

    by_country: tuple[tuple[str, Window], ...] = ()  # (ISO region, window), sorted
    otherwise: Window | None = None  # every other country; None with by_country empty: no window

    @property
    def has_windows(self) -> bool:
        return bool(self.by_country) or self.otherwise is not None

    def window_for(self, country: str | None) -> Window | None:
        """The recipient's window; None: no window, send any time."""
        for region, window in self.by_country:
            if region == country:
                return window
        return self.otherwise

    def with_days(self, days: frozenset[int]) -> WindowPolicy:
        """The same hours on other days (--days without --window)."""
        if not self.has_windows:
            raise WindowError("--days needs --window: this campaign has no window to set days for")
        return WindowPolicy(
            tuple((region, replace(window, days=days)) for region, window in self.by_country),
            replace(self.otherwise, days=days) if self.otherwise is not None else None,
        )

    @property
    def spec(self) -> str:
        """The policy as one line to store with the campaign: "none", or entries like
        "CA,US 08:00-20:00 mon-sun; FR 10:00-20:00 mon-sat; * 09:00-20:00 mon-sun". Explicit, so
        a stored campaign keeps its rules when the default table changes."""
        if not self.has_windows:
            return "none"
        regions_by_window: dict[Window, list[str]] = {}
        for region, window in self.by_country:
            regions_by_window.setdefault(window, []).append(region)
        entries = [f"{','.join(regions)} {w.spec}" for w, regions in regions_by_window.items()]
        if self.otherwise is not None:
            entries.append(f"* {self.otherwise.spec}")
        return "; ".join(entries)

    @classmethod
    def from_spec(cls, text: str) -> WindowPolicy:
        """Read `spec` back (ValueError when it was not written by `spec`)."""
        if text.strip() == "none":
            return NO_WINDOW
        by_country: list[tuple[str, Window]] = []
        otherwise = None
        for entry in text.split(";"):
            regions, hours, days = entry.split()
            start, end = parse_window(hours)
            window = Window(start, end, parse_days(days))
            if regions == "*":
                otherwise = window
            else:
                by_country.extend((region, window) for region in regions.split(","))
        return cls(tuple(sorted(by_country)), otherwise)

    def describe(self) -> str:
        """One line for the confirmation and status: "08:00-20:00 every day in CA, US; ..."."""
        if not self.has_windows:
            return "no sending window (any time)"
        regions_by_window: dict[Window, list[str]] = {}
        for region, window in self.by_country:
            regions_by_window.setdefault(window, []).append(region)
        parts = [f"{w.describe()} in {', '.join(rs)}" for w, rs in regions_by_window.items()]
        if self.otherwise is not None:
            where = " elsewhere" if parts else ""
            parts.append(f"{self.otherwise.describe()}{where}")
        return "; ".join(parts) + ", recipient's local time"


NO_WINDOW: Final = WindowPolicy()
_EVERY_DAY_8_TO_8: Final = Window(8 * 60, 20 * 60)
# The safe default for PROMOTIONAL messages (docs/contract.md, "Sending windows"): US and CA
# 08:00-20:00 (TCPA's 08:00-21:00 and the 08:00-20:00 of Florida, Oklahoma and Maryland at once),
# France Monday to Saturday 10:00-20:00 (no Sundays), India 10:00-21:00, everywhere else
# 09:00-20:00.
DEFAULT_POLICY: Final = WindowPolicy(
    (
        ("CA", _EVERY_DAY_8_TO_8),
        ("FR", Window(10 * 60, 20 * 60, frozenset(range(6)))),
        ("IN", Window(10 * 60, 21 * 60)),
        ("US", _EVERY_DAY_8_TO_8),
    ),
    Window(9 * 60, 20 * 60),
)


def policy_from_options(
    message_type: str, window: str | None, days: str | None, no_window: bool
) -> WindowPolicy:
    """The policy of `create --window/--days/--no-window`: the user's window, else the default
    of the message type (the table for PROMOTIONAL, none for TRANSACTIONAL)."""
    if no_window and (window is not None or days is not None):
        given = "--window" if window is not None else "--days"
        raise WindowError(f"--no-window and {given} contradict each other: choose one")
    if no_window:
        return NO_WINDOW
    weekdays = parse_days(days) if days is not None else None
    if window is not None:
        start, end = parse_window(window)
        return WindowPolicy(otherwise=Window(start, end, weekdays or EVERY_DAY))
    default = default_policy(message_type)
    if weekdays is None:
        return default
    if not default.has_windows:
        raise WindowError(f"--days needs --window: {message_type.upper()} has no default window")
    return default.with_days(weekdays)


def default_policy(message_type: str) -> WindowPolicy:
    """The policy a campaign gets without --window: the table for PROMOTIONAL, none otherwise."""
    return DEFAULT_POLICY if message_type.upper() == "PROMOTIONAL" else NO_WINDOW


def stored_policy(message_type: str, window: str | None, days: str | None) -> WindowPolicy:
    """The policy in force for a stored campaign: its `window` column (NULL: the message type's
    default; "none": no window) with its `days` column applied to whatever window that is. A
    campaign whose type has no window keeps none whatever `days` says (create/edit refuse that)."""
    policy = WindowPolicy.from_spec(window) if window else default_policy(message_type)
    if days and policy.has_windows:
        policy = policy.with_days(parse_days(days))
    return policy


# -- when a window is open -----------------------------------------------------------------------


def _wall(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_instant(zone: zoneinfo.ZoneInfo, wall: datetime) -> datetime:
    """The first instant (UTC) at which the clock in `zone` reads the naive `wall` or later."""
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if early == late:
        return early  # an ordinary time
    first, second = min(early, late), max(early, late)
    if _wall(first, zone) == wall:
        return first  # the hour the clock repeats: the first time round
    # The clock jumps over `wall`: it reads later than `wall` from the jump on, which lies between
    # the two readings (the first reads earlier than `wall`, the second later). Transitions fall
    # on whole seconds.
    low, high = int(first.timestamp()), int(second.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@lru_cache(maxsize=4096)
def _zone_intervals(
    zone_name: str, window: Window, since: datetime, until: datetime
) -> tuple[Interval, ...]:
    """The openings of `window` in one zone that overlap [since, until), in order, touching ones
    merged. Cached: a calendar asks for the same zone once per group that has it."""
    zone = zoneinfo.ZoneInfo(zone_name)
    day = since.astimezone(zone).date() - timedelta(days=1)  # yesterday's may still be open
    last_day = until.astimezone(zone).date()
    intervals: list[Interval] = []
    while day <= last_day:
        if day.weekday() in window.days:
            midnight = datetime.combine(day, time())
            opens = _first_instant(zone, midnight + timedelta(minutes=window.start))
            end_day = midnight + timedelta(days=1 if window.crosses_midnight else 0)
            closes = _first_instant(zone, end_day + timedelta(minutes=window.end))
            # A window inside a spring-forward gap never opens (opens == closes).
            if opens < closes and closes > since and opens < until:
                if intervals and intervals[-1][1] >= opens:
                    intervals[-1] = (intervals[-1][0], closes)
                else:
                    intervals.append((opens, closes))
        day += timedelta(days=1)
    return tuple(intervals)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    i = j = 0
    out: list[Interval] = []
    while i < len(a) and j < len(b):
        opens, closes = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if opens < closes:
            out.append((opens, closes))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, not {moment!r}")
    return moment.astimezone(UTC)


def open_intervals(
    zone_key: str | None,
    policy: WindowPolicy,
    country: str | None,
    since: datetime,
    until: datetime,
) -> list[Interval]:
    """When a recipient (zone key, country) may be messaged: the intervals, open in every zone of
    the key, that overlap [since, until), whole (an interval may start before `since`). With no
    window: [(since, until)]. An unknown zone (None or "") with a window: never."""
    since, until = _utc(since, "since"), _utc(until, "until")
    window = policy.window_for(country)
    if window is None:
        return [(since, until)]
    if not zone_key:
        return []
    result: Sequence[Interval] | None = None
    for zone_name in zone_key.split():
        try:
            intervals = _zone_intervals(zone_name, window, since, until)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return []  # a zone this machine doesn't know (tzdata older than the import's): never
        result = intervals if result is None else _intersect(result, intervals)
    return list(result or ())


def is_open(zone_key: str | None, policy: WindowPolicy, country: str | None, now: datetime) -> bool:
    """May this recipient be messaged at `now`? True with no window; False for an unknown zone."""
    now = _utc(now, "now")
    intervals = open_intervals(zone_key, policy, country, now, now + timedelta(seconds=1))
    return any(opens <= now < closes for opens, closes in intervals)


def next_opening(
    zone_key: str | None,
    policy: WindowPolicy,
    country: str | None,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> datetime | None:
    """The first moment from `now` on when the recipient may be messaged (`now` itself when the
    window is open); None when that is not within `horizon`: an unknown zone, or zones whose
    windows never overlap (pass a longer horizon to look past a DST change months away)."""
    now = _utc(now, "now")
    for opens, closes in open_intervals(zone_key, policy, country, now, now + horizon):
        if closes > now:
            return max(opens, now)
    return None


# -- groups, for the sender ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenGroups:
    """Which groups of pending recipients may be messaged now, and when that changes."""

    open: frozenset[Group]  # claim `WHERE (tz_key, country) IN open` now
    waiting: frozenset[Group]  # closed now, open later within the horizon
    never: frozenset[Group]  # closed now and through the horizon: unknown zone, empty window
    next_opening: datetime | None  # the first opening among the waiting
    next_change: datetime | None  # the first moment `open` changes (an opening or a closing)


def open_groups(
    groups: Iterable[Group],
    policy: WindowPolicy,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> OpenGroups:
    """Sort the distinct (zone key, country) groups of pending recipients by their window at
    `now`. Costs a few zoneinfo conversions per group, nothing per recipient: call it again at
    `next_change` (or when new groups appear)."""
    now = _utc(now, "now")
    until = now + horizon
    is_open_now: set[Group] = set()
    waiting: set[Group] = set()
    never: set[Group] = set()
    openings: list[datetime] = []
    changes: list[datetime] = []
    for group in set(groups):
        key, country = group
        if policy.window_for(country) is None:
            is_open_now.add(group)  # no window: open for good, never a change
            continue
        upcoming = [
            (opens, closes)
            for opens, closes in open_intervals(key, policy, country, now, until)
            if closes > now
        ]
        if not upcoming:
            never.add(group)
        elif upcoming[0][0] <= now:
            is_open_now.add(group)
            if upcoming[0][1] < until:  # a close at the horizon's edge is not a real one
                changes.append(upcoming[0][1])
        else:
            waiting.add(group)
            openings.append(upcoming[0][0])
    first_opening = min(openings, default=None)
    return OpenGroups(
        frozenset(is_open_now),
        frozenset(waiting),
        frozenset(never),
        first_opening,
        min([*changes, *openings], default=None),
    )
