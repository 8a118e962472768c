"""The local simulator, driven by real boto3 clients so botocore's own code path is exercised."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from campaign.message import count_body
from campaign.simulator import (
    DEFAULT_IDENTITIES,
    SimulatedIdentity,
    Simulator,
    SimulatorConfig,
)

pytestmark = pytest.mark.timeout(60)

TEN_DLC = "+12065550100"
TOLL_FREE = "+18335550123"
DEST = "+14254147755"  # AWS's US success simulator number
FAIL_DEST = "+14254147167"  # AWS's US failure simulator number
THREE_PARTS = "a" * 400  # GSM-7: 400 septets / 153 per part


def make_client(sim: Simulator, **config: Any) -> Any:
    # total_max_attempts=1: botocore must not retry, so each call is exactly one request.
    return boto3.client(
        "pinpoint-sms-voice-v2",
        endpoint_url=sim.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


@pytest.fixture
def start() -> Iterator[Callable[..., Simulator]]:
    """start(**config) -> a running Simulator, stopped at teardown."""
    started: list[Simulator] = []

    def _start(**config: Any) -> Simulator:
        sim = Simulator(SimulatorConfig(**config)).start()
        started.append(sim)
        return sim

    yield _start
    for sim in started:
        sim.stop()


def send(client: Any, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "DestinationPhoneNumber": DEST,
        "OriginationIdentity": TEN_DLC,
        "MessageBody": "Hello from the simulator",
    }
    args.update(overrides)
    return dict(client.send_text_message(**args))


def error_of(client: Any, name: str, **overrides: Any) -> dict[str, Any]:
    """Send, expect client.exceptions.<name>, return its error.response."""
    with pytest.raises(getattr(client.exceptions, name)) as info:
        send(client, **overrides)
    response: dict[str, Any] = info.value.response
    assert response["Error"]["Code"] == name
    return response


def test_three_parts_body_is_three_parts() -> None:
    assert count_body(THREE_PARTS).parts == 3


def test_send_returns_message_id_and_logs_the_message(
    start: Callable[..., Simulator], tmp_path: Path
) -> None:
    log = tmp_path / "sent.jsonl"
    sim = start(log_path=log)
    client = make_client(sim)

    result = send(
        client,
        MessageType="PROMOTIONAL",
        MaxPrice="0.05",
        TimeToLive=300,
        Context={"campaign": "spring"},
        ConfigurationSetName="default",
    )

    uuid.UUID(result["MessageId"])
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert result["ResponseMetadata"]["RequestId"]  # from the x-amzn-RequestId header
    (line,) = log.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record == sim.accepted()[0]
    assert {k: v for k, v in record.items() if k != "ts"} == {
        "message_id": result["MessageId"],
        "destination": DEST,
        "country": "US",
        "origination": TEN_DLC,
        "body": "Hello from the simulator",
        "parts": 1,
        "encoding": "GSM-7",
        "message_type": "PROMOTIONAL",
        "dry_run": False,
        "context": {"campaign": "spring"},
        "max_price": "0.05",
        "ttl": 300,
        "configuration_set": "default",
        "keyword": None,
        "country_parameters": None,
        "protect_configuration_id": None,
        "message_feedback": False,
        "event": "TEXT_DELIVERED",
    }
    assert sim.stats().accepted == 1
    assert sim.stats().operations == {"SendTextMessage": 1}


def test_failure_simulator_number_is_accepted_with_a_failed_event(
    start: Callable[..., Simulator],
) -> None:
    sim = start()
    send(make_client(sim), DestinationPhoneNumber=FAIL_DEST, MessageBody="Zürich ✓")
    (record,) = sim.accepted()
    assert record["event"] == "TEXT_UNREACHABLE"
    assert record["encoding"] == "UCS-2"


def test_identity_may_be_given_by_id_or_arn(start: Callable[..., Simulator]) -> None:
    sim = start()
    client = make_client(sim)
    (info,) = client.describe_phone_numbers(
        Filters=[{"Name": "number-type", "Values": ["TOLL_FREE"]}]
    )["PhoneNumbers"]
    send(client, OriginationIdentity=info["PhoneNumberId"])
    send(client, OriginationIdentity=info["PhoneNumberArn"])
    assert [r["origination"] for r in sim.accepted()] == [TOLL_FREE, TOLL_FREE]


# Each row: overrides of a valid request -> the Reason and the field named in Fields.
# (Values botocore itself rejects before sending, such as TimeToLive=4, are in the raw test below.)
VALIDATION_CASES = [
    ({"DestinationPhoneNumber": "14254147755"}, "INVALID_PARAMETER", "DestinationPhoneNumber"),
    ({"DestinationPhoneNumber": "+04254147755"}, "INVALID_PARAMETER", "DestinationPhoneNumber"),
    (
        {"DestinationPhoneNumber": "+14254147755123456789"},
        "INVALID_PARAMETER",
        "DestinationPhoneNumber",
    ),
    ({"DestinationPhoneNumber": "+1 425 414 7755"}, "INVALID_PARAMETER", "DestinationPhoneNumber"),
    ({"OriginationIdentity": "my sender"}, "INVALID_PARAMETER", "OriginationIdentity"),
    ({"MessageBody": " \n\t "}, "INVALID_PARAMETER", "MessageBody"),
    ({"MessageBody": "a" * 1601}, "MAXIMUM_SIZE_EXCEEDED", "MessageBody"),
    ({"MessageBody": "€" * 801}, "MAXIMUM_SIZE_EXCEEDED", "MessageBody"),  # 1602 septets
    ({"MessageBody": "Ж" * 631}, "MAXIMUM_SIZE_EXCEEDED", "MessageBody"),  # 631 UCS-2 units
    ({"MessageBody": "😀" * 316}, "MAXIMUM_SIZE_EXCEEDED", "MessageBody"),  # 632 UCS-2 units
    ({"MessageType": "MARKETING"}, "INVALID_PARAMETER", "MessageType"),
    ({"Keyword": "k" * 31}, "INVALID_PARAMETER", "Keyword"),
    ({"Keyword": "two\nlines"}, "INVALID_PARAMETER", "Keyword"),
    ({"ConfigurationSetName": "my set"}, "INVALID_PARAMETER", "ConfigurationSetName"),
    ({"MaxPrice": "abc"}, "INVALID_PARAMETER", "MaxPrice"),
    ({"MaxPrice": "100.0"}, "INVALID_PARAMETER", "MaxPrice"),
    ({"MaxPrice": "0.123456"}, "INVALID_PARAMETER", "MaxPrice"),
    ({"MaxPrice": "0.1234567"}, "INVALID_PARAMETER", "MaxPrice"),
    ({"MaxPrice": "1"}, None, None),  # too short: botocore refuses it (min length 2)
    ({"TimeToLive": 259201}, "INVALID_PARAMETER", "TimeToLive"),
    ({"Context": {f"k{i}": "v" for i in range(6)}}, "INVALID_PARAMETER", "Context"),
    ({"Context": {"key": " padded"}}, "INVALID_PARAMETER", "Context.key"),
    ({"Context": {"key": "padded "}}, "INVALID_PARAMETER", "Context.key"),
    ({"Context": {"has space": "v"}}, "INVALID_PARAMETER", "Context.has space"),
    ({"Context": {"key": "v" * 801}}, "INVALID_PARAMETER", "Context.key"),
    (
        {"DestinationCountryParameters": {"IN_OTHER": "1"}},
        "INVALID_PARAMETER",
        "DestinationCountryParameters.IN_OTHER",
    ),
    (
        {"DestinationCountryParameters": {"IN_ENTITY_ID": "a b"}},
        "INVALID_PARAMETER",
        "DestinationCountryParameters.IN_ENTITY_ID",
    ),
]


@pytest.mark.parametrize(("overrides", "reason", "field_name"), VALIDATION_CASES)
def test_validation_rules(
    start: Callable[..., Simulator],
    overrides: dict[str, Any],
    reason: str | None,
    field_name: str | None,
) -> None:
    sim = start()
    client = make_client(sim)
    if reason is None:
        with pytest.raises(botocore.exceptions.ParamValidationError):
            send(client, **overrides)
        return
    response = error_of(client, "ValidationException", **overrides)
    assert response["Reason"] == reason
    assert field_name in [f["Name"] for f in response["Fields"]]
    assert sim.accepted() == []


def test_valid_edge_values_are_accepted(start: Callable[..., Simulator]) -> None:
    sim = start(mps=1000)
    client = make_client(sim)
    # No leading digit, 5 decimals; above the simulated price (0.00581 a part), as on AWS.
    send(client, MaxPrice=".00750", TimeToLive=5, Keyword="JOIN NOW")
    send(client, MaxPrice="99.99999", TimeToLive=259200, MessageBody="a" * 1600)
    send(client, MessageBody="Ж" * 630, Context={f"k{i}": "v" * 800 for i in range(5)})
    send(client, DestinationCountryParameters={"IN_ENTITY_ID": "1" * 64, "IN_TEMPLATE_ID": "2"})
    assert len(sim.accepted()) == 4


def post(sim: Simulator, target: str | None, body: bytes) -> tuple[int, dict[str, str], Any]:
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def test_server_validates_what_botocore_would_catch(start: Callable[..., Simulator]) -> None:
    sim = start()
    request = {"DestinationPhoneNumber": DEST, "MessageBody": "", "TimeToLive": 4, "DryRun": "y"}
    status, headers, payload = post(
        sim, "PinpointSMSVoiceV2.SendTextMessage", json.dumps(request).encode()
    )
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert headers["x-amzn-requestid"]
    assert payload["__type"] == "com.amazonaws.pinpointsmsvoicev2#ValidationException"
    assert {f["Name"] for f in payload["Fields"]} == {"MessageBody", "TimeToLive", "DryRun"}

    status, _, payload = post(sim, "PinpointSMSVoiceV2.SendTextMessage", b"{}")
    assert (status, payload["Reason"]) == (400, "MISSING_PARAMETER")
    status, _, payload = post(sim, "PinpointSMSVoiceV2.SendTextMessage", b"{not json")
    assert (status, payload["Reason"]) == (400, "CANNOT_PARSE")


def test_unknown_operation_is_an_error_not_a_crash(start: Callable[..., Simulator]) -> None:
    sim = start()
    status, _, payload = post(sim, "PinpointSMSVoiceV2.SendVoiceMessage", b"{}")
    assert status == 400
    assert payload["__type"].endswith("#UnknownOperationException")
    status, _, payload = post(sim, None, b"{}")
    assert status == 400
    # botocore sees an ordinary ClientError for an operation the simulator lacks.
    with pytest.raises(botocore.exceptions.ClientError) as info:
        make_client(sim).describe_pools()
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    send(make_client(sim))  # still serving


def test_keep_alive_serves_many_requests_on_one_connection(start: Callable[..., Simulator]) -> None:
    sim = start(mps=1000)
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps(
        {"DestinationPhoneNumber": DEST, "OriginationIdentity": TEN_DLC, "MessageBody": "hi"}
    ).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "PinpointSMSVoiceV2.SendTextMessage",
    }
    for _ in range(3):
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        assert int(response.getheader("Content-Length") or -1) > 0
        json.loads(response.read())
    conn.request("POST", "/", body=b"{}", headers=headers)  # errors keep the connection too
    response = conn.getresponse()
    assert response.status == 400
    response.read()
    conn.close()
    assert sim.stats().requests == 4


def test_throttles_in_parts_per_second(start: Callable[..., Simulator]) -> None:
    sim = start(mps=5)
    client = make_client(sim)
    send(client, MessageBody=THREE_PARTS)
    error_of(client, "ThrottlingException", MessageBody=THREE_PARTS)  # 2 of 5 parts left
    send(client, MessageBody="one part")  # throttled calls took nothing
    send(client, OriginationIdentity=TOLL_FREE, MessageBody=THREE_PARTS)  # its own bucket
    stats = sim.stats()
    assert (stats.accepted, stats.throttled) == (3, 1)
    time.sleep(0.5)  # 2.5 parts refilled -> 3.5 available
    send(client, MessageBody=THREE_PARTS)


def test_message_bigger_than_one_second_waits_for_its_parts(
    start: Callable[..., Simulator],
) -> None:
    sim = start(mps=2)
    client = make_client(sim)
    send(client, MessageBody=THREE_PARTS)  # a fresh bucket holds what the first message needs
    error_of(client, "ThrottlingException", MessageBody=THREE_PARTS)
    time.sleep(1.6)  # 3 parts at 2 per second
    send(client, MessageBody=THREE_PARTS)


def test_dry_run_has_its_own_five_mps_bucket_and_is_logged(
    start: Callable[..., Simulator], tmp_path: Path
) -> None:
    log = tmp_path / "sent.jsonl"
    sim = start(mps=100, fail_after=1, log_path=log)
    client = make_client(sim)
    for _ in range(5):
        send(client, DryRun=True)
    error_of(client, "ThrottlingException", DryRun=True)
    send(client)  # the real bucket is untouched, and dry runs did not count for fail_after
    assert len(sim.accepted(dry_run=True)) == 5
    assert len(sim.accepted(dry_run=False)) == 1
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["dry_run"] for r in records] == [True] * 5 + [False]
    assert all(r["event"] is None for r in records[:5])
    assert sim.stats().dry_run == 5


def test_dry_run_bucket_is_the_lower_of_five_and_mps(start: Callable[..., Simulator]) -> None:
    sim = start(mps=2)
    client = make_client(sim)
    send(client, DryRun=True)
    send(client, DryRun=True)
    error_of(client, "ThrottlingException", DryRun=True)


def test_opted_out_destination_is_a_conflict(
    start: Callable[..., Simulator], tmp_path: Path
) -> None:
    opt_out_file = tmp_path / "optout.txt"
    opt_out_file.write_text("# opted out\n+447700900999\n\n", encoding="utf-8")
    sim = start(opted_out=frozenset({"+14255550001"}), opt_out_file=opt_out_file)
    sim.opt_out(DEST)
    client = make_client(sim)

    for number in ("+14255550001", "+447700900999", DEST):
        response = error_of(client, "ConflictException", DestinationPhoneNumber=number)
        assert response["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
        assert response["ResourceType"] == "opt-out-list"
        assert response["ResourceId"] == "Default"
    assert sim.accepted() == []

    listed = client.describe_opted_out_numbers(OptOutListName="Default")
    assert {n["OptedOutNumber"] for n in listed["OptedOutNumbers"]} == {
        "+14255550001",
        "+447700900999",
        DEST,
    }
    assert all(n["EndUserOptedOut"] for n in listed["OptedOutNumbers"])
    some = client.describe_opted_out_numbers(
        OptOutListName="Default", OptedOutNumbers=[DEST, "+15555550000"]
    )
    assert [n["OptedOutNumber"] for n in some["OptedOutNumbers"]] == [DEST]
    page = client.describe_opted_out_numbers(OptOutListName="Default", MaxResults=2)
    assert len(page["OptedOutNumbers"]) == 2 and page["NextToken"]
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.describe_opted_out_numbers(OptOutListName="Other")
    assert info.value.response["ResourceType"] == "opt-out-list"


@pytest.mark.parametrize(
    ("identity", "resource_type"),
    [("+12065559999", "phone-number"), ("NOPE", "sender-id"), ("pool-123", "pool")],
)
def test_unknown_origination_identity(
    start: Callable[..., Simulator], identity: str, resource_type: str
) -> None:
    sim = start()
    response = error_of(make_client(sim), "ResourceNotFoundException", OriginationIdentity=identity)
    assert (response["ResourceType"], response["ResourceId"]) == (resource_type, identity)


def test_accept_any_identity(start: Callable[..., Simulator]) -> None:
    sim = start(accept_any_identity=True)
    send(make_client(sim), OriginationIdentity="+12065559999")
    assert sim.accepted()[0]["origination"] == "+12065559999"


def test_unknown_configuration_set(start: Callable[..., Simulator]) -> None:
    sim = start(configuration_sets=frozenset({"marketing"}))
    client = make_client(sim)
    response = error_of(client, "ResourceNotFoundException", ConfigurationSetName="default")
    assert (response["ResourceType"], response["ResourceId"]) == ("configuration-set", "default")
    send(client, ConfigurationSetName="marketing")
    send(
        client,
        ConfigurationSetName="arn:aws:sms-voice:us-east-1:111122223333:configuration-set/marketing",
    )


TOPIC = "arn:aws:sns:us-east-1:123456789012:sms-events"


def test_configuration_sets_are_created_and_described(start: Callable[..., Simulator]) -> None:
    sim = start()  # the account starts with `default`
    client = make_client(sim)
    made = client.create_configuration_set(ConfigurationSetName="marketing")
    assert made["ConfigurationSetArn"] == (
        "arn:aws:sms-voice:us-east-1:111122223333:configuration-set/marketing"
    )
    with pytest.raises(client.exceptions.ConflictException) as conflict:
        client.create_configuration_set(ConfigurationSetName="marketing")
    assert conflict.value.response["Reason"] == "RESOURCE_ALREADY_EXISTS"
    names = [
        s["ConfigurationSetName"] for s in client.describe_configuration_sets()["ConfigurationSets"]
    ]
    assert names == ["default", "marketing"]
    [info] = client.describe_configuration_sets(
        ConfigurationSetNames=[made["ConfigurationSetArn"]]
    )["ConfigurationSets"]
    assert (info["ConfigurationSetName"], info["EventDestinations"]) == ("marketing", [])
    assert info["CreatedTimestamp"].year >= 2024  # a timestamp botocore parsed
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.describe_configuration_sets(ConfigurationSetNames=["nope"])
    assert missing.value.response["ResourceType"] == "configuration-set"
    send(client, ConfigurationSetName="marketing")  # a set made at run time can be sent with
    with pytest.raises(client.exceptions.ValidationException):
        client.create_configuration_set(ConfigurationSetName="has space")


def test_event_destinations_are_created_updated_and_checked(
    start: Callable[..., Simulator],
) -> None:
    sim = start()
    client = make_client(sim)
    made = client.create_event_destination(
        ConfigurationSetName="default",
        EventDestinationName="events",
        MatchingEventTypes=["TEXT_ALL"],
        SnsDestination={"TopicArn": TOPIC},
    )
    assert made["EventDestination"] == {
        "EventDestinationName": "events",
        "Enabled": True,
        "MatchingEventTypes": ["TEXT_ALL"],
        "SnsDestination": {"TopicArn": TOPIC},
    }
    with pytest.raises(client.exceptions.ConflictException):
        client.create_event_destination(
            ConfigurationSetName="default",
            EventDestinationName="events",
            MatchingEventTypes=["TEXT_ALL"],
            SnsDestination={"TopicArn": TOPIC},
        )
    other = TOPIC + "-2"
    client.update_event_destination(
        ConfigurationSetName="default",
        EventDestinationName="events",
        Enabled=False,
        SnsDestination={"TopicArn": other},
    )
    filtered = client.describe_configuration_sets(
        Filters=[{"Name": "event-destination-name", "Values": ["events"]}]
    )["ConfigurationSets"]
    [destination] = filtered[0]["EventDestinations"]
    assert (destination["Enabled"], destination["SnsDestination"]["TopicArn"]) == (False, other)
    refusals: dict[str, dict[str, Any]] = {
        "no destination": {},
        "two destinations": {
            "SnsDestination": {"TopicArn": TOPIC},
            "KinesisFirehoseDestination": {
                "IamRoleArn": "arn:aws:iam::123456789012:role/r",
                "DeliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/d",
            },
        },
        "not an ARN": {"SnsDestination": {"TopicArn": "sms-events-topic-name"}},
        "unknown event type": {
            "SnsDestination": {"TopicArn": TOPIC},
            "MatchingEventTypes": ["TEXT_EVERYTHING!"],
        },
    }
    for what, fields in refusals.items():
        request = {
            "ConfigurationSetName": "default",
            "EventDestinationName": "other",
            "MatchingEventTypes": ["TEXT_ALL"],
            **fields,
        }
        with pytest.raises(client.exceptions.ValidationException):
            client.create_event_destination(**request)
            pytest.fail(what)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.create_event_destination(
            ConfigurationSetName="missing",
            EventDestinationName="events",
            MatchingEventTypes=["TEXT_ALL"],
            SnsDestination={"TopicArn": TOPIC},
        )


def test_no_identity_picks_one_for_the_destination_country(start: Callable[..., Simulator]) -> None:
    sim = start()
    client = make_client(sim)
    client.send_text_message(DestinationPhoneNumber="+447860019066", MessageBody="hi")
    assert sim.accepted()[0]["origination"] == "+447700900123"
    with pytest.raises(client.exceptions.ConflictException) as info:
        client.send_text_message(DestinationPhoneNumber="+61455944038", MessageBody="hi")
    assert info.value.response["Reason"] == "NO_ORIGINATION_IDENTITIES_FOUND"


def test_fail_after_reports_the_spend_limit(start: Callable[..., Simulator]) -> None:
    sim = start(fail_after=2)
    client = make_client(sim)
    send(client)
    send(client)
    for _ in range(2):
        response = error_of(client, "ServiceQuotaExceededException")
        assert response["Reason"] == "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"
    send(client, DryRun=True)  # a dry run costs nothing, so the spend limit does not stop it
    sim.set_faults(fail_after=None)
    send(client)
    assert len(sim.accepted(dry_run=False)) == 3


def test_error_rate_gives_http_500(start: Callable[..., Simulator]) -> None:
    sim = start(error_rate=1.0)
    response = error_of(make_client(sim), "InternalServerException")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["RequestId"] == response["ResponseMetadata"]["RequestId"]
    assert sim.accepted() == []
    assert sim.stats().errors == 1


def test_throttle_rate_injects_throttling(start: Callable[..., Simulator]) -> None:
    sim = start(throttle_rate=1.0, mps=1000)
    error_of(make_client(sim), "ThrottlingException")
    assert sim.accepted() == []


def test_faults_replay_with_the_same_seed(start: Callable[..., Simulator]) -> None:
    def outcomes(sim: Simulator) -> list[bool]:
        client = make_client(sim)
        results = []
        for _ in range(20):
            try:
                send(client)
                results.append(True)
            except client.exceptions.ThrottlingException:
                results.append(False)
        return results

    first = outcomes(start(throttle_rate=0.5, seed=7, mps=1000))
    second = outcomes(start(throttle_rate=0.5, seed=7, mps=1000))
    assert first == second
    assert True in first and False in first


def test_dropped_connection_after_accepting(
    start: Callable[..., Simulator], tmp_path: Path
) -> None:
    log = tmp_path / "sent.jsonl"
    sim = start(drop_rate=1.0, log_path=log)
    client = make_client(sim)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        send(client)
    # The service took the message although the client never heard back: "unknown".
    assert len(log.read_text(encoding="utf-8").splitlines()) == 1
    assert len(sim.accepted()) == 1
    assert sim.stats().dropped == 1
    sim.set_faults(drop_rate=0.0)
    send(client)  # the client recovers on a new connection


def test_timeout_after_accepting(start: Callable[..., Simulator], tmp_path: Path) -> None:
    log = tmp_path / "sent.jsonl"
    sim = start(timeout_rate=1.0, timeout_delay_s=10, log_path=log)
    client = make_client(sim, read_timeout=0.3)
    began = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        send(client)
    assert time.monotonic() - began < 5
    assert len(log.read_text(encoding="utf-8").splitlines()) == 1
    assert sim.stats().timed_out == 1
    began = time.monotonic()
    sim.stop()  # does not wait out the 10 s delay of the handler thread
    assert time.monotonic() - began < 3


def test_latency_is_applied(start: Callable[..., Simulator]) -> None:
    sim = start(latency_ms=150, jitter_ms=50)
    client = make_client(sim)
    send(client)  # opens the connection
    began = time.monotonic()
    send(client)
    assert 0.15 <= time.monotonic() - began < 1.5


def test_reject_destinations(start: Callable[..., Simulator]) -> None:
    blocked = "+8613800138000"
    sim = start(
        reject_destinations={
            blocked: ("ValidationException", "DESTINATION_COUNTRY_BLOCKED"),
            FAIL_DEST: ("ConflictException", "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"),
        }
    )
    client = make_client(sim)
    response = error_of(client, "ValidationException", DestinationPhoneNumber=blocked)
    assert response["Reason"] == "DESTINATION_COUNTRY_BLOCKED"
    response = error_of(client, "ConflictException", DestinationPhoneNumber=FAIL_DEST)
    assert response["Reason"] == "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"
    with pytest.raises(ValueError, match="unknown exception"):
        SimulatorConfig(reject_destinations={DEST: ("NoSuchException", "X")})


def test_max_price_checked_against_price_per_part(start: Callable[..., Simulator]) -> None:
    sim = start(price_per_part={"US": 0.01, "*": 0.05}, mps=1000)
    client = make_client(sim)
    send(client, MaxPrice="0.03", MessageBody=THREE_PARTS)  # 3 x 0.01 is not over 0.03
    response = error_of(client, "ValidationException", MaxPrice="0.02", MessageBody=THREE_PARTS)
    assert response["Reason"] == "PRICE_OVER_THRESHOLD"
    assert response["Fields"][0]["Name"] == "MaxPrice"
    gb = {"DestinationPhoneNumber": "+447860019066", "OriginationIdentity": "+447700900123"}
    response = error_of(client, "ValidationException", MaxPrice="0.04", **gb)  # "*" price
    assert response["Reason"] == "PRICE_OVER_THRESHOLD"
    send(client, MessageBody=THREE_PARTS)  # no MaxPrice, no check


def test_describe_phone_numbers(start: Callable[..., Simulator]) -> None:
    sim = start(
        identities=(
            *DEFAULT_IDENTITIES,
            SimulatedIdentity("+13125550199", "LONG_CODE", "US", mps=1),
        )
    )
    client = make_client(sim)
    numbers = client.describe_phone_numbers()["PhoneNumbers"]
    by_number = {n["PhoneNumber"]: n for n in numbers}
    assert "CAMPAIGN" not in by_number  # a sender id is not a phone number
    assert (by_number[TEN_DLC]["NumberType"], by_number[TEN_DLC]["IsoCountryCode"]) == (
        "TEN_DLC",
        "US",
    )
    assert by_number["+447700900123"]["IsoCountryCode"] == "GB"
    assert by_number["55500"]["NumberType"] == "SHORT_CODE"
    assert by_number["+13125550199"]["MessagingLimits"]["RateLimits"]["SMS"] == 1
    assert all(n["Status"] == "ACTIVE" and n["NumberCapabilities"] == ["SMS"] for n in numbers)

    wanted = by_number[TOLL_FREE]["PhoneNumberId"]
    (one,) = client.describe_phone_numbers(PhoneNumberIds=[wanted])["PhoneNumbers"]
    assert (one["PhoneNumber"], one["NumberType"]) == (TOLL_FREE, "TOLL_FREE")
    gb = client.describe_phone_numbers(Filters=[{"Name": "iso-country-code", "Values": ["GB"]}])
    assert [n["PhoneNumber"] for n in gb["PhoneNumbers"]] == ["+447700900123"]

    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.describe_phone_numbers(PhoneNumberIds=["phone-0000"])
    assert info.value.response["ResourceType"] == "phone-number"
    assert info.value.response["ResourceId"] == "phone-0000"


def test_identity_with_its_own_mps(start: Callable[..., Simulator]) -> None:
    slow = SimulatedIdentity("+13125550199", "LONG_CODE", "US", mps=1)
    sim = start(identities=(slow,), mps=100)
    client = make_client(sim)
    send(client, OriginationIdentity=slow.value)
    error_of(client, "ThrottlingException", OriginationIdentity=slow.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_only_loopback_is_allowed(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatorConfig(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_hosts_work(start: Callable[..., Simulator], host: str) -> None:
    try:
        sim = start(host=host)
    except OSError as error:  # e.g. no IPv6 in this sandbox
        pytest.skip(f"cannot bind {host}: {error}")
    send(make_client(sim))


def test_bad_settings_are_refused(start: Callable[..., Simulator]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(drop_rate=1.5)
    with pytest.raises(ValueError):
        SimulatorConfig(mps=0)
    sim = start()
    with pytest.raises(TypeError, match="port"):
        sim.set_faults(port=1)
    with pytest.raises(ValueError):
        sim.set_faults(error_rate=-0.1)


def test_concurrent_senders(start: Callable[..., Simulator], tmp_path: Path) -> None:
    log = tmp_path / "sent.jsonl"
    sim = start(mps=1000, log_path=log)
    client = make_client(sim, max_pool_connections=20)
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for i in range(25):
                send(client, DestinationPhoneNumber=f"+1425555{index:02d}{i:02d}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stats = sim.stats()
    assert (stats.accepted, stats.throttled, stats.errors, stats.requests) == (500, 0, 0, 500)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len({json.loads(line)["destination"] for line in lines}) == 500


def test_records_in_memory_can_be_bounded(start: Callable[..., Simulator]) -> None:
    sim = start(max_records_in_memory=2, mps=1000)
    client = make_client(sim)
    for body in ("one", "two", "three"):
        send(client, MessageBody=body)
    assert [r["body"] for r in sim.accepted()] == ["two", "three"]
    assert sim.stats().accepted == 3


def test_health_check_answers_get(start: Callable[..., Simulator]) -> None:
    sim = start()
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["requests"] == 0
    conn.close()


def test_context_manager_stops_the_server() -> None:
    with Simulator(SimulatorConfig()) as sim:
        url = sim.url
        send(make_client(sim))
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        boto3.client(
            "pinpoint-sms-voice-v2",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
        ).describe_phone_numbers()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_simulator_stops_on_signal(signum: int) -> None:
    script = (
        "from campaign.simulator import SimulatorConfig, run_simulator\n"
        "run_simulator(SimulatorConfig(), on_ready=lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = boto3.client(
            "pinpoint-sms-voice-v2",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"total_max_attempts": 1}),
        )
        assert client.describe_phone_numbers()["PhoneNumbers"]
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read().strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
