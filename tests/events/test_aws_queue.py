"""campaign.aws.sqs: clients through a normal boto3 session (the standard endpoint variables work), and
the SNS topic -> SQS queue that delivery events arrive in, made once and found again (moto)."""

from __future__ import annotations

import json

import pytest

from campaign.aws.sqs import (
    AwsConfigError,
    configuration_set_arn,
    ensure_event_queue,
    make_client,
    queue_region,
)
from tests.events.conftest import Moto


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/events", "eu-west-1"),
        ("https://sqs.us-east-1.amazonaws.com/123456789012/events", "us-east-1"),
        ("https://us-west-2.queue.amazonaws.com/123456789012/events", "us-west-2"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/events", "cn-north-1"),
        ("http://127.0.0.1:5000/123456789012/events", None),
    ],
)
def test_queue_region(url: str, region: str | None) -> None:
    assert queue_region(url) == region


def test_the_region_comes_from_the_queue_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    client = make_client("sqs", queue_url="https://sqs.eu-west-1.amazonaws.com/1/q")
    assert client.meta.region_name == "eu-west-1"
    with pytest.raises(AwsConfigError, match="no AWS region"):
        make_client("sns")


def test_a_local_queue_url_is_its_own_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    client = make_client("sqs", queue_url="http://127.0.0.1:5000/123456789012/events")
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert client.meta.region_name == "us-east-1"  # loopback: placeholders, no AWS account needed


def test_the_standard_endpoint_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566")
    client = make_client("sqs", queue_url="http://127.0.0.1:5000/123456789012/events")
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_no_credentials_for_aws_itself_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    with pytest.raises(AwsConfigError, match="no AWS credentials"):
        make_client("sqs", queue_url="https://sqs.us-east-1.amazonaws.com/1/q")


@pytest.mark.parametrize("raw", [False, True])
def test_the_event_queue_is_made_once_then_found(moto: Moto, raw: bool) -> None:
    sns = make_client("sns", region="us-east-1")
    sqs = make_client("sqs", region="us-east-1")
    name = f"sms-events-{'raw' if raw else 'envelope'}"
    first = ensure_event_queue(sns, sqs, name=name, configuration_set="spring", raw=raw)
    assert len(first.created) == 3
    assert first.topic_arn.endswith(f":{name}") and first.queue_url.endswith(f"/{name}")

    again = ensure_event_queue(sns, sqs, name=name, configuration_set="spring", raw=raw)
    assert again.created == ()
    assert (again.topic_arn, again.queue_url, again.subscription_arn) == (
        first.topic_arn,
        first.queue_url,
        first.subscription_arn,
    )
    assert len(sns.list_subscriptions_by_topic(TopicArn=first.topic_arn)["Subscriptions"]) == 1

    policy = json.loads(sns.get_topic_attributes(TopicArn=first.topic_arn)["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "sms-voice.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    account = first.topic_arn.split(":")[4]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == configuration_set_arn(
        "us-east-1", account, "spring"
    )
    queue_policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["Policy"])["Attributes"][
            "Policy"
        ]
    )
    assert queue_policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == (
        first.topic_arn
    )

    # What AWS publishes arrives in the queue, wrapped or not as asked.
    sns.publish(TopicArn=first.topic_arn, Message=json.dumps({"eventType": "TEXT_DELIVERED"}))
    [message] = sqs.receive_message(QueueUrl=first.queue_url, WaitTimeSeconds=2)["Messages"]
    body = json.loads(message["Body"])
    assert (body.get("eventType") == "TEXT_DELIVERED") is raw
    assert (body.get("Type") == "Notification") is not raw


def test_a_topic_shared_by_two_configuration_sets_keeps_both(moto: Moto) -> None:
    """`events setup --configuration-set B --name shared` after A rewrote the topic's policy for
    B alone: AWS would no longer publish A's events, and nothing said so."""
    sns, sqs = moto.client("sns"), moto.client("sqs")
    first = ensure_event_queue(sns, sqs, name="shared-events", configuration_set="a")
    ensure_event_queue(sns, sqs, name="shared-events", configuration_set="b")
    ensure_event_queue(sns, sqs, name="shared-events", configuration_set="b")  # again: no repeat
    policy = json.loads(sns.get_topic_attributes(TopicArn=first.topic_arn)["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    account = first.topic_arn.split(":")[4]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == [
        configuration_set_arn("us-east-1", account, "a"),
        configuration_set_arn("us-east-1", account, "b"),
    ]
