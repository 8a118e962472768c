"""Ingesting delivery events into the ledger, from files or from an SQS queue.

Exactly-once effect over at-least-once delivery: each batch is recorded in ONE transaction
(campaign.ledger.events.record_events, which recognises events it already has), and an SQS message is
deleted only after the transaction that recorded what it said has committed. Killed at any moment,
the ingester loses nothing (undeleted messages come back after their visibility timeout; a file is
read again) and counts nothing twice (the ledger's unique keys).

The queue is read by several receiver threads (long polling, 10 messages a call); the calling thread
commits what they received in batches and hands the receipts to a pool that deletes them in batches
of 10, so receiving never waits for the database and the database never waits for a receive.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from campaign.aws.sms import foreign_answer, not_the_api, refuse_html_answers
from campaign.aws.sqs import error_code
from campaign.domain import now
from campaign.errors import UserError
from campaign.events.parse import Parsed, parse_body
from campaign.events.sources import event_files, read_events
from campaign.ledger.events import RecordOutcome, reconcile_recorded, record_events

FILE_BATCH = 20_000  # events per transaction when reading files
QUEUE_BATCH = 500  # SQS messages per transaction at most
QUEUE_LINGER_S = 0.05  # how long a batch waits to fill once its first message is in
LONG_POLL_S = 20  # SQS's longest WaitTimeSeconds: fewest empty receives while events trickle in
DRAIN_POLL_S = 1  # --until-empty: short waits, so that an empty queue is seen soon
EMPTY_RECEIVES_TO_DRAIN = 1  # by every receiver (then SQS's own counts must say 0 too)
PROGRESS_EVERY_S = 0.5
SQS_MAX_MESSAGES = 10  # per ReceiveMessage and per DeleteMessageBatch: the API's maximum
RECEIVE_BACKOFF_MAX_S = 30
# Errors no wait will cure: the run stops with one line. Any other receive error is waited out.
PERMANENT_ERRORS = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAddress",
        "KMS.AccessDeniedException",
    }
)


class IngestError(UserError):
    """The events source failed (queue missing, access denied, ...): one line."""


@dataclass
class IngestSummary:
    """What one `events ingest` run did."""

    source: str
    outcome: RecordOutcome = field(default_factory=RecordOutcome)
    inputs: int = 0  # events and undecodable inputs read
    files: int = 0
    messages: int = 0  # SQS messages received
    deleted: int = 0  # SQS messages deleted after their commit
    delete_failures: int = 0  # left on the queue: they come back and are recognised as duplicates
    receive_errors: int = 0  # receives that failed and were retried after a wait
    in_flight_elsewhere: int = 0  # --until-empty stopped while others held this many messages
    started: float = field(default_factory=time.monotonic)
    first_input: float | None = None  # the first input read (an SQS receive that got messages)
    last_done: float | None = None  # the last commit, or the last SQS delete after it
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def active_s(self) -> float:
        """From the first input read to the last commit or delete (what a rate is measured over:
        no start-up, no wait on an empty queue)."""
        if self.first_input is None or self.last_done is None:
            return 0.0
        return max(self.last_done - self.first_input, 1e-9)

    @property
    def rate(self) -> float:
        return self.inputs / self.active_s if self.active_s else 0.0


@dataclass(frozen=True)
class Progress:
    inputs: int
    matched: int
    elapsed_s: float

    @property
    def per_second(self) -> float:
        return self.inputs / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


class _Recorder:
    """Commits batches and keeps the running totals; tells progress at most every half second."""

    def __init__(
        self, engine: Engine, summary: IngestSummary, on_progress: ProgressCallback | None
    ) -> None:
        self.engine = engine
        self.summary = summary
        self.on_progress = on_progress
        self._told = 0.0

    def record(self, items: Sequence[Parsed]) -> None:
        if not items:
            return
        if self.summary.first_input is None:
            self.summary.first_input = time.monotonic()
        with self.engine.begin() as conn:
            outcome = record_events(conn, items, now())
        self.summary.last_done = time.monotonic()
        self.summary.inputs += len(items)
        self.summary.outcome.add(outcome)
        self.tick()

    def reconcile_recorded(self) -> None:
        """Before reading: `unknown` recipients whose events are already recorded become `sent`."""
        with self.engine.begin() as conn:
            self.summary.outcome.reconciled += reconcile_recorded(conn, now())

    def tick(self, force: bool = False) -> None:
        moment = time.monotonic()
        if self.on_progress is None or (not force and moment - self._told < PROGRESS_EVERY_S):
            return
        self._told = moment
        elapsed = moment - (self.summary.first_input or self.summary.started)
        self.on_progress(Progress(self.summary.inputs, self.summary.outcome.matched, elapsed))

    def finish(self, interrupted: bool) -> IngestSummary:
        self.tick(force=True)
        self.summary.interrupted = interrupted
        self.summary.elapsed_s = time.monotonic() - self.summary.started
        return self.summary


# -- files ----------------------------------------------------------------------------------------


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    *,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    batch_size: int = FILE_BATCH,
) -> IngestSummary:
    """Record every event in the files (and folders) given. `stop` set: end after the batch in
    hand (a file read again later is recognised event by event)."""
    files = event_files(paths)
    summary = IngestSummary(source=", ".join(str(p) for p in paths), files=len(files))
    recorder = _Recorder(engine, summary, on_progress)
    recorder.reconcile_recorded()
    batch: list[Parsed] = []
    for path in files:
        for item in read_events(path):
            batch.append(item)
            if len(batch) >= batch_size:
                recorder.record(batch)
                batch = []
                if stop is not None and stop.is_set():
                    return recorder.finish(interrupted=True)
    recorder.record(batch)
    return recorder.finish(interrupted=False)


# -- SQS ------------------------------------------------------------------------------------------


def ingest_queue(
    engine: Engine,
    client: Any,
    queue_url: str,
    *,
    receivers: int = 4,
    until_empty: bool = False,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    batch_messages: int = QUEUE_BATCH,
) -> IngestSummary:
    """Receive, record and delete until `stop` is set, or until the queue is drained
    (`until_empty`). `client` is an SQS client (campaign.aws.sqs.make_client)."""
    summary = IngestSummary(source=queue_url)
    recorder = _Recorder(engine, summary, on_progress)
    pipeline = _QueuePipeline(client, queue_url, receivers, until_empty, summary)
    pipeline.check_queue()
    recorder.reconcile_recorded()
    stop = stop or threading.Event()
    pipeline.start()
    interrupted = False
    try:
        while True:
            messages = pipeline.gather(batch_messages)
            if messages:
                pipeline.commit(recorder, messages)
            pipeline.raise_receiver_error()
            if stop.is_set():
                interrupted = True
                break
            if until_empty and not messages and pipeline.drained():
                break
            recorder.tick()
    except BaseException:
        # A failed commit (or receive) deletes nothing more: what was not committed stays on the
        # queue and comes back. Deletes already under way for committed batches may finish.
        pipeline.stop_receiving(wait=False)
        pipeline.finish_deletes()
        raise
    # Stop receiving; record and delete what was received. A Ctrl-C does not wait for a receive
    # still long-polling: what it gets, if anything, comes back after its visibility timeout.
    pipeline.stop_receiving(wait=until_empty and not interrupted)
    pipeline.commit(recorder, pipeline.gather_all())
    pipeline.finish_deletes()
    pipeline.raise_receiver_error()
    return recorder.finish(interrupted)


class _QueuePipeline:
    def __init__(
        self, client: Any, queue_url: str, receivers: int, until_empty: bool, summary: IngestSummary
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.receivers = max(receivers, 1)
        self.wait_s = DRAIN_POLL_S if until_empty else LONG_POLL_S
        self.summary = summary
        self.inbox: queue.Queue[list[dict[str, Any]]] = queue.Queue(maxsize=self.receivers * 8)
        self.empty_streaks = [0] * self.receivers
        self.receiving = threading.Event()
        self.retry_wait = threading.Event()  # set when stopping: ends a receiver's back-off wait
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.deleter = ThreadPoolExecutor(self.receivers, thread_name_prefix="sqs-delete")
        self.deletes: list[Future[tuple[int, int]]] = []
        self.visibility_timeout_s = 30.0
        self.drain_deadline: float | None = None

    def check_queue(self) -> None:
        """Fail early, in one line, on a queue that does not exist or cannot be read."""
        fix = "--queue-url (or AWS_ENDPOINT_URL_SQS)"
        refuse_html_answers(self.client, fix, f"cannot read queue {self.queue_url}")
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
        except UserError:
            raise
        except Exception as exc:
            if problem := foreign_answer(exc):  # not an SQS endpoint
                raise IngestError(
                    f"cannot read queue {self.queue_url}: {not_the_api(self.client, problem, fix)}"
                ) from None
            raise IngestError(f"cannot read queue {self.queue_url}: {_describe(exc)}") from None
        self.visibility_timeout_s = float(attributes.get("VisibilityTimeout", 30))

    def start(self) -> None:
        self.receiving.set()
        for index in range(self.receivers):
            thread = threading.Thread(
                target=self._receive_loop, args=(index,), name=f"sqs-receive-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _receive_loop(self, index: int) -> None:
        failures = 0
        while self.receiving.is_set():
            try:
                response = self.client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=SQS_MAX_MESSAGES,
                    WaitTimeSeconds=self.wait_s,
                )
            except Exception as exc:
                if error_code(exc) in PERMANENT_ERRORS:
                    self.errors.append(exc)  # the committing thread reports it and stops the run
                    self.receiving.clear()
                    return
                # Anything else (a network blip, throttling past botocore's retries) passes:
                # wait, then receive again. Nothing is lost meanwhile; SQS keeps the messages.
                self.summary.receive_errors += 1
                self.retry_wait.wait(min(2 ** min(failures, 5), RECEIVE_BACKOFF_MAX_S))
                failures += 1
                continue
            failures = 0
            messages = response.get("Messages") or []
            if not messages:
                self.empty_streaks[index] += 1
                continue
            self.empty_streaks[index] = 0
            if self.summary.first_input is None:
                self.summary.first_input = time.monotonic()
            # Bounded: a slow database slows the receivers down. Once stopped, a full inbox is not
            # waited for: those messages come back after their visibility timeout.
            while True:
                try:
                    self.inbox.put(messages, timeout=0.2)
                    break
                except queue.Full:
                    if not self.receiving.is_set():
                        return

    def gather(self, limit: int) -> list[dict[str, Any]]:
        """The next batch: waits a moment for a first message, then lingers briefly to fill up."""
        try:
            messages = list(self.inbox.get(timeout=0.2))
        except queue.Empty:
            return []
        deadline = time.monotonic() + QUEUE_LINGER_S
        while len(messages) < limit:
            try:
                messages.extend(self.inbox.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                break
        return messages

    def gather_all(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            try:
                messages.extend(self.inbox.get_nowait())
            except queue.Empty:
                return messages

    def commit(self, recorder: _Recorder, messages: list[dict[str, Any]]) -> None:
        """Record the messages in one transaction, then (only then) delete them."""
        if not messages:
            return
        self.summary.messages += len(messages)
        recorder.record([parse_body(m.get("Body") or "") for m in messages])
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            receipts = [m["ReceiptHandle"] for m in messages[start : start + SQS_MAX_MESSAGES]]
            self.deletes.append(self.deleter.submit(self._delete, receipts))
        self._collect_deletes(block=False)

    def _delete(self, receipts: list[str]) -> tuple[int, int]:
        entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)]
        try:
            response = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception:
            # Not deleted: the messages come back after their visibility timeout and are then
            # recognised as duplicates. Never a reason to stop ingesting.
            return 0, len(receipts)
        self.summary.last_done = time.monotonic()
        return len(response.get("Successful") or []), len(response.get("Failed") or [])

    def _collect_deletes(self, block: bool) -> None:
        pending = []
        for future in self.deletes:
            if block or future.done():
                deleted, failed = future.result()
                self.summary.deleted += deleted
                self.summary.delete_failures += failed
            else:
                pending.append(future)
        self.deletes = pending

    def finish_deletes(self) -> None:
        self._collect_deletes(block=True)
        self.deleter.shutdown(wait=True)

    def stop_receiving(self, wait: bool) -> None:
        self.receiving.clear()
        self.retry_wait.set()
        # A receive in flight ends within its WaitTimeSeconds; on Ctrl-C nobody waits for a 20 s
        # long poll (the threads are daemons; what they receive comes back later).
        deadline = time.monotonic() + (self.wait_s + 10 if wait else 0.5)
        for thread in self.threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0))

    def drained(self) -> bool:
        """--until-empty: every receiver came back empty from its last receive, nothing is left to
        delete, and SQS counts no message visible or in flight (another consumer's, or a killed
        run's, which come back after their visibility timeout: waited for, within reason)."""
        if min(self.empty_streaks) < EMPTY_RECEIVES_TO_DRAIN or not self.inbox.empty():
            return False
        self._collect_deletes(block=True)
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except Exception:
            return False
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        hidden = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        if visible == 0 and hidden == 0:
            return True
        if visible > 0:
            return False
        if self.drain_deadline is None:
            self.drain_deadline = time.monotonic() + self.visibility_timeout_s + 5
        if time.monotonic() < self.drain_deadline:
            return False
        self.summary.in_flight_elsewhere = hidden
        return True

    def raise_receiver_error(self) -> None:
        if self.errors:
            exc = self.errors[0]
            raise IngestError(f"receiving from {self.queue_url}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    code = error_code(exc)
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        return f"{code}: {message}".rstrip(": ")
    return " ".join(str(exc).split()) or type(exc).__name__  # one line
