"""campaign.audience.gate with an injected clock: the sender's cached window gate, the holdback
counts `status`, `estimate` and the confirmation show, the held reasons, the frequency cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import campaign.audience.gate as gate_module
from campaign.audience.gate import (
    HELD_PREFIX,
    FrequencyCap,
    WindowGate,
    campaign_policy,
    frequency_cap,
    held_reason,
    holdback,
)
from campaign.audience.schedule import GroupLoad
from campaign.audience.windows import (
    DEFAULT_POLICY,
    NO_WINDOW,
    WindowPolicy,
    policy_from_options,
    stored_policy,
)
from campaign.domain import CampaignSpec

NY, LA = "America/New_York", "America/Los_Angeles"
# 2026-07-01 13:30 UTC: 09:30 in New York (EDT), 06:30 in Los Angeles (PDT)
NOW = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
NEVER_TOGETHER = "America/Regina Asia/Dhaka"  # 12 hours apart: no 08:00-20:00 in common


def spec(**values: object) -> CampaignSpec:
    return CampaignSpec(name="c", template="Hi", origination_identity="+12065550100", **values)  # type: ignore[arg-type]


def test_the_gate_is_cached_by_the_minute_and_never_past_its_next_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[datetime] = []
    real = gate_module.open_groups

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[2])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gate_module, "open_groups", counting)
    gate = WindowGate(DEFAULT_POLICY, [(NY, "US"), (LA, "US")])
    first = gate.at(NOW)
    assert first.open == {(NY, "US")} and first.waiting == {(LA, "US")}
    assert first.next_change == datetime(2026, 7, 1, 15, tzinfo=UTC)  # 08:00 in Los Angeles
    gate.at(NOW + timedelta(seconds=20))
    gate.at(NOW + timedelta(seconds=59, microseconds=999_999))
    assert len(calls) == 1  # the same minute
    gate.at(NOW + timedelta(seconds=60))
    assert len(calls) == 2  # the next minute
    gate.set_groups([(NY, "US"), (LA, "US")])  # the same groups: kept
    gate.at(NOW + timedelta(seconds=61))
    assert len(calls) == 2
    gate.set_groups([(NY, "US")])  # new groups: asked again
    assert gate.at(NOW + timedelta(seconds=62)).waiting == frozenset()
    assert len(calls) == 3
    # At the opening itself the cached answer is stale even within its minute.
    opening = datetime(2026, 7, 1, 15, tzinfo=UTC)
    gate.set_groups([(NY, "US"), (LA, "US")])
    assert gate.at(opening - timedelta(microseconds=1)).waiting == {(LA, "US")}
    assert gate.at(opening).open == {(NY, "US"), (LA, "US")}


def test_the_gate_claims_anyone_without_a_window() -> None:
    assert WindowGate(NO_WINDOW, [(None, "US")]).claimable(NOW) is None
    assert WindowGate(DEFAULT_POLICY, [(None, "US")]).claimable(NOW) == frozenset()


def test_holdback_counts_by_what_the_window_says_now() -> None:
    loads = [
        GroupLoad(NY, "US", 10, 12),
        GroupLoad(LA, "US", 5, 5),
        GroupLoad("Asia/Tokyo", "JP", 2, 2),  # 22:30 in Tokyo: opens 09:00 JST = 00:00 UTC
        GroupLoad(None, "US", 3, 3),
        GroupLoad(NEVER_TOGETHER, "CA", 4, 4),
    ]
    held = holdback(loads, DEFAULT_POLICY, NOW)
    assert (held.open_now, held.waiting, held.unknown_zone, held.empty_window) == (10, 7, 3, 4)
    assert held.next_opening == datetime(2026, 7, 1, 15, tzinfo=UTC)
    assert held.opening_then == 5
    assert held.held_now == 14 and held.never == 7
    data = held.to_json()
    assert data["held"] == {"unknown_zone": 3, "empty_window": 4}
    assert data["next_opening"] == "2026-07-01T15:00:00+00:00"
    nothing_held = holdback(loads, NO_WINDOW, NOW)
    assert (nothing_held.open_now, nothing_held.held_now) == (24, 0)


def test_held_reasons_say_why_and_what_to_do() -> None:
    unknown = held_reason(None, DEFAULT_POLICY, "US", NOW, note="toll-free North American number")
    assert unknown is not None
    assert unknown.startswith(HELD_PREFIX + "time zone unknown (toll-free North American number)")
    assert "--timezone-column" in unknown and "--no-window" in unknown
    apart = held_reason(NEVER_TOGETHER, DEFAULT_POLICY, "CA", NOW)
    assert apart is not None and "America/Regina, Asia/Dhaka" in apart
    assert held_reason(NY, DEFAULT_POLICY, "US", NOW) is None  # closed now, but it opens
    assert held_reason(None, NO_WINDOW, "US", NOW) is None  # no window: nothing to check


def test_the_stored_policy_of_a_campaign() -> None:
    assert campaign_policy(spec()) == DEFAULT_POLICY
    assert campaign_policy(spec(message_type="TRANSACTIONAL")) == NO_WINDOW
    assert campaign_policy(spec(window="none")) == NO_WINDOW
    assert campaign_policy(spec(days="mon-fri")) == DEFAULT_POLICY.with_days(frozenset(range(5)))
    nine_to_five = policy_from_options("PROMOTIONAL", "09:00-17:00", "sat-sun", no_window=False)
    stored = stored_policy(
        "PROMOTIONAL", WindowPolicy.from_spec("* 09:00-17:00 mon-sun").spec, "sat-sun"
    )
    assert stored == nine_to_five
    # A campaign whose type has no window keeps none, whatever its days.
    assert stored_policy("TRANSACTIONAL", None, "mon-fri") == NO_WINDOW


def test_the_frequency_cap() -> None:
    assert frequency_cap(spec()) is None
    assert frequency_cap(spec(max_per_recipient=3)) is None  # needs both
    cap = frequency_cap(spec(max_per_recipient=3, per_hours=24))
    assert cap == FrequencyCap(3, timedelta(hours=24))
    assert cap.since(NOW) == NOW - timedelta(hours=24)
    assert cap.describe().startswith("at most 3 messages per 24 h to one number")
