"""`campaign events ingest --queue-url` against moto's real SQS and SNS over HTTP: SNS topic -> SQS
queue (envelope or raw), malformed messages, reconciling `unknown`, Ctrl-C, and SIGKILL mid-queue."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.events.conftest import Moto, deliveries, event, ledger_rows, make_campaign, sns_envelope
from tests.helpers import Cli, campaign_process

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")
T = 1_700_000_000_000


@pytest.mark.parametrize("raw", [False, True], ids=["sns-envelope", "raw-message-delivery"])
def test_from_an_sns_topic_through_sqs(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto, raw: bool
) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 30)
    topic_arn, queue_url = moto.topic_to_queue(raw=raw)
    events = []
    for i, r in enumerate(rs):
        events.append(event(r, "TEXT_SUCCESSFUL", T, False))
        events.append(event(r, "TEXT_BLOCKED" if i % 10 == 0 else "TEXT_DELIVERED", T + 9))
    events += events[:7]  # SNS and SQS repeat themselves
    moto.publish(topic_arn, events)
    assert moto.counts(queue_url) == (67, 0)

    summary = run.json(
        "events", "ingest", "--queue-url", queue_url, "--until-empty", "--receivers", "3", "--json"
    )
    # At least once in (SQS may hand a message out twice: moto does, now and then, to concurrent
    # receivers), exactly once in effect.
    assert summary["messages"] >= 67
    assert summary["deleted"] + summary["delete_failures"] == summary["messages"]
    assert summary["read"] == summary["messages"]
    assert (summary["stored"], summary["duplicates"]) == (60, summary["read"] - 60)
    assert summary["campaigns"]["c1"]["delivered"] == 27
    assert summary["campaigns"]["c1"]["undelivered"] == 3
    assert moto.counts(queue_url) == (0, 0)
    assert [deliveries(isolated_env)[r.id][2] for r in rs[:2]] == ["undelivered", "delivered"]


def test_malformed_and_foreign_messages_are_set_aside_and_deleted(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    [r] = make_campaign(run, tmp_path, isolated_env, 1)
    queue_url = moto.queue()
    moto.send_bodies(
        queue_url,
        [
            "not json at all",
            "[]",
            json.dumps({"Type": "Notification", "Message": "{cut"}),
            json.dumps(event(r, "VOICE_COMPLETED", T)),
            sns_envelope(event(r, "TEXT_DELIVERED", T, context={"campaign": "other"})),
            sns_envelope(event(r, "TEXT_DELIVERED", T, context={}, message_id="nobody")),
            sns_envelope(event(r, "TEXT_DELIVERED", T)),
        ],
    )
    summary = run.json("events", "ingest", "--queue-url", queue_url, "--until-empty", "--json")
    assert summary["aside"] == {
        "malformed": 3,
        "other_channel": 1,
        "other_campaign": 1,
        "unknown_message": 1,
    }
    assert summary["stored"] == 1
    assert summary["deleted"] == summary["messages"] >= 7
    assert moto.counts(queue_url) == (0, 0)
    assert ledger_rows(isolated_env, "SELECT count(*) FROM events_aside") == [(6,)]


def test_unknown_recipients_are_reconciled_from_the_queue(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 4, state="unknown")
    topic_arn, queue_url = moto.topic_to_queue(raw=False)
    # AWS accepted the first two calls (their events carry our context); the others never arrived.
    moto.publish(
        topic_arn,
        [event(r, "TEXT_DELIVERED", T, message_id=f"aws-{r.id}") for r in rs[:2]],
    )
    summary = run.json("events", "ingest", "--queue-url", queue_url, "--until-empty", "--json")
    assert summary["reconciled"] == 2
    status = run.json("status", "c1", "--json")
    assert (status["counts"]["sent"], status["counts"]["unknown"]) == (2, 2)
    rows = deliveries(isolated_env)
    assert [rows[r.id][:3] for r in rs] == [
        ("sent", f"aws-{rs[0].id}", "delivered"),
        ("sent", f"aws-{rs[1].id}", "delivered"),
        ("unknown", None, None),
        ("unknown", None, None),
    ]


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_ctrl_c_commits_what_was_received_and_exits_3(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 5)
    topic_arn, queue_url = moto.topic_to_queue(raw=True)
    moto.publish(topic_arn, [event(r, "TEXT_DELIVERED", T) for r in rs])
    # No --until-empty: it long-polls for more until told to stop.
    proc = campaign_process("events", "ingest", "--queue-url", queue_url)
    try:
        _wait_for(
            lambda: moto.counts(queue_url) == (0, 0), 30, "the ingester to take every message"
        )
        time.sleep(0.3)  # well into a 20 s long poll
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 3, stderr
    assert time.monotonic() - started < 10  # it did not sit out the long poll
    assert "Stopping: committing what was received" in stderr
    # SQS delivers at least once (moto's threaded server can hand one message to two receivers
    # under load): every message is read, and each event is stored exactly once.
    read = re.search(r"Read (\d+) events \((\d+) SQS messages\)", stderr)
    assert read is not None, stderr
    assert int(read[1]) == int(read[2]) >= 5
    assert ledger_rows(isolated_env, "SELECT count(*) FROM events") == [(5,)]


@pytest.mark.slow
def test_sigkill_mid_queue_then_restart_loses_nothing_and_counts_nothing_twice(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    # moto's SQS scans the whole queue on every call: a few hundred messages keep it quick.
    n = 150
    rs = make_campaign(run, tmp_path, isolated_env, n)
    # A short visibility timeout: what the killed run held comes back within seconds.
    topic_arn, queue_url = moto.topic_to_queue(raw=False, visibility_timeout=3)
    events = [event(r, "TEXT_SUCCESSFUL", T, False) for r in rs]
    events += [event(r, "TEXT_DELIVERED" if r.id % 7 else "TEXT_SPAM", T + 5) for r in rs]
    events += [events[i] for i in range(0, 2 * n, 5)]  # duplicates
    events.append({"eventType": "no id"})  # one bad message
    moto.publish(topic_arn, events)

    proc = campaign_process("-q", "events", "ingest", "--queue-url", queue_url, "--receivers", "1")
    try:

        def stored() -> int:
            return int(ledger_rows(isolated_env, "SELECT count(*) FROM events")[0][0])

        _wait_for(lambda: stored() >= 50, 60, "the first run to record some events")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    before = stored()
    visible, in_flight = moto.counts(queue_url)
    assert 0 < before < 2 * n, before  # killed mid-queue
    assert visible + in_flight > 0  # work was left, some of it maybe received and not deleted

    summary = run.json("events", "ingest", "--queue-url", queue_url, "--until-empty", "--json")
    # Every distinct event recorded exactly once, whatever the first run had done.
    assert stored() == 2 * n
    assert summary["stored"] == 2 * n - before
    new_aside = sum(summary["aside"].values())  # the bad message, unless the first run had it
    assert summary["read"] == summary["stored"] + summary["duplicates"] + new_aside
    assert moto.counts(queue_url) == (0, 0)
    rows = deliveries(isolated_env)
    assert sum(1 for r in rs if rows[r.id][2] == "delivered") == sum(1 for r in rs if r.id % 7)
    assert sum(1 for r in rs if rows[r.id][2] == "undelivered") == sum(
        1 for r in rs if not r.id % 7
    )
    assert ledger_rows(isolated_env, "SELECT reason, count(*) FROM events_aside GROUP BY 1") == [
        ("missing_fields", 1)
    ]


class _FlakyClient:
    """The real (moto) SQS client, whose first receives fail as given: a network blip, or the queue
    deleted under the ingester's feet."""

    def __init__(self, client: object, failures: list[Exception]) -> None:
        self._client = client
        self._failures = failures

    def receive_message(self, **kwargs: object) -> object:
        if self._failures:
            raise self._failures.pop(0)
        return self._client.receive_message(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def test_a_receive_error_is_waited_out_but_a_missing_queue_stops_the_run(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto
) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from campaign.events.ingest import IngestError, ingest_queue
    from campaign.ledger.engine import make_engine

    rs = make_campaign(run, tmp_path, isolated_env, 3)
    queue_url = moto.queue()
    moto.send_bodies(queue_url, [sns_envelope(event(r, "TEXT_DELIVERED", T)) for r in rs])
    engine = make_engine(f"sqlite:///{isolated_env}")
    blip = EndpointConnectionError(endpoint_url=moto.url)
    flaky = _FlakyClient(moto.client("sqs"), [blip, blip])
    summary = ingest_queue(engine, flaky, queue_url, receivers=1, until_empty=True)
    assert (summary.receive_errors, summary.outcome.stored, summary.deleted) == (2, 3, 3)

    gone = ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}},
        "ReceiveMessage",
    )
    with pytest.raises(IngestError, match="NonExistentQueue: gone"):
        ingest_queue(engine, _FlakyClient(moto.client("sqs"), [gone]), queue_url, receivers=1)
