"""The simulator's delivery events: what `plan_events` makes of an accepted message, the emitter and
its sinks, and end to end: a real send against the simulator, its events through SNS -> SQS (moto),
ingested by the real CLI: every accepted message gets its delivery."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from campaign.events.parse import DeliveryEvent, parse_body
from campaign.simulator.events import (
    UNDELIVERED_TYPES,
    EventEmitter,
    EventSettings,
    JsonLinesSink,
    SnsSink,
    plan_events,
)
from campaign.simulator.server import Simulator
from tests.events.conftest import Moto, deliveries
from tests.helpers import Cli, write_csv

ACCEPTED_MS = 1_700_000_000_000


def record(i: int = 1, **changes: Any) -> dict[str, Any]:
    """A record as the simulator keeps one per accepted message."""
    return {
        "message_id": f"sim-{i}",
        "destination": f"+1206555{i:04d}",
        "country": "US",
        "origination": "+12065550100",
        "parts": 2,
        "encoding": "GSM-7",
        "message_type": "PROMOTIONAL",
        "dry_run": False,
        "context": {"campaign": "c1", "recipient": str(i)},
        "event": "TEXT_DELIVERED",
        **changes,
    }


def plan(settings: EventSettings, seed: int = 1, **changes: Any) -> list[dict[str, Any]]:
    return [
        p.event for p in plan_events(record(**changes), settings, random.Random(seed), ACCEPTED_MS)
    ]


def test_an_accepted_message_is_successful_then_delivered() -> None:
    settings = EventSettings(undelivered_share=0.0, price_per_part={"US": 0.01})
    first, final = plan(settings)
    assert (first["eventType"], first["isFinal"]) == ("TEXT_SUCCESSFUL", False)
    assert (final["eventType"], final["isFinal"]) == ("TEXT_DELIVERED", True)
    assert ACCEPTED_MS < first["eventTimestamp"] < final["eventTimestamp"]
    assert final["messageId"] == "sim-1"
    assert final["context"] == {"campaign": "c1", "recipient": "1"}
    assert (final["totalMessageParts"], final["totalMessagePrice"]) == (2, 0.02)
    assert final["totalCarrierFee"] == round(2 * settings.carrier_fee_per_part, 5)
    parsed = [parse_body(json.dumps(e)) for e in (first, final)]
    assert [p.delivery for p in parsed if isinstance(p, DeliveryEvent)] == [None, "delivered"]


def test_failure_numbers_and_dry_runs() -> None:
    settings = EventSettings(undelivered_share=0.0)
    assert plan(settings, event="TEXT_UNREACHABLE")[-1]["eventType"] == "TEXT_UNREACHABLE"
    assert plan(settings, dry_run=True) == []


def test_undelivered_share_and_types() -> None:
    settings = EventSettings(undelivered_share=0.2)
    rng = random.Random(5)
    finals = Counter(
        plan_events(record(i), settings, rng, ACCEPTED_MS)[-1].event["eventType"]
        for i in range(4000)
    )
    undelivered = 4000 - finals["TEXT_DELIVERED"]
    assert 650 < undelivered < 950  # 20% of 4000, loosely
    assert set(finals) - {"TEXT_DELIVERED"} <= {t for t, _, _ in UNDELIVERED_TYPES}
    assert len(finals) >= 5  # a realistic mix, not one type


def test_duplicates_and_reordering_keep_true_timestamps() -> None:
    settings = EventSettings(undelivered_share=0.0, duplicate_share=1.0, reorder_share=1.0)
    planned = plan_events(record(), settings, random.Random(3), ACCEPTED_MS)
    arrivals = [p.event["eventType"] for p in planned]
    assert len(arrivals) == 4 and Counter(arrivals) == {"TEXT_DELIVERED": 2, "TEXT_SUCCESSFUL": 2}
    assert arrivals[0] == "TEXT_DELIVERED"  # the final one overtook
    by_type = {p.event["eventType"]: p.event["eventTimestamp"] for p in planned}
    assert by_type["TEXT_SUCCESSFUL"] < by_type["TEXT_DELIVERED"]  # but its timestamp is true


def test_the_same_seed_plans_the_same_events() -> None:
    settings = EventSettings(undelivered_share=0.5, duplicate_share=0.5, reorder_share=0.5)
    assert plan(settings, seed=9) == plan(settings, seed=9)
    assert any(plan(settings, seed=9) != plan(settings, seed=s) for s in range(10, 20))


@pytest.mark.parametrize("field", ["undelivered_share", "duplicate_share", "reorder_share"])
def test_shares_are_checked(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EventSettings(**{field: 1.5})  # type: ignore[arg-type]


def test_the_emitter_releases_events_when_due(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    settings = EventSettings(carrier_delay_s=0.01, handset_delay_s=0.01)
    emitter = EventEmitter([JsonLinesSink(path)], settings, seed=1)
    for i in range(5):
        emitter.accepted(record(i))
    deadline = time.monotonic() + 10
    while emitter.emitted < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emitter.emitted == 10  # released by the clock, not by closing
    emitter.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 10
    assert Counter(json.loads(line)["messageId"] for line in lines) == {
        f"sim-{i}": 2 for i in range(5)
    }


def test_closing_flushes_what_is_not_due_yet(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    emitter = EventEmitter([JsonLinesSink(path)], EventSettings(carrier_delay_s=3600), seed=1)
    emitter.accepted(record())
    emitter.close(flush=True)
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.slow
def test_send_then_events_through_sns_and_sqs_give_every_message_its_delivery(
    run: Cli, tmp_path: Path, isolated_env: Path, simulator: Simulator, moto: Moto
) -> None:
    lines = ["first_name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(40)]
    run("create", "c1", "-o", "+12065550100", "-m", "Hi {first_name}, sale today. STOP to end")
    run("import", "c1", str(write_csv(tmp_path / "r.csv", "\n".join(lines) + "\n")))
    run("--endpoint-url", simulator.url, "send", "c1", "--yes")
    accepted = simulator.accepted(dry_run=False)
    assert len(accepted) == 40

    topic_arn, queue_url = moto.topic_to_queue(raw=False)
    settings = EventSettings(undelivered_share=0.25, duplicate_share=0.2, reorder_share=0.3)
    emitter = EventEmitter([SnsSink(moto.client("sns"), topic_arn)], settings, seed=4)
    for r in accepted:
        emitter.accepted(r)
    emitter.close(flush=True)
    assert not emitter.errors

    summary = run.json("events", "ingest", "--queue-url", queue_url, "--until-empty", "--json")
    assert summary["stored"] == 80  # two distinct events per message, whatever the repeats
    funnel = summary["campaigns"]["c1"]
    assert funnel["sent"] == 40
    assert funnel["awaiting"] == 0
    assert 0 < funnel["undelivered"] < 40
    rows = deliveries(isolated_env)
    by_message = {row[1]: row for row in rows.values()}
    assert set(by_message) == {r["message_id"] for r in accepted}  # each one matched
    assert all(row[2] in ("delivered", "undelivered") for row in rows.values())
    assert funnel["charged"] == pytest.approx(sum(row[4] for row in rows.values()))
