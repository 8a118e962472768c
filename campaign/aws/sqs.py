"""boto3 clients for SQS and SNS, where delivery events arrive (SNS topic -> SQS queue), and what
`events setup` builds: the topic, the queue, and the configuration set's event destination.

Made through a normal boto3 session, like the SMS client (campaign.aws.sms), so AWS_PROFILE,
AWS_REGION, the credential chain and the per-service endpoint variables (`AWS_ENDPOINT_URL_SQS`,
`AWS_ENDPOINT_URL_SNS`, or `AWS_ENDPOINT_URL`) keep working; the tests reach moto's server that way.
The SMS `--endpoint-url` does not apply here: it names the SMS endpoint only.

Unlike SendTextMessage, receiving and deleting are safe to repeat, so botocore's standard retries
stay on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

from campaign.aws.sms import (
    SMS_ENDPOINT_FIX,
    SmsConfigError,
    configured_region,
    foreign_answer,
    is_loopback,
    not_the_api,
    refuse_html_answers,
)
from campaign.errors import mask_url_secrets

# https://sqs.us-east-1.amazonaws.com/123456789012/name (also the legacy us-east-1.queue form)
_AWS_QUEUE_HOST = re.compile(
    r"(?:sqs[.-](?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$"
)
LOCAL_REGION = "us-east-1"  # what a local endpoint (moto) gets when no region is configured


class AwsConfigError(SmsConfigError):
    """The SQS or SNS client cannot be made: one line."""


def queue_region(queue_url: str) -> str | None:
    """The region an AWS queue URL names (None for another host, e.g. a local moto server)."""
    match = _AWS_QUEUE_HOST.search(urlparse(queue_url).hostname or "")
    if match is None:
        return None
    return match.group("a") or match.group("b")


def configured_endpoint(service: str) -> str | None:
    """The endpoint boto3 takes from the environment for `service` (`sqs`, `sns`), if any."""
    return os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )


def make_client(
    service: str,
    *,
    profile: str | None = None,
    region: str | None = None,
    queue_url: str | None = None,
    max_connections: int = 10,
) -> Any:
    """An `sqs` or `sns` client. With `queue_url`: the region comes from the URL when none is
    configured, and a queue URL that is not AWS's (a local moto server) is also the endpoint when
    the environment names none (SQS's JSON protocol posts to the endpoint, not to the queue URL)."""
    try:
        session = boto3.session.Session(profile_name=profile, region_name=configured_region(region))
    except ProfileNotFound as exc:
        raise AwsConfigError(str(exc)) from None
    kwargs: dict[str, Any] = {
        "config": Config(
            retries={"mode": "standard"},
            max_pool_connections=max(max_connections, 1),
            # Long polling holds a receive for up to 20 s: the read timeout must outlast it.
            read_timeout=60,
            tcp_keepalive=True,
        )
    }
    endpoint = configured_endpoint(service)
    if queue_url and endpoint is None and queue_region(queue_url) is None:
        parsed = urlparse(queue_url)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            endpoint = kwargs["endpoint_url"] = f"{parsed.scheme}://{parsed.netloc}"
    local = is_loopback(endpoint)
    if session.region_name is None:
        guessed = queue_region(queue_url) if queue_url else None
        if guessed is None and local:
            guessed = LOCAL_REGION
        if guessed is not None:
            kwargs["region_name"] = guessed
    if local and session.get_credentials() is None:
        kwargs["aws_access_key_id"] = "local"
        kwargs["aws_secret_access_key"] = "local"
    try:
        client = session.client(service, **kwargs)  # type: ignore[call-overload]
    except NoRegionError:
        raise AwsConfigError(
            "no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise AwsConfigError(
            f"cannot create the {service.upper()} client: {mask_url_secrets(str(exc))}"
        ) from None
    if not local and session.get_credentials() is None:
        raise AwsConfigError(
            "no AWS credentials found: configure a profile (--profile / AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


# -- the SNS topic -> SQS queue that delivery events arrive in (`events setup`) --------------------

SMS_SERVICE_PRINCIPAL = "sms-voice.amazonaws.com"


@dataclass(frozen=True)
class EventQueue:
    """The AWS side of delivery events, and what this run had to create (empty: all there)."""

    topic_arn: str
    queue_url: str
    queue_arn: str
    subscription_arn: str
    created: tuple[str, ...]
    existing: tuple[str, ...] = ()  # what was already there (its policy rewritten all the same)


def configuration_set_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sms-voice:{region}:{account}:configuration-set/{name}"


def topic_policy(
    topic_arn: str, configuration_set: str, also_allowed: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Lets AWS End User Messaging SMS publish this configuration set's events (and those of the
    configuration set ARNs `also_allowed`), and no one else (docs/aws-facts.md: conditions on the
    source account and the configuration set's ARN)."""
    _, _, _, region, account, _ = topic_arn.split(":", 5)
    arn = configuration_set_arn(region, account, configuration_set)
    arns = list(dict.fromkeys([*also_allowed, arn]))
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SmsVoiceEventsPublish",
                "Effect": "Allow",
                "Principal": {"Service": SMS_SERVICE_PRINCIPAL},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": arns[0] if len(arns) == 1 else arns},
                },
            }
        ],
    }


def queue_policy(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """Lets the topic (and only it) deliver into the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SnsTopicSendMessage",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


def ensure_event_queue(
    sns: Any, sqs: Any, *, name: str, configuration_set: str, raw: bool = False
) -> EventQueue:
    """The topic `name`, the queue `name`, the topic's subscription by the queue and both access
    policies: made when missing, left alone when there (policies are rewritten to what they must
    be). Safe to run again. `raw`: RawMessageDelivery (the queue then gets the bare event)."""
    created: list[str] = []
    existing: list[str] = []
    topic_arn = _existing_topic(sns, name)
    if topic_arn is None:
        topic_arn = str(sns.create_topic(Name=name)["TopicArn"])
        created.append(f"SNS topic {topic_arn}")
    else:
        existing.append(f"SNS topic {topic_arn}")
    also = _allowed_configuration_sets(sns, topic_arn) if existing else ()
    sns.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=json.dumps(topic_policy(topic_arn, configuration_set, also)),
    )
    try:
        queue_url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        existing.append(f"SQS queue {queue_url}")
    except ClientError as exc:
        if error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        created.append(f"SQS queue {queue_url}")
    queue_arn = str(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy(queue_arn, topic_arn))}
    )
    subscription_arn = _existing_subscription(sns, topic_arn, queue_arn)
    if subscription_arn is None:
        subscription_arn = str(
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": "true" if raw else "false"},
                ReturnSubscriptionArn=True,
            )["SubscriptionArn"]
        )
        created.append(f"subscription of the queue to the topic ({subscription_arn})")
    else:
        existing.append(f"subscription of the queue to the topic ({subscription_arn})")
    return EventQueue(
        topic_arn, queue_url, queue_arn, subscription_arn, tuple(created), tuple(existing)
    )


def _allowed_configuration_sets(sns: Any, topic_arn: str) -> tuple[str, ...]:
    """The configuration sets an existing topic's policy already lets publish: a topic shared by
    several (`events setup --name shared`) keeps them all, instead of the last one cutting the
    others' events off. Unreadable (no sns:GetTopicAttributes): none."""
    try:
        text = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy") or "{}"
        statements = json.loads(text).get("Statement") or []
    except (ClientError, ValueError, AttributeError):
        return ()
    found: list[str] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Sid") != "SmsVoiceEventsPublish":
            continue
        arns = ((statement.get("Condition") or {}).get("ArnLike") or {}).get("aws:SourceArn")
        found.extend(a for a in ([arns] if isinstance(arns, str) else arns or []) if a)
    return tuple(a for a in found if isinstance(a, str) and ":configuration-set/" in a)


def _existing_topic(sns: Any, name: str) -> str | None:
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            arn = str(topic["TopicArn"])
            if arn.rsplit(":", 1)[-1] == name:
                return arn
    return None


def _existing_subscription(sns: Any, topic_arn: str, queue_arn: str) -> str | None:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    for page in pages:
        for subscription in page.get("Subscriptions", []):
            if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == queue_arn:
                return str(subscription["SubscriptionArn"])
    return None


# -- the configuration set's event destination (the SMS side of `events setup`) -------------------

DESTINATION_EVENT_TYPES = ["TEXT_ALL"]  # every SMS event, whatever types the service adds later


class EventSetupError(AwsConfigError):
    """An AWS call of `events setup` was refused: one line naming the call."""


@dataclass(frozen=True)
class EventDestination:
    """A configuration set's event destination to the SNS topic, and what this run had to do."""

    configuration_set: str
    name: str
    created: tuple[str, ...]
    existing: tuple[str, ...]


def ensure_event_destination(
    sms: Any, *, configuration_set: str, topic_arn: str, name: str
) -> EventDestination:
    """The configuration set (made when missing) with an enabled event destination sending TEXT_ALL
    to `topic_arn`: one already doing so is kept whatever its name; one named `name` that does
    something else is changed to do so. Safe to run again."""
    created: list[str] = []
    existing: list[str] = []
    try:
        [info] = sms.describe_configuration_sets(ConfigurationSetNames=[configuration_set])[
            "ConfigurationSets"
        ]
        existing.append(f"configuration set {configuration_set}")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        sms.create_configuration_set(ConfigurationSetName=configuration_set)
        created.append(f"configuration set {configuration_set}")
        info = {"EventDestinations": []}
    destinations = info.get("EventDestinations") or []
    for d in destinations:
        if _sends_text_events_to(d, topic_arn):
            existing.append(
                f"event destination {d['EventDestinationName']} (TEXT_ALL to the topic)"
            )
            return EventDestination(
                configuration_set, str(d["EventDestinationName"]), tuple(created), tuple(existing)
            )
    wanted = {
        "ConfigurationSetName": configuration_set,
        "EventDestinationName": name,
        "MatchingEventTypes": DESTINATION_EVENT_TYPES,
        "SnsDestination": {"TopicArn": topic_arn},
    }
    if any(d.get("EventDestinationName") == name for d in destinations):
        sms.update_event_destination(Enabled=True, **wanted)
        created.append(f"event destination {name}: changed to send TEXT_ALL to the topic")
    else:
        sms.create_event_destination(**wanted)
        created.append(f"event destination {name} (TEXT_ALL to the topic)")
    return EventDestination(configuration_set, name, tuple(created), tuple(existing))


def _sends_text_events_to(destination: dict[str, Any], topic_arn: str) -> bool:
    types = set(destination.get("MatchingEventTypes") or [])
    return (
        bool(destination.get("Enabled"))
        and (destination.get("SnsDestination") or {}).get("TopicArn") == topic_arn
        and bool(types & {"TEXT_ALL", "ALL"})
    )


@dataclass(frozen=True)
class EventSetup:
    queue: EventQueue
    destination: EventDestination

    @property
    def created(self) -> tuple[str, ...]:
        return self.queue.created + self.destination.created

    @property
    def existing(self) -> tuple[str, ...]:
        return self.queue.existing + self.destination.existing


_SERVICE_NAMES = {"pinpoint-sms-voice-v2": "SMS", "sns": "SNS", "sqs": "SQS"}
_ENDPOINT_FIX = {
    "pinpoint-sms-voice-v2": SMS_ENDPOINT_FIX,
    "sns": "AWS_ENDPOINT_URL_SNS (or AWS_ENDPOINT_URL)",
    "sqs": "AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL)",
}


def setup_events(
    sms: Any,
    sns: Any,
    sqs: Any,
    *,
    configuration_set: str,
    name: str,
    destination_name: str,
    raw: bool = False,
) -> EventSetup:
    """Everything delivery events need, from the configuration set to the queue (`events setup`):
    the SNS topic and SQS queue `name` with their policies and subscription, then the event
    destination. A refused call becomes EventSetupError."""
    called: list[Any] = []  # the client of the call under way, for an answer that is not AWS's
    for client in (sms, sns, sqs):
        client.meta.events.register("before-call", lambda client=client, **_: called.append(client))
        service = client.meta.service_model.service_name
        refuse_html_answers(client, _ENDPOINT_FIX[service], "cannot set up delivery events")
    try:
        queue = ensure_event_queue(
            sns, sqs, name=name, configuration_set=configuration_set, raw=raw
        )
        destination = ensure_event_destination(
            sms,
            configuration_set=configuration_set,
            topic_arn=queue.topic_arn,
            name=destination_name,
        )
    except (ClientError, ResponseParserError) as exc:
        if called and (problem := foreign_answer(exc)):
            client = called[-1]
            fix = _ENDPOINT_FIX[client.meta.service_model.service_name]
            raise EventSetupError(
                f"cannot set up delivery events: {not_the_api(client, problem, fix)}"
            ) from None
        assert isinstance(exc, ClientError)
        operation = getattr(exc, "operation_name", "") or "an AWS call"
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        raise EventSetupError(f"{operation} failed: {error_code(exc)}: {message}") from None
    except BotoCoreError as exc:  # the endpoint cannot be reached, ...
        hint = ""
        if called and isinstance(exc, EndpointConnectionError):  # which of the three, to fix
            service = called[-1].meta.service_model.service_name
            hint = f"; the {_SERVICE_NAMES[service]} endpoint: check {_ENDPOINT_FIX[service]}"
        detail = " ".join(str(exc).split())
        raise EventSetupError(f"cannot set up delivery events: {detail}{hint}") from None
    return EventSetup(queue, destination)
