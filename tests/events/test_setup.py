"""`campaign events setup`: the SNS topic, the SQS queue and its subscription (moto's server), the
configuration set and its event destination (the project's simulator); made once, then left alone."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from campaign.simulator.server import Simulator
from tests.events.conftest import Moto
from tests.helpers import Cli


def setup(run: Cli, sim: Simulator, *args: str, code: int = 0) -> tuple[str, list[str]]:
    """(stdout, stderr lines) of `events setup` against the simulator."""
    result = run("--endpoint-url", sim.url, "events", "setup", *args, code=code)
    return result.stdout, result.stderr.strip().splitlines()


def destinations(moto: Moto, sim: Simulator, name: str) -> list[Any]:
    import boto3

    sms = boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=sim.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    [info] = sms.describe_configuration_sets(ConfigurationSetNames=[name])["ConfigurationSets"]
    return list(info["EventDestinations"])


def test_setup_makes_everything_once_and_says_so_the_second_time(
    run: Cli, simulator: Simulator, moto: Moto
) -> None:
    out, said = setup(run, simulator, "--configuration-set", "marketing")
    queue_url = out.strip()
    assert queue_url.endswith("/sms-events-marketing")
    created = [line for line in said if line.startswith("Created: ")]
    assert [c.split(" ")[1:3] for c in created] == [
        ["SNS", "topic"],
        ["SQS", "queue"],
        ["subscription", "of"],
        ["configuration", "set"],
        ["event", "destination"],
    ]
    sns, sqs = moto.client("sns"), moto.client("sqs")
    [topic_arn] = [
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(":sms-events-marketing")
    ]
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "sms-voice.amazonaws.com"}
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", queue_arn)
    assert destinations(moto, simulator, "marketing") == [
        {
            "EventDestinationName": "campaign-events",
            "Enabled": True,
            "MatchingEventTypes": ["TEXT_ALL"],
            "SnsDestination": {"TopicArn": topic_arn},
        }
    ]

    again, said_again = setup(run, simulator, "--configuration-set", "marketing")
    assert again == out  # the same queue URL, for scripts
    assert not [line for line in said_again if line.startswith("Created")]
    assert len([line for line in said_again if line.startswith("Already there: ")]) == 5
    assert "Nothing to do: everything was already set up." in said_again
    assert len(destinations(moto, simulator, "marketing")) == 1
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]) == 1


def test_setup_repoints_its_destination_and_prints_json(
    run: Cli, simulator: Simulator, moto: Moto
) -> None:
    import boto3

    sms = boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=simulator.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    # Someone's earlier destination of the same name sends only failures to another topic.
    sms.create_event_destination(
        ConfigurationSetName="default",
        EventDestinationName="campaign-events",
        MatchingEventTypes=["TEXT_BLOCKED"],
        SnsDestination={"TopicArn": "arn:aws:sns:us-east-1:123456789012:elsewhere"},
    )
    result = run(
        "--endpoint-url",
        simulator.url,
        "events",
        "setup",
        "--configuration-set",
        "default",
        "--name",
        "ev",
        "--raw",
        "--json",
    )
    done = json.loads(result.stdout)
    assert done["topic_arn"].endswith(":ev") and done["queue_url"].endswith("/ev")
    assert done["existing"] == ["configuration set default"]
    assert done["created"][-1] == (
        "event destination campaign-events: changed to send TEXT_ALL to the topic"
    )
    [destination] = destinations(moto, simulator, "default")
    assert destination["MatchingEventTypes"] == ["TEXT_ALL"]
    assert destination["SnsDestination"] == {"TopicArn": done["topic_arn"]}
    attributes = moto.client("sns").get_subscription_attributes(
        SubscriptionArn=done["subscription_arn"]
    )["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"


def test_setup_errors_are_one_line(
    run: Cli, simulator: Simulator, moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = run("events", "setup", "--configuration-set", "has space", code=2)
    assert "--configuration-set" in bad.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", closed)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _, said = setup(run, simulator, "--configuration-set", "marketing", code=1)
    assert len(said) == 1 and said[0].startswith("Error: cannot set up delivery events:"), said
    assert said[0].endswith("; the SNS endpoint: check AWS_ENDPOINT_URL_SNS (or AWS_ENDPOINT_URL)")
