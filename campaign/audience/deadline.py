"""The campaign deadline (`--deadline`): nothing leaves after it, and nothing arrives after it.

A "sale ends tonight" text delivered tomorrow is worse than none, so each message's TimeToLive
(how long the carrier keeps trying) is capped at the time left before the deadline; with less
than the API's 5-second minimum left, the message is not sent at all (the recipient expires).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from campaign.errors import UserError
from campaign.options import TTL_MAX, TTL_MIN

__all__ = ["DeadlineError", "TimeToLive", "parse_deadline", "time_to_live"]


FIRST_YEAR, LAST_YEAR = 2000, 9998  # a --deadline's years (UTC)


class DeadlineError(UserError, ValueError):
    """A --deadline that can't be used; the message names the option."""


def parse_deadline(text: str) -> datetime:
    """--deadline as ISO 8601 with a UTC offset or Z ("2026-05-01T20:00+02:00", "...T18:00Z"),
    as an aware UTC datetime. A time without an offset is refused: whose 20:00 would it be?"""
    try:
        stripped = text.strip()  # RFC 3339 allows a lowercase z; fromisoformat does not
        moment = datetime.fromisoformat(stripped[:-1] + "Z" if stripped.endswith("z") else stripped)
    except ValueError:
        raise DeadlineError(
            f"--deadline {text!r} is not an ISO 8601 date and time "
            "(e.g. 2026-05-01T20:00+02:00, or 2026-05-01T18:00Z in UTC)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DeadlineError(
            f"--deadline {text!r} has no UTC offset: add one (2026-05-01T20:00+02:00) "
            "or Z for UTC (2026-05-01T18:00Z)"
        )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        moment = datetime.max.replace(tzinfo=UTC)
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        # Beyond these, the arithmetic around a deadline (margins, expiry) leaves datetime's range.
        raise DeadlineError(
            f"--deadline {text!r} is out of range: give a year from {FIRST_YEAR} to {LAST_YEAR} (UTC)"
        )
    return moment


@dataclass(frozen=True, slots=True)
class TimeToLive:
    """What to do with one message, given the deadline."""

    send: bool  # False: too close to (or past) the deadline: don't send, the recipient expires
    seconds: int | None  # TimeToLive to request; None: leave it out (the service's 72 h default)


def time_to_live(now: datetime, deadline: datetime | None, ttl: int | None = None) -> TimeToLive:
    """The TimeToLive of a message sent at `now`: the campaign's `ttl` (None: the service
    default, 72 h), capped at the whole seconds left before `deadline`."""
    if deadline is None:
        return TimeToLive(True, ttl)
    left = math.floor((deadline - now).total_seconds())  # never a second past the deadline
    if left < TTL_MIN:
        return TimeToLive(False, None)
    wanted = TTL_MAX if ttl is None else ttl
    if wanted <= left:
        return TimeToLive(True, ttl)  # the deadline is further away than the message lives
    return TimeToLive(True, left)
