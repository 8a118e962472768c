"""The simulator's delivery events: what `plan_events` makes of an accepted message, the emitter and
its sinks, and end to end: the events of sent messages through SNS -> SQS (moto), ingested by the
real CLI: every accepted message gets its delivery (a real send whose simulator publishes its own
events is tests/events/test_delivery_e2e.py)."""

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
from tests.events.conftest import Moto, deliveries, make_campaign
from tests.helpers import Cli

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
def test_the_emitters_events_through_sns_and_sqs_give_every_message_its_delivery(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    # Records as the simulator keeps them for 40 sent messages (a real send producing them is
    # tests/events/test_delivery_e2e.py), their events through the SNS sink, SNS -> SQS (moto).
    sent = make_campaign(run, tmp_path, isolated_env, 40)
    accepted = [
        record(
            message_id=r.message_id,
            destination=r.phone,
            context={"campaign": "c1", "recipient": str(r.id)},
        )
        for r in sent
    ]

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


# -- the simulator's routing: configuration sets, the events file, a topic for every message -------


def sms_client(sim: Simulator) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=sim.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )


def queued_events(moto: Moto, queue_url: str) -> list[dict[str, Any]]:
    """Every event on the queue (SNS envelopes unwrapped), read and deleted."""
    sqs = moto.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return found
        for m in messages:
            parsed = parse_body(m["Body"])
            assert isinstance(parsed, DeliveryEvent), parsed
            found.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_events_go_to_the_sns_destination_of_the_configuration_set(
    moto: Moto, tmp_path: Path
) -> None:
    from campaign.simulator import SimulatorConfig

    topic_arn, queue_url = moto.topic_to_queue(raw=False)
    other_topic, other_queue = moto.topic_to_queue(raw=False)
    events_file = tmp_path / "all-events.jsonl"
    config = SimulatorConfig(
        events=EventSettings(undelivered_share=0.0, carrier_delay_s=0, handset_delay_s=0),
        events_file=events_file,
        price_per_part={"US": 0.01},
        seed=1,
    )
    with Simulator(config) as sim:
        client = sms_client(sim)
        client.create_configuration_set(ConfigurationSetName="tracked")
        client.create_event_destination(
            ConfigurationSetName="tracked",
            EventDestinationName="to-sqs",
            MatchingEventTypes=["TEXT_ALL"],
            SnsDestination={"TopicArn": topic_arn},
        )
        # Only the final events of `narrow` go to the other topic.
        client.create_configuration_set(ConfigurationSetName="narrow")
        client.create_event_destination(
            ConfigurationSetName="narrow",
            EventDestinationName="finals",
            MatchingEventTypes=["TEXT_DELIVERED"],
            SnsDestination={"TopicArn": other_topic},
        )
        message = {"OriginationIdentity": "+12065550100", "MessageBody": "Hello"}
        tracked = client.send_text_message(
            DestinationPhoneNumber="+12065550111",
            ConfigurationSetName="tracked",
            Context={"campaign": "c1", "recipient": "1"},
            **message,
        )["MessageId"]
        client.send_text_message(DestinationPhoneNumber="+12065550112", **message)  # no set
        client.send_text_message(
            DestinationPhoneNumber="+12065550113", ConfigurationSetName="narrow", **message
        )
        client.send_text_message(
            DestinationPhoneNumber="+12065550114", ConfigurationSetName="default", **message
        )
        client.send_text_message(
            DestinationPhoneNumber="+12065550115",
            DryRun=True,
            ConfigurationSetName="tracked",
            **message,
        )
        assert sim.flush_events()
        assert sim.stats().events_emitted == 8  # 4 real messages x 2 events, into the file
    on_queue = queued_events(moto, queue_url)
    assert [(e["eventType"], e["messageId"]) for e in on_queue] == [
        ("TEXT_SUCCESSFUL", tracked),
        ("TEXT_DELIVERED", tracked),
    ]
    assert on_queue[1]["context"] == {"campaign": "c1", "recipient": "1"}
    assert on_queue[1]["totalMessagePrice"] == 0.01
    narrow = queued_events(moto, other_queue)
    assert [(e["eventType"], e["destinationPhoneNumber"]) for e in narrow] == [
        ("TEXT_DELIVERED", "+12065550113")
    ]
    # The file was told to take every message's events, configuration set or not (no dry run).
    in_file = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert Counter(e["destinationPhoneNumber"] for e in in_file) == {
        f"+120655501{n}": 2 for n in (11, 12, 13, 14)
    }


def test_a_topic_for_every_message_and_a_failing_sink_does_not_stop_the_simulator(
    moto: Moto,
) -> None:
    from campaign.simulator import SimulatorConfig

    topic_arn, queue_url = moto.topic_to_queue(raw=True)
    errors: list[str] = []
    config = SimulatorConfig(
        events=EventSettings(carrier_delay_s=0, handset_delay_s=0),
        events_topic_arn=topic_arn,
    )
    with Simulator(config, on_event_error=lambda where, exc: errors.append(where)) as sim:
        client = sms_client(sim)
        client.create_event_destination(
            ConfigurationSetName="default",
            EventDestinationName="gone",
            MatchingEventTypes=["TEXT_ALL"],
            SnsDestination={"TopicArn": topic_arn.rsplit(":", 1)[0] + ":no-such-topic"},
        )
        for n in range(3):
            with_set = {"ConfigurationSetName": "default"} if n else {}
            client.send_text_message(
                DestinationPhoneNumber=f"+1206555012{n}",
                OriginationIdentity="+12065550100",
                MessageBody="Hello",
                **with_set,
            )
        assert sim.flush_events()
    sqs = moto.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        bodies += [json.loads(m["Body"]) for m in messages]  # raw: the bare event
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    assert len(bodies) == 6  # every message, with a configuration set or not, and only once
    assert errors == [f"SNS topic {topic_arn.rsplit(':', 1)[0]}:no-such-topic"]  # said once


def test_campaign_simulator_event_options(tmp_path: Path, run: Cli) -> None:
    """The real command: events of every message to --events-file, all undelivered, each one twice,
    finals first, at the price per part given."""
    import signal

    from botocore.config import Config

    from tests.helpers import campaign_process

    events_file = tmp_path / "events.jsonl"
    process = campaign_process(
        "simulator",
        "--port",
        "0",
        "--events-file",
        str(events_file),
        "--undelivered-share",
        "1",
        "--duplicate-share",
        "1",
        "--reorder-share",
        "1",
        "--event-delay-ms",
        "0",
        "--price-per-part",
        "0.02",
        "--price-per-part",
        "gb=0.05",
        "--carrier-fee-per-part",
        "0",
        "--seed",
        "3",
    )
    try:
        assert process.stderr is not None
        url = process.stderr.readline().split(" on ", 1)[1].split(" ", 1)[0]
        import boto3

        client = boto3.client(
            "pinpoint-sms-voice-v2",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}),
        )
        for destination in ("+12065550131", "+447860019066"):
            client.send_text_message(
                DestinationPhoneNumber=destination,
                OriginationIdentity="+12065550100",
                MessageBody="Hello",
            )
        process.send_signal(signal.SIGTERM)  # stopping releases what is planned
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(events) == 8  # 2 messages x 2 events, each delivered twice
    by_destination: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_destination.setdefault(e["destinationPhoneNumber"], []).append(e)
    undelivered = {t for t, _, _ in UNDELIVERED_TYPES}
    for destination, arrived in by_destination.items():
        assert arrived[0]["isFinal"] and arrived[0]["eventType"] in undelivered  # final first
        assert Counter(e["eventType"] for e in arrived).most_common()[0][1] == 2
        price = 0.05 if destination.startswith("+44") else 0.02
        assert {(e["totalMessagePrice"], e["totalCarrierFee"]) for e in arrived} == {(price, 0)}

    bad = run("simulator", "--price-per-part", "US=cheap", code=2)
    assert "--price-per-part" in bad.stderr
