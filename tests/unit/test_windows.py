"""Sending windows with an injected clock: a table of (recipient, window, now) -> allowed / next
opening across the 2026 DST changes (US 03-08 and 11-01, EU 03-29 and 10-25), then the option
parsing, the sender's grouping helper and the estimate's calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from phonenumbers.timezone import time_zones_for_number

from campaign.audience.schedule import GroupLoad, plan_calendar
from campaign.audience.windows import (
    DEFAULT_POLICY,
    EVERY_DAY,
    NO_WINDOW,
    Window,
    WindowError,
    WindowPolicy,
    days_spec,
    is_open,
    next_opening,
    open_groups,
    open_intervals,
    parse_days,
    parse_window,
    policy_from_options,
)
from campaign.phones.timezones import time_zones


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(text: str, days: str | None = None) -> WindowPolicy:
    return policy_from_options("PROMOTIONAL", text, days, no_window=False)


def zones(number: str, column: str | None = None) -> str | None:
    return time_zones(number, column=column).key


NY, CHICAGO, LA = "America/New_York", "America/Chicago", "America/Los_Angeles"
AU_MOBILE = zones("+61412345678")  # the five mainland zones (Cocos, Christmas, Lord Howe dropped)
AU_RAW = f"{AU_MOBILE}" + " Australia/Lord_Howe Indian/Christmas Indian/Cocos"  # phonenumbers' list
RU_MOBILE = zones("+79161234567")  # Moscow to Kamchatka: 9 hours apart
US_TOLL_FREE = zones("+18004567890")
SD_FALLBACK = zones("+16059991234")
NANP_RAW = " ".join(time_zones_for_number(phonenumbers.parse("+18004567890")))  # 42 zones
NEVER_OVERLAP = "America/Regina Asia/Dhaka"  # 12 hours apart all year: no 08:00-20:00 in common  # 605 exchange not listed: Denver + North_Dakota/Center

# (case, zone key, policy, country, now, allowed, next opening: None = never within 8 days)
CASES = [
    # -- US spring forward, Sunday 2026-03-08 02:00 local (07:00 UTC in New York)
    ("NY 08:30 EDT on the change day", NY, DEFAULT_POLICY, "US", utc(3, 8, 12, 30), True, utc(3, 8, 12, 30)),
    ("NY 07:30 EDT: opens 08:00 EDT = 12:00 UTC", NY, DEFAULT_POLICY, "US", utc(3, 8, 11, 30), False, utc(3, 8, 12)),
    ("NY the day before, 07:30 EST", NY, DEFAULT_POLICY, "US", utc(3, 7, 12, 30), False, utc(3, 7, 13)),
    ("Chicago 08:00 CDT sharp: open", CHICAGO, DEFAULT_POLICY, "US", utc(3, 8, 13), True, utc(3, 8, 13)),
    ("start in the gap opens at the jump (03:00 EDT)", NY, window("02:30-04:00"), "US", utc(3, 8, 6), False, utc(3, 8, 7)),
    ("start in the gap: open from the jump", NY, window("02:30-04:00"), "US", utc(3, 8, 7), True, utc(3, 8, 7)),
    ("start in the gap: 01:59 EST is before it", NY, window("02:30-04:00"), "US", utc(3, 8, 6, 59), False, utc(3, 8, 7)),
    ("a window wholly in the gap never opens that day", NY, window("02:00-02:30"), "US", utc(3, 8, 5), False, utc(3, 9, 6)),
    # -- US fall back, Sunday 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC)
    ("NY 07:30 EST after the change: closed", NY, DEFAULT_POLICY, "US", utc(11, 1, 12, 30), False, utc(11, 1, 13)),
    ("start in the repeated hour: the first 01:30 (EDT)", NY, window("01:30-03:00"), "US", utc(11, 1, 5, 45), True, utc(11, 1, 5, 45)),
    ("the repeat does not close it again (01:15 EST)", NY, window("01:30-03:00"), "US", utc(11, 1, 6, 15), True, utc(11, 1, 6, 15)),
    ("it closes at 03:00 EST", NY, window("01:30-03:00"), "US", utc(11, 1, 8), False, utc(11, 2, 6, 30)),
    ("end in the repeat: closed at the first 01:30, not reopened at 01:10 EST", NY, window("20:00-01:30"), "US", utc(11, 1, 6, 10), False, utc(11, 2, 1)),
    ("end in the repeat: open before it (01:10 EDT)", NY, window("20:00-01:30"), "US", utc(11, 1, 5, 10), True, utc(11, 1, 5, 10)),
    # -- EU spring forward, Sunday 2026-03-29 01:00 UTC
    ("Berlin 09:30 CEST", "Europe/Berlin", DEFAULT_POLICY, "DE", utc(3, 29, 7, 30), True, utc(3, 29, 7, 30)),
    ("Berlin the day before, 08:30 CET", "Europe/Berlin", DEFAULT_POLICY, "DE", utc(3, 28, 7, 30), False, utc(3, 28, 8)),
    ("London 09:30 BST", "Europe/London", DEFAULT_POLICY, "GB", utc(3, 29, 8, 30), True, utc(3, 29, 8, 30)),
    ("London the day before, 08:30 GMT", "Europe/London", DEFAULT_POLICY, "GB", utc(3, 28, 8, 30), False, utc(3, 28, 9)),
    ("FR on a Sunday: Monday 10:00 CEST", "Europe/Paris", DEFAULT_POLICY, "FR", utc(3, 29, 12), False, utc(3, 30, 8)),
    ("FR Saturday evening 20:30 CET: Monday", "Europe/Paris", DEFAULT_POLICY, "FR", utc(3, 28, 19, 30), False, utc(3, 30, 8)),
    # -- EU fall back, Sunday 2026-10-25 01:00 UTC
    ("FR Saturday 10:30 CEST", "Europe/Paris", DEFAULT_POLICY, "FR", utc(10, 24, 8, 30), True, utc(10, 24, 8, 30)),
    ("FR Monday 09:30 CET: 10:00 CET", "Europe/Paris", DEFAULT_POLICY, "FR", utc(10, 26, 8, 30), False, utc(10, 26, 9)),
    ("Berlin Sunday 08:30 CET after the change", "Europe/Berlin", DEFAULT_POLICY, "DE", utc(10, 25, 7, 30), False, utc(10, 25, 8)),
    # -- 850: Central or Eastern by exchange
    ("850-222 is Eastern: 08:30 EDT", zones("+18502221234"), DEFAULT_POLICY, "US", utc(6, 1, 12, 30), True, utc(6, 1, 12, 30)),
    ("850-432 is Central: 07:30 CDT", zones("+18504321234"), DEFAULT_POLICY, "US", utc(6, 1, 12, 30), False, utc(6, 1, 13)),
    # -- 605: an exchange of either half, or both when unlisted
    ("605-201 is Central", zones("+16052011234"), DEFAULT_POLICY, "US", utc(6, 1, 13, 30), True, utc(6, 1, 13, 30)),
    ("605-209 is Mountain", zones("+16052091234"), DEFAULT_POLICY, "US", utc(6, 1, 13, 30), False, utc(6, 1, 14)),
    ("605 both: Mountain not open yet", SD_FALLBACK, DEFAULT_POLICY, "US", utc(6, 1, 13, 30), False, utc(6, 1, 14)),
    ("605 both: Central closed already (20:30 CDT)", SD_FALLBACK, DEFAULT_POLICY, "US", utc(6, 2, 1, 30), False, utc(6, 2, 14)),
    # -- AU mobile, five zones: Perth opens it, Sydney closes it
    ("AU January: Perth 08:30", AU_MOBILE, DEFAULT_POLICY, "AU", utc(1, 5, 0, 30), False, utc(1, 5, 1)),
    ("AU January: Sydney 19:59 AEDT", AU_MOBILE, DEFAULT_POLICY, "AU", utc(1, 5, 8, 59), True, utc(1, 5, 8, 59)),
    ("AU January: Sydney 20:00 AEDT", AU_MOBILE, DEFAULT_POLICY, "AU", utc(1, 5, 9), False, utc(1, 6, 1)),
    ("AU July 19:30 AEST: open without Lord Howe", AU_MOBILE, DEFAULT_POLICY, "AU", utc(7, 6, 9, 30), True, utc(7, 6, 9, 30)),
    ("AU July 09:30 AWST: open without Cocos", AU_MOBILE, DEFAULT_POLICY, "AU", utc(7, 6, 1, 30), True, utc(7, 6, 1, 30)),
    ("phonenumbers' raw AU list: Cocos 08:00", AU_RAW, DEFAULT_POLICY, "AU", utc(7, 6, 1, 30), False, utc(7, 6, 2, 30)),
    # -- RU mobile, 13 zones: two hours a day, Moscow 09:00-11:00
    ("RU 10:00 MSK", RU_MOBILE, DEFAULT_POLICY, "RU", utc(1, 5, 7), True, utc(1, 5, 7)),
    ("RU 11:00 MSK: Kamchatka at 20:00", RU_MOBILE, DEFAULT_POLICY, "RU", utc(1, 5, 8), False, utc(1, 6, 6)),
    ("RU 08:59 MSK", RU_MOBILE, DEFAULT_POLICY, "RU", utc(1, 5, 5, 59), False, utc(1, 5, 6)),
    # -- unknown zones: never, unless there is no window
    ("US toll-free", US_TOLL_FREE, DEFAULT_POLICY, "US", utc(6, 1, 16), False, None),
    ("unknown zone", None, DEFAULT_POLICY, "US", utc(6, 1, 16), False, None),
    ("invalid column zone", zones("+18504321234", "Mars/Base"), DEFAULT_POLICY, "US", utc(6, 1, 16), False, None),
    ("unknown zone, no window", None, NO_WINDOW, "US", utc(6, 1, 3), True, utc(6, 1, 3)),
    ("phonenumbers' 42 NANP zones: 22:00-22:30 UTC in June", NANP_RAW, DEFAULT_POLICY, "US", utc(6, 1, 16), False, utc(6, 1, 22)),
    ("Regina and Dhaka, 12 h apart, never overlap", NEVER_OVERLAP, DEFAULT_POLICY, "CA", utc(6, 1, 16), False, None),
    # -- the user's column wins: Tokyo 22:30 although Chicago is 08:30
    ("column zone Asia/Tokyo", zones("+18504321234", "Asia/Tokyo"), DEFAULT_POLICY, "US", utc(6, 1, 13, 30), False, utc(6, 1, 23)),
    # -- a window crossing midnight belongs to the day it opens
    ("22:00-06:00 fri: Saturday 05:00 is Friday's", NY, window("22:00-06:00", "fri"), "US", utc(6, 6, 9), True, utc(6, 6, 9)),
    ("22:00-06:00 fri: closes Saturday 06:00", NY, window("22:00-06:00", "fri"), "US", utc(6, 6, 10), False, utc(6, 13, 2)),
    ("22:00-06:00 fri: Thursday 23:00 is not", NY, window("22:00-06:00", "fri"), "US", utc(6, 5, 3), False, utc(6, 6, 2)),
    # -- days
    ("09:00-17:00 mon-fri on a Saturday", NY, window("09:00-17:00", "mon-fri"), "US", utc(6, 6, 15), False, utc(6, 8, 13)),
    ("00:00-24:00 mon-fri: Friday 23:59", NY, window("00:00-24:00", "mon-fri"), "US", utc(6, 6, 3, 59), True, utc(6, 6, 3, 59)),
    ("00:00-24:00 mon-fri: Saturday 00:00", NY, window("00:00-24:00", "mon-fri"), "US", utc(6, 6, 4), False, utc(6, 8, 4)),
    ("--days alone keeps the table's hours", NY, policy_from_options("PROMOTIONAL", None, "sat", False), "US", utc(6, 6, 12, 30), True, utc(6, 6, 12, 30)),
    ("TRANSACTIONAL: no window", NY, NO_WINDOW, "US", utc(6, 1, 7), True, utc(6, 1, 7)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("zone_key", "policy", "country", "now", "allowed", "opens"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_window_table(
    zone_key: str | None,
    policy: WindowPolicy,
    country: str,
    now: datetime,
    allowed: bool,
    opens: datetime | None,
) -> None:
    assert is_open(zone_key, policy, country, now) is allowed
    assert next_opening(zone_key, policy, country, now) == opens
    if opens is not None:
        assert is_open(zone_key, policy, country, opens)
        if opens > now:
            assert not is_open(zone_key, policy, country, opens - timedelta(seconds=1))


def test_the_dst_cases_really_sit_on_the_changes() -> None:
    """Guards the table: the same wall clock a day apart is a different UTC hour."""
    day_before = next_opening(NY, DEFAULT_POLICY, "US", utc(3, 7, 5))
    change_day = next_opening(NY, DEFAULT_POLICY, "US", utc(3, 8, 5))
    assert day_before is not None and change_day is not None
    assert (day_before.hour, change_day.hour) == (13, 12)
    eu_before = next_opening("Europe/Paris", window("09:00-20:00"), "FR", utc(10, 24, 3))
    eu_after = next_opening("Europe/Paris", window("09:00-20:00"), "FR", utc(10, 25, 3))
    assert eu_before is not None and eu_after is not None
    assert (eu_before.hour, eu_after.hour) == (7, 8)


def test_a_pair_that_never_overlaps_stays_closed_all_year() -> None:
    year = timedelta(days=366)
    assert next_opening(NEVER_OVERLAP, DEFAULT_POLICY, "CA", utc(1, 1, 0), horizon=year) is None
    # One hour less apart in summer: New York and Shanghai share 19:00-20:00 EST in winter only.
    pair = "America/New_York Asia/Shanghai"
    assert next_opening(pair, DEFAULT_POLICY, "US", utc(6, 1, 0)) is None
    assert next_opening(pair, DEFAULT_POLICY, "US", utc(6, 1, 0), horizon=year) == utc(11, 2, 0)


def test_every_hour_of_a_year_agrees_with_the_local_clock() -> None:
    """Away from DST changes, open means the local clock is inside the window, on its day."""
    from zoneinfo import ZoneInfo

    policy = window("08:00-20:00", "mon-fri")
    zone = ZoneInfo("Europe/Paris")
    moment = utc(1, 1, 0, 30)
    while moment < utc(12, 31, 0):
        local = moment.astimezone(zone)
        expected = local.weekday() < 5 and 8 <= local.hour < 20
        assert is_open("Europe/Paris", policy, "FR", moment) is expected, moment
        moment += timedelta(hours=7)  # walks through every hour of the day over the year


def test_open_intervals_of_a_multi_zone_recipient_are_the_intersection() -> None:
    intervals = open_intervals(RU_MOBILE, DEFAULT_POLICY, "RU", utc(1, 5, 0), utc(1, 7, 0))
    assert intervals == [(utc(1, 5, 6), utc(1, 5, 8)), (utc(1, 6, 6), utc(1, 6, 8))]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(NY, DEFAULT_POLICY, "US", datetime(2026, 6, 1, 12))


# -- parsing the options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("08:00-20:00", (480, 1200)),
        ("8:00 - 20:30", (480, 1230)),
        ("22:00-06:00", (1320, 360)),
        ("00:00-24:00", (0, 1440)),
        ("20:00-00:00", (1200, 0)),
    ],
)
def test_parse_window(text: str, minutes: tuple[int, int]) -> None:
    assert parse_window(text) == minutes


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("8-20", "use HH:MM-HH:MM"),
        ("", "use HH:MM-HH:MM"),
        ("25:00-20:00", "25:00 is not a time of day"),
        ("08:60-20:00", "08:60 is not a time of day"),
        ("24:00-06:00", "24:00 is not a time of day"),
        ("09:00-09:00", "is empty"),
        ("00:00-00:00", "is empty"),
    ],
)
def test_parse_window_errors(text: str, says: str) -> None:
    with pytest.raises(WindowError) as error:
        parse_window(text)
    message = str(error.value)
    assert message.startswith(f"--window {text!r}") and says in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,tue,sat", {0, 1, 5}),
        ("Mon-Wed, sat", {0, 1, 2, 5}),
        ("fri-mon", {4, 5, 6, 0}),
        ("sunday", {6}),
        ("mon-sun", set(range(7))),
    ],
)
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("text", "says"),
    [("mon-fry", "'fry' is not a day"), ("", "an empty day"), ("mon,,tue", "an empty day")],
)
def test_parse_days_errors(text: str, says: str) -> None:
    with pytest.raises(WindowError) as error:
        parse_days(text)
    assert str(error.value).startswith(f"--days {text!r}") and says in str(error.value)


def test_days_spec_reads_back_for_every_set_of_days() -> None:
    for mask in range(1, 128):
        days = frozenset(day for day in range(7) if mask >> day & 1)
        assert parse_days(days_spec(days)) == days
    assert days_spec(frozenset({0, 2, 3, 4})) == "mon,wed-fri"


def test_policy_from_options() -> None:
    assert policy_from_options("PROMOTIONAL", None, None, False) == DEFAULT_POLICY
    assert policy_from_options("TRANSACTIONAL", None, None, False) == NO_WINDOW
    assert policy_from_options("PROMOTIONAL", None, None, True) == NO_WINDOW
    custom = policy_from_options("TRANSACTIONAL", "09:00-17:00", "mon-fri", False)
    assert custom == WindowPolicy(otherwise=Window(540, 1020, frozenset(range(5))))
    assert custom.window_for("FR") == custom.window_for(None)  # one window for everyone
    assert policy_from_options("PROMOTIONAL", "09:00-17:00", None, False).otherwise == Window(
        540, 1020, EVERY_DAY
    )
    weekdays = policy_from_options("PROMOTIONAL", None, "mon-fri", False)
    assert weekdays.window_for("US") == Window(480, 1200, frozenset(range(5)))
    assert weekdays.window_for("FR") == Window(600, 1200, frozenset(range(5)))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("PROMOTIONAL", "08:00-20:00", None, True), "--no-window and --window contradict"),
        (("PROMOTIONAL", None, "mon-fri", True), "--no-window and --days contradict"),
        (("TRANSACTIONAL", None, "mon-fri", False), "--days needs --window"),
        (("PROMOTIONAL", "8h-20h", None, False), "--window '8h-20h'"),
    ],
)
def test_policy_from_options_errors(
    args: tuple[str, str | None, str | None, bool], says: str
) -> None:
    with pytest.raises(WindowError, match=says):
        policy_from_options(*args)


@pytest.mark.parametrize(
    "policy", [DEFAULT_POLICY, NO_WINDOW, window("22:00-06:00", "fri,sat"), window("00:00-24:00")]
)
def test_policy_spec_reads_back(policy: WindowPolicy) -> None:
    assert WindowPolicy.from_spec(policy.spec) == policy


def test_policy_describe() -> None:
    assert DEFAULT_POLICY.spec == (
        "CA,US 08:00-20:00 mon-sun; FR 10:00-20:00 mon-sat; IN 10:00-21:00 mon-sun; "
        "* 09:00-20:00 mon-sun"
    )
    text = DEFAULT_POLICY.describe()
    assert "08:00-20:00 every day in CA, US" in text and "10:00-20:00 on mon-sat in FR" in text
    assert "09:00-20:00 every day elsewhere" in text
    assert "next morning" in window("22:00-06:00").describe()
    assert NO_WINDOW.describe() == "no sending window (any time)"


# -- groups, for the sender -------------------------------------------------------------------


def test_open_groups_sorts_groups_and_says_when_that_changes() -> None:
    now = utc(6, 7, 13, 30)  # Sunday: New York 09:30, Los Angeles 06:30, Paris 15:30
    groups = [
        (NY, "US"),
        (LA, "US"),
        ("Europe/Paris", "FR"),
        (None, "US"),
        (NEVER_OVERLAP, "US"),
        (NY, "US"),  # repeats are fine
    ]
    state = open_groups(groups, DEFAULT_POLICY, now)
    assert state.open == {(NY, "US")}
    assert state.waiting == {(LA, "US"), ("Europe/Paris", "FR")}
    assert state.never == {(None, "US"), (NEVER_OVERLAP, "US")}
    assert state.next_opening == utc(6, 7, 15)  # Los Angeles 08:00; Paris waits for Monday
    assert state.next_change == utc(6, 7, 15)
    later = open_groups(groups, DEFAULT_POLICY, utc(6, 7, 23, 30))
    assert later.open == {(NY, "US"), (LA, "US")}
    assert later.next_change == utc(6, 8, 0)  # New York closes at 20:00 EDT


def test_open_groups_without_a_window_opens_everyone_for_good() -> None:
    state = open_groups([(None, "US"), (NY, "US")], NO_WINDOW, utc(6, 7, 3))
    assert state.open == {(None, "US"), (NY, "US")} and not state.waiting and not state.never
    assert state.next_opening is None and state.next_change is None


# -- the calendar of estimate -----------------------------------------------------------------

NOW = utc(6, 1, 13)  # Monday: New York 09:00 (open), Los Angeles 06:00 (opens 15:00 UTC)
TWO_COASTS = [GroupLoad(NY, "US", 3600, 3600), GroupLoad(LA, "US", 1800, 3600)]


def test_calendar_sends_each_group_in_its_window() -> None:
    plan = plan_calendar(TWO_COASTS, DEFAULT_POLICY, mps=1, now=NOW)
    new_york, los_angeles = plan.groups
    assert plan.sendable_now == 3600 and plan.next_opening == utc(6, 1, 15)
    assert (new_york.opens_at, new_york.finishes_at) == (NOW, utc(6, 1, 14))
    assert (los_angeles.opens_at, los_angeles.finishes_at) == (utc(6, 1, 15), utc(6, 1, 16))
    assert plan.finishes_at == utc(6, 1, 16) and plan.left_over == 0 and plan.never == 0
    assert plan.meets_deadline is None


def test_calendar_deadline_met() -> None:
    plan = plan_calendar(TWO_COASTS, DEFAULT_POLICY, mps=1, now=NOW, deadline=utc(6, 1, 16, 30))
    assert plan.meets_deadline is True and plan.finishes_at == utc(6, 1, 16)


def test_calendar_deadline_missed_says_how_many_are_left() -> None:
    plan = plan_calendar(TWO_COASTS, DEFAULT_POLICY, mps=1, now=NOW, deadline=utc(6, 1, 15, 30))
    assert plan.meets_deadline is False
    assert [g.sent for g in plan.groups] == [3600, 900]  # half of LA's 2-part messages
    assert plan.left_over == 900 and plan.finishes_at is None


def test_calendar_past_the_deadline_sends_nobody_now() -> None:
    """Open windows or not, nobody may be sent after the deadline: 'sendable now: 4 of 4' was
    shown beside 'MISSED: 4 ... left to expire'."""
    for policy in (DEFAULT_POLICY, NO_WINDOW):
        plan = plan_calendar(TWO_COASTS, policy, mps=1, now=NOW, deadline=utc(6, 1, 12))
        assert plan.sendable_now == 0 and plan.next_opening is None
        assert plan.left_over == 5400 and plan.meets_deadline is False


def test_calendar_open_groups_share_the_mps() -> None:
    plan = plan_calendar(TWO_COASTS, DEFAULT_POLICY, mps=2, now=utc(6, 1, 16))
    assert plan.sendable_now == 5400
    assert [g.finishes_at for g in plan.groups] == [utc(6, 1, 17)] * 2  # 7200 parts at 2/s


def test_calendar_carries_over_to_the_next_window() -> None:
    loads = [GroupLoad(NY, "US", 7200, 7200)]
    now = utc(6, 1, 23)  # 19:00 EDT: one hour left today
    plan = plan_calendar(loads, DEFAULT_POLICY, mps=1, now=now)
    assert plan.finishes_at == utc(6, 2, 13)  # 3600 tonight, 3600 from 08:00 EDT tomorrow
    missed = plan_calendar(loads, DEFAULT_POLICY, mps=1, now=now, deadline=utc(6, 2, 6))
    assert missed.meets_deadline is False and missed.left_over == 3600


def test_calendar_several_zones_and_never_groups() -> None:
    loads = [
        GroupLoad(AU_MOBILE, "AU", 100, 100),
        GroupLoad(RU_MOBILE, "RU", 100, 200),
        GroupLoad(US_TOLL_FREE, "US", 7, 7),  # unknown zone: never
        GroupLoad(NEVER_OVERLAP, "US", 3, 3),  # empty window: never
    ]
    now = utc(1, 5, 0)
    plan = plan_calendar(loads, DEFAULT_POLICY, mps=1, now=now, deadline=utc(1, 5, 12))
    au, ru, toll_free, empty = plan.groups
    assert (au.opens_at, au.finishes_at) == (utc(1, 5, 1), utc(1, 5, 1, 1) + timedelta(seconds=40))
    assert (ru.opens_at, ru.finishes_at) == (utc(1, 5, 6), utc(1, 5, 6, 3) + timedelta(seconds=20))
    assert toll_free.opens_at is None and empty.opens_at is None
    assert plan.never == 10 and plan.left_over == 10 and plan.meets_deadline is False
    assert plan.sendable_now == 0 and plan.next_opening == utc(1, 5, 1)
    assert plan.finishes_at == utc(1, 5, 6, 3) + timedelta(
        seconds=20
    )  # everything that can be sent
    everyone = plan_calendar(loads, NO_WINDOW, mps=1, now=now, deadline=utc(1, 5, 12))
    assert everyone.sendable_now == 210 and everyone.meets_deadline is True


def test_calendar_a_group_opening_after_the_deadline_is_late_not_never() -> None:
    plan = plan_calendar(
        [GroupLoad("Europe/Paris", "FR", 10, 10)],
        DEFAULT_POLICY,
        mps=1,
        now=utc(6, 7, 12),  # Sunday
        deadline=utc(6, 7, 20),
    )
    (paris,) = plan.groups
    assert paris.opens_at == utc(6, 8, 8) and paris.sent == 0
    assert plan.never == 0 and plan.left_over == 10 and plan.meets_deadline is False


def test_calendar_of_many_groups_over_weeks_finishes() -> None:
    keys = sorted(
        key
        for key in {zones(f"+1{npa}5550123") for npa in ("212", "312", "415", "602", "808", "907")}
        if key
    )
    loads = [GroupLoad(key, "US", 200_000, 300_000) for key in keys if key]
    plan = plan_calendar(loads, DEFAULT_POLICY, mps=1, now=NOW)
    assert plan.finishes_at is not None and plan.left_over == 0
    # 1.8M parts at 1 part/s, 12 hours a day (more when the zones' windows don't overlap)
    assert NOW + timedelta(days=20) < plan.finishes_at < NOW + timedelta(days=42)


def test_calendar_refuses_a_non_positive_mps() -> None:
    with pytest.raises(ValueError, match="mps"):
        plan_calendar(TWO_COASTS, DEFAULT_POLICY, mps=0, now=NOW)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [(600, 600, EVERY_DAY), (0, 0, EVERY_DAY), (1440, 60, EVERY_DAY), (60, 1441, EVERY_DAY),
     (60, 120, frozenset()), (60, 120, frozenset({7}))],
)  # fmt: skip
def test_a_window_built_by_hand_is_checked_too(start: int, end: int, days: frozenset[int]) -> None:
    with pytest.raises(ValueError, match="not a window"):
        Window(start, end, days)
