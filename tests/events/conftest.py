"""Fixtures of the delivery-events tests: a ledger with sent recipients, AWS-shaped events, and moto's
real HTTP server for SNS and SQS (reached through AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_SNS)."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers import Cli, write_csv

ORIGINATION = "+12065550100"  # the simulator's 10DLC number


@dataclass(frozen=True)
class Recipient:
    id: int
    phone: str
    message_id: str | None
    campaign: str


def make_campaign(
    run: Cli, tmp_path: Path, db: Path, n: int, *, name: str = "c1", state: str = "sent"
) -> list[Recipient]:
    """A campaign of `n` recipients built through the CLI (create + import), then moved to `state`
    by SQL as a sender would have left them: `sent` with a MessageId each, or `unknown` without."""
    lines = ["phone"] + [f"+1206555{i:04d}" for i in range(n)]
    csv = write_csv(tmp_path / f"{name}.csv", "\n".join(lines) + "\n")
    run(
        "create", name, "-o", ORIGINATION, "-m", "Hi, spring sale. Reply STOP to opt out",
        "--no-window",  # promotional: sends at any hour of the day
    )  # fmt: skip
    run("import", name, str(csv), "--default-region", "US")
    with sqlite3.connect(db) as conn:
        campaign_id = conn.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()[0]
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM recipients WHERE campaign_id = ? ORDER BY id", (campaign_id,)
            )
        ]
        for rid in ids:
            message_id = f"{name}-msg-{rid}" if state == "sent" else None
            conn.execute(
                "UPDATE recipients SET state = ?, message_id = ?, attempts = 1 WHERE id = ?",
                (state, message_id, rid),
            )
        rows = conn.execute(
            "SELECT id, phone, message_id FROM recipients WHERE campaign_id = ? ORDER BY id",
            (campaign_id,),
        ).fetchall()
    return [Recipient(rid, phone, mid, name) for rid, phone, mid in rows]


def event(
    r: Recipient,
    event_type: str = "TEXT_DELIVERED",
    ts: int = 1_700_000_000_000,
    final: bool = True,
    *,
    message_id: str | None = None,
    context: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An event as AWS writes it (field names and casing of docs/aws-facts.md) for recipient `r`."""
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": ts,
        "isFinal": final,
        "originationPhoneNumber": ORIGINATION,
        "destinationPhoneNumber": r.phone,
        "isInternationalSend": False,
        "messageId": message_id or r.message_id or f"aws-{r.id}",
        "messageRequestTimestamp": ts - 500,
        "messageEncoding": "GSM",
        "messageType": "PROMOTIONAL",
        "messageStatus": event_type.removeprefix("TEXT_"),
        "messageStatusDescription": f"status {event_type}",
        "context": {"campaign": r.campaign, "recipient": str(r.id)} if context is None else context,
        "totalMessageParts": 1,
        "totalMessagePrice": 0.00581,
        "totalCarrierFee": 0.00266,
        "isoCountryCode": "US",
    }
    body.update(fields)
    return body


def sns_envelope(e: dict[str, Any], topic_arn: str = "arn:aws:sns:us-east-1:123456789012:t") -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": json.dumps(e),
            "Timestamp": "2026-11-28T10:00:00.000Z",
            "SignatureVersion": "1",
        }
    )


def ledger_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def deliveries(db: Path) -> dict[int, tuple[Any, ...]]:
    """recipient id -> (state, message_id, delivery, delivery_reason, charged)."""
    rows = ledger_rows(
        db, "SELECT id, state, message_id, delivery, delivery_reason, charged FROM recipients"
    )
    return {r[0]: r[1:] for r in rows}


# -- moto ---------------------------------------------------------------------------------------


@dataclass
class Moto:
    url: str

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]  # any service name
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def queue(self, visibility_timeout: int = 30) -> str:
        sqs = self.client("sqs")
        return str(
            sqs.create_queue(
                QueueName=f"events-{uuid.uuid4().hex[:12]}",
                Attributes={"VisibilityTimeout": str(visibility_timeout)},
            )["QueueUrl"]
        )

    def topic_to_queue(self, *, raw: bool, visibility_timeout: int = 30) -> tuple[str, str]:
        """An SNS topic subscribed by a new SQS queue: (topic ARN, queue URL)."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn = sns.create_topic(Name=f"sms-events-{uuid.uuid4().hex[:12]}")["TopicArn"]
        queue_url = self.queue(visibility_timeout)
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true" if raw else "false"},
        )
        return topic_arn, queue_url

    def publish(self, topic_arn: str, events: list[dict[str, Any]]) -> None:
        sns = self.client("sns")
        for start in range(0, len(events), 10):
            entries = [
                {"Id": str(i), "Message": json.dumps(e)}
                for i, e in enumerate(events[start : start + 10])
            ]
            assert not sns.publish_batch(
                TopicArn=topic_arn, PublishBatchRequestEntries=entries
            ).get("Failed")

    def send_bodies(self, queue_url: str, bodies: list[str]) -> None:
        sqs = self.client("sqs")
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
            ]
            assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages on the queue."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request in every report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """moto's server, and the tool pointed at it the standard way (for in-process and child runs)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", moto_server)
    return Moto(moto_server)
