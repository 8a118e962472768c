"""The `events` section of `make bench`: delivery events into the ledger, from a file and from SQS.

  file  1,000,000 events (JSON Lines, as the simulator's event generator writes them: TEXT_SUCCESSFUL
        then a final for each message, 5% undelivered, 2% repeated, 10% final-first) for the
        1M-recipient campaign (its recipients marked sent, 1% `unknown` to be reconciled), ingested
        by `campaign events ingest --file`, beside a bare `json.loads` loop over the same file.
        Targets: under 60 s, under 500 MB.
  sqs   the same kind of events published to an SNS topic that feeds an SQS queue (the envelope in
        each body) on moto's server, drained by `campaign events ingest --queue-url --until-empty`,
        beside a bare boto3 loop with as many threads (receive 10, delete_message_batch) draining
        the same number of messages from the same server. Target: >= 0.8 of its rate.

moto's SQS re-reads every queue attribute (a scan of the whole queue) for each message it hands
out, and converts datetimes for each visibility check: receiving gets slower with every message
waiting, so a queue of a few thousand drains at 20 messages/s and the server would hide both
clients. And it is not thread-safe: concurrent deletes can resurrect a deleted message. The
benchmark's moto process (`python -m bench.events moto PORT`) replaces the two slow spots with the
same checks in O(1) and serializes receives and deletes; both clients run against that server.

Baselines run in child processes of their own: `python -m bench.events KIND ...` (see main()).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import heapq
import itertools
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EVENTS_SEED_SALT = "events"
UNKNOWN_EVERY = 100  # one recipient in a hundred left `unknown` (no MessageId) by a "crash"
NO_CONTEXT_EVERY = 50  # one message in fifty without our context: matched by MessageId
SQS_RECEIVERS = 4
SQS_TRIALS = 3
ORIGINATION = "+12065550100"


# == the section =================================================================================


def section_events(b: Any) -> None:
    """Registered in bench.sections.SECTIONS as "events"."""
    _file_ingest(b)
    _sqs_ingest(b)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def message_id_for(recipient_id: int, seed: int) -> str:
    """A UUID-shaped MessageId per recipient, like AWS's (random order: a realistic index load)."""
    digest = hashlib.md5(f"{seed}:{recipient_id}".encode(), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest))


@dataclass
class EventsTally:
    """What the generator wrote, by its own count (checked against the ingester's summary)."""

    path: str
    events: int = 0  # lines
    distinct: int = 0  # distinct (messageId, eventType, eventTimestamp)
    messages: int = 0
    delivered: int = 0
    undelivered: int = 0
    reconcilable: int = 0  # messages of `unknown` recipients
    seed: int = 0


def _prepare_ledger(b: Any) -> Path:
    """A copy of the 1M-recipient campaign at the newest schema, its recipients sent (1% unknown)."""
    from bench.sections import BIG, _ensure_big_campaign, fresh_db

    source = _ensure_big_campaign(b)
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = fresh_db(b.settings.out / "events.db")
    shutil.copyfile(source, db)
    b.cli("events-upgrade", db, "db", "upgrade", timeout=600).check("campaign db upgrade")
    seed = b.settings.seed
    started = time.perf_counter()
    with sqlite3.connect(db) as conn:
        conn.create_function("bench_mid", 1, lambda rid: message_id_for(rid, seed))
        (campaign_id,) = conn.execute("SELECT id FROM campaigns WHERE name = ?", (BIG,)).fetchone()
        conn.execute(
            "UPDATE recipients SET state = CASE WHEN id % ? = 0 THEN 'unknown' ELSE 'sent' END, "
            "message_id = CASE WHEN id % ? = 0 THEN NULL ELSE bench_mid(id) END, attempts = 1 "
            "WHERE campaign_id = ? AND state = 'pending'",
            (UNKNOWN_EVERY, UNKNOWN_EVERY, campaign_id),
        )
    _say(f"  ledger ready in {time.perf_counter() - started:.1f} s (recipients marked sent)")
    return db


def _recipient_records(db: Path, campaign: str, seed: int) -> Iterator[dict[str, Any]]:
    """The simulator's record of each sent (or unknown) recipient's message, in id order."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.id, r.phone, r.country, r.parts, r.encoding, r.state FROM recipients r "
            "JOIN campaigns c ON c.id = r.campaign_id WHERE c.name = ? "
            "AND r.state IN ('sent', 'unknown') ORDER BY r.id",
            (campaign,),
        )
        for rid, phone, country, parts, encoding, state in rows:
            context = {"campaign": campaign, "recipient": str(rid)}
            if state == "sent" and rid % NO_CONTEXT_EVERY == 0:
                context = {}
            yield {
                "message_id": message_id_for(rid, seed),
                "destination": phone,
                "country": country,
                "origination": ORIGINATION,
                "parts": parts or 1,
                "encoding": encoding,
                "message_type": "PROMOTIONAL",
                "dry_run": False,
                "context": context,
                "event": "TEXT_DELIVERED",
                "unknown": state == "unknown",
            }


def write_events(
    path: Path, records: Iterator[dict[str, Any]], count: int, seed: int
) -> EventsTally:
    """About `count` events (whole messages only) for the records, in arrival order: each message's
    events arrive after their delays, interleaved with the next messages' (one accepted a ms)."""
    from campaign.events.parse import delivery_of
    from campaign.simulator.events import EventSettings, plan_events

    settings = EventSettings(undelivered_share=0.05, duplicate_share=0.02, reorder_share=0.10)
    rng = random.Random(f"{EVENTS_SEED_SALT}:{seed}")
    tally = EventsTally(str(path), seed=seed)
    due: list[tuple[float, int, str]] = []
    order = itertools.count()
    base_ms = 1_790_000_000_000
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        for n, record in enumerate(records):
            if tally.events >= count:
                break
            accepted_s = n / 1000
            planned = plan_events(record, settings, rng, base_ms + n)
            keys = {(p.event["eventType"], p.event["eventTimestamp"]) for p in planned}
            final = next(p.event for p in planned if p.event["isFinal"])
            delivery = delivery_of(final["eventType"], True)
            tally.delivered += delivery == "delivered"
            tally.undelivered += delivery == "undelivered"
            tally.reconcilable += bool(record["unknown"])
            tally.messages += 1
            tally.distinct += len(keys)
            tally.events += len(planned)
            for p in planned:
                line = json.dumps(p.event, separators=(",", ":"))
                heapq.heappush(due, (accepted_s + p.arrives_after_s, next(order), line))
            while due and due[0][0] <= accepted_s:
                out.write(heapq.heappop(due)[2] + "\n")
        while due:
            out.write(heapq.heappop(due)[2] + "\n")
    tmp.replace(path)
    return tally


def _events_file(b: Any, db: Path) -> EventsTally:
    """The events file for (rows, seed), generated once and reused (its tally kept beside it)."""
    from bench.sections import BIG

    s = b.settings
    path = s.out / f"events-{s.rows}-s{s.seed}.jsonl"
    tally_path = path.with_suffix(".json")
    if path.exists() and tally_path.exists():
        with contextlib.suppress(TypeError, ValueError):
            cached = EventsTally(**json.loads(tally_path.read_text()))
            if cached.seed == s.seed and cached.events >= s.rows:
                return cached
    started = time.perf_counter()
    tally = write_events(path, _recipient_records(db, BIG, s.seed), s.rows, s.seed)
    tally_path.write_text(json.dumps(asdict(tally), indent=2))
    _say(f"  {tally.events:,} events written in {time.perf_counter() - started:.1f} s: {path}")
    return tally


def _file_ingest(b: Any) -> None:
    from bench.sections import BIG, Row

    s = b.settings
    _say(
        f"[events] {s.rows:,} events from a JSON Lines file into the {s.rows:,}-recipient campaign"
    )
    db = _prepare_ledger(b)
    tally = _events_file(b, db)
    tool = b.cli(
        "events-ingest-file",
        db,
        "events",
        "ingest",
        "--file",
        tally.path,
        "--json",
        timeout=1200,
    ).check("campaign events ingest --file")
    summary = tool.json()
    base = b.runner.run(
        "baseline-json-loads",
        [b.python, "-m", "bench.events", "loads", tally.path],
        timeout=600,
    ).check("baseline json.loads loop")
    loads = base.json()
    funnel = summary["campaigns"].get(BIG, {})
    expected = {
        "stored": tally.distinct,
        "reconciled": tally.reconcilable,
        "delivered": tally.delivered,
        "undelivered": tally.undelivered,
    }
    got = {
        "stored": summary["stored"],
        "reconciled": summary["reconciled"],
        "delivered": funnel.get("delivered"),
        "undelivered": funnel.get("undelivered"),
    }
    b.details["events_file"] = {
        "tally": asdict(tally),
        "summary": summary,
        "tool": tool.summary(),
        "baseline_loads": {**loads, "process": base.summary()},
        "expected": expected,
    }
    rate = tally.events / tool.wall_s
    print(
        f"\n== events: {tally.events:,} events from a file ==\n"
        f"  campaign events ingest --file  {tool.wall_s:8.2f} s  {rate:>10,.0f} events/s  "
        f"(CPU {tool.cpu_s:.1f} s), peak {tool.peak_mb:.1f} MB\n"
        f"  bare json.loads loop           {loads['seconds']:8.2f} s  "
        f"{loads['events_per_s']:>10,.0f} events/s, peak {base.peak_mb:.1f} MB\n"
        f"  stored {summary['stored']:,} (duplicates {summary['duplicates']:,}), reconciled "
        f"{summary['reconciled']:,}; {BIG}: {funnel.get('delivered', 0):,} delivered, "
        f"{funnel.get('undelivered', 0):,} undelivered, {funnel.get('awaiting', 0):,} awaiting, "
        f"charged ${funnel.get('charged', 0):,.2f}",
        flush=True,
    )
    if got != expected:
        _say(f"  NOTE: the ingester's counts differ from the generator's: {got} != {expected}")
        b.details["events_file"]["mismatch"] = {"got": got, "expected": expected}
    b.add(
        Row(
            "events",
            f"events ingest --file, {tally.events:,} events (s)",
            tool.wall_s,
            "s",
            loads["seconds"],
            "bare json.loads loop",
            tool.wall_s / loads["seconds"],
            "< 60 s",
            tool.wall_s < 60 and got == expected,
            "" if got == expected else "counts differ",
        )
    )
    b.add(
        Row(
            "events",
            "events ingest --file peak memory (MB)",
            tool.peak_mb,
            "MB",
            base.peak_mb,
            "json.loads loop process",
            tool.peak_mb / base.peak_mb,
            "< 500 MB",
            tool.peak_mb < 500,
        )
    )


# -- SQS on moto ----------------------------------------------------------------------------------


class MotoProcess:
    """moto's server (`python -m bench.events moto PORT`) in its own process group."""

    def __init__(self, python: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [python, "-m", "bench.events", "moto", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto did not start on port {self.port}; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        self._log.close()


def _aws_env(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_SQS": url,
        "AWS_ENDPOINT_URL_SNS": url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(  # type: ignore[call-overload]  # any service name
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def _fill_queue(url: str, name: str, bodies: list[str]) -> str:
    """A queue subscribed (SNS envelope) to a new topic, with `bodies` published to the topic."""
    sns, sqs = _client(url, "sns"), _client(url, "sqs")
    topic = sns.create_topic(Name=f"{name}-topic")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "Message": m} for i, m in enumerate(bodies[start : start + 10])]
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    return str(queue_url)


def _sqs_ingest(b: Any) -> None:
    from bench.sections import Row, fresh_db, median

    s = b.settings
    messages = 2_000 if s.quick else 4_000
    _say(
        f"[events/sqs] {messages:,} SNS-enveloped events on moto's SQS, {SQS_RECEIVERS} receivers: "
        "events ingest --until-empty vs a bare receive/delete_batch loop"
    )
    # A small ledger whose recipients the events belong to (a fresh copy per run: nothing stored).
    recipients = messages // 2
    template = fresh_db(s.out / "events-sqs.db")
    csv_path = s.out / f"events-sqs-{recipients}.csv"
    from bench import data

    data.write_send_csv(csv_path, recipients, s.seed)
    b.cli("sqs-create", template, "create", "sqs", "-o", ORIGINATION, "-m", "Hi {first_name}",
          timeout=120).check("campaign create")  # fmt: skip
    b.cli("sqs-import", template, "import", "sqs", str(csv_path), timeout=300).check("import")
    with sqlite3.connect(template) as conn:
        conn.create_function("bench_mid", 1, lambda rid: message_id_for(rid, s.seed))
        conn.execute("UPDATE recipients SET state = 'sent', message_id = bench_mid(id)")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lines_path = s.out / "events-sqs.jsonl"
    tally = write_events(lines_path, _recipient_records(template, "sqs", s.seed), messages, s.seed)
    bodies = lines_path.read_text().splitlines()
    moto = MotoProcess(b.python, s.root, b.runner.env, s.out / "logs" / "moto.log")
    env = _aws_env(moto.url)
    tool_rates, bare_rates, runs = [], [], []
    try:
        for trial in range(SQS_TRIALS):  # alternating, so machine load hits both alike
            db = fresh_db(s.out / "events-sqs-run.db")
            shutil.copyfile(template, db)
            queue_url = _fill_queue(moto.url, f"tool-{trial}", bodies)
            tool = b.runner.run(
                f"events-sqs-tool-{trial}",
                [b.campaign_bin, "-q", "events", "ingest", "--queue-url", queue_url,
                 "--until-empty", "--receivers", str(SQS_RECEIVERS), "--json"],
                timeout=900,
                env={**env, "CAMPAIGN_DB": f"sqlite:///{db}"},
            ).check("campaign events ingest --queue-url")  # fmt: skip
            summary = tool.json()
            if summary["stored"] != tally.distinct:
                raise RuntimeError(f"stored {summary['stored']} != {tally.distinct} events sent")
            tool_rates.append(summary["messages"] / summary["active_seconds"])
            queue_url = _fill_queue(moto.url, f"bare-{trial}", bodies)
            bare = b.runner.run(
                f"events-sqs-bare-{trial}",
                [b.python, "-m", "bench.events", "sqs-loop", queue_url, str(SQS_RECEIVERS)],
                timeout=900,
                env=env,
            ).check("bare receive/delete loop")
            loop = bare.json()
            bare_rates.append(loop["messages"] / loop["active_s"])
            runs.append({"tool": {**summary, "process": tool.summary()},
                         "bare": {**loop, "process": bare.summary()}})  # fmt: skip
    finally:
        moto.stop()
    tool_rate, bare_rate = median(tool_rates), median(bare_rates)
    b.details["events_sqs"] = {"messages": messages, "receivers": SQS_RECEIVERS, "runs": runs}
    print(
        f"\n== events: {messages:,} messages from SQS (moto), {SQS_RECEIVERS} receivers ==\n"
        f"  campaign events ingest    {tool_rate:>8,.0f} msgs/s (runs: "
        f"{', '.join(f'{r:,.0f}' for r in tool_rates)}), rate from its first receive to its "
        "last delete\n"
        f"  bare receive/delete loop  {bare_rate:>8,.0f} msgs/s (runs: "
        f"{', '.join(f'{r:,.0f}' for r in bare_rates)})",
        flush=True,
    )
    b.add(
        Row(
            "events",
            f"events ingest from SQS, {SQS_RECEIVERS} receivers (msgs/s)",
            tool_rate,
            "msgs/s",
            bare_rate,
            "bare boto3 receive(10)/delete_batch loop",
            tool_rate / bare_rate,
            ">= 0.8x",
            tool_rate / bare_rate >= 0.8,
        )
    )


# == baselines and the moto server, in child processes ===========================================


def loads_loop(path: str) -> dict[str, Any]:
    """What a user would write: json.loads over every line."""
    started = time.perf_counter()
    events = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)
            events += 1
    seconds = time.perf_counter() - started
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds}


def sqs_loop(queue_url: str, receivers: int) -> dict[str, Any]:
    """`receivers` threads, each: receive 10 (1 s long poll), delete them in one batch; a thread
    ends at its first empty receive. Timed from the first message received to the last delete."""
    import boto3

    client = boto3.client("sqs", config=_pool_config(receivers))
    lock = threading.Lock()
    state: dict[str, Any] = {"messages": 0, "first": None, "last": None}

    def drain() -> None:
        while True:
            got = client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not got:
                return
            with lock:
                state["first"] = state["first"] or time.monotonic()
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ]
            client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            with lock:
                state["messages"] += len(got)
                state["last"] = time.monotonic()

    threads = [threading.Thread(target=drain) for _ in range(receivers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    active = (state["last"] or 0) - (state["first"] or 0)
    return {"messages": state["messages"], "active_s": active, "receivers": receivers}


def _pool_config(receivers: int) -> Any:
    from botocore.config import Config

    return Config(max_pool_connections=2 * receivers + 2, retries={"mode": "standard"})


def run_moto(port: int) -> None:
    """moto's server, with the two per-message O(queue) spots of its SQS made O(1) (same checks),
    and its receives and deletes made atomic."""
    import logging

    import moto.sqs.models as sqs_models
    from moto.server import ThreadedMotoServer

    original_ms = sqs_models.unix_time_millis

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(original_ms(dt))

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    # moto's server handles requests in threads, but its SQS is not thread-safe: a delete rebuilds
    # the queue's message list, and two deletes at once can bring a deleted message back (SQS
    # would never), and two receives at once can hand out the same message. Both are serialized
    # (a receive's long-poll wait is not: it only happens on an empty queue).
    lock = threading.Lock()
    original_receive = sqs_models.SQSBackend.receive_message
    original_delete = sqs_models.Queue.delete_message

    def receive_message(self: Any, queue_name: str, count: int, wait: int, *args: Any) -> Any:
        with lock:
            got = original_receive(self, queue_name, count, 0, *args)
        return got if got or not wait else original_receive(self, queue_name, count, wait, *args)

    def delete_message(self: Any, receipt_handle: str) -> None:
        with lock:
            original_delete(self, receipt_handle)

    sqs_models.unix_time_millis = unix_time_millis
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = retention_ok  # type: ignore[method-assign]
    sqs_models.SQSBackend.receive_message = receive_message  # type: ignore[assignment,method-assign]
    sqs_models.Queue.delete_message = delete_message  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    threading.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    sub = parser.add_subparsers(dest="kind", required=True)
    sub.add_parser("loads").add_argument("file")
    loop = sub.add_parser("sqs-loop")
    loop.add_argument("queue_url")
    loop.add_argument("receivers", type=int)
    sub.add_parser("moto").add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.kind == "moto":
        run_moto(args.port)
        return
    result = (
        loads_loop(args.file) if args.kind == "loads" else sqs_loop(args.queue_url, args.receivers)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
